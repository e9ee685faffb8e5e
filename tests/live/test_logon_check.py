"""Logon cross-check rules: session_without_logon and logon_user_mismatch, positive and negative."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from auditcorr import logon_check, rules
from auditcorr.config import Config
from auditcorr.ingest.cloudtrail import parse_cloudtrail
from auditcorr.schemas import LOGONS, SESSIONS, conform
from tests.factories import ACCOUNT, T0, saml_logon, sid, trail

CFG = Config()  # tolerance 60 s, logon window 12 h, mismatch window 300 s
START = T0 + timedelta(hours=1)
LATER = int((START + timedelta(days=1)).timestamp() * 1000)  # CloudTrail long since in
SAML_ROLE = f"arn:aws:iam::{ACCOUNT}:role/AppStreamSAMLRole"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/FinanceSAMLRole"


def sessions(*rows: dict) -> pa.Table:
    base = {
        "aws_account_id": ACCOUNT,
        "region": "us-east-1",
        "fleet_name": "analytics-single",
        "stack_name": "analytics",
        "authentication_type": "SAML",
        "report_date": "2026-03-02",
    }
    full = []
    for i, r in enumerate(rows):
        row = base | {
            "session_id": sid(i + 1),
            "user_id": "alice",
            "session_start_time": START,
            "session_end_time": START + timedelta(hours=2),
            "eni_private_ip_address": f"10.40.1.{i + 1}",
        }
        full.append(row | r)
    return conform(pa.Table.from_pylist(full), SESSIONS)


def logon(
    user: str,
    at: datetime,
    event: str = "AssumeRoleWithSAML",
    outcome: str = "Success",
    role: str = SAML_ROLE,
    n: int = 0,
) -> dict:
    return {
        "event_id": f"ev-{user}-{int(at.timestamp())}-{n}",
        "event_time": at,
        "event_name": event,
        "event_source": "sts.amazonaws.com",
        "source_ip": "198.51.100.7",
        "user_name": user,
        "role_arn": role,
        "assumed_role_arn": f"{role.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/')}/{user}",
        "outcome": outcome,
    }


def logons(*rows: dict) -> pa.Table:
    if not rows:
        return LOGONS.empty_table()
    return conform(pa.Table.from_pylist(list(rows)), LOGONS)


def run(s: pa.Table, lg: pa.Table, config: Config = CFG, now: int = LATER, **kw) -> list[dict]:
    out = logon_check.evaluate(s, lg, config, now, **kw)
    assert out.schema == rules.ALERT_IN
    return out.to_pylist()


def by_rule(alerts: list[dict], rule: str) -> list[dict]:
    return [a for a in alerts if a["rule"] == rule]


# -- session_without_logon ------------------------------------------------------------------------------
def test_session_with_a_logon_of_its_user_raises_nothing():
    assert run(sessions({}), logons(logon("alice", START - timedelta(seconds=20)))) == []


def test_session_without_any_logon_raises_with_the_session_as_subject():
    alerts = run(sessions({}), logons())
    assert len(alerts) == 1
    a = alerts[0]
    assert a["rule"] == "session_without_logon"
    assert a["alert_id"] == rules.alert_id("session_without_logon", sid(1))
    assert (a["event_id"], a["session_id"], a["user_id"], a["source_ip"]) == (
        sid(1),
        sid(1),
        "alice",
        "10.40.1.1",
    )
    assert a["event_time"] == START and a["severity"] == "MEDIUM" and a["status"] == rules.OPEN
    assert a["bucket"] is None and a["key"] is None and a["claimed_session_id"] is None
    assert a["title"] == rules.RULES["session_without_logon"].title
    assert sid(1) in a["description"] and "alice" in a["description"] and "12 h" in a["description"]


def test_another_users_logon_or_a_failed_logon_does_not_count():
    lg = logons(
        logon("bob", START - timedelta(minutes=30)),
        logon("alice", START - timedelta(minutes=1), outcome="Failure"),
    )
    assert [a["rule"] for a in run(sessions({}), lg)] == ["session_without_logon"]


@pytest.mark.parametrize(
    "offset,raised",
    [
        (-timedelta(hours=12), False),  # window start: inclusive
        (-timedelta(hours=12) - timedelta(seconds=1), True),  # just outside
        (timedelta(seconds=60), False),  # start + tolerance: inclusive
        (timedelta(seconds=61), True),  # after the tolerance
    ],
)
def test_window_edges(offset, raised):
    alerts = run(sessions({}), logons(logon("alice", START + offset)))
    assert bool(by_rule(alerts, "session_without_logon")) is raised


def test_window_is_configurable():
    lg = logons(logon("alice", START - timedelta(hours=3)))
    assert run(sessions({}), lg) == []
    short = CFG.with_(logon_window_hours=2)
    assert [a["rule"] for a in run(sessions({}), lg, config=short)] == ["session_without_logon"]


def test_not_decided_before_cloudtrail_for_the_window_can_be_in():
    start_ms = int(START.timestamp() * 1000)
    lag = 30 * 60 * 1000
    due = start_ms + 60_000 + lag
    assert run(sessions({}), logons(), now=due - 1) == []
    assert [a["rule"] for a in run(sessions({}), logons(), now=due)] == ["session_without_logon"]
    assert run(sessions({}), logons(), now=start_ms + 10 * 60_000, cloudtrail_lag_ms=5 * 60_000) != []


def test_api_sessions_are_not_checked_unless_asked():
    api = sessions({"authentication_type": "API", "user_id": "streaming-url-user"})
    assert run(api, logons()) == []
    assert [a["rule"] for a in run(api, logons(), auth_types=None)] == ["session_without_logon"]
    unknown = sessions({"authentication_type": None})
    assert [a["rule"] for a in run(unknown, logons())] == ["session_without_logon"]


def test_real_shaped_cloudtrail_logon_is_matched():
    parsed = parse_cloudtrail(trail([saml_logon(START - timedelta(seconds=30), "alice")]), "ct.json.gz", CFG)
    assert parsed.logons.num_rows == 1
    assert run(sessions({}), parsed.logons) == []
    assert {a["rule"] for a in run(sessions({"user_id": "carol"}), parsed.logons)} == {
        "session_without_logon",
        "logon_user_mismatch",
    }


# -- logon_user_mismatch -------------------------------------------------------------------------------
def test_preceding_logon_by_another_user_raises_a_mismatch():
    lg = logons(logon("alice", START - timedelta(hours=2)), logon("mallory", START - timedelta(seconds=40)))
    alerts = run(sessions({}), lg)
    assert [a["rule"] for a in alerts] == ["logon_user_mismatch"]  # alice did log on: no "without logon"
    a = alerts[0]
    assert a["alert_id"] == rules.alert_id("logon_user_mismatch", sid(1))
    assert a["severity"] == "HIGH" and a["user_id"] == "alice" and a["session_id"] == sid(1)
    assert a["principal_arn"].endswith("assumed-role/AppStreamSAMLRole/mallory")
    assert "mallory" in a["description"] and "40 s earlier" in a["description"]
    assert "ev-mallory" in a["description"] and "analytics" in a["description"]
    assert "no logon in the 300 s before the start" in a["description"]


def test_preceding_logon_by_the_same_user_raises_nothing():
    lg = logons(
        logon("mallory", START - timedelta(seconds=90)), logon("alice", START - timedelta(seconds=40))
    )
    assert run(sessions({}), lg) == []


def test_own_logon_closer_than_the_other_users_raises_nothing():
    # the other user's logon comes last but within the tolerance after the start; alice's is at the
    # same instant: a tie is no mismatch
    lg = logons(
        logon("alice", START - timedelta(seconds=10)), logon("mallory", START - timedelta(seconds=10))
    )
    assert run(sessions({}), lg) == []


def test_other_users_logon_outside_the_mismatch_window_is_ignored():
    lg = logons(logon("alice", START - timedelta(hours=2)), logon("mallory", START - timedelta(seconds=301)))
    assert run(sessions({}), lg) == []
    # a logon after the start did not open the session (even within the clock-skew tolerance)
    after = logons(
        logon("alice", START - timedelta(hours=2)), logon("mallory", START + timedelta(seconds=20))
    )
    assert run(sessions({}), after) == []
    wide = CFG.with_(logon_mismatch_window_seconds=600)
    assert [a["rule"] for a in run(sessions({}), lg, config=wide)] == ["logon_user_mismatch"]


def test_only_saml_logons_count_by_default():
    lg = logons(
        logon("alice", START - timedelta(hours=2)),
        logon("mallory", START - timedelta(seconds=30), event="ConsoleLogin"),
    )
    assert run(sessions({}), lg) == []
    assert [a["rule"] for a in run(sessions({}), lg, mismatch_events=("ConsoleLogin",))] == [
        "logon_user_mismatch"
    ]


def test_stack_roles_narrow_the_stacks_logons():
    lg = logons(
        logon("alice", START - timedelta(hours=2)),
        logon("mallory", START - timedelta(seconds=30), role=OTHER_ROLE),
    )
    assert [a["rule"] for a in run(sessions({}), lg)] == ["logon_user_mismatch"]
    assert run(sessions({}), lg, stack_roles={"analytics": [SAML_ROLE]}) == []
    assert [a["rule"] for a in run(sessions({}), lg, stack_roles={"analytics": [OTHER_ROLE]})] == [
        "logon_user_mismatch"
    ]


def test_concurrent_logons_of_other_users_raise_nothing_by_default():
    # alice logged on 50 s before her session; bob logged on after her, just before the start: a
    # busy stack, not an anomaly (the default); the strict "closer" mode flags it
    lg = logons(logon("alice", START - timedelta(seconds=50)), logon("bob", START - timedelta(seconds=20)))
    assert run(sessions({}), lg) == []
    alerts = run(sessions({}), lg, own_logon="closer")
    assert [a["rule"] for a in alerts] == ["logon_user_mismatch"]
    assert "no logon closer to the start" in alerts[0]["description"]
    with pytest.raises(ValueError):
        run(sessions({}), lg, own_logon="nearest")


def test_failed_logon_of_another_user_is_not_a_mismatch():
    lg = logons(
        logon("alice", START - timedelta(hours=1)),
        logon("mallory", START - timedelta(seconds=5), outcome="Failure"),
    )
    assert run(sessions({}), lg) == []


# -- switches, severity, many sessions, idempotence ------------------------------------------------------
def test_rules_can_be_switched_off_one_by_one():
    lg = logons(logon("mallory", START - timedelta(seconds=30)))
    both = {a["rule"] for a in run(sessions({}), lg)}
    assert both == {"session_without_logon", "logon_user_mismatch"}
    only_mismatch = run(sessions({}), lg, config=CFG.with_(disabled_rules=("session_without_logon",)))
    assert {a["rule"] for a in only_mismatch} == {"logon_user_mismatch"}
    only_missing = run(sessions({}), lg, config=CFG.with_(disabled_rules=("logon_user_mismatch",)))
    assert {a["rule"] for a in only_missing} == {"session_without_logon"}
    off = CFG.with_(disabled_rules=logon_check.RULES)
    assert run(sessions({}), lg, config=off) == []


def test_severity_comes_from_the_configuration():
    sev = dict(CFG.severity) | {"session_without_logon": "LOW"}
    alerts = run(sessions({}), logons(), config=CFG.with_(severity=sev))
    assert alerts[0]["severity"] == "LOW"


def test_many_sessions_each_judged_on_its_own_user():
    rows = [
        {"session_id": sid(i), "user_id": f"user{i}", "session_start_time": START + timedelta(minutes=i)}
        for i in range(1, 41)
    ]
    # every even user logged on 30 s before their session; odd users never did
    lg = logons(
        *[logon(f"user{i}", START + timedelta(minutes=i) - timedelta(seconds=30)) for i in range(2, 41, 2)]
    )
    alerts = run(sessions(*rows), lg)
    missing = {a["user_id"] for a in by_rule(alerts, "session_without_logon")}
    assert missing == {f"user{i}" for i in range(1, 41, 2)}
    # odd users' sessions follow the previous even user's logon by 90 s: a mismatch each (user1's
    # session has only a later logon, user2's, 30 s after its start: not a preceding one)
    assert {a["user_id"] for a in by_rule(alerts, "logon_user_mismatch")} == {
        f"user{i}" for i in range(3, 41, 2)
    }


def test_same_session_twice_and_reruns_give_the_same_alert_ids():
    s = pa.concat_tables([sessions({}), sessions({})])
    first = run(s, logons())
    assert len(first) == 1
    assert [a["alert_id"] for a in run(sessions({}), logons())] == [first[0]["alert_id"]]


def test_reconcile_closes_a_without_logon_alert_when_the_logon_arrives_late():
    s = sessions({})
    raised = logon_check.evaluate(s, logons(), CFG, LATER)
    opened = rules.reconcile(rules.ALERTS.empty_table(), raised, [sid(1)], LATER, logon_check.RULES)
    assert opened.column("status").to_pylist() == [rules.OPEN]
    again = logon_check.evaluate(s, logons(logon("alice", START - timedelta(minutes=1))), CFG, LATER + 1000)
    closed = rules.reconcile(opened, again, [sid(1)], LATER + 1000, logon_check.RULES)
    assert closed.column("status").to_pylist() == [rules.CLOSED]
    assert closed.column("status_reason")[0].as_py()


def test_no_sessions_or_rows_without_user_give_no_alerts():
    assert run(SESSIONS.empty_table(), logons()) == []
    assert run(sessions({"user_id": None}), logons()) == []
