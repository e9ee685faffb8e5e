"""The analysts' lookups (``who``, ``timeline``) answer exactly what the straightforward queries over
the ``*_latest`` views answer, however the versions of an event are spread over files: the pruned
plans (places, Bloom filters, partition and event-id filters) are an optimisation, never a
different answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auditcorr.lake import Lake, keep_latest
from auditcorr_cli.query import analyst
from auditcorr_cli.query.engine import LocalEngine
from tests.factories import T0, put, report_csv, report_name, session_row, sid, trail

IP, IP2 = "10.40.0.17", "10.40.0.18"
KINDS = {k: i for i, k in enumerate(analyst.TIMELINE_KINDS)}
SINCE, UNTIL = T0 - timedelta(days=2), T0 + timedelta(days=3)


def reference_timeline(lake: Lake, user: str, since: datetime, until: datetime) -> list[tuple[Any, ...]]:
    """The timeline computed in Python from whole tables: every row, latest version per event/alert."""
    out: list[tuple[Any, ...]] = []
    for r in lake.read("logons", latest=False).to_pylist():
        if r["user_name"] == user:
            out.append((r["event_time"], "logon", r["source_ip"], None, r["event_id"]))
    for r in lake.read("sessions", latest=False).to_pylist():
        if r["user_id"] == user:
            out.append((r["session_start_time"], "session_start", r["eni_private_ip_address"], r["session_id"],
                        r["session_id"]))
            out.append((r["session_end_time"], "session_end", r["eni_private_ip_address"], r["session_id"],
                        r["session_id"]))
    for r in lake.read("attributed_activity", latest=True).to_pylist():
        if r["user_id"] == user:
            out.append((r["event_time"], "write", r["source_ip"], r["session_id"], r["event_id"]))
    for r in lake.read("alerts", latest=True).to_pylist():
        if r["user_id"] == user:
            out.append((r["event_time"], "alert", r["source_ip"], r["session_id"], r["alert_id"]))
    out = [r for r in out if r[0] is not None and since <= r[0] < until]
    return sorted(out, key=lambda r: (r[0], KINDS[r[1]], r[4]))


def rows(t: Any) -> list[tuple[Any, ...]]:
    return [(r["at"], r["kind"], r["ip"], r["session_id"], r["ref"]) for r in t.to_pylist()]


@pytest.fixture
def moved(pipe, lake, clock):
    """w1 is first alice's (her session holds the address), then the day's report is delivered again
    with the address held by bob's session: the latest version of w1 names bob, an older one alice.
    w2 stays alice's; w3 is on another address. The first version is also left behind in a file of
    its own, as a concurrent writer or a run that died before deleting it would leave it."""
    recs = [put(T0 + timedelta(minutes=5), IP, key="k/one", session_name=sid(1), event_id="w1"),
            put(T0 + timedelta(minutes=9), IP, key="k/two", session_name=sid(1), event_id="w2"),
            put(T0 + timedelta(minutes=7), IP2, key="k/three", session_name=sid(3), event_id="w3")]
    pipe.ingest_object("ct/1.json.gz", trail(recs))
    first = [session_row(sid(1), "alice", IP, T0, T0 + timedelta(hours=1)),
             session_row(sid(3), "carol", IP2, T0, T0 + timedelta(hours=1))]
    pipe.ingest_object("rep/a/" + report_name("2026-03-02"), report_csv(first))
    assert {r["event_id"]: r["user_id"] for r in lake.read("attributed_activity").to_pylist()} == {
        "w1": "alice", "w2": "alice", "w3": "carol"}
    stale = lake.read("attributed_activity", ["2026-03-02"]).drop_columns(["dt"])
    clock.set(T0 + timedelta(days=5, hours=1))
    second = [session_row(sid(1), "alice", IP, T0 + timedelta(minutes=8), T0 + timedelta(hours=1)),
              session_row(sid(2), "bob", IP, T0, T0 + timedelta(minutes=6)),
              session_row(sid(3), "carol", IP2, T0, T0 + timedelta(hours=1))]
    pipe.ingest_object("rep/b/" + report_name("2026-03-02"), report_csv(second))
    assert {r["event_id"]: r["user_id"] for r in lake.read("attributed_activity").to_pylist()} == {
        "w1": "bob", "w2": "alice", "w3": "carol"}
    lake.write_file("attributed_activity", "2026-03-02", "part-stale", stale)
    assert len(lake.files("attributed_activity", "2026-03-02")) == 2
    assert {r["event_id"]: r["user_id"] for r in lake.read("attributed_activity").to_pylist()} == {
        "w1": "bob", "w2": "alice", "w3": "carol"}
    return lake


@pytest.mark.parametrize("user", ["alice", "bob", "carol", "nobody"])
def test_timeline_follows_the_latest_version_of_each_write(moved, user):
    eng = LocalEngine(moved)
    got = analyst.timeline(eng.query, user, SINCE, UNTIL)
    assert rows(got) == reference_timeline(moved, user, SINCE, UNTIL)
    assert got.equals(analyst.timeline_one_statement(eng.query, user, SINCE, UNTIL))
    writes = [r[4] for r in rows(got) if r[1] == "write"]
    assert writes == {"alice": ["w2"], "bob": ["w1"], "carol": ["w3"], "nobody": []}[user]


def test_timeline_window_bounds_rows_and_days(moved):
    eng = LocalEngine(moved)
    lo, hi = T0 + timedelta(minutes=6), T0 + timedelta(minutes=10)
    got = analyst.timeline(eng.query, "alice", lo, hi)
    assert rows(got) == reference_timeline(moved, "alice", lo, hi)
    # the second report's session starts at :08 (with no logon before it: an alert at its start)
    assert [(r[1], r[4]) for r in rows(got) if r[1] != "alert"] == [("session_start", sid(1)), ("write", "w2")]
    assert analyst.timeline(eng.query, "alice", T0 + timedelta(days=1), T0 + timedelta(days=2)).num_rows == 0


def test_who_reads_the_latest_attribution(moved):
    eng = LocalEngine(moved)
    got = analyst.who(eng.query, "research-data", "k/one").to_pylist()
    assert [(r["event_id"], r["user_id"], r["session_id"]) for r in got] == [("w1", "bob", sid(2))]


def test_the_views_and_the_lookups_agree_on_a_generated_world(tmp_path):
    """Every user of a generated world (live observations turning into report attributions,
    multi-session hosts, disguised sessions, late files): the pruned timeline equals the reference
    and the one-statement form; every object's ``who`` equals the latest attribution."""
    from auditcorr.pipeline import Pipeline
    from auditcorr_sim import generate_world
    from auditcorr_sim.demo import DEMO_CONFIG, SimClock, ingest_world, make_poller

    world = generate_world(tmp_path / "in", seed=5, n_users=12, days=1)
    lake = Lake.open(str(tmp_path / "lake"))
    clock = SimClock()
    pipe = Pipeline(lake, DEMO_CONFIG, clock=clock)
    ingest_world(world, pipe, clock, poll=make_poller(world, pipe))
    eng = LocalEngine(lake)
    since, until = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    seen_writes = 0
    for user in world.users:
        got = analyst.timeline(eng.query, user, since, until)
        assert rows(got) == reference_timeline(lake, user, since, until), user
        assert got.equals(analyst.timeline_one_statement(eng.query, user, since, until)), user
        seen_writes += sum(1 for r in rows(got) if r[1] == "write")
    assert seen_writes > 50
    latest = keep_latest(lake.read("attributed_activity", latest=False), "attributed_activity").to_pylist()
    by_event = {r["event_id"]: r for r in latest}
    for w in lake.read("s3_writes").to_pylist()[::7]:
        who = analyst.who(eng.query, w["bucket"], w["key"]).to_pylist()
        assert w["event_id"] in {r["event_id"] for r in who}
        for r in who:
            exp = by_event.get(r["event_id"])
            assert (r["status"], r["user_id"], r["session_id"]) == (
                (exp["status"], exp["user_id"], exp["session_id"]) if exp else (None, None, None))
