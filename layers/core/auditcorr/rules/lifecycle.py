"""The signal (alert) life cycle: freshly raised signals merged with their earlier versions.

A signal's id is derived from the rule and its subject (``alert_id = H(rule, event_id)``), so
re-running anything never duplicates one.  A signal a later recomputation no longer raises is
*closed* with a reason, never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..schemas import ALERTS, TS, conform
from .base import CLOSED, OPEN


def reconcile(previous: pa.Table, raised: pa.Table,
              scope_event_ids: Iterable[str | None] | pa.Array | pa.ChunkedArray, now_ms: int,
              rules_in_scope: Iterable[str] | None = None, closed_reason: str | None = None) -> pa.Table:
    """Merge freshly ``raised`` alerts with the ``previous`` latest alert rows.

    Returns only the rows that change (new alerts, re-opened, closed): the caller appends them.
    ``scope_event_ids``: the events that were re-evaluated; an open alert on one of them that is no
    longer raised is closed.  ``rules_in_scope`` limits closing to the rules that were evaluated.

    Only the previous rows of the raised alerts and of the events in scope matter, so the caller may
    pass just those (an alert's versions all share its ``event_id``: ``alert_id = H(rule, event)``).
    Columnar: no Python object per row (a re-attributed day holds a row per write).
    """
    now = pa.scalar(now_ms, pa.int64()).cast(TS)
    prev = _last_per_alert(conform(previous, ALERTS))
    new = conform(raised, ALERTS)
    empty_str = pa.scalar(None, pa.string())

    # raised alerts: new ones, and known ones that were not open or now read differently
    pos = pc.index_in(new.column("alert_id"), value_set=prev.column("alert_id"))
    found = pc.is_valid(pos)
    old = prev.take(pos)  # null rows where not found
    old_not_open = pc.fill_null(pc.not_equal(old.column("status"), OPEN), True)
    # a signal reads differently: its text, or (a configuration change) its finding or suppression
    differs = _differs(old.column("description"), new.column("description"))
    for col in ("finding_id", "suppressed_by", "severity"):
        differs = pc.or_(differs, _differs(old.column(col), new.column(col)))
    keep_raised = pc.or_(pc.invert(found), pc.and_(found, pc.or_(old_not_open, differs)))
    set_cols = {
        "detected_at": pc.if_else(found, old.column("detected_at"), now),
        "updated_at": pc.if_else(found, _after_col(now, old.column("updated_at")), now),
        "status_reason": pc.if_else(found, pc.if_else(old_not_open, _REOPENED, empty_str),
                                    new.column("status_reason")),
    }
    changed_raised = _replace(new, set_cols).filter(keep_raised)

    # open alerts of the events in scope that were not raised again: closed
    closing = pc.and_(pc.fill_null(pc.equal(prev.column("status"), OPEN), False),
                      pc.invert(pc.is_in(prev.column("alert_id"), value_set=new.column("alert_id"))))
    closing = pc.and_(closing, pc.is_in(prev.column("event_id"), value_set=_value_set(scope_event_ids)))
    if rules_in_scope is not None:
        closing = pc.and_(closing, pc.is_in(prev.column("rule"), value_set=_value_set(rules_in_scope)))
    closed = prev.filter(closing)
    closed = _replace(closed, {
        "status": pa.array([CLOSED] * closed.num_rows, pa.string()),
        "status_reason": pa.array([closed_reason or _CLOSED_REASON] * closed.num_rows, pa.string()),
        "updated_at": _after_col(now, closed.column("updated_at")),
    })
    if changed_raised.num_rows + closed.num_rows == 0:
        return ALERTS.empty_table()
    out = pa.concat_tables([changed_raised, closed]) if closed.num_rows else changed_raised
    return out.replace_schema_metadata(ALERTS.metadata)


_REOPENED = "re-opened: raised again on recomputation"
_CLOSED_REASON = "no longer raised after recomputation with newer data (e.g. a sessions report)"


def _value_set(values: Iterable[str | None] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        arr = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    elif isinstance(values, pa.Array):
        arr = values
    else:
        arr = pa.array(list(values), pa.string())
    return pc.unique(arr.cast(pa.string()))


def _last_per_alert(prev: pa.Table) -> pa.Table:
    """One row per ``alert_id``, the last one given (a dict built over the rows), in the order of each
    id's first row.  ``Lake.read`` already keeps one per id: then this is the identity."""
    if prev.num_rows < 2:
        return prev
    ids = prev.column("alert_id")
    uniq = pc.unique(ids)
    if len(uniq) == prev.num_rows:
        return prev
    codes = pc.index_in(ids, value_set=uniq).to_numpy(zero_copy_only=False)
    last = np.full(len(uniq), -1, dtype=np.int64)
    np.maximum.at(last, codes, np.arange(prev.num_rows, dtype=np.int64))
    return prev.take(pa.array(last))


def _differs(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    """``a != b`` row by row with Python's None semantics (None == None)."""
    eq = pc.fill_null(pc.equal(a, b), False)
    return pc.invert(pc.or_(eq, pc.and_(pc.is_null(a), pc.is_null(b))))


def _after_col(now: pa.Scalar, previous: pa.ChunkedArray) -> pa.ChunkedArray:
    """:func:`_after` for a column: ``now``, or ``previous`` + 1 ms where the clock has not moved past it."""
    later = pc.fill_null(pc.greater(now, previous), True)
    return pc.if_else(later, now, pc.add(previous, pa.scalar(1, pa.duration("ms"))))


def _replace(t: pa.Table, cols: dict[str, Any]) -> pa.Table:
    for name, col in cols.items():
        i = t.schema.get_field_index(name)
        t = t.set_column(i, t.schema.field(i), col)
    return t

