"""Re-attribution: which days a late sessions report can change, and what a recomputed write was
before (``previous_*``), so history survives every recomputation."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc

from ..attribution import DAY_MS
from ..config import Config
from ..timeparse import day_number, day_string


def days_affected_by_report(sessions: pa.Table, report_date: str, have: set[str], config: Config) -> list[str]:
    """The write partitions (of ``have``) a sessions report for ``report_date`` can re-attribute: a
    session ending that day started up to ``max_session_hours`` before it."""
    tol = config.tolerance_seconds * 1000
    rd = day_number(report_date)
    lo = rd - (math.ceil(config.max_session_hours / 24) + 2)
    if sessions.num_rows:
        first = int(pc.min(sessions.column("session_start_time")).cast(pa.int64()).as_py())
        lo = min(lo, (first - tol) // DAY_MS)
    return [d for d in (day_string(x) for x in range(lo, rd + 2)) if d in have]


def carry_previous(act: pa.Table, old: pa.Table) -> pa.Table:
    """Fill ``previous_*`` where a recomputation changed an event's status, session or source."""
    if old.num_rows == 0 or act.num_rows == 0:
        return act
    idx = pc.index_in(act.column("event_id"), value_set=old.column("event_id"))
    has_old = pc.is_valid(idx)
    take = idx.fill_null(0)

    def old_col(name: str) -> pa.Array:
        col = old.column(name).combine_chunks().take(take)
        return pc.if_else(has_old, col, pa.scalar(None, col.type))

    o_status, o_sid, o_src = old_col("status"), old_col("session_id"), old_col("session_source")

    def differs(a: pa.Array, b: pa.Array) -> pa.Array:
        eq = pc.equal(a, b)
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        return pc.invert(pc.or_(pc.fill_null(eq, False), both_null))

    changed = pc.and_(has_old, pc.or_(pc.or_(differs(act.column("status"), o_status),
                                             differs(act.column("session_id"), o_sid)),
                                      differs(act.column("session_source"), o_src)))
    for col, new in (("previous_status", o_status), ("previous_session_id", o_sid),
                     ("previous_session_source", o_src)):
        carried = old_col(col)
        i = act.schema.get_field_index(col)
        act = act.set_column(i, col, pc.if_else(changed, new, carried))
    # the log file's integrity is not recomputed by attribution: the latest version holds it
    i = act.schema.get_field_index("log_integrity")
    act = act.set_column(i, "log_integrity", pc.coalesce(act.column("log_integrity"), old_col("log_integrity")))
    return act
