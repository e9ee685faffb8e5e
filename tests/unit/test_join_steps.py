"""The join's steps and the write rules, case by case, on in-memory Arrow tables (no lake, no disk).

Each case states the writes and sessions it needs and the answer; the edges of every window are
cases of their own (exactly at start - tolerance, one millisecond outside, ...)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from auditcorr.attribution import DAY_MS, Coverage, Match, attribute
from auditcorr.attribution.join import choose, finality, match_kinds, statuses
from auditcorr.config import Config
from auditcorr.rules import write_alerts
from auditcorr.schemas import S3_WRITES, TS, conform

pytestmark = pytest.mark.pure

ROLE = "arn:aws:iam::111122223333:role/AppStreamFleetRole"
DAY = 20_514  # 2026-03-02 in days since the epoch
T0 = DAY * DAY_MS + 10 * 3_600_000  # 10:00 UTC
MIN = 60_000
TOL = 60_000
A, B, C = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", \
    "33333333-3333-4333-8333-333333333333"
ALL_IN = Coverage.every_scope(range(DAY - 3, DAY + 4), clock_ms=(DAY + 5) * DAY_MS, grace_ms=0)
NONE_IN = Coverage.every_scope([], clock_ms=T0)
ACCOUNT = "111122223333"
REGION = "us-east-1"


def writes(*rows: tuple[int, str, str | None]) -> pa.Table:
    """(event ms, source ip, claimed session id) per write, signed by the fleet role."""
    n = len(rows)
    return conform(pa.table({
        "event_id": [f"ev-{i}" for i in range(n)],
        "event_time": pa.array([r[0] for r in rows], pa.int64()).cast(TS),
        "event_name": ["PutObject"] * n,
        "bucket": ["research"] * n,
        "key": [f"k/{i}" for i in range(n)],
        "source_ip": [r[1] for r in rows],
        "role_arn": [ROLE] * n,
        "principal_arn": [f"{ROLE}/x"] * n,
        "role_session_name": [r[2] for r in rows],
        "aws_region": [REGION] * n,
    }), S3_WRITES)


def sessions(*rows: tuple[str, str, str, int, int]) -> pa.Table:
    """(session id, user, ip, start ms, end ms) per session."""
    return pa.table({
        "session_id": [r[0] for r in rows],
        "user_id": [r[1] for r in rows],
        "session_start_time": pa.array([r[3] for r in rows], pa.int64()).cast(TS),
        "session_end_time": pa.array([r[4] for r in rows], pa.int64()).cast(TS),
        "eni_private_ip_address": [r[2] for r in rows],
        "fleet_name": ["f"] * len(rows),
        "stack_name": ["s"] * len(rows),
        "instance_id": ["i-1"] * len(rows),
        "aws_account_id": [ACCOUNT] * len(rows),
        "region": [REGION] * len(rows),
    })


NO_LOGONS = pa.table({"event_id": pa.array([], pa.string()), "event_time": pa.array([], TS),
                      "user_name": pa.array([], pa.string()), "outcome": pa.array([], pa.string()),
                      "source_ip": pa.array([], pa.string()), "issued_access_key_id": pa.array([], pa.string()),
                      "principal_tags": pa.array([], pa.string())})


def run(w: pa.Table, s: pa.Table, coverage: Coverage = ALL_IN, config: Config | None = None,
        known: set[str] | None = None):
    cfg = config or Config(roles=(ROLE,), tolerance_seconds=TOL // 1000)
    known_session = (lambda ids: set(ids) & known) if known is not None else None
    return attribute(w, s, NO_LOGONS, cfg, coverage, now_ms=T0, known_session=known_session)


def row(res, i: int = 0) -> dict:
    return res.activity.to_pylist()[i]


# -- window edges -----------------------------------------------------------------------------
@pytest.mark.parametrize(("at", "status", "match"), [
    (T0, "attributed", "window"),  # exactly at the start
    (T0 + 30 * MIN, "attributed", "window"),
    (T0 + 60 * MIN, "attributed", "window"),  # exactly at the end
    (T0 - TOL, "attributed", "tolerance"),  # exactly at start - tolerance
    (T0 + 60 * MIN + TOL, "attributed", "tolerance"),  # exactly at end + tolerance
    (T0 - TOL - 1, "unattributed", None),  # one millisecond outside
    (T0 + 60 * MIN + TOL + 1, "unattributed", None),
])
def test_the_window_and_its_tolerance(at, status, match):
    res = run(writes((at, "10.40.0.5", None)), sessions((A, "alice", "10.40.0.5", T0, T0 + 60 * MIN)))
    assert (row(res)["status"], row(res)["match"]) == (status, match)
    assert row(res)["user_id"] == ("alice" if status == "attributed" else None)


def test_another_ip_never_matches():
    res = run(writes((T0 + MIN, "10.40.0.6", None)), sessions((A, "alice", "10.40.0.5", T0, T0 + 60 * MIN)))
    assert row(res)["status"] == "unattributed" and row(res)["candidate_session_ids"] == []


# -- the choice ----------------------------------------------------------------------------------
def test_own_window_beats_a_neighbour_reached_only_through_tolerance():
    # A ends at T0; B starts 30 s later on the same IP; a write 10 s after A's end is in A's tolerance
    # and in B's tolerance, inside neither window -> ambiguous; 10 s into B -> B by window
    s = sessions((A, "alice", "10.40.0.5", T0 - 60 * MIN, T0), (B, "bob", "10.40.0.5", T0 + 30_000, T0 + 60 * MIN))
    res = run(writes((T0 + 10_000, "10.40.0.5", None), (T0 + 40_000, "10.40.0.5", None)), s)
    assert row(res, 0)["status"] == "ambiguous" and row(res, 0)["candidate_session_ids"] == [A, B]
    assert (row(res, 1)["status"], row(res, 1)["session_id"], row(res, 1)["match"]) == ("attributed", B, "window")


def test_a_claim_among_the_candidates_settles_a_shared_address():
    s = sessions((A, "alice", "10.40.0.5", T0, T0 + 60 * MIN), (B, "bob", "10.40.0.5", T0, T0 + 60 * MIN))
    res = run(writes((T0 + MIN, "10.40.0.5", B), (T0 + MIN, "10.40.0.5", None)), s)
    assert (row(res, 0)["status"], row(res, 0)["user_id"], row(res, 0)["match"]) == ("attributed", "bob", "claim")
    assert row(res, 1)["status"] == "ambiguous" and row(res, 1)["candidate_user_ids"] == ["alice", "bob"]


def test_choose_counts_per_write():
    # write 0: two candidates, the second claimed; write 1: one strict and one tolerant candidate
    pairs_w = np.array([0, 0, 1, 1])
    pairs_s = np.array([0, 1, 0, 2])
    strict = np.array([True, True, True, False])
    claims = pa.array([B, None])
    ids = pa.array([A, B, C])
    cand = choose(pairs_w, pairs_s, strict, claims, ids, 2)
    assert cand.per_write.tolist() == [2, 2]
    assert cand.claimed.tolist() == [1, 0]
    assert cand.kept_per_write.tolist() == [1, 1]
    assert cand.chosen.tolist() == [1, 0]


# -- finality, status and match codes -----------------------------------------------------------
def test_pending_until_the_covering_reports_are_in():
    w = writes((T0, "10.40.9.9", None))
    assert row(run(w, sessions(), coverage=NONE_IN))["status"] == "pending"
    assert row(run(w, sessions(), coverage=ALL_IN))["status"] == "unattributed"


def test_finality_needs_every_day_up_to_the_longest_session():
    cfg = Config(roles=(ROLE,), max_session_hours=16)
    early = T0 - 3 * 3_600_000  # 07:00: a session covering it ends by 23:01 the same day
    late = T0  # 10:00: a session covering it may end the next day, whose report is not in
    scope = (np.zeros(2, np.int64), pa.array([f"{ACCOUNT}|{REGION}"]))
    only_today = Coverage.every_scope({DAY})
    assert finality(np.array([early, late]), *scope, cfg, only_today)[0].tolist() == [True, False]
    both_days = Coverage.every_scope({DAY, DAY + 1})
    assert finality(np.array([early, late]), *scope, cfg, both_days)[0].tolist() == [True, True]
    # a report of a later day shows the next day had none (reports come in day order)
    later = Coverage.every_scope({DAY, DAY + 2})
    assert finality(np.array([early, late]), *scope, cfg, later)[0].tolist() == [True, True]
    # the own day's report is needed itself: a later one does not stand for it
    later_only = Coverage.every_scope({DAY + 1, DAY + 2})
    assert finality(np.array([early]), np.zeros(1, np.int64), scope[1], cfg, later_only)[0].tolist() == [False]


def test_statuses_and_match_codes_are_named():
    assert [m.label for m in Match] == ["claim", "window", "tolerance", None, "nat", "credentials"]
    cfg = Config(roles=(ROLE,), nat_cidrs=("203.0.113.0/24",))
    res = run(writes((T0, "203.0.113.9", None), (T0, "198.51.100.4", None)), sessions(), config=cfg)
    assert [r["status"] for r in res.activity.to_pylist()] == ["external", "external"]
    assert [r["match"] for r in res.activity.to_pylist()] == ["nat", None]


def test_statuses_function_orders_the_cases():
    in_fleet = np.array([True, True, True, True, False])
    cand = choose(np.array([1, 2, 2]), np.array([0, 0, 1]), np.array([True, True, True]),
                  pa.array([None] * 5, pa.string()), pa.array([A, B]), 5)
    final = np.array([False, True, True, True, True])
    got = statuses(in_fleet, cand, final).to_pylist()
    assert got == ["pending", "attributed", "ambiguous", "unattributed", "external"]
    kinds = match_kinds(in_fleet, cand, np.zeros(5, dtype=bool)).to_pylist()
    assert kinds == [None, "window", "window", None, None]


def test_writes_of_other_roles_are_not_attributed():
    w = writes((T0, "10.40.0.5", None))
    other = w.set_column(w.schema.get_field_index("role_arn"), "role_arn", pa.array(["arn:aws:iam::1:role/Other"]))
    assert run(other, sessions((A, "alice", "10.40.0.5", T0, T0 + MIN))).activity.num_rows == 0


# -- the write rules ----------------------------------------------------------------------------
def rules_raised(res, config: Config | None = None) -> list[tuple[str, str]]:
    t = write_alerts(res, config or Config(roles=(ROLE,)))
    return sorted(zip(t.column("rule").to_pylist(), t.column("event_id").to_pylist(), strict=True))


def test_session_id_mismatch_needs_a_claim_known_elsewhere():
    s = sessions((A, "alice", "10.40.0.5", T0, T0 + 60 * MIN), (B, "bob", "10.40.0.7", T0, T0 + 60 * MIN))
    res = run(writes((T0 + MIN, "10.40.0.5", B)), s, known={A, B})
    assert rules_raised(res) == [("session_id_mismatch", "ev-0")]
    # negative: the claim is the holder's own session
    assert rules_raised(run(writes((T0 + MIN, "10.40.0.5", A)), s, known={A, B})) == []


def test_unknown_session_id_waits_for_the_evidence():
    s = sessions((A, "alice", "10.40.0.5", T0, T0 + 60 * MIN))
    w = writes((T0 + MIN, "10.40.0.5", C))
    assert rules_raised(run(w, s, known=set())) == [("unknown_session_id", "ev-0")]
    # negative: reports not in and no live view -> undecidable, nothing raised yet
    assert rules_raised(run(w, s, coverage=NONE_IN, known=set())) == []


def test_credentials_outside_fleet_is_an_external_valid_address_not_a_nat():
    cfg = Config(roles=(ROLE,), nat_cidrs=("203.0.113.0/24",))
    res = run(writes((T0, "198.51.100.4", None), (T0, "203.0.113.9", None), (T0, "not-an-ip", None)), sessions(),
              config=cfg)
    assert rules_raised(res, cfg) == [("credentials_outside_fleet", "ev-0")]


def test_unattributed_activity_only_once_final():
    w = writes((T0, "10.40.9.9", None))
    assert rules_raised(run(w, sessions())) == [("unattributed_activity", "ev-0")]
    assert rules_raised(run(w, sessions(), coverage=NONE_IN)) == []


def test_a_disabled_rule_raises_nothing():
    cfg = Config(roles=(ROLE,), disabled_rules=("unattributed_activity",))
    assert rules_raised(run(writes((T0, "10.40.9.9", None)), sessions(), config=cfg), cfg) == []


# -- a service's call with the principal's credentials (issue 15 §5) ---------------------------------
def service_writes(*rows: tuple[int, str, str | None, str | None]) -> pa.Table:
    """(event ms, source, access key id, invokedBy) per write, signed by the fleet role."""
    w = writes(*[(r[0], r[1], None) for r in rows])
    w = w.set_column(w.schema.get_field_index("access_key_id"), "access_key_id",
                     pa.array([r[2] for r in rows], pa.string()))
    return w.set_column(w.schema.get_field_index("invoked_by"), "invoked_by",
                        pa.array([r[3] for r in rows], pa.string()))


ATHENA = "athena.amazonaws.com"


def test_a_service_call_is_placed_where_its_credentials_were_used():
    """Athena writes query results with the session's credentials (invokedBy, no address): the same
    access key used from 10.40.0.5 shortly before places it there, in A's session."""
    s = sessions((A, "alice", "10.40.0.5", T0, T0 + 60 * MIN), (B, "bob", "10.40.0.6", T0, T0 + 60 * MIN))
    res = run(service_writes((T0 + 10 * MIN, "10.40.0.5", "ASIAKEYA", None),
                             (T0 + 12 * MIN, ATHENA, "ASIAKEYA", ATHENA),
                             (T0 + 12 * MIN, ATHENA, "ASIAKEYB", ATHENA),  # key B never seen from the fleet
                             (T0 + 12 * MIN, ATHENA, None, ATHENA)), s)  # no key at all
    got = [(r["status"], r["match"], r["user_id"], r["source_ip"]) for r in res.activity.to_pylist()]
    assert got == [("attributed", "window", "alice", "10.40.0.5"),
                   ("attributed", "credentials", "alice", ATHENA),  # the record keeps its own source
                   ("via_service", None, None, ATHENA), ("via_service", None, None, ATHENA)]
    assert write_alerts(res, Config(roles=(ROLE,))).num_rows == 0


def test_only_a_called_for_service_write_is_placed_and_only_by_the_nearest_use():
    """No invokedBy (the bypass shape) is never placed; the nearest use of the key wins (the key moved
    from one address to another: the earlier one on a tie); a use beyond max_session_hours is none."""
    s = sessions((A, "alice", "10.40.0.5", T0, T0 + 300 * MIN), (B, "bob", "10.40.0.6", T0, T0 + 300 * MIN))
    res = run(service_writes((T0 + 10 * MIN, "10.40.0.5", "K1", None),
                             (T0 + 30 * MIN, "10.40.0.6", "K1", None),
                             (T0 + 25 * MIN, ATHENA, "K1", ATHENA),  # nearer the use from .6
                             (T0 + 20 * MIN, ATHENA, "K1", ATHENA),  # equally near both: the earlier (.5)
                             (T0 + 25 * MIN, "appstream.amazonaws.com", "K1", None)), s)
    got = [(r["status"], r["user_id"]) for r in res.activity.to_pylist()]
    assert got[2:] == [("attributed", "bob"), ("attributed", "alice"), ("external", None)]
    far = run(service_writes((T0, "10.40.0.5", "K2", None), (T0 + 2 * 60 * MIN + 1, ATHENA, "K2", ATHENA)), s,
              config=Config(roles=(ROLE,), tolerance_seconds=60, max_session_hours=2))
    assert far.activity.column("status").to_pylist() == ["attributed", "via_service"]


def test_a_placed_service_call_is_judged_by_its_claim_like_any_fleet_write():
    """Placed in A's session, a claim of A is settled (no alert); a claim of B (known: B held another
    address) is a disguise; a claim nobody knows is unknown once decidable."""
    s = sessions((A, "alice", "10.40.0.5", T0, T0 + 60 * MIN), (B, "bob", "10.40.0.6", T0, T0 + 60 * MIN))
    w = service_writes((T0 + 10 * MIN, "10.40.0.5", "ASIAKEYA", None),
                       (T0 + 12 * MIN, ATHENA, "ASIAKEYA", ATHENA),
                       (T0 + 13 * MIN, ATHENA, "ASIAKEYA", ATHENA),
                       (T0 + 14 * MIN, ATHENA, "ASIAKEYA", ATHENA))
    w = w.set_column(w.schema.get_field_index("role_session_name"), "role_session_name",
                     pa.array([None, A, B, C], pa.string()))
    res = run(w, s, known={A, B})
    assert rules_raised(res) == [("session_id_mismatch", "ev-2"), ("unknown_session_id", "ev-3")]


def test_a_service_call_is_placed_by_the_call_that_started_it():
    """Athena's results, written with bob's session key (invokedBy athena): the session wrote nothing
    to S3 with that key, but its StartQueryExecution came from 10.40.0.6 a minute before (a
    ``credential_uses`` row): placed there, bob's session.  A start call from outside the fleet, or by
    another role, places nothing."""
    s = sessions((A, "alice", "10.40.0.5", T0, T0 + 60 * MIN), (B, "bob", "10.40.0.6", T0, T0 + 60 * MIN))
    w = service_writes((T0 + 12 * MIN, ATHENA, "ASIAKEYB", ATHENA), (T0 + 12 * MIN, ATHENA, "ASIAKEYC", ATHENA),
                       (T0 + 12 * MIN, ATHENA, "ASIAKEYD", ATHENA))
    starts = service_writes((T0 + 11 * MIN, "10.40.0.6", "ASIAKEYB", None),
                            (T0 + 11 * MIN, "198.51.100.9", "ASIAKEYC", None),
                            (T0 + 11 * MIN, "10.40.0.5", "ASIAKEYD", None))
    starts = starts.set_column(starts.schema.get_field_index("event_name"), "event_name",
                               pa.array(["StartQueryExecution"] * 3))
    starts = starts.set_column(starts.schema.get_field_index("role_arn"), "role_arn",
                               pa.array([ROLE, ROLE, "arn:aws:iam::111122223333:role/Other"]))
    cfg = Config(roles=(ROLE,), tolerance_seconds=TOL // 1000)
    res = attribute(w, s, NO_LOGONS, cfg, ALL_IN, now_ms=T0, credential_uses=starts)
    got = [(r["status"], r["match"], r["user_id"]) for r in res.activity.to_pylist()]
    assert got == [("attributed", "credentials", "bob"), ("via_service", None, None), ("via_service", None, None)]
    # without the start calls: nothing places them
    plain = attribute(w, s, NO_LOGONS, cfg, ALL_IN, now_ms=T0)
    assert plain.activity.column("status").to_pylist() == ["via_service"] * 3
