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


def reconcile(previous: pa.Table, raised: pa.Table, scope_event_ids: Iterable[str], now_ms: int,
              rules_in_scope: Iterable[str] | None = None) -> pa.Table:
    """Merge freshly ``raised`` alerts with the ``previous`` latest alert rows.

    Returns only the rows that change (new alerts, re-opened, closed): the caller appends them.
    ``scope_event_ids``: the events that were re-evaluated; an open alert on one of them that is no
    longer raised is closed.  ``rules_in_scope`` limits closing to the rules that were evaluated.
    """
    now = pa.scalar(now_ms, pa.int64()).cast(TS)
    prev: dict[str, dict[str, Any]] = {r["alert_id"]: r for r in previous.to_pylist()}
    scope = set(scope_event_ids)
    rules = set(rules_in_scope) if rules_in_scope is not None else None
    changed: list[dict[str, Any]] = []
    raised_ids = set()
    for r in raised.to_pylist():
        raised_ids.add(r["alert_id"])
        old = prev.get(r["alert_id"])
        if old is None:
            r["detected_at"] = now.as_py()
            r["updated_at"] = now.as_py()
            changed.append(r)
        elif old["status"] != OPEN or old["description"] != r["description"]:
            r["detected_at"] = old["detected_at"]
            r["updated_at"] = _after(now.as_py(), old["updated_at"])
            r["status_reason"] = "re-opened: raised again on recomputation" if old["status"] != OPEN else None
            changed.append(r)
    for aid, old in prev.items():
        if old["status"] != OPEN or aid in raised_ids or old["event_id"] not in scope:
            continue
        if rules is not None and old["rule"] not in rules:
            continue
        closed = dict(old)
        closed["status"] = CLOSED
        closed["status_reason"] = "no longer raised after recomputation with newer data (e.g. a sessions report)"
        closed["updated_at"] = _after(now.as_py(), old["updated_at"])
        changed.append(closed)
    if not changed:
        return ALERTS.empty_table()
    return pa.Table.from_pylist(changed, schema=ALERTS)


def _after(now: Any, previous: Any) -> Any:
    """A version strictly after ``previous`` (the clock may not have moved within one run)."""
    from datetime import timedelta

    return now if previous is None or now > previous else previous + timedelta(milliseconds=1)


def latest(alerts: pa.Table) -> pa.Table:
    """Keep the latest row (by ``updated_at``) per ``alert_id``."""
    if alerts.num_rows == 0:
        return alerts
    order = pc.sort_indices(alerts, sort_keys=[("alert_id", "ascending"), ("updated_at", "descending")])
    s = alerts.take(order)
    ids = s.column("alert_id").to_numpy(zero_copy_only=False)
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    return s.filter(pa.array(first))
