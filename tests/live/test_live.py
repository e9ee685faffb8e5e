"""live.py: poll snapshots -> live_sessions rows -> observed windows; freshness of the live view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from auditcorr import live
from auditcorr.attribution import SESSION_COLS
from auditcorr.schemas import LIVE_POLLS, LIVE_SESSIONS, TS, conform
from tests.factories import T0

MIN = 60_000
F = 180_000  # freshness
T = int(T0.timestamp() * 1000)


def api_session(
    sid: str,
    user: str = "alice",
    start: datetime = T0,
    ip: str | None = "10.40.1.5",
    stack: str = "analytics",
    fleet: str = "analytics-single",
    state: str = "ACTIVE",
    auth: str = "SAML",
    instance: str | None = "i-0aaa",
    max_exp: datetime | None = None,
) -> dict:
    """A session exactly as boto3's describe_sessions returns it."""
    s = {
        "Id": sid,
        "UserId": user,
        "StackName": stack,
        "FleetName": fleet,
        "State": state,
        "ConnectionState": "CONNECTED",
        "StartTime": start,
        "MaxExpirationTime": max_exp or start + timedelta(hours=16),
        "AuthenticationType": auth,
        "InstanceDrainStatus": "NOT_APPLICABLE",
    }
    if ip:
        s["NetworkAccessConfiguration"] = {"EniPrivateIpAddress": ip, "EniId": "eni-0123456789abcdef0"}
    if instance:
        s["InstanceId"] = instance
    return s


def snaps(*polls: tuple[int, list[dict]]) -> pa.Table:
    return pa.concat_tables([live.snapshot_table(s, at) for at, s in polls])


def window(table: pa.Table, sid: str) -> dict:
    rows = [r for r in table.to_pylist() if r["session_id"] == sid]
    assert len(rows) == 1, rows
    return rows[0]


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


# -- snapshot_table -------------------------------------------------------------------------------
def test_snapshot_maps_describe_sessions_fields():
    tz = timezone(timedelta(hours=2))  # botocore may hand back a local-zone datetime
    s = api_session("s-1", start=T0.astimezone(tz))
    t = live.snapshot_table([s], T + 5 * MIN)
    assert t.schema == LIVE_SESSIONS
    r = t.to_pylist()[0]
    assert r["observed_at"] == T0 + timedelta(minutes=5)
    assert r["start_time"] == T0
    assert r["max_expiration_time"] == T0 + timedelta(hours=16)
    assert (r["session_id"], r["user_id"], r["authentication_type"], r["stack_name"], r["fleet_name"]) == (
        "s-1",
        "alice",
        "SAML",
        "analytics",
        "analytics-single",
    )
    assert (r["state"], r["connection_state"], r["eni_private_ip_address"], r["instance_id"]) == (
        "ACTIVE",
        "CONNECTED",
        "10.40.1.5",
        "i-0aaa",
    )


def test_snapshot_tolerates_missing_optional_fields_and_dedupes():
    pending = api_session("s-2", ip=None, instance=None, state="PENDING")
    del pending["MaxExpirationTime"]
    t = live.snapshot_table([pending, pending, {"UserId": "no-id"}], T)
    assert t.num_rows == 1
    r = t.to_pylist()[0]
    assert (
        r["eni_private_ip_address"] is None and r["instance_id"] is None and r["max_expiration_time"] is None
    )


def test_snapshot_of_nothing_is_an_empty_table():
    t = live.snapshot_table([], T)
    assert t.num_rows == 0 and t.schema == LIVE_SESSIONS


# -- observed_windows -----------------------------------------------------------------------------
PAIR = ("analytics", "analytics-single")


def test_session_ending_between_polls_ends_at_the_first_poll_not_listing_it():
    s = api_session("s-1", start=T0 - timedelta(minutes=3))
    other = api_session("s-2", user="bob", ip="10.40.1.6")
    obs = snaps((T, [s, other]), (T + MIN, [s, other]), (T + 2 * MIN, [other]))
    polls = {PAIR: [T, T + MIN, T + 2 * MIN]}
    w = live.observed_windows(obs, polls, now_ms=T + 2 * MIN + 10_000, freshness_ms=F)
    assert tuple(w.column_names[: len(SESSION_COLS)]) == SESSION_COLS
    r = window(w, "s-1")
    assert r["session_start_time"] == T0 - timedelta(minutes=3)
    assert r["session_end_time"] == T0 + timedelta(minutes=2)  # ended in (T+1min, T+2min]: upper bound
    assert r["last_seen"] == T0 + timedelta(minutes=1)
    assert r["end_basis"] == "unlisted"
    assert (r["user_id"], r["eni_private_ip_address"], r["instance_id"]) == ("alice", "10.40.1.5", "i-0aaa")
    # still listed in the latest (fresh) poll: presumed running for one more freshness period
    r2 = window(w, "s-2")
    assert r2["session_end_time"] == T0 + timedelta(minutes=2) + timedelta(milliseconds=F)
    assert r2["end_basis"] == "fresh"


def test_still_listed_but_view_stale_ends_at_last_sighting():
    obs = snaps((T, [api_session("s-1")]), (T + MIN, [api_session("s-1")]))
    w = live.observed_windows(obs, {PAIR: [T, T + MIN]}, now_ms=T + MIN + F + 1, freshness_ms=F)
    r = window(w, "s-1")
    assert r["session_end_time"] == T0 + timedelta(minutes=1)
    assert r["end_basis"] == "last_seen"


def test_a_long_gap_between_polls_is_not_vouched_for():
    obs = snaps((T, [api_session("s-1")]))
    w = live.observed_windows(obs, {PAIR: [T, T + 60 * MIN]}, now_ms=T + 61 * MIN, freshness_ms=F)
    r = window(w, "s-1")
    assert r["session_end_time"] == T0 + timedelta(milliseconds=F)
    assert r["end_basis"] == "gap_capped"


def test_failed_poll_rows_do_not_end_a_window_but_complete_ones_do():
    obs = snaps((T, [api_session("s-1")]))
    polls = conform(
        pa.table(
            {
                "observed_at": pa.array([T, T + MIN, T + 2 * MIN], pa.int64()).cast(TS),
                "stack_name": [PAIR[0]] * 3,
                "fleet_name": [PAIR[1]] * 3,
                "sessions_seen": pa.array([1, 0, 0], pa.int64()),
                "error": [
                    None,
                    "DescribeSessions(analytics/analytics-single, SAML): ThrottlingException",
                    None,
                ],
            }
        ),
        LIVE_POLLS,
    )
    w = live.observed_windows(obs, polls, now_ms=T + 2 * MIN, freshness_ms=F)
    assert window(w, "s-1")["session_end_time"] == T0 + timedelta(minutes=2)  # not T+1min (that poll failed)


def test_a_poll_of_another_fleet_does_not_end_the_window():
    obs = snaps((T, [api_session("s-1")]))
    polls = {PAIR: [T], ("analytics", "analytics-multi"): [T + MIN]}
    w = live.observed_windows(obs, polls, now_ms=T + MIN, freshness_ms=F)
    assert window(w, "s-1")["end_basis"] == "fresh"


def test_expired_state_ends_the_window_like_a_missing_listing():
    obs = snaps((T, [api_session("s-1")]), (T + MIN, [api_session("s-1", state="EXPIRED")]))
    w = live.observed_windows(obs, {PAIR: [T]}, now_ms=T + MIN, freshness_ms=F)
    r = window(w, "s-1")
    assert r["session_end_time"] == T0 + timedelta(minutes=1)
    assert r["end_basis"] == "expired"
    assert r["last_seen"] == T0


def test_window_never_passes_max_expiration():
    s = api_session("s-1", start=T0 - timedelta(hours=1), max_exp=T0 + timedelta(seconds=30))
    w = live.observed_windows(snaps((T, [s])), {PAIR: [T]}, now_ms=T, freshness_ms=F)
    r = window(w, "s-1")
    assert r["session_end_time"] == T0 + timedelta(seconds=30)
    assert r["end_basis"] == "max_expiration"


def test_latest_non_null_ip_and_start_fallback():
    pending = api_session("s-1", ip=None)
    del pending["StartTime"]
    active = api_session("s-1", ip="10.40.9.9")
    del active["StartTime"]
    obs = snaps((T, [pending]), (T + MIN, [active]), (T + 2 * MIN, [pending]))
    w = live.observed_windows(obs, {PAIR: [T, T + MIN, T + 2 * MIN]}, now_ms=T + 2 * MIN, freshness_ms=F)
    r = window(w, "s-1")
    assert r["eni_private_ip_address"] == "10.40.9.9"
    assert r["session_start_time"] == T0  # no StartTime: the first sighting


def test_windows_accept_lake_rows_with_dt_and_unordered_input():
    rows = snaps((T + MIN, [api_session("s-1")]), (T, [api_session("s-1")]))
    rows = rows.append_column("dt", pa.array(["2026-03-02"] * rows.num_rows))
    w = live.observed_windows(rows, {PAIR: [T, T + MIN, T + 2 * MIN]}, now_ms=T + 2 * MIN, freshness_ms=F)
    assert window(w, "s-1")["first_seen"] == T0
    assert window(w, "s-1")["session_end_time"] == T0 + timedelta(minutes=2)


def test_empty_observations_give_an_empty_sessions_shaped_table():
    w = live.observed_windows(LIVE_SESSIONS.empty_table(), {}, now_ms=T, freshness_ms=F)
    assert w.num_rows == 0
    assert tuple(w.column_names[: len(SESSION_COLS)]) == SESSION_COLS


def test_windows_are_vectorised_over_many_sessions():
    n = 2000
    sessions = [api_session(f"s-{i:05d}", user=f"u{i}", ip=f"10.40.{i // 250}.{i % 250}") for i in range(n)]
    polls_t = [T + k * MIN for k in range(30)]
    # session i is listed until poll i % 30
    obs = pa.concat_tables(
        [
            live.snapshot_table([s for i, s in enumerate(sessions) if i % 30 >= k], t)
            for k, t in enumerate(polls_t)
        ]
    )
    w = live.observed_windows(obs, {PAIR: polls_t}, now_ms=polls_t[-1], freshness_ms=F)
    assert w.num_rows == n
    ends = dict(
        zip(
            w.column("session_id").to_pylist(),
            w.column("session_end_time").cast(pa.int64()).to_pylist(),
            strict=True,
        )
    )
    for i in (0, 1, 17, 29, 1234):
        k = i % 30
        expected = polls_t[k + 1] if k < 29 else polls_t[-1] + F
        assert ends[f"s-{i:05d}"] == expected


# -- live_fresh -----------------------------------------------------------------------------------
def test_fresh_needs_a_complete_poll_within_freshness_on_both_sides():
    polls = {PAIR: [T, T + MIN, T + 2 * MIN]}
    assert live.live_fresh(polls, None, T + 30_000, now_ms=T + 10 * MIN, freshness_ms=F)
    # before the first poll: nothing vouches for the time
    assert not live.live_fresh(polls, None, T - 30_000, now_ms=T + 10 * MIN, freshness_ms=F)
    # long after the last poll, and the next one never came
    assert not live.live_fresh(polls, None, T + 2 * MIN + F + 1, now_ms=T + 10 * MIN, freshness_ms=F)
    # just after the last poll, within freshness of now: the next poll cannot have happened yet
    assert live.live_fresh(polls, None, T + 2 * MIN + 1000, now_ms=T + 2 * MIN + 5000, freshness_ms=F)


def test_not_fresh_across_a_gap_longer_than_freshness():
    polls = {PAIR: [T, T + 10 * MIN]}
    assert not live.live_fresh(polls, None, T + 5 * MIN, now_ms=T + 20 * MIN, freshness_ms=F)


def test_a_failing_stack_makes_the_view_stale():
    polls = conform(
        pa.table(
            {
                "observed_at": pa.array([T, T, T + MIN, T + MIN], pa.int64()).cast(TS),
                "stack_name": ["a", "b", "a", "b"],
                "fleet_name": ["fa", "fb", "fa", "fb"],
                "error": [None, None, None, "DescribeSessions(b/fb, API): AccessDeniedException"],
            }
        ),
        LIVE_POLLS,
    )
    at = np.array([T + 30_000, T - 5 * MIN], np.int64)
    assert live.live_fresh_mask(polls, None, at, now_ms=T + 10 * MIN, freshness_ms=F).tolist() == [
        False,
        False,
    ]
    ok = polls.filter(pa.array([True, True, True, False]))
    assert live.live_fresh(ok, None, T + 30_000, now_ms=T + 10 * MIN, freshness_ms=F) is False  # b: no after
    assert live.live_fresh(ok, None, T + 30_000, now_ms=T + 60_000, freshness_ms=F) is True


def test_failed_discovery_makes_the_view_stale():
    polls = conform(
        pa.table(
            {
                "observed_at": pa.array([T, T + MIN], pa.int64()).cast(TS),
                "stack_name": ["a", "*"],
                "fleet_name": ["fa", "*"],
                "error": [None, "DescribeStacks: AccessDeniedException"],
            }
        ),
        LIVE_POLLS,
    )
    assert not live.live_fresh(polls, None, T + 30_000, now_ms=T + 40_000, freshness_ms=F)


def test_configured_pairs_must_all_be_polled():
    polls = {("a", "fa"): [T, T + MIN]}
    assert live.live_fresh(polls, [("a", "fa")], T + 30_000, now_ms=T + 5 * MIN, freshness_ms=F)
    assert not live.live_fresh(
        polls, [("a", "fa"), ("b", "fb")], T + 30_000, now_ms=T + 5 * MIN, freshness_ms=F
    )


def test_no_polls_is_never_fresh():
    assert not live.live_fresh({}, None, T, now_ms=T, freshness_ms=F)
    assert live.live_fresh_mask({}, None, [], now_ms=T, freshness_ms=F).tolist() == []


# -- with the lake and the pipeline ---------------------------------------------------------------
def test_pipeline_session_window_uses_observed_windows(pipe, clock):
    s = api_session("aaaaaaaa-0000-4000-8000-000000000001", start=T0 - timedelta(minutes=2))
    pipe.ingest_live([s], T, [PAIR])
    pipe.ingest_live([], T + MIN, [PAIR])
    clock.ms = T + 2 * MIN
    sessions, source = pipe.inputs.session_window([T // 86_400_000])
    rows = [r for r in sessions.to_pylist() if r["session_id"] == s["Id"]]
    assert len(rows) == 1
    assert rows[0]["session_end_time"] == T0 + timedelta(minutes=1)
    assert source.to_pylist()[-1] == "live"


@pytest.mark.parametrize("value", [T0, T0.replace(tzinfo=None), T0.timestamp(), "2026-03-02T08:00:00Z"])
def test_time_values_of_any_botocore_shape(value):
    assert live._to_ms(value) == T
    assert live._to_ms(None) is None and live._to_ms("not a time") is None


def test_window_ends_are_timestamps_in_utc():
    w = live.observed_windows(snaps((T, [api_session("s-1")])), {PAIR: [T]}, now_ms=T, freshness_ms=F)
    assert w.schema.field("session_end_time").type == TS
    assert window(w, "s-1")["session_end_time"].tzinfo is not None
    assert window(w, "s-1")["session_start_time"] == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
