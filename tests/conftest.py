from __future__ import annotations

from datetime import timedelta

import pytest

from auditcorr.config import Config
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from tests.factories import T0


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
