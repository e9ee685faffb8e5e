"""The join's vocabulary: statuses, how a write was matched, coverage, the result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import pyarrow as pa

DAY_MS = 86_400_000

ATTRIBUTED = "attributed"
AMBIGUOUS = "ambiguous"
PENDING = "pending"
UNATTRIBUTED = "unattributed"
EXTERNAL = "external"
#: a service made the call with the principal's credentials (``userIdentity.invokedBy``), from no address
VIA_SERVICE = "via_service"
#: the ``status`` of a write; the position is the code the join computes with
STATUSES = (ATTRIBUTED, AMBIGUOUS, PENDING, UNATTRIBUTED, EXTERNAL, VIA_SERVICE)


class Match(IntEnum):
    """How a write's session(s) were chosen: the ``match`` column (``NONE`` is null)."""

    CLAIM = 0  # the claimed session id is among the candidates
    WINDOW = 1  # the session's own window contains the event
    TOLERANCE = 2  # matched only through the clock-skew tolerance
    NONE = 3  # no candidate (or not from the fleet)
    NAT = 4  # from the fleet's NAT egress: attribution impossible
    #: a service's call (``invokedBy``) placed at the fleet address its access key was used from
    CREDENTIALS = 5

    @property
    def label(self) -> str | None:
        return None if self is Match.NONE else self.name.lower()


#: ``match`` column values, indexed by :class:`Match`
MATCH_LABELS = pa.array([m.label for m in Match], pa.string())

#: columns of the sessions frame the join needs (report sessions and live observations alike)
SESSION_COLS = ("session_id", "user_id", "session_start_time", "session_end_time",
                "eni_private_ip_address", "fleet_name", "stack_name", "instance_id", "aws_account_id", "region")


#: the scope a report file with no account in its name covers (lakes written before scopes existed)
EVERY_SCOPE = "*"


@dataclass(frozen=True)
class Coverage:
    """Which sessions reports are in, per scope (``<account>|<region>``), and how far each scope's
    CloudTrail has come (its data clock): the join's evidence that a write's sessions are all known.

    Decided in the data's own time, never from the wall clock:

    - a write's OWN day is covered only by that day's report (a day with fleet writes had sessions);
    - another day of its window (the day before, for the tolerance; the days after, for sessions that
      end later and appear only in their end day's report) is covered by its report, or once a report
      of a later day is in (reports arrive in day order; a day without sessions has none);
    - a day whose report is missing while a report two or more days later is in, and the scope's
      CloudTrail has moved ``grace`` past the day's end, is *overdue*: its writes stay pending and the
      day raises one ``usage_report_missing`` alert.
    """

    report_days: Mapping[str, frozenset[int]]
    clocks: Mapping[str, int] = field(default_factory=dict)
    grace_ms: int = 48 * 3_600_000

    @classmethod
    def every_scope(cls, days: Iterable[int], clock_ms: int = 0, grace_ms: int = 48 * 3_600_000) -> Coverage:
        """Reports in for ``days`` in every scope (tests, benchmarks, single-scope lakes)."""
        return cls({EVERY_SCOPE: frozenset(days)}, {EVERY_SCOPE: clock_ms}, grace_ms)

    def _days(self, scope: str) -> frozenset[int]:
        own = self.report_days.get(scope, frozenset())
        every = self.report_days.get(EVERY_SCOPE)
        return own | every if every else own

    def reported(self, scope: str, day: int) -> bool:
        return day in self._days(scope)

    def passed(self, scope: str, day: int) -> bool:
        """A report of a later day is in: the report stream has moved past ``day``."""
        days = self._days(scope)
        return bool(days) and max(days) > day

    def clock(self, scope: str) -> int:
        return max(self.clocks.get(scope, 0), self.clocks.get(EVERY_SCOPE, 0))

    def covered(self, scope: str, own: int, first: int, last: int) -> bool:
        """All reports that could name a session of a write of day ``own`` (window days
        ``first .. last``) are in."""
        if not self.reported(scope, own):
            return False
        return all(d == own or self.reported(scope, d) or self.passed(scope, d) for d in range(first, last + 1))

    def overdue(self, scope: str, day: int) -> bool:
        """The day's report is missing for good (see the class doc)."""
        if self.reported(scope, day):
            return False
        days = self._days(scope)
        return bool(days) and max(days) >= day + 2 and self.clock(scope) >= (day + 1) * DAY_MS + self.grace_ms


@dataclass
class AttributionResult:
    activity: pa.Table  # ATTRIBUTED_ACTIVITY schema (without dt)
    #: per activity row: does it settle the claim?  (True: claim known & not the holder; used by rules)
    claim_known_elsewhere: np.ndarray
    final: np.ndarray  # per row: covering reports are in (decisions that wait for reports may be taken)
    #: per row: an unknown claimed id may be called unknown now (reports in, or a fresh live view)
    claim_decidable: np.ndarray
    #: per row: a pending write whose own day's report is overdue (``usage_report_missing``)
    report_overdue: np.ndarray
    #: per row: the write's scope (``<account>|<region>``)
    scope: pa.Array
    #: per row: a service made the call for the principal (``userIdentity.invokedBy``)
    invoked_by: np.ndarray
