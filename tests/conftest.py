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
#: folders whose tests are slow as a whole (seconds each: generated worlds, moto servers, replays through
#: the handlers, hypothesis searches)
_SLOW_FOLDERS = {"lambda_hardening", "e2e", "benchmarks", "handlers", "integration", "backfill", "property"}
#: single tests of other folders that take seconds (measured with --durations; keep the quick loop quick)
_SLOW_TESTS = ("test_the_views_and_the_lookups_agree_on_a_generated_world", "test_tiered_compaction_is_bounded",
               "test_100_000_records_in_one_file", "test_sigkill_of_a_real_ingest", "test_crash_at_any_write",
               "test_two_ingests_at_once", "test_validate_never_raises", "test_compression_ratio_does_not_matter",
               "test_a_bomb_in_a_batch")


def pytest_collection_modifyitems(config, items):
    """Tier every test by what it needs (unless it says so itself): ``aws`` > ``lake`` > ``pure``;
    and ``slow`` for the slow folders."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        own = {m.name for m in item.iter_markers()}
        if not own & {"pure", "lake", "aws"}:
            tier = "aws" if names & _AWS_FIXTURES else "lake" if names & _DISK_FIXTURES else "pure"
            item.add_marker(tier)
        slow = item.path.parent.name in _SLOW_FOLDERS or item.name.startswith(_SLOW_TESTS)
        if slow and "slow" not in own:
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
