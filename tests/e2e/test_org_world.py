"""Golden tests of an organisation: two accounts (one in two regions) whose fleets all use
10.40.0.0/16, one organisation trail, a report bucket per account and region with reports arriving
at different times, one report that never comes, fleet credentials used through a service, and
IPv4-mapped addresses -- ingested live, as a backfill replay, and all CloudTrail first.

Every alert row ever written counts (``latest=False``), not only the latest state: an alert opened
and closed later has already gone to SNS and Security Hub.
"""

from __future__ import annotations

from collections import Counter

import pytest

from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr_sim.common import ACCOUNT
from auditcorr_sim.demo import SimClock
from auditcorr_sim.org import ORDERS, feed, flat_config, org_config
from auditcorr_sim.world import generate_org_world, generate_world

#: the rules the generator's expected alerts cover; any other open alert is unexpected
WRITE_RULES = {"session_id_mismatch", "unknown_session_id", "credentials_outside_fleet", "unattributed_activity",
               "fleet_credentials_via_service"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generate_org_world(tmp_path_factory.mktemp("org") / "inputs", seed=5)


@pytest.fixture(scope="module", params=ORDERS)
def ingested(request, world, tmp_path_factory):
    lake = Lake.open(str(tmp_path_factory.mktemp(f"lake-{request.param}")))
    clock = SimClock()
    pipe = Pipeline(lake, org_config(world.tenants, report_grace_hours=12), clock=clock)
    summary = feed(world, pipe, clock, request.param)
    return request.param, lake, summary


def activity(lake):
    return {r["event_id"]: r for r in lake.read("attributed_activity").to_pylist()}


def every_alert(lake):
    return lake.read("alerts", latest=False).to_pylist()


def test_the_world_is_an_organisation(world):
    scopes = {t.scope for t in world.tenants}
    assert len({a for a, _ in scopes}) >= 2 and len({r for _, r in scopes}) == 2
    # the same private addresses in every account
    ips = {}
    for s in world.sessions:
        ips.setdefault(s["eni_private_ip_address"], set()).add(s["aws_account_id"])
    assert any(len(accounts) >= 2 for accounts in ips.values())
    assert len(world.missing_reports) == 1
    assert all(world.scenarios[name] for name in ("fleet_credentials_via_service", "invoked_by_service",
                                                 "ipv4_mapped_address", "disguised_session_id"))


def test_every_record_is_accounted_for(ingested):
    _, _, summary = ingested
    assert summary.reconciles
    assert all(f.error is None for f in summary.files)


def test_attribution_matches_ground_truth(ingested, world):
    _, lake, _ = ingested
    act = activity(lake)
    mismatches = []
    for eid, exp in world.truth.items():
        got = act.get(eid)
        if exp.status == "out_of_scope":
            assert got is None
            continue
        want = (exp.status, exp.user_id, exp.session_id, tuple(exp.candidate_session_ids))
        have = None if got is None else (got["status"], got["user_id"], got["session_id"],
                                          tuple(got["candidate_session_ids"] or ()) if exp.status == "ambiguous"
                                          else ())
        if have != want:
            mismatches.append((eid, want, have))
    assert mismatches == []


def test_nothing_is_attributed_across_accounts_or_regions(ingested, world):
    _, lake, _ = ingested
    session_scope = {s["session_id"]: (s["aws_account_id"], s["region"]) for s in world.sessions}
    n = 0
    for eid, r in activity(lake).items():
        assert (r["account_id"], r["region"]) == world.write_scope[eid]
        for sid in [r["session_id"], *(r["candidate_session_ids"] or [])]:
            if sid is not None:
                assert session_scope[sid] == world.write_scope[eid], eid
                n += 1
    assert n > 1000


def test_each_write_shows_the_logon_of_its_session_in_its_own_account(ingested, world):
    """The logon shown beside an attributed write is the one that opened its session, in the
    session's account (logons are matched per account: the same user may log on in several)."""
    _, lake, _ = ingested
    sessions = {s["session_id"]: s for s in world.sessions}
    logon_account = {r["event_id"]: r["account_id"] for r in lake.read("logons").to_pylist()}
    checked = 0
    for r in activity(lake).values():
        if r["status"] == "attributed":
            s = sessions[r["session_id"]]
            assert r["logon_event_id"] == s["logon_event_id"], r["event_id"]
            assert logon_account[r["logon_event_id"]] == s["aws_account_id"] == r["account_id"]
            checked += 1
    assert checked > 1000


def test_no_alert_is_ever_opened_on_a_benign_write(ingested, world):
    order, lake, _ = ingested
    opened = {(r["rule"], r["event_id"]) for r in every_alert(lake) if r["status"] == "open"}
    unexpected = {a for a in opened if a[0] != "usage_report_missing"} - world.expected_alerts
    assert unexpected == set(), order
    # and every expected alert is raised, in every order
    assert world.expected_alerts <= opened
    assert {rule for rule, _ in world.expected_alerts} >= WRITE_RULES


def test_one_usage_report_missing_alert_per_missing_report_and_its_writes_stay_pending(ingested, world):
    _, lake, _ = ingested
    rows = [r for r in every_alert(lake) if r["rule"] == "usage_report_missing"]
    got = Counter((r["account_id"], r["region"], r["event_id"].rsplit("|", 1)[1]) for r in rows
                  if r["status"] == "open")
    assert got == Counter(world.missing_reports)  # one row, ever, per missing account-region-day
    assert {r["alert_id"] for r in rows} == {rows[0]["alert_id"]}
    act = activity(lake)
    pending = [eid for eid, exp in world.truth.items() if exp.status == "pending"]
    assert len(pending) > 20
    assert {act[eid]["status"] for eid in pending} == {"pending"}
    account, region, day = world.missing_reports[0]
    assert {(act[e]["account_id"], act[e]["region"], str(act[e]["event_time"])[:10]) for e in pending} == \
        {(account, region, day)}


def test_credentials_used_through_a_service(ingested, world):
    _, lake, _ = ingested
    act = activity(lake)
    opened = {(r["rule"], r["event_id"]) for r in every_alert(lake) if r["status"] == "open"}
    for eid in world.scenarios["fleet_credentials_via_service"]:
        assert act[eid]["source_ip"] == "appstream.amazonaws.com"
        assert ("fleet_credentials_via_service", eid) in opened
    placed = unplaced = 0
    for eid in world.scenarios["invoked_by_service"]:
        assert not {rule for rule, e in opened if e == eid}
        assert act[eid]["source_ip"] == "athena.amazonaws.com"  # the record keeps its own source
        exp = world.truth[eid]
        if exp.status == "via_service":  # its credentials were never used from a fleet address
            assert (act[eid]["status"], act[eid]["match"], act[eid]["user_id"]) == ("via_service", None, None)
            unplaced += 1
        else:  # placed through the same key's use from the session's address (pending: its report never came)
            assert (act[eid]["status"], act[eid]["session_id"]) == (exp.status, exp.session_id)
            if exp.status == "attributed":
                assert act[eid]["match"] == "credentials"
                placed += 1
    assert placed >= 4 and unplaced >= 4


def test_ipv4_mapped_addresses_are_attributed_like_their_ipv4(ingested, world):
    _, lake, _ = ingested
    act = activity(lake)
    sessions = {s["session_id"]: s for s in world.sessions}
    for eid in world.scenarios["ipv4_mapped_address"]:
        r = act[eid]
        exp = world.truth[eid]
        if exp.status == "pending":
            continue
        assert r["status"] == "attributed" and r["session_id"] == exp.session_id
        assert r["source_ip"].removeprefix("::ffff:") == sessions[exp.session_id]["eni_private_ip_address"]


def test_the_flat_configuration_still_serves_one_account(tmp_path):
    w = generate_world(tmp_path / "inputs", seed=3, n_users=12, days=1)
    lake = Lake.open(str(tmp_path / "lake"))
    clock = SimClock()
    pipe = Pipeline(lake, flat_config(ACCOUNT), clock=clock)
    assert feed(w, pipe, clock, "replay").reconciles
    act = activity(lake)
    for eid, exp in w.truth.items():
        if exp.status != "out_of_scope":
            assert (act[eid]["status"], act[eid]["session_id"]) == (exp.status, exp.session_id)
            assert act[eid]["account_id"] == ACCOUNT
    opened = {(r["rule"], r["event_id"]) for r in every_alert(lake) if r["status"] == "open"}
    assert opened == w.expected_alerts
