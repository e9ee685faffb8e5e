from __future__ import annotations

from datetime import timedelta

import pytest

from auditcorr.config import Config
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from tests.factories import T0

#: fixtures that mean "AWS under moto" and "a lake or files on disk"
_AWS_FIXTURES = {"moto_server", "moto_endpoint", "deployment", "handler", "app", "clean", "fake_aws"}
_DISK_FIXTURES = {"tmp_path", "tmp_path_factory", "lake", "pipe", "local_lake"}
#: folders whose tests are slow as a whole (seconds each: generated worlds, replays through the handlers)
_SLOW_FOLDERS = {"lambda_hardening", "e2e", "benchmarks"}


def pytest_collection_modifyitems(config, items):
    """Tier every test by what it needs (unless it says so itself): ``aws`` > ``lake`` > ``pure``;
    and ``slow`` for the slow folders."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        own = {m.name for m in item.iter_markers()}
        if not own & {"pure", "lake", "aws"}:
            tier = "aws" if names & _AWS_FIXTURES else "lake" if names & _DISK_FIXTURES else "pure"
            item.add_marker(tier)
        if item.path.parent.name in _SLOW_FOLDERS and "slow" not in own:
            item.add_marker("slow")


class FakeClock:
    """A settable clock (epoch ms) so tests decide what 'now' is."""

    def __init__(self, at=T0 + timedelta(days=5)) -> None:
        self.ms = int(at.timestamp() * 1000)

    def __call__(self) -> int:
        return self.ms

    def set(self, at) -> None:
        self.ms = int(at.timestamp() * 1000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake.open(str(tmp_path / "lake"))


@pytest.fixture
def pipe(lake, clock) -> Pipeline:
    return Pipeline(lake, Config(), clock=clock)
