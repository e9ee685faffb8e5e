"""Detection rules over attribution results, and the alert life cycle.

Each rule is a pure function of the attribution rows; an alert's id is derived from the rule and
the event (``alert_id = H(rule, event_id)``), so re-running anything never duplicates an alert.
An alert a later recomputation no longer raises is *closed* with a reason, never deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .attribution import AMBIGUOUS, ATTRIBUTED, EXTERNAL, UNATTRIBUTED, AttributionResult, classify_ips
from .config import Config
from .schemas import ALERTS, TS, conform

WRITE_RULES = ("session_id_mismatch", "unknown_session_id", "credentials_outside_fleet", "unattributed_activity")

OPEN = "open"
CLOSED = "closed"


def alert_id(rule: str, subject: str) -> str:
    return hashlib.sha256(f"auditcorr/v1|{rule}|{subject}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RuleInfo:
    title: str
    description: str  # format string over the alert's fields


RULES: dict[str, RuleInfo] = {
    "session_id_mismatch": RuleInfo(
        "Activity claims an AppStream session that did not hold its IP",
        "{event_name} s3://{bucket}/{key} from {source_ip} claims session {claimed_session_id}, "
        "but that IP was held by session {session_id} (user {user_id}) at {event_time}: a disguised session.",
    ),
    "unknown_session_id": RuleInfo(
        "Activity claims an AppStream session id that does not exist",
        "{event_name} s3://{bucket}/{key} from {source_ip} claims session {claimed_session_id}, "
        "which no sessions report or live observation knows (resolved session: {session_id}).",
    ),
    "credentials_outside_fleet": RuleInfo(
        "Fleet role credentials used from outside the fleet's subnets",
        "{event_name} s3://{bucket}/{key} by {principal_arn} came from {source_ip}, outside the fleet "
        "CIDRs: the instance role's credentials were used elsewhere (credential replay).",
    ),
    "unattributed_activity": RuleInfo(
        "Write from a fleet address while no AppStream session held it",
        "{event_name} s3://{bucket}/{key} from fleet address {source_ip} at {event_time}, "
        "but no session held that address then (reports covering the time are in).",
    ),
    # logon cross-check (logon_check.py): the format fields are that module's, not the activity's
    "session_without_logon": RuleInfo(
        "AppStream session with no preceding logon of its user",
        "Session {session_id} of user {user_id} on stack {stack_name} (fleet {fleet_name}, address "
        "{source_ip}) started at {event_time}, but CloudTrail shows no successful logon of that user in "
        "the {window_hours} h before it: a session nobody logged on for (shared or forged identity, or a "
        "logon path CloudTrail does not see).",
    ),
    "logon_user_mismatch": RuleInfo(
        "The logon just before an AppStream session names a different user",
        "Session {session_id} on stack {stack_name} started at {event_time} for user {user_id}, but the "
        "logon immediately before it ({logon_event_name} {logon_event_id} at {logon_time}, "
        "{logon_gap_seconds} s earlier, from {logon_source_ip}) was by {logon_user}, and {user_id} had no "
        "logon {own_logon_scope}: someone else's logon may have opened this session.",
    ),
}


def write_alerts(res: AttributionResult, config: Config) -> pa.Table:
    """Alerts raised by attributed activity rows (ALERTS schema, status open)."""
    act = res.activity
    n = act.num_rows
    if n == 0:
        return ALERTS.empty_table()
    status = act.column("status").to_numpy(zero_copy_only=False)
    claimed = act.column("claimed_session_id").is_valid().to_numpy(zero_copy_only=False)
    valid_ip, _, _ = classify_ips(act.column("source_ip").combine_chunks(), config.fleet_cidrs)
    fleet_status = np.isin(status, [ATTRIBUTED, AMBIGUOUS, UNATTRIBUTED, "pending"])
    claim_ok = _claim_settled(act)
    rules: list[tuple[str, np.ndarray]] = [
        ("session_id_mismatch", fleet_status & claimed & ~claim_ok & res.claim_known_elsewhere),
        ("unknown_session_id", fleet_status & claimed & ~claim_ok & ~res.claim_known_elsewhere & res.claim_decidable),
        ("credentials_outside_fleet", (status == EXTERNAL) & valid_ip & (act.column("match").is_null()
                                                                         .to_numpy(zero_copy_only=False))),
        ("unattributed_activity", status == UNATTRIBUTED),
    ]
    parts = []
    for rule, mask in rules:
        if not config.rule_enabled(rule) or not mask.any():
            continue
        sub = act.filter(pa.array(mask))
        parts.append(_alert_rows(rule, sub, config))
    if not parts:
        return ALERTS.empty_table()
    return pa.concat_tables(parts)


def _claim_settled(act: pa.Table) -> np.ndarray:
    """The claimed id is among the candidates (then the claim chose the session)."""
    match = act.column("match").to_numpy(zero_copy_only=False)
    return match == "claim"


def _alert_rows(rule: str, sub: pa.Table, config: Config) -> pa.Table:
    info = RULES[rule]
    rows = sub.select(["event_id", "event_time", "event_name", "source_ip", "bucket", "key", "principal_arn",
                       "user_id", "session_id", "claimed_session_id"]).to_pylist()
    out = []
    for r in rows:
        fields = {k: ("-" if v is None else v) for k, v in r.items()}
        fields["event_time"] = r["event_time"].strftime("%Y-%m-%dT%H:%M:%SZ") if r["event_time"] else "-"
        out.append({
            "alert_id": alert_id(rule, r["event_id"]),
            "rule": rule,
            "severity": config.severity.get(rule, "MEDIUM"),
            "status": OPEN,
            "status_reason": None,
            "event_id": r["event_id"],
            "event_time": r["event_time"],
            "source_ip": r["source_ip"],
            "bucket": r["bucket"],
            "key": r["key"],
            "principal_arn": r["principal_arn"],
            "user_id": r["user_id"],
            "session_id": r["session_id"],
            "claimed_session_id": r["claimed_session_id"],
            "title": info.title,
            "description": info.description.format(**fields),
        })
    return conform(pa.Table.from_pylist(out, schema=_ALERT_IN), ALERTS)


ALERT_IN = pa.schema([f for f in ALERTS if f.name not in ("detected_at", "updated_at")])
_ALERT_IN = ALERT_IN


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
    keep_raised = pc.or_(pc.invert(found),
                         pc.and_(found, pc.or_(old_not_open,
                                               _differs(old.column("description"), new.column("description")))))
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

