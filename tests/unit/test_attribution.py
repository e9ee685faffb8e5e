"""The attribution join: window edges, tolerance, IP reuse, multi-session hosts, claims, late data."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from auditcorr.config import Config
from auditcorr.pipeline import Pipeline
from tests.factories import T0, ct_name, put, report_csv, report_name, saml_logon, session_row, sid, trail

H = timedelta(hours=1)
S = timedelta(seconds=1)
IP = "10.40.0.17"


def activity(lake):
    t = lake.read("attributed_activity")
    return {r["key"]: r for r in t.to_pylist()}


def alerts(lake, status="open"):
    t = lake.read("alerts")
    from auditcorr.lake import keep_latest
    from auditcorr.rules import WRITE_RULES

    # the write rules only: the logon cross-check has its own tests (tests/live)
    return {(r["rule"], r["key"]): r for r in keep_latest(t.drop_columns(["dt"]), "alerts").to_pylist()
            if (status is None or r["status"] == status) and r["rule"] in WRITE_RULES}


def ingest(pipe: Pipeline, records, sessions, n=1, day="2026-03-02"):
    """The CloudTrail file, then the day's report and the next day's (empty: no session ended then),
    so every write of the day is final."""
    pipe.ingest_object(ct_name(n), trail(records))
    if sessions is not None:
        pipe.ingest_object(report_name(day), report_csv(sessions))
        pipe.ingest_object(report_name(next_day(day)), report_csv([]))


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def test_write_inside_session_is_attributed_with_logon(pipe, lake):
    logon = saml_logon(T0 - 2 * 60 * S, "alice@example.com", event_id="logon-1")
    ingest(pipe, [logon, put(T0 + 5 * 60 * S, IP, key="k")],
           [session_row(sid(1), "alice@example.com", IP, T0, T0 + H)])
    row = activity(lake)["k"]
    assert row["status"] == "attributed"
    assert row["user_id"] == "alice@example.com"
    assert row["session_id"] == sid(1)
    assert row["match"] == "window"
    assert row["logon_event_id"] == "logon-1"
    assert row["candidate_session_ids"] == [sid(1)]
    assert alerts(lake) == {}


def test_the_logon_shown_is_the_one_in_the_sessions_own_account(pipe, lake):
    """The same user logs on in two accounts of an organisation; the session (account 111122223333,
    from the report) was opened by her logon there, not by the later one in another account."""
    own = saml_logon(T0 - 40 * 60 * S, "alice@example.com", event_id="logon-own")
    other = saml_logon(T0 - 60 * S, "alice@example.com", event_id="logon-other-account")
    other["recipientAccountId"] = "444455556666"
    ingest(pipe, [own, other, put(T0 + 5 * 60 * S, IP, key="k")],
           [session_row(sid(1), "alice@example.com", IP, T0, T0 + H)])
    row = activity(lake)["k"]
    assert (row["user_id"], row["logon_event_id"]) == ("alice@example.com", "logon-own")


def test_athena_results_are_attributed_through_the_query_start_from_the_session(pipe, lake):
    """Athena writes a query's results with the caller's key (invokedBy athena, source a service
    name); the caller's StartQueryExecution came from the session's address with that key: the
    results are the session's user's. Every record is accounted for."""
    from tests.unit.test_parsers import start_query

    key = "ASIAQUERYKEY0000001"
    results = put(T0 + 6 * 60 * S, "athena.amazonaws.com", key="athena-results/q-1.csv",
                  bucket="analytics-results")
    results["userIdentity"].update({"accessKeyId": key, "invokedBy": "athena.amazonaws.com"})
    other = put(T0 + 7 * 60 * S, "athena.amazonaws.com", key="athena-results/q-2.csv", bucket="analytics-results")
    other["userIdentity"].update({"accessKeyId": "ASIANOSTARTSEEN0001", "invokedBy": "athena.amazonaws.com"})
    summary = pipe.ingest_object(ct_name(1), trail([start_query(T0 + 5 * 60 * S, IP, key), results, other]))
    assert (summary.records_in, summary.written, summary.skipped) == (3, 3, 0)
    assert lake.read("credential_uses").column("access_key_id").to_pylist() == [key]
    pipe.ingest_object(report_name("2026-03-02"), report_csv([session_row(sid(1), "alice@example.com", IP, T0,
                                                                          T0 + H)]))
    pipe.ingest_object(report_name(next_day("2026-03-02")), report_csv([]))
    act = activity(lake)
    got = act["athena-results/q-1.csv"]
    assert (got["status"], got["match"], got["user_id"], got["source_ip"]) == (
        "attributed", "credentials", "alice@example.com", "athena.amazonaws.com")
    assert (act["athena-results/q-2.csv"]["status"], act["athena-results/q-2.csv"]["user_id"]) == ("via_service", None)
    assert alerts(lake) == {}


@pytest.mark.parametrize(
    ("offset", "status"),
    [
        (-61 * S, "unattributed"),  # just outside the tolerance before the start
        (-60 * S, "attributed"),  # exactly at start - tolerance
        (0 * S, "attributed"),
        (H, "attributed"),  # exactly at the end
        (H + 60 * S, "attributed"),  # end + tolerance
        (H + 61 * S, "unattributed"),
    ],
)
def test_window_edges(pipe, lake, offset, status):
    ingest(pipe, [put(T0 + offset, IP, key="k")], [session_row(sid(1), "alice@example.com", IP, T0, T0 + H)])
    assert activity(lake)["k"]["status"] == status


def test_ip_reuse_after_20_second_gap_inside_window_beats_tolerance(pipe, lake):
    a = session_row(sid(1), "alice@example.com", IP, T0, T0 + H)
    b = session_row(sid(2), "bob@example.com", IP, T0 + H + 20 * S, T0 + 2 * H)
    recs = [
        put(T0 + H - 5 * S, IP, key="end-of-a"),  # inside A, within tolerance of B
        put(T0 + H + 10 * S, IP, key="gap"),  # in the gap: tolerance of both
        put(T0 + H + 25 * S, IP, key="start-of-b"),  # inside B, within tolerance of A
    ]
    ingest(pipe, recs, [a, b])
    act = activity(lake)
    assert (act["end-of-a"]["status"], act["end-of-a"]["session_id"]) == ("attributed", sid(1))
    assert (act["start-of-b"]["status"], act["start-of-b"]["session_id"]) == ("attributed", sid(2))
    assert act["gap"]["status"] == "ambiguous"
    assert act["gap"]["candidate_session_ids"] == sorted([sid(1), sid(2)])
    assert sorted(act["gap"]["candidate_user_ids"]) == ["alice@example.com", "bob@example.com"]
    assert alerts(lake) == {}  # ambiguity is a status, not an alert


def test_multisession_host_claim_settles_otherwise_ambiguous(pipe, lake):
    rows = [session_row(sid(i), f"user{i}@example.com", IP, T0, T0 + H, fleet="analytics-multi", multi=True)
            for i in (1, 2, 3)]
    recs = [put(T0 + 600 * S, IP, key="claimed", session_name=sid(2)), put(T0 + 600 * S, IP, key="no-claim")]
    ingest(pipe, recs, rows)
    act = activity(lake)
    assert act["claimed"]["status"] == "attributed"
    assert act["claimed"]["session_id"] == sid(2)
    assert act["claimed"]["match"] == "claim"
    assert act["no-claim"]["status"] == "ambiguous"
    assert len(act["no-claim"]["candidate_session_ids"]) == 3
    assert act["no-claim"]["user_id"] is None


def test_disguised_and_fabricated_claims_raise_alerts(pipe, lake):
    a = session_row(sid(1), "alice@example.com", IP, T0, T0 + H)
    b = session_row(sid(2), "bob@example.com", "10.40.0.18", T0, T0 + H)
    recs = [put(T0 + 600 * S, IP, key="disguised", session_name=sid(2)),
            put(T0 + 600 * S, IP, key="fabricated", session_name=sid(99))]
    ingest(pipe, recs, [a, b])
    act = activity(lake)
    assert act["disguised"]["session_id"] == sid(1)  # the session that really held the IP
    al = alerts(lake)
    assert al[("session_id_mismatch", "disguised")]["claimed_session_id"] == sid(2)
    assert al[("session_id_mismatch", "disguised")]["user_id"] == "alice@example.com"
    assert ("unknown_session_id", "fabricated") in al
    assert set(al) == {("session_id_mismatch", "disguised"), ("unknown_session_id", "fabricated")}


def test_external_and_out_of_scope(pipe, lake):
    recs = [put(T0, "203.0.113.77", key="replay"), put(T0, "athena.amazonaws.com", key="service"),
            put(T0, "203.0.113.77", key="other-role", role="EtlRole")]
    ingest(pipe, recs, [])
    act = activity(lake)
    assert act["replay"]["status"] == "external"
    assert act["service"]["status"] == "external"
    assert "other-role" not in act  # out of scope: not attributed ...
    assert lake.read("s3_writes").num_rows == 3  # ... but kept in s3_writes
    assert set(alerts(lake)) == {("credentials_outside_fleet", "replay")}


def test_pending_until_covering_reports_then_unattributed(pipe, lake, clock):
    clock.set(T0 + 2 * H)
    pipe.ingest_object(ct_name(1), trail([put(T0 + 600 * S, "10.40.99.1", key="idle")]))
    assert activity(lake)["idle"]["status"] == "pending"
    assert alerts(lake) == {}
    pipe.ingest_object(report_name("2026-03-02"), report_csv([session_row(sid(1), "a@example.com", IP, T0, T0 + H)]))
    # a session starting before 08:10 could still end tomorrow: the report of 03-03 is needed too
    assert activity(lake)["idle"]["status"] == "pending"
    pipe.ingest_object(report_name("2026-03-03"), report_csv([session_row(sid(2), "b@example.com", IP,
                                                                          T0 + 20 * H, T0 + 21 * H)]))
    row = activity(lake)["idle"]
    assert row["status"] == "unattributed"
    assert row["previous_status"] == "pending"
    assert ("unattributed_activity", "idle") in alerts(lake)


def test_late_report_turns_pending_into_attributed_and_closes_nothing(pipe, lake, clock):
    clock.set(T0 + 2 * H)
    pipe.ingest_object(ct_name(1), trail([put(T0 + 600 * S, IP, key="k")]))
    assert activity(lake)["k"]["status"] == "pending"
    pipe.ingest_object(report_name("2026-03-02"), report_csv([session_row(sid(1), "a@example.com", IP, T0, T0 + H)]))
    row = activity(lake)["k"]
    assert (row["status"], row["session_id"], row["previous_status"]) == ("attributed", sid(1), "pending")
    assert lake.read("attributed_activity").num_rows == 1  # each write exactly once


def test_reingest_and_redelivered_report_change_nothing(pipe, lake):
    recs = [put(T0 + 600 * S, IP, key="k"), put(T0, "203.0.113.77", key="replay")]
    rows = [session_row(sid(1), "a@example.com", IP, T0, T0 + H)]
    ingest(pipe, recs, rows)
    before = {t: sorted(map(str, lake.read(t).drop_columns(["computed_at"] if t == "attributed_activity" else [])
                            .to_pylist())) for t in ("s3_writes", "sessions", "attributed_activity", "alerts")}
    out = pipe.ingest_object(ct_name(1), trail(recs))
    assert out.duplicates == out.records_in == 2
    pipe.ingest_object(report_name("2026-03-02"), report_csv(rows))
    # the same records under another object name: duplicates by eventID
    out2 = pipe.ingest_object(ct_name(2), trail(recs))
    assert (out2.written, out2.duplicates) == (0, 2)
    after = {t: sorted(map(str, lake.read(t).drop_columns(["computed_at"] if t == "attributed_activity" else [])
                           .to_pylist())) for t in ("s3_writes", "sessions", "attributed_activity", "alerts")}
    assert after == before


def test_corrected_report_replaces_the_day(pipe, lake):
    pipe.ingest_object(report_name("2026-03-02"), report_csv([session_row(sid(1), "a@example.com", IP, T0, T0 + H)]))
    pipe.ingest_object(report_name("2026-03-02"), report_csv([session_row(sid(1), "a@example.com", IP, T0, T0 + H),
                                                              session_row(sid(2), "b@example.com", IP, T0 + 2 * H,
                                                                          T0 + 3 * H)]))
    assert sorted(lake.read("sessions").column("session_id").to_pylist()) == [sid(1), sid(2)]


def test_empty_redelivery_does_not_wipe_a_day(pipe, lake):
    rows = [session_row(sid(1), "a@example.com", IP, T0, T0 + H)]
    pipe.ingest_object(report_name("2026-03-02"), report_csv(rows))
    out = pipe.ingest_object(report_name("2026-03-02"), report_csv([]))
    assert "ignored" in out.note
    assert lake.read("sessions").column("session_id").to_pylist() == [sid(1)]


def test_the_wall_clock_never_finalises_a_write(pipe, lake, clock):
    # five days later by the wall clock, the 03-02 report not in: the write waits, no alert is written
    clock.set(T0 + 5 * 24 * H)
    pipe.ingest_object(ct_name(1), trail([put(T0 + 600 * S, IP, key="k")]))
    assert activity(lake)["k"]["status"] == "pending"
    assert lake.read("alerts").num_rows == 0
    pipe.ingest_object(report_name("2026-03-02"), report_csv([session_row(sid(1), "a@example.com", IP, T0, T0 + H)]))
    assert activity(lake)["k"]["status"] == "attributed"
    assert lake.read("alerts").num_rows == 0  # every alert row ever written: none


def test_claim_sources(lake, clock):
    rows = [session_row(sid(i), f"u{i}@example.com", IP, T0, T0 + H, multi=True) for i in (1, 2)]
    for spec, rec in [
        ("source_identity", put(T0 + 60 * S, IP, key="k", userIdentity=None)),
        ("key_regex:^sessions/([0-9a-f-]{36})/", put(T0 + 60 * S, IP, key=f"sessions/{sid(2)}/out.csv")),
    ]:
        from auditcorr.config import ClaimSpec

        cfg = Config(claim=ClaimSpec.parse(spec))
        p = Pipeline(lake, cfg, clock=clock)
        if spec == "source_identity":
            rec = put(T0 + 60 * S, IP, key="k")
            rec["userIdentity"]["sessionContext"]["sourceIdentity"] = sid(2)
        p.ingest_object(report_name("2026-03-02"), report_csv(rows))
        p.ingest_object(ct_name(hash(spec) % 9000), trail([rec]))
        row = activity(lake)[rec["requestParameters"]["key"]]
        assert (row["status"], row["session_id"], row["claimed_session_id"]) == ("attributed", sid(2), sid(2))


def test_input_order_does_not_change_result(tmp_path, clock):
    from auditcorr.lake import Lake

    rows = [session_row(sid(1), "a@example.com", IP, T0, T0 + H),
            session_row(sid(2), "b@example.com", IP, T0 + H + 20 * S, T0 + 2 * H)]
    objs = [(ct_name(1), trail([put(T0 + 600 * S, IP, key="a", event_id="e1")])),
            (report_name("2026-03-02"), report_csv(rows)),
            (ct_name(2), trail([put(T0 + H + 10 * S, IP, key="gap", event_id="e2"),
                                put(T0 + 90 * 60 * S, "10.40.99.9", key="idle", event_id="e3")])),
            (report_name("2026-03-03"), report_csv([]) + b"")]
    results = []
    for i, order in enumerate([objs, objs[::-1], [objs[2], objs[0], objs[3], objs[1]]]):
        lk = Lake.open(str(tmp_path / f"l{i}"))
        p = Pipeline(lk, Config(), clock=clock)
        for name, data in order:
            p.ingest_object(name, data)
        act = lk.read("attributed_activity")
        results.append(sorted((r["event_id"], r["status"], r["session_id"]) for r in act.to_pylist()))
        al = lk.read("alerts")
        from auditcorr.lake import keep_latest

        # open alerts are order-independent (a closed one may exist only where it was raised early)
        results.append(sorted((r["alert_id"], r["rule"])
                              for r in keep_latest(al.drop_columns(["dt"]), "alerts").to_pylist()
                              if r["status"] == "open" and r["rule"] != "session_without_logon"))
    assert results[0] == results[2] == results[4]
    assert results[1] == results[3] == results[5]


def test_nat_egress_is_external_without_a_replay_alert(lake, clock):
    p = Pipeline(lake, Config(nat_cidrs=("198.51.100.1/32",)), clock=clock)
    p.ingest_object(ct_name(1), trail([put(T0, "198.51.100.1", key="via-nat"), put(T0, "203.0.113.77", key="replay")]))
    act = activity(lake)
    assert (act["via-nat"]["status"], act["via-nat"]["match"]) == ("external", "nat")
    assert set(alerts(lake)) == {("credentials_outside_fleet", "replay")}


def test_a_missing_report_raises_one_alert_and_its_writes_stay_pending(pipe, lake, clock):
    clock.set(T0 + 2 * H)
    pipe.ingest_object(ct_name(1), trail([put(T0 + 600 * S, "10.40.99.1", key="idle"),
                                          put(T0 + 700 * S, IP, key="k")]))
    assert pipe.pending_days() == ["2026-03-02"]
    # later reports come, and CloudTrail moves on past the grace (data time: 03-05); 03-02's never does
    for day in ("2026-03-03", "2026-03-04"):
        pipe.ingest_object(report_name(day), report_csv([]))
    clock.set(T0 + 4 * 24 * H)  # (an event time after the clock is implausible: the clock moves too)
    pipe.ingest_object(ct_name(2, day="2026/03/05"), trail([put(T0 + 3 * 24 * H, "10.40.99.2", key="later")]))
    pipe.reattribute(pipe.pending_days(), "recompute-scheduled")
    act = activity(lake)
    assert (act["idle"]["status"], act["k"]["status"]) == ("pending", "pending")
    every = lake.read("alerts").to_pylist()
    assert [(a["rule"], a["status"], a["event_id"]) for a in every] == [
        ("usage_report_missing", "open", "report:111122223333|us-east-1|2026-03-02")]
    assert every[0]["account_id"] == "111122223333" and every[0]["region"] == "us-east-1"
    # the report comes after all: the alert closes with the reason, the writes are decided
    pipe.ingest_object(report_name("2026-03-02"), report_csv([session_row(sid(1), "a@example.com", IP, T0, T0 + H)]))
    act = activity(lake)
    assert (act["idle"]["status"], act["k"]["status"]) == ("unattributed", "attributed")
    from auditcorr.lake import keep_latest

    latest = {a["rule"]: a for a in keep_latest(lake.read("alerts").drop_columns(["dt"]), "alerts").to_pylist()}
    assert latest["usage_report_missing"]["status"] == "closed"
    assert "no longer raised" in latest["usage_report_missing"]["status_reason"]
