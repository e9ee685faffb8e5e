"""The join's vocabulary: statuses, how a write was matched, coverage, the result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pyarrow as pa

DAY_MS = 86_400_000

ATTRIBUTED = "attributed"
AMBIGUOUS = "ambiguous"
PENDING = "pending"
UNATTRIBUTED = "unattributed"
EXTERNAL = "external"
#: the ``status`` of a write; the position is the code the join computes with
STATUSES = (ATTRIBUTED, AMBIGUOUS, PENDING, UNATTRIBUTED, EXTERNAL)


class Match(IntEnum):
    """How a write's session(s) were chosen: the ``match`` column (``NONE`` is null)."""

    CLAIM = 0  # the claimed session id is among the candidates
    WINDOW = 1  # the session's own window contains the event
    TOLERANCE = 2  # matched only through the clock-skew tolerance
    NONE = 3  # no candidate (or not from the fleet)
    NAT = 4  # from the fleet's NAT egress: attribution impossible

    @property
    def label(self) -> str | None:
        return None if self is Match.NONE else self.name.lower()


#: ``match`` column values, indexed by :class:`Match`
MATCH_LABELS = pa.array([m.label for m in Match], pa.string())

#: columns of the sessions frame the join needs (report sessions and live observations alike)
SESSION_COLS = ("session_id", "user_id", "session_start_time", "session_end_time",
                "eni_private_ip_address", "fleet_name", "stack_name", "instance_id")


@dataclass(frozen=True)
class Coverage:
    """Which days' sessions reports are in, and the clock, to tell ``pending`` from final."""

    report_days: frozenset[int]  # days since the epoch with a sessions report ingested
    now_ms: int
    grace_ms: int

    @classmethod
    def from_dates(cls, dates: list[str], now_ms: int, grace_hours: float) -> Coverage:
        days = frozenset(int(np.datetime64(d, "D").astype(np.int64)) for d in dates if d)
        return cls(days, now_ms, int(grace_hours * 3_600_000))

    def covered(self, day: int) -> bool:
        if day in self.report_days:
            return True
        # reports are written within 24 h of the day closing: a report two days later proves it
        if any(d >= day + 2 for d in self.report_days):
            return True
        return self.now_ms >= (day + 1) * DAY_MS + self.grace_ms

    def covered_range(self, first: int, last: int) -> bool:
        return all(self.covered(d) for d in range(first, last + 1))


@dataclass
class AttributionResult:
    activity: pa.Table  # ATTRIBUTED_ACTIVITY schema (without dt)
    #: per activity row: does it settle the claim?  (True: claim known & not the holder; used by rules)
    claim_known_elsewhere: np.ndarray
    final: np.ndarray  # per row: covering reports are in (decisions that wait for reports may be taken)
    #: per row: an unknown claimed id may be called unknown now (reports in, or a fresh live view)
    claim_decidable: np.ndarray
