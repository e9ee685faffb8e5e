"""Golden end-to-end test: a generated world ingested in arrival order must give its ground truth.

The world generator records what it built (sessions, writes, disguised ids, replayed credentials,
idle-IP writes...) by construction; the pipeline has to rediscover it from the files alone.
"""

from __future__ import annotations

import pytest

from auditcorr.lake import Lake, keep_latest
from auditcorr.pipeline import Pipeline
from auditcorr_sim import generate_world
from auditcorr_sim.demo import DEMO_CONFIG, SimClock, ingest_world, make_poller


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    world = generate_world(root / "inputs", seed=11, n_users=24, days=2)
    lake = Lake.open(str(root / "lake"))
    clock = SimClock()
    pipe = Pipeline(lake, DEMO_CONFIG, clock=clock)
    summary = ingest_world(world, pipe, clock, poll=make_poller(world, pipe))
    return world, lake, summary


def test_every_record_is_accounted_for(ingested):
    _, _, summary = ingested
    assert summary.reconciles
    assert all(f.error is None for f in summary.files)


def test_attribution_matches_ground_truth(ingested):
    world, lake, _ = ingested
    act = {r["event_id"]: r for r in lake.read("attributed_activity").to_pylist()}
    assert len(act) == lake.read("attributed_activity").num_rows  # each write exactly once
    mismatches = []
    for eid, exp in world.truth.items():
        if exp.status == "out_of_scope":
            if eid in act:
                mismatches.append((eid, "out_of_scope", act[eid]["status"]))
            continue
        got = act.get(eid)
        if got is None:
            mismatches.append((eid, exp.status, None))
            continue
        if (got["status"], got["user_id"], got["session_id"]) != (exp.status, exp.user_id, exp.session_id):
            mismatches.append((eid, (exp.status, exp.user_id, exp.session_id),
                               (got["status"], got["user_id"], got["session_id"])))
        elif exp.status == "ambiguous" and tuple(got["candidate_session_ids"]) != tuple(exp.candidate_session_ids):
            mismatches.append((eid, exp.candidate_session_ids, got["candidate_session_ids"]))
    assert mismatches == []


def test_open_alerts_match_ground_truth(ingested):
    world, lake, _ = ingested
    al = keep_latest(lake.read("alerts").drop_columns(["dt"]), "alerts")
    write_rules = {"session_id_mismatch", "unknown_session_id", "credentials_outside_fleet", "unattributed_activity"}
    got = {(r["rule"], r["event_id"]) for r in al.to_pylist() if r["status"] == "open" and r["rule"] in write_rules}
    assert got == world.expected_alerts


def test_no_write_left_pending_once_all_reports_are_in(ingested):
    _, lake, _ = ingested
    statuses = set(lake.read("attributed_activity").column("status").to_pylist())
    assert "pending" not in statuses


def test_reingesting_the_world_changes_nothing(ingested, tmp_path):
    world, lake, _ = ingested
    before = sorted(map(str, lake.read("attributed_activity").select(["event_id", "status", "session_id"])
                        .to_pylist()))
    pipe = Pipeline(lake, DEMO_CONFIG, clock=SimClock())
    for a in world.arrivals:
        out = pipe.ingest_object(a.path.relative_to(world.root).as_posix(), a.path.read_bytes())
        assert out.written == 0
    after = sorted(map(str, lake.read("attributed_activity").select(["event_id", "status", "session_id"])
                       .to_pylist()))
    assert after == before
