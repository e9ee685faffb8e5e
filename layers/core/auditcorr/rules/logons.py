"""Logon cross-check: every AppStream session should follow a logon of the same user.

Pure: sessions (``SESSIONS`` rows, from a report or observed live) and logons (``LOGONS`` rows,
from CloudTrail) in, signal rows out (``rules.ALERT_IN``: the ALERTS schema without
``detected_at``/``updated_at``, which ``rules.reconcile`` sets).  The alert's subject is the
session: ``alert_id = H(rule, session_id)``, ``event_id = session_id``, ``event_time = start``.

Rules (both switchable with ``config.disabled_rules``, severity from ``config.severity``):

``session_without_logon``
    no successful logon with ``user_name == user_id`` in
    ``[start - logon_window_hours, start + tolerance]`` (the same match the attribution shows as
    ``logon_event_id``).
``logon_user_mismatch``
    among the *stack's* logons in the session's account (default: any successful ``AssumeRoleWithSAML``; ``stack_roles``
    narrows a stack to its SAML role(s)), the one immediately preceding the start -- the latest in
    ``[start - logon_mismatch_window_seconds, start]`` -- names another user, and the session's own
    user has no successful logon (of any kind) in that window (up to ``start + tolerance``):
    ``own_logon="window"``, the default.  ``own_logon="closer"`` raises already when the own user's
    latest logon is older than the other user's; on a stack where many users log on at once that
    fires for ordinary sessions (the demo world, with no logon anomaly at all: 38 of 229 sessions),
    so it is opt-in.

Logons are compared within the session's account (``aws_account_id``; a logon's account is its
``recipientAccountId``): a SAML user opens a session by assuming a role of the stack's account, so a
logon in another account of the organisation neither opened the session nor excuses a missing one.
Logons or sessions of no known account (lakes written before scopes) are compared with every account.

Both are decided only once the CloudTrail for the window can be expected in:
``now >= start + tolerance + cloudtrail_lag_ms`` (CloudTrail delivers within ~15 minutes).  Before
that a session raises nothing; the next evaluation decides.  Only sessions whose
``authentication_type`` is in ``auth_types`` (default SAML; unknown types are checked) are checked:
streaming-URL (``API``), user-pool and AD users log on through paths with no STS logon event.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..attribution import match_logons
from ..attribution.logons import same_account
from ..config import Config
from ..schemas import ALERTS, TS, conform
from .base import ALERT_IN, OPEN, Rule, alert_id

DEFAULT_CLOUDTRAIL_LAG_MS = 30 * 60 * 1000
#: the logons that open an AppStream session for a SAML user
DEFAULT_MISMATCH_EVENTS = ("AssumeRoleWithSAML",)
DEFAULT_AUTH_TYPES = ("SAML",)
OWN_LOGON_MODES = ("closer", "window")


def _fmt_time(v: datetime | None) -> str:
    return v.strftime("%Y-%m-%dT%H:%M:%SZ") if v is not None else "-"


def _successful(logons: pa.Table) -> pa.Table:
    if logons.num_rows == 0:
        return logons
    ok = pc.and_(pc.is_valid(logons.column("user_name")), pc.equal(logons.column("outcome"), "Success"))
    ok = pc.and_(ok, pc.is_valid(logons.column("event_time")))
    return logons.filter(pc.fill_null(ok, False))


class _LogonIndex:
    """Successful logons sorted by time, with their attributes (one per role set)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        rows = sorted(rows, key=lambda r: (r["t"], r["user_name"], r["event_id"] or ""))
        self.t = [r["t"] for r in rows]
        self.rows = rows


def evaluate(sessions: pa.Table, logons: pa.Table, config: Config, now_ms: int | np.ndarray,
             cloudtrail_lag_ms: int = DEFAULT_CLOUDTRAIL_LAG_MS, *,
             mismatch_events: Iterable[str] = DEFAULT_MISMATCH_EVENTS,
             stack_roles: Mapping[str, Iterable[str]] | None = None,
             auth_types: Iterable[str] | None = DEFAULT_AUTH_TYPES,
             own_logon: str = "window") -> pa.Table:
    """Alert rows (``rules.ALERT_IN``) for ``sessions`` against ``logons``; see the module docstring.

    ``stack_roles``: stack name -> the role ARN(s) its SAML logons assume (stacks not named use
    every logon of ``mismatch_events``); ``auth_types``: None checks every session.
    """
    if own_logon not in OWN_LOGON_MODES:
        raise ValueError(f"own_logon must be one of {OWN_LOGON_MODES}")
    enabled = [r for r in RULE_IDS if config.rule_enabled(r)]
    if sessions.num_rows == 0 or not enabled:
        return _empty()
    tol = config.tolerance_seconds * 1000
    cols = ["session_id", "user_id", "session_start_time", "eni_private_ip_address", "stack_name",
            "fleet_name", "authentication_type", "aws_account_id", "region"]
    s = sessions.select([c for c in cols if c in sessions.column_names])
    ok = pc.and_(pc.and_(pc.is_valid(s.column("session_id")), pc.is_valid(s.column("user_id"))),
                 pc.is_valid(s.column("session_start_time")))
    if auth_types is not None and "authentication_type" in s.column_names:
        kinds = pa.array(sorted(set(auth_types)), pa.string())
        at = s.column("authentication_type")
        ok = pc.and_(ok, pc.or_(pc.is_null(at), pc.is_in(at, kinds)))
    start_ms = s.column("session_start_time").cast(pa.int64())
    due = pc.add(start_ms, pa.scalar(tol + int(cloudtrail_lag_ms), pa.int64()))
    # ``now_ms``: how far the CloudTrail has come -- one time, or one per session (its account's data clock)
    now = pa.array(np.asarray(now_ms, dtype=np.int64)) if isinstance(now_ms, np.ndarray) else \
        pa.scalar(int(now_ms), pa.int64())
    decidable = pc.less_equal(due, now)
    s = s.filter(pc.fill_null(pc.and_(ok, decidable), False))
    if s.num_rows == 0:
        return _empty()
    # one evaluation per session id (a report and a live observation may both be passed)
    _, first = np.unique(s.column("session_id").to_numpy(zero_copy_only=False), return_index=True)
    s = s.take(pa.array(np.sort(first)))

    good = _successful(logons)
    out: list[dict[str, Any]] = []
    srows = s.to_pylist()
    if "session_without_logon" in enabled:
        out.extend(session_without_logon(s, srows, good, config))
    if "logon_user_mismatch" in enabled and good.num_rows:
        out.extend(logon_user_mismatch(srows, good, config, tol, set(mismatch_events), stack_roles, own_logon))
    if not out:
        return _empty()
    table = pa.Table.from_pylist(out, schema=ALERT_IN)
    return table.sort_by([("rule", "ascending"), ("event_time", "ascending"), ("session_id", "ascending")])


def session_without_logon(s: pa.Table, srows: list[dict[str, Any]], good: pa.Table,
                          config: Config) -> list[dict[str, Any]]:
    """Sessions with no successful logon of their user in the logon window before the start."""
    accounts = s.column("aws_account_id").combine_chunks() if "aws_account_id" in s.column_names else None
    lid, _, _ = match_logons(s.column("user_id").combine_chunks(),
                             s.column("session_start_time").combine_chunks(), good, config, accounts)
    missing = lid.is_null().to_numpy(zero_copy_only=False)
    return [_row("session_without_logon", r, config, {"window_hours": f"{config.logon_window_hours:g}"})
            for r, miss in zip(srows, missing, strict=True) if miss]


def logon_user_mismatch(srows: list[dict[str, Any]], good: pa.Table, config: Config, tol: int, events: set[str],
                        stack_roles: Mapping[str, Iterable[str]] | None, own_logon: str) -> list[dict[str, Any]]:
    """Sessions whose immediately preceding stack logon names another user (see the module docstring)."""
    window = config.logon_mismatch_window_seconds * 1000
    times = good.column("event_time").cast(pa.int64()).to_pylist()
    cols = ["event_id", "event_name", "user_name", "role_arn", "source_ip", "principal_arn", "assumed_role_arn"]
    recs = good.select(cols + [c for c in ("account_id",) if c in good.column_names]).to_pylist()
    all_rows: list[dict[str, Any]] = []
    for t, rec in zip(times, recs, strict=True):
        all_rows.append({"t": t, "account_id": None, **rec})
    stack_logons = [r for r in all_rows if r["event_name"] in events]
    roles = {k: frozenset(v) for k, v in (stack_roles or {}).items()}
    # per (account, role set): a session's stack logons are its own account's (a logon in another
    # account cannot open it; logons of no known account count everywhere, as before scopes)
    indexes: dict[tuple[str | None, frozenset[str] | None], _LogonIndex] = {}
    own_logons: dict[str | None, dict[str, list[int]]] = {}
    out: list[dict[str, Any]] = []
    for r in srows:
        account = r.get("aws_account_id")
        key = roles.get(r.get("stack_name") or "")
        if (account, key) not in indexes:
            indexes[(account, key)] = _LogonIndex([x for x in stack_logons if same_account(x["account_id"], account)
                                                   and (key is None or x["role_arn"] in key)])
        idx = indexes[(account, key)]
        if account not in own_logons:  # the own user's logons: any successful logon event counts
            by_user: dict[str, list[int]] = {}
            for x in all_rows:
                if same_account(x["account_id"], account):
                    by_user.setdefault(x["user_name"], []).append(x["t"])
            own_logons[account] = {u: sorted(v) for u, v in by_user.items()}
        own = own_logons[account]
        start = int(r["session_start_time"].timestamp() * 1000)
        # the preceding logon: at or before the start (a logon after it did not open it); the own
        # user's logons, below, get the clock-skew tolerance after the start as well
        j = bisect_right(idx.t, start) - 1
        if j < 0 or idx.t[j] < start - window:
            continue
        lt = idx.t[j]
        # every logon at that same instant: a tie with the own user is no mismatch
        tied = []
        k = j
        while k >= 0 and idx.t[k] == lt:
            tied.append(idx.rows[k])
            k -= 1
        if any(x["user_name"] == r["user_id"] for x in tied):
            continue
        other = tied[0]
        mine = own.get(r["user_id"], [])
        m = bisect_right(mine, start + tol) - 1
        own_t = mine[m] if m >= 0 else None
        if own_logon == "closer" and own_t is not None and own_t >= lt:
            continue
        if own_logon == "window" and own_t is not None and own_t >= start - window:
            continue
        logon_time = pa.scalar(lt, pa.int64()).cast(TS).as_py()
        scope = ("closer to the start" if own_logon == "closer"
                 else f"in the {config.logon_mismatch_window_seconds} s before the start")
        out.append(_row("logon_user_mismatch", r, config, {
            "own_logon_scope": scope,
            "logon_user": other["user_name"],
            "logon_event_id": other["event_id"] or "-",
            "logon_event_name": other["event_name"] or "-",
            "logon_time": _fmt_time(logon_time),
            "logon_gap_seconds": f"{(start - lt) / 1000:g}",
            "logon_source_ip": other["source_ip"] or "-",
        }, principal_arn=other["assumed_role_arn"] or other["principal_arn"]))
    return out


def _row(rule: str, r: dict[str, Any], config: Config, extra: dict[str, str],
         principal_arn: str | None = None) -> dict[str, Any]:
    info = _BY_ID[rule]
    fields = {k: ("-" if v is None else v) for k, v in r.items()}
    fields["event_time"] = _fmt_time(r["session_start_time"])
    fields["source_ip"] = r.get("eni_private_ip_address") or "-"
    fields.setdefault("stack_name", "-")
    fields.setdefault("fleet_name", "-")
    fields.update(extra)
    return {
        "alert_id": alert_id(rule, r["session_id"]),
        "rule": rule,
        "severity": config.severity.get(rule, info.severity),
        "status": OPEN,
        "status_reason": None,
        "event_id": r["session_id"],
        "event_time": r["session_start_time"],
        "source_ip": r.get("eni_private_ip_address"),
        "bucket": None,
        "key": None,
        "principal_arn": principal_arn,
        "user_id": r["user_id"],
        "session_id": r["session_id"],
        "claimed_session_id": None,
        # the fleet's account and region (the session's scope)
        "account_id": r.get("aws_account_id"),
        "region": r.get("region"),
        "title": info.title,
        "description": info.description.format(**fields),
    }


def _empty() -> pa.Table:
    return conform(ALERTS.empty_table(), ALERT_IN)


_WAITS = ("the CloudTrail for the window: now >= start + tolerance + cloudtrail_lag (30 min); only "
          "sessions whose authentication_type is in auth_types (default SAML)")

DEFINITIONS: tuple[Rule, ...] = (
    Rule(
        "session_without_logon", "logons", "MEDIUM",
        "AppStream session with no preceding logon of its user",
        "Session {session_id} of user {user_id} on stack {stack_name} (fleet {fleet_name}, address "
        "{source_ip}) started at {event_time}, but CloudTrail shows no successful logon of that user in "
        "the {window_hours} h before it: a session nobody logged on for (shared or forged identity, or a "
        "logon path CloudTrail does not see).",
        group_by=("user_id",),
        waits_for=_WAITS,
        asff_types=("Unusual Behaviors/User",),
        predicate=session_without_logon,
    ),
    Rule(
        "logon_user_mismatch", "logons", "HIGH",
        "The logon just before an AppStream session names a different user",
        "Session {session_id} on stack {stack_name} started at {event_time} for user {user_id}, but the "
        "logon immediately before it ({logon_event_name} {logon_event_id} at {logon_time}, "
        "{logon_gap_seconds} s earlier, from {logon_source_ip}) was by {logon_user}, and {user_id} had no "
        "logon {own_logon_scope}: someone else's logon may have opened this session.",
        group_by=("user_id",),
        waits_for=_WAITS,
        asff_types=("TTPs/Defense Evasion", "Unusual Behaviors/User"),
        predicate=logon_user_mismatch,
    ),
)
RULE_IDS: tuple[str, ...] = tuple(r.id for r in DEFINITIONS)
_BY_ID = {r.id: r for r in DEFINITIONS}
