from tests.integration.fixtures import deployment, fake_aws, handler, moto_endpoint, moto_server  # noqa: F401
