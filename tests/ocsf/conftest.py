from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.fixtures import fake_aws, moto_endpoint, moto_server  # noqa: F401
from tests.ocsf import scenario


@pytest.fixture
def scenario_lake(tmp_path) -> Path:
    path = tmp_path / "lake"
    scenario.build(path)
    return path
