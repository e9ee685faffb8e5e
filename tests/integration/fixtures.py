"""pytest fixtures shared by tests/integration and tests/handlers (imported by their conftest)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import aws


@pytest.fixture(scope="session")
def moto_server() -> Iterator[aws.RecordingMotoServer]:
    """One moto server for the session, on 127.0.0.1 (pyarrow's own S3 client needs a real server),
    recording the requests it answers (``moto_server.log``)."""
    aws.quiet_moto_logs()
    server = aws.RecordingMotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_endpoint(moto_server: aws.RecordingMotoServer) -> str:
    return moto_server.endpoint


@pytest.fixture
def fake_aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials and region, every client pointed at a freshly reset moto server."""
    aws.reset(moto_endpoint)
    aws.set_env(monkeypatch, moto_endpoint)
    return moto_endpoint


@pytest.fixture
def deployment(fake_aws: str) -> aws.Deployment:
    return aws.deploy(fake_aws)


@pytest.fixture
def handler(deployment: aws.Deployment, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``handler("IngestCloudTrailFunction")`` -> (module, lambda_handler) with the function's
    environment from template.yaml (Globals + its own), resolved for the test deployment."""

    def load(function: str, **env_overrides: str) -> tuple[Any, Any]:
        for k, v in (deployment.function_env(function) | env_overrides).items():
            monkeypatch.setenv(k, v)
        return aws.load_handler(function, deployment.tpl)

    return load
