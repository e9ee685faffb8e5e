"""Live ingest: one poll of the AppStream API (DescribeSessions) stored as ``live_sessions`` (what
was seen) and ``live_polls`` (what was asked, and whether it answered)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .. import live
from ..attribution import DAY_MS
from ..lake import Lake
from ..schemas import LIVE_POLLS, TS, conform
from ..timeparse import day_string
from .compaction import Compactor


@dataclass
class LiveOutcome:
    observations: int
    polled: int
    failed: int
    alerts_opened: int = 0


def ingest_live(lake: Lake, compactor: Compactor, sessions: list[dict], observed_at_ms: int,
                polled: list[tuple[str, str]], errors: dict[tuple[str, str], str] | None = None,
                account_id: str | None = None, region: str | None = None) -> LiveOutcome:
    """Store one poll (the DescribeSessions results for the ``polled`` stack/fleet pairs).

    CloudTrail files land 5+ minutes after the calls, so writes are attributed against these
    observations as they are ingested; no recomputation is needed here.
    """
    snap = live.snapshot_table(sessions, observed_at_ms)
    snap = _with(snap, account_id, region)
    dt = day_string(observed_at_ms // DAY_MS)
    name = f"snap-{observed_at_ms}"
    if snap.num_rows:
        lake.write_file("live_sessions", dt, name, snap)
    seen: dict[tuple[str, str], int] = {}
    for st, fl in zip(snap.column("stack_name").to_pylist(), snap.column("fleet_name").to_pylist(), strict=True):
        seen[(st, fl)] = seen.get((st, fl), 0) + 1
    errors = errors or {}
    pairs = sorted(set(polled) | set(errors))
    polls = pa.table({
        "observed_at": pa.array([observed_at_ms] * len(pairs), pa.int64()).cast(TS),
        "stack_name": [p[0] for p in pairs],
        "fleet_name": [p[1] for p in pairs],
        "sessions_seen": pa.array([seen.get(p, 0) for p in pairs], pa.int64()),
        "error": pa.array([errors.get(p) for p in pairs], pa.string()),
        "account_id": pa.array([account_id] * len(pairs), pa.string()),
        "region": pa.array([region] * len(pairs), pa.string()),
    })
    if pairs:
        lake.write_file("live_polls", dt, name, conform(polls, LIVE_POLLS))
    for table in ("live_sessions", "live_polls"):
        compactor.maybe_compact(table, dt)
    return LiveOutcome(observations=snap.num_rows, polled=len(polled), failed=len(errors))


def _with(t: pa.Table, account_id: str | None, region: str | None) -> pa.Table:
    for name, value in (("account_id", account_id), ("region", region)):
        t = t.set_column(t.schema.get_field_index(name), name, pa.array([value] * t.num_rows, pa.string()))
    return t
