"""Every rule, by its name, with positive and negative cases on in-memory tables (the Panther pattern):
the edge of each window and each "waits for evidence" condition.  A rule without cases here fails
``test_every_rule_has_cases``: adding a rule means adding its cases."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from auditcorr import rules
from auditcorr.attribution import DAY_MS, Coverage
from auditcorr.config import SEVERITIES, Config
from auditcorr.rules import logons as logon_rules
from auditcorr.rules import scope as scope_rules
from auditcorr.rules import writes as write_rules
from auditcorr.schemas import ALERTS, LOGONS, SESSIONS, TS, conform
from tests.unit.test_join_steps import (
    MIN,
    NONE_IN,
    ROLE,
    T0,
    TOL,
    A,
    B,
    C,
    run,
    sessions,
    writes,
)

pytestmark = pytest.mark.pure


def fires(rule: str, res, config: Config | None = None) -> list[bool]:
    """The named predicate of ``rule`` over the attribution result, row by row."""
    cfg = config or Config(roles=(ROLE,), tolerance_seconds=TOL // 1000)
    pred = rules.RULES[rule].predicate
    family = write_rules if rules.RULES[rule].family == "writes" else scope_rules
    assert pred is getattr(family, rule)  # the function carries the rule's name
    return np.asarray(pred(write_rules.WriteFacts(res, cfg))).tolist()


S_AB = sessions((A, "alice", "10.40.0.5", T0, T0 + 60 * MIN), (B, "bob", "10.40.0.7", T0, T0 + 60 * MIN))


# -- write rules --------------------------------------------------------------------------------
def case_session_id_mismatch() -> None:
    # positive: from alice's address, claiming bob's session (which exists, elsewhere)
    assert fires("session_id_mismatch", run(writes((T0 + MIN, "10.40.0.5", B)), S_AB, known={A, B})) == [True]
    # negative: claiming the session that holds the address
    assert fires("session_id_mismatch", run(writes((T0 + MIN, "10.40.0.5", A)), S_AB, known={A, B})) == [False]
    # window edge: at start - tolerance the claim is a candidate (settled); 1 ms earlier it is not
    at_edge = writes((T0 - TOL, "10.40.0.5", A), (T0 - TOL - 1, "10.40.0.5", A), (T0 - TOL - 1, "10.40.0.5", B))
    assert fires("session_id_mismatch", run(at_edge, S_AB, known={A, B})) == [False, True, True]
    # waits for evidence: a claim nobody knows is not a mismatch (unknown_session_id decides it)
    assert fires("session_id_mismatch", run(writes((T0 + MIN, "10.40.0.5", C)), S_AB, known={A, B})) == [False]


def case_unknown_session_id() -> None:
    w = writes((T0 + MIN, "10.40.0.5", C))
    assert fires("unknown_session_id", run(w, S_AB, known={A, B})) == [True]
    # negative: the claimed session exists (elsewhere: that is the mismatch rule's)
    assert fires("unknown_session_id", run(writes((T0 + MIN, "10.40.0.5", B)), S_AB, known={A, B})) == [False]
    # waits for evidence: until the reports that could name it are in, nothing is decided
    assert fires("unknown_session_id", run(w, S_AB, coverage=NONE_IN, known={A, B})) == [False]
    # no claim at all: nothing to check
    assert fires("unknown_session_id", run(writes((T0 + MIN, "10.40.0.5", None)), S_AB)) == [False]


def case_credentials_outside_fleet() -> None:
    cfg = Config(roles=(ROLE,), tolerance_seconds=TOL // 1000, nat_cidrs=("203.0.113.0/24",))
    w = writes((T0, "198.51.100.4", None), (T0, "203.0.113.9", None), (T0, "not-an-ip", None),
               (T0 + MIN, "10.40.0.5", None))
    # positive: a valid address outside the fleet; negative: the NAT, garbage, a fleet address
    assert fires("credentials_outside_fleet", run(w, S_AB, config=cfg), cfg) == [True, False, False, False]
    # waits for nothing: without any report it fires the same
    assert fires("credentials_outside_fleet", run(w, S_AB, coverage=NONE_IN, config=cfg), cfg)[0] is True


def case_unattributed_activity() -> None:
    # window edge: at end + tolerance alice's session still explains it; 1 ms later no session does
    end = T0 + 60 * MIN
    w = writes((end + TOL, "10.40.0.5", None), (end + TOL + 1, "10.40.0.5", None), (T0, "10.40.9.9", None))
    assert fires("unattributed_activity", run(w, S_AB)) == [False, True, True]
    # waits for evidence: pending until the covering reports are in
    assert fires("unattributed_activity", run(w, S_AB, coverage=NONE_IN)) == [False, False, False]


# -- logon rules (over sessions) ----------------------------------------------------------------
START = T0
LAG = logon_rules.DEFAULT_CLOUDTRAIL_LAG_MS


def _sessions(*rows: tuple[str, str, int] | tuple[str, str, int, str]) -> pa.Table:
    """(session id, user, start[, account])"""
    return conform(pa.table({
        "session_id": [r[0] for r in rows], "user_id": [r[1] for r in rows],
        "aws_account_id": pa.array([r[3] if len(r) > 3 else None for r in rows], pa.string()),
        "session_start_time": pa.array([r[2] for r in rows], pa.int64()).cast(TS),
        "session_end_time": pa.array([r[2] + 60 * MIN for r in rows], pa.int64()).cast(TS),
        "eni_private_ip_address": ["10.40.0.5"] * len(rows), "stack_name": ["s"] * len(rows),
        "fleet_name": ["f"] * len(rows), "authentication_type": ["SAML"] * len(rows)}), SESSIONS)


def _logons(*rows: tuple[str, int] | tuple[str, int, str]) -> pa.Table:
    """(user, time[, account])"""
    return conform(pa.table({
        "account_id": pa.array([r[2] if len(r) > 2 else None for r in rows], pa.string()),
        "event_id": [f"lg-{i}" for i in range(len(rows))], "event_name": ["AssumeRoleWithSAML"] * len(rows),
        "event_time": pa.array([r[1] for r in rows], pa.int64()).cast(TS), "user_name": [r[0] for r in rows],
        "outcome": ["Success"] * len(rows), "source_ip": ["198.51.100.7"] * len(rows)}), LOGONS)


def logon_fires(rule: str, s: pa.Table, lg: pa.Table, now: int, config: Config | None = None) -> list[str]:
    cfg = config or Config(tolerance_seconds=TOL // 1000)
    assert rules.RULES[rule].predicate is getattr(logon_rules, rule)
    out = logon_rules.evaluate(s, lg, cfg, now)
    return sorted(out.filter(pa.compute.equal(out.column("rule"), rule)).column("session_id").to_pylist())


def case_session_without_logon() -> None:
    window = int(Config().logon_window_hours * 3_600_000)
    later = START + TOL + LAG
    s = _sessions(("s1", "alice", START), ("s2", "bob", START), ("s3", "carol", START))
    # alice logged on exactly at the window's edge, bob 1 ms before it, carol never
    lg = _logons(("alice", START - window), ("bob", START - window - 1))
    assert logon_fires("session_without_logon", s, lg, later) == ["s2", "s3"]
    # negative: a logon within the clock-skew tolerance after the start counts
    assert logon_fires("session_without_logon", _sessions(("s4", "dan", START)), _logons(("dan", START + TOL)),
                       later) == []
    # waits for evidence: before start + tolerance + CloudTrail lag nothing is decided
    assert logon_fires("session_without_logon", s, lg, later - 1) == []
    # an organisation: only a logon in the session's own account opened it (alice logged on in A only)
    org = _sessions(("sa", "alice", START, "111111111111"), ("sb", "alice", START, "222222222222"))
    assert logon_fires("session_without_logon", org, _logons(("alice", START - MIN, "111111111111")), later) == ["sb"]
    # a logon of no known account (a lake written before scopes) still counts for every account
    assert logon_fires("session_without_logon", org, _logons(("alice", START - MIN)), later) == []


def case_logon_user_mismatch() -> None:
    later = START + TOL + LAG
    gap = Config().logon_mismatch_window_seconds * 1000
    s = _sessions(("s1", "alice", START))
    # positive: bob's logon right before alice's session, alice has none in the window
    assert logon_fires("logon_user_mismatch", s, _logons(("bob", START - MIN)), later) == ["s1"]
    # negative: alice logged on too; or bob's logon is just outside the mismatch window
    assert logon_fires("logon_user_mismatch", s, _logons(("bob", START - MIN), ("alice", START - 2 * MIN)),
                       later) == []
    assert logon_fires("logon_user_mismatch", s, _logons(("bob", START - gap - 1)), later) == []
    assert logon_fires("logon_user_mismatch", s, _logons(("bob", START - gap)), later) == ["s1"]  # the edge
    # waits for evidence
    assert logon_fires("logon_user_mismatch", s, _logons(("bob", START - MIN)), later - 1) == []
    # an organisation: bob's logon in another account just before alice's session is no evidence
    # (alice's own logon in her account was earlier than the mismatch window); in her account it is
    a, b = "111111111111", "222222222222"
    org = _sessions(("s1", "alice", START, a))
    old_own = ("alice", START - gap - MIN, a)
    assert logon_fires("logon_user_mismatch", org, _logons(old_own, ("bob", START - MIN, b)), later) == []
    assert logon_fires("logon_user_mismatch", org, _logons(old_own, ("bob", START - MIN, a)), later) == ["s1"]
    # and alice's own logon in ANOTHER account does not excuse bob's logon in hers
    assert logon_fires("logon_user_mismatch", org, _logons(("alice", START - 2 * MIN, b), ("bob", START - MIN, a)),
                       later) == ["s1"]


# -- organisation rules (issue 15) ----------------------------------------------------------------
def case_fleet_credentials_via_service() -> None:
    w = writes((T0, "appstream.amazonaws.com", None), (T0, "AWS Internal", None), (T0, "athena.amazonaws.com", None),
               (T0, "10.40.0.5, 10.40.0.6", None), (T0, "garbage", None))
    # positive: service names and AWS Internal with no invokedBy; negative: a comma list, garbage
    assert fires("fleet_credentials_via_service", run(w, S_AB)) == [True, True, True, False, False]
    # negative: a service claims the call (invokedBy): via_service, no alert
    claimed = w.set_column(w.schema.get_field_index("invoked_by"), "invoked_by",
                           pa.array(["athena.amazonaws.com"] * 5))
    res = run(claimed, S_AB)
    assert fires("fleet_credentials_via_service", res) == [False] * 5
    assert res.activity.column("status").to_pylist()[:3] == ["via_service"] * 3
    # an IPv4-mapped fleet address is the fleet address: attributed, no rule of this family
    mapped = run(writes((T0 + MIN, "::ffff:10.40.0.5", None)), S_AB)
    assert mapped.activity.column("user_id").to_pylist() == ["alice"]
    assert fires("fleet_credentials_via_service", mapped) == [False]


def case_usage_report_missing() -> None:
    day = T0 // DAY_MS
    scope = "111122223333|us-east-1"
    w = writes((T0 + MIN, "10.40.9.9", None))

    def cov(days, clock):
        return Coverage({scope: frozenset(days)}, {scope: clock}, grace_ms=48 * 3_600_000)

    past_grace = (day + 1) * DAY_MS + 48 * 3_600_000
    # positive: a report two days later is in and the scope's CloudTrail is past the grace
    assert fires("usage_report_missing", run(w, sessions(), coverage=cov({day + 2}, past_grace))) == [True]
    # window edge: one millisecond before the grace ends
    assert fires("usage_report_missing", run(w, sessions(), coverage=cov({day + 2}, past_grace - 1))) == [False]
    # waits for evidence: only the next day's report in (the report may still come), or none at all
    assert fires("usage_report_missing", run(w, sessions(), coverage=cov({day + 1}, past_grace))) == [False]
    assert fires("usage_report_missing", run(w, sessions(), coverage=cov(set(), past_grace))) == [False]
    # negative: the day's own report is in
    assert fires("usage_report_missing", run(w, sessions(), coverage=cov({day, day + 2}, past_grace))) == [False]


CASES = {name.removeprefix("case_"): fn for name, fn in dict(globals()).items() if name.startswith("case_")}


def test_every_rule_has_cases():
    assert set(CASES) == set(rules.RULES)


@pytest.mark.parametrize("rule", sorted(rules.RULES))
def test_rule_cases(rule):
    CASES[rule]()


@pytest.mark.parametrize("rule", sorted(rules.RULES))
def test_every_rule_declares_its_metadata(rule):
    r = rules.RULES[rule]
    assert r.id == rule and r.family in {f.__name__.rsplit(".", 1)[1] for f in rules.FAMILIES}
    assert r.severity in SEVERITIES and Config().severity[rule] == r.severity
    assert r.title and "{" in r.description and r.waits_for
    assert r.group_by and set(r.group_by) <= set(ALERTS.names)
    assert r.predicate is not None and r.predicate.__name__ == rule
    assert all("/" in t for t in r.asff_types)


def test_the_old_names_are_importable():
    from auditcorr.rules import ALERT_IN, CLOSED, OPEN, RULES, WRITE_RULES, alert_id, reconcile, write_alerts

    assert WRITE_RULES == tuple(r for r in RULES if RULES[r].family == "writes")
    assert (OPEN, CLOSED) == ("open", "closed") and callable(reconcile) and callable(write_alerts)
    assert "finding_id" in ALERT_IN.names and len(alert_id("r", "e")) == 32
