from tests.integration.fixtures import deployment, fake_aws, handler, moto_endpoint  # noqa: F401
