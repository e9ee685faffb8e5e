from __future__ import annotations

from typing import Any

import pytest

from tests.integration import aws
from tests.integration.fixtures import deployment, fake_aws, handler, moto_endpoint, moto_server  # noqa: F401
from tests.lambda_hardening.harness import App

_CLEAN: dict[str, Any] = {}


@pytest.fixture
def app(deployment, handler, moto_server) -> App:  # noqa: F811
    return App(deployment, handler, moto_server)


@pytest.fixture
def clean(app: App, moto_endpoint: str) -> dict[str, Any]:  # noqa: F811
    """The snapshot of a single clean run (computed once per session), then a fresh deployment for
    the test to run its own variant in."""
    if "snapshot" not in _CLEAN:
        app.clean_run()
        _CLEAN["snapshot"] = app.snapshot()
        app.containers.clear()
        aws.reset(moto_endpoint)
        app.deployment.__dict__.update(aws.deploy(moto_endpoint).__dict__)
    return _CLEAN["snapshot"]
