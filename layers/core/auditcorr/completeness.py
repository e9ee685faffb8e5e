"""Completeness in the data's own time, per scope (``<account>|<region>``).

Two facts are kept in the lake's ``_state``, both written at ingest, never derived from the wall clock:

- which days' sessions reports are in, per scope: one empty marker object per (scope, day)
  (``_state/reports/<scope>/<YYYY-MM-DD>``), so concurrent report ingests never lose each other's;
- how far each scope's data has come (its *data clock*): the newest CloudTrail event time ingested
  from it, or the poll time of a live AppStream poll (``_state/clocks.json``).  Concurrent writers may
  lose an update; a lost update only leaves a clock behind (later decisions, never wrong ones), and
  the next file moves it on.

A replay of last month therefore decides exactly as last month did live: the reports and CloudTrail
it has read so far, not today's date, tell what is complete.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from .attribution.model import EVERY_SCOPE, Coverage
from .lake import Lake
from .timeparse import day_number

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z", re.ASCII)
_SAFE = re.compile(r"[^A-Za-z0-9.-]")


def scope_name(scope: str) -> str:
    """A scope as a file name: ``111122223333|us-east-1`` -> ``111122223333_us-east-1`` (``*``:
    ``any``); reversible, since an account id and a region name hold no underscore."""
    account, _, region = scope.partition("|")
    return f"{_SAFE.sub('-', account)}_{_SAFE.sub('-', region.replace('*', 'any'))}"


def scope_of_name(name: str) -> str:
    account, _, region = name.partition("_")
    return f"{account}|{'*' if region == 'any' else region}"


class Completeness:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    # -- reports ------------------------------------------------------------------------------
    def record_report(self, scope: str, dt: str) -> None:
        self.lake.put_json(self.lake.state_path("reports", scope_name(scope), dt), {"scope": scope})

    def report_days(self) -> dict[str, frozenset[int]]:
        """Scope -> days with a sessions report.  A lake written before scopes existed has report
        files without a scope: each of its report days counts for every scope."""
        base = self.lake.state_path("reports")
        sel = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        out: dict[str, set[int]] = {}
        for info in self.lake.fs.get_file_info(sel):
            if info.type != pafs.FileType.File:
                continue
            day = posixpath.basename(info.path)
            folder = posixpath.basename(posixpath.dirname(info.path))
            if _DAY.match(day):
                out.setdefault(scope_of_name(folder), set()).add(day_number(day))
        result = {scope: frozenset(days) for scope, days in out.items()}
        legacy = self._legacy_days()
        if legacy:
            result[EVERY_SCOPE] = frozenset(legacy) | result.get(EVERY_SCOPE, frozenset())
        return result

    def _legacy_days(self) -> set[int]:
        """Days whose sessions partition holds a report file of an earlier version (``report.parquet``)."""
        days = set()
        for dt in self.lake.partitions("sessions"):
            if self.lake.exists(f"{self.lake.part_dir('sessions', dt)}/report.parquet"):
                days.add(day_number(dt))
        return days

    # -- data clocks --------------------------------------------------------------------------
    def clocks(self) -> dict[str, int]:
        data = self.lake.get_json(self.lake.state_path("clocks.json"))
        if not isinstance(data, dict):
            return {}
        return {str(k): int(v) for k, v in data.items() if isinstance(v, int | float)}

    def advance(self, newest: Mapping[str, int]) -> None:
        """Move the scopes' data clocks forward to ``newest`` (never back)."""
        if not newest:
            return
        current = self.clocks()
        changed = {s: t for s, t in newest.items() if t > current.get(s, -1)}
        if changed:
            self.lake.put_json(self.lake.state_path("clocks.json"), current | changed)

    def coverage(self, grace_hours: float) -> Coverage:
        return Coverage(self.report_days(), self.clocks(), int(grace_hours * 3_600_000))


def newest_per_scope(scopes: pa.Array, event_time: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Scope -> the newest event time (epoch ms) among rows of that scope."""
    if len(scopes) == 0:
        return {}
    t = pa.table({"scope": scopes, "t": pc.cast(event_time, pa.int64())})
    grouped = t.group_by("scope").aggregate([("t", "max")])
    return {s: int(v) for s, v in zip(grouped.column("scope").to_pylist(), grouped.column("t_max").to_pylist(),
                                      strict=True) if s is not None and v is not None}


def account_clocks(clocks: Mapping[str, int]) -> dict[str, int]:
    """Account -> the newest data clock of any of its scopes (logons are logged in one region)."""
    out: dict[str, int] = {}
    for scope, t in clocks.items():
        account = scope.split("|", 1)[0]
        out[account] = max(out.get(account, 0), t)
    return out
