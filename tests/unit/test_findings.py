"""Signals into findings: grouping by rule, key and dedup window; suppressions; the finding life cycle;
what a finding version announces; and the same findings whatever the order or repetition of the input."""

from __future__ import annotations

import random
from datetime import timedelta

import pyarrow as pa
import pytest

from auditcorr import findings as fi
from auditcorr.config import Config, ConfigError, Suppression, from_mapping
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr.rules import CLOSED, OPEN, alert_id
from auditcorr.schemas import ALERTS, TS
from tests import factories as f
from tests.integration import scenario as sc

MIN = 60_000
T = int(sc.T0.timestamp() * 1000)  # 08:00 UTC, the start of an hourly window
ROLE_ARN = "arn:aws:sts::111122223333:assumed-role/AppStreamFleetRole/x"


def signals(*rows: dict) -> pa.Table:
    base = {"rule": "session_id_mismatch", "severity": "HIGH", "status": OPEN, "source_ip": "10.40.0.5",
            "bucket": "research", "principal_arn": ROLE_ARN, "claimed_session_id": "S1", "title": "t",
            "description": "d"}
    out = []
    for i, r in enumerate(rows):
        row = {**base, "event_id": f"ev-{i}", "key": f"k/{i}", **r}
        row["alert_id"] = alert_id(row["rule"], row["event_id"])
        row["event_time"] = pa.scalar(row.pop("t"), pa.int64()).cast(TS).as_py()
        out.append(row)
    return pa.Table.from_pylist(out, schema=ALERTS)


def ids(t: pa.Table, config: Config = Config()) -> list[str]:
    return fi.finding_ids(t, config).to_pylist()


# -- grouping -----------------------------------------------------------------------------------
def test_same_rule_key_and_window_is_one_finding_at_the_window_edges():
    t = signals({"t": T}, {"t": T + 60 * MIN - 1}, {"t": T + 60 * MIN}, {"t": T - 1})
    a, b, c, d = ids(t)
    assert a == b and len({a, c, d}) == 3  # [08:00, 09:00) is one window; 09:00 and 07:59:59.999 are not


def test_the_key_is_the_rules_and_the_dedup_is_per_rule():
    t = signals({"t": T}, {"t": T, "claimed_session_id": "S2"}, {"t": T, "source_ip": "10.40.0.9"},
                {"t": T + 90 * MIN})
    a, b, c, d = ids(t)
    assert a != b and a == c  # session_id_mismatch groups by the claimed session, not the address
    assert a != d
    assert ids(t, Config(dedup_minutes_by_rule={"session_id_mismatch": 1440}))[3] == \
        ids(t, Config(dedup_minutes_by_rule={"session_id_mismatch": 1440}))[0]
    u = signals({"t": T, "rule": "unattributed_activity"}, {"t": T, "rule": "unattributed_activity",
                                                            "claimed_session_id": "S9"})
    assert len(set(ids(u))) == 1  # unattributed_activity groups by the fleet address only


def test_account_id_is_part_of_the_key_when_signals_carry_it():
    t = signals({"t": T}, {"t": T})
    with_acct = t.set_column(t.schema.get_field_index("account_id"), "account_id",
                             pa.array(["111122223333", "444455556666"]))
    a, b = ids(with_acct)
    assert a != b and ids(t)[0] not in (a, b)
    assert fi.group_key(t).to_pylist() == ["claimed_session_id=S1", "claimed_session_id=S1"]


# -- suppressions -------------------------------------------------------------------------------
@pytest.mark.parametrize(("entry", "want"), [
    (Suppression("session_id_mismatch", "r"), [True, True, True]),
    (Suppression("*", "r", source="10.40.0.0/24"), [True, True, False]),
    (Suppression("*", "r", source="10.40.1.7"), [False, False, True]),
    (Suppression("*", "r", principal="*AppStreamFleetRole*"), [True, True, True]),
    (Suppression("*", "r", principal="arn:aws:sts::*:assumed-role/Other/*"), [False, False, False]),
    (Suppression("*", "r", key_prefix="k/1"), [False, True, False]),
    (Suppression("*", "r", bucket="research"), [True, True, True]),
    (Suppression("*", "r", user="alice"), [True, False, False]),
    (Suppression("*", "r", account="111122223333"), [True, True, True]),
    (Suppression("*", "r", account="999999999999"), [False, False, False]),
    (Suppression("unattributed_activity", "r"), [False, False, False]),
    # expiry judged by the EVENT time: an event at the expiry is no longer suppressed
    (Suppression("*", "r", expires_ms=T + MIN), [True, False, False]),
])
def test_each_matcher(entry, want):
    t = signals({"t": T, "user_id": "alice"}, {"t": T + MIN, "user_id": "bob"},
                {"t": T + 2 * MIN, "source_ip": "10.40.1.7"})
    assert fi.suppression_mask(t, entry).tolist() == want
    got = fi.suppressed_by(t, (entry,)).to_pylist()
    assert got == [entry.id if w else None for w in want]


def test_the_first_matching_entry_wins_and_ids_are_stable():
    first, second = Suppression("*", "a", name="pentest"), Suppression("*", "b", source="10.40.0.0/16")
    t = signals({"t": T})
    assert fi.suppressed_by(t, (first, second)).to_pylist() == ["pentest"]
    assert fi.suppressed_by(t, (second, first)).to_pylist() == [second.id]
    assert second.id == Suppression("*", "other reason", source="10.40.0.0/16").id.replace("x", "x")


def test_suppress_entries_are_validated():
    cfg = from_mapping({"suppress": [{"rule": "unattributed_activity", "source": "10.40.3.0/24", "reason": "scanner",
                                      "expires": "2026-04-01T00:00:00Z"}]})
    assert cfg.suppressions[0].expires_ms == int((sc.T0.replace(month=4, day=1, hour=0)).timestamp() * 1000)
    for bad in ({"rule": "x"}, {"rule": "x", "reason": "r", "source": "nope"}, {"rule": "x", "reason": "r", "y": 1},
                {"rule": "x", "reason": "r", "expires": "soon"}):
        with pytest.raises(ConfigError):
            from_mapping({"suppress": [bad]})
    with pytest.raises(ConfigError):
        from_mapping({"alerts": {"dedup_minutes": 0}})


# -- the finding life cycle ---------------------------------------------------------------------
def test_aggregate_counts_open_signals_and_closes_when_every_one_is_retracted():
    cfg = Config(suppressions=(Suppression("*", "known", key_prefix="k/2"),))
    t = fi.assign(signals({"t": T + 5 * MIN}, {"t": T + 2 * MIN}, {"t": T + 9 * MIN}), cfg)
    (row,) = fi.aggregate(t, cfg).to_pylist()
    assert (row["status"], row["event_count"], row["suppressed_count"]) == (OPEN, 2, 1)
    assert row["sample_event_ids"] == ["ev-1", "ev-0"]  # earliest first, suppressed one not counted
    assert row["first_event_time"] == sc.T0 + timedelta(minutes=2) and row["description"].startswith("2 signal(s)")

    closed = t.set_column(t.schema.get_field_index("status"), "status", pa.array([CLOSED, CLOSED, OPEN]))
    closed = closed.set_column(closed.schema.get_field_index("status_reason"), "status_reason",
                               pa.array(["no longer raised", "no longer raised", None]))
    (row,) = fi.aggregate(closed, cfg).to_pylist()
    assert row["status"] == fi.SUPPRESSED and row["status_reason"].startswith("suppressed by")
    every = closed.set_column(closed.schema.get_field_index("status"), "status", pa.array([CLOSED] * 3))
    (row,) = fi.aggregate(every, cfg).to_pylist()
    assert row["status"] == CLOSED and row["status_reason"] == "every signal retracted: no longer raised"


def test_merge_writes_a_version_only_when_something_changes():
    cfg = Config()
    one = fi.aggregate(fi.assign(signals({"t": T}), cfg), cfg)
    v1 = fi.merge(fi.FINDINGS.empty_table(), one, T + 20 * MIN)
    assert v1.column("previous_status").to_pylist() == [None] and v1.column("status").to_pylist() == [OPEN]
    assert fi.merge(v1, one, T + 30 * MIN).num_rows == 0  # the same state: nothing to write
    two = fi.aggregate(fi.assign(signals({"t": T}, {"t": T + MIN}), cfg), cfg)
    v2 = fi.merge(v1, two, T + 30 * MIN).to_pylist()[0]
    assert (v2["event_count"], v2["previous_status"], v2["created_at"]) == (2, OPEN, v1.to_pylist()[0]["created_at"])
    # a closed state of a finding never written is not written
    gone = fi.aggregate(fi.assign(signals({"t": T, "status": CLOSED}), cfg), cfg)
    assert fi.merge(fi.FINDINGS.empty_table(), gone, T).num_rows == 0


@pytest.mark.parametrize(("status", "prev", "upd", "prev_upd", "want"), [
    (OPEN, None, 10, None, "open"),
    (OPEN, CLOSED, 10, 5, "open"),  # re-opened
    (OPEN, OPEN, 15 * MIN, 15 * MIN - 1, "update"),  # crosses an update window
    (OPEN, OPEN, 15 * MIN + 5, 15 * MIN, None),  # the same window: quiet
    (CLOSED, OPEN, 10, 5, "close"),
    (fi.SUPPRESSED, OPEN, 10, 5, "close"),
    (fi.SUPPRESSED, None, 10, None, None),  # never open: never published
    (CLOSED, CLOSED, 10, 5, None),
])
def test_what_a_version_announces(status, prev, upd, prev_upd, want):
    assert fi.announcement(status, prev, upd, prev_upd, 15 * MIN) == want


# -- order and repetition -----------------------------------------------------------------------
def _world_files() -> dict[str, bytes]:
    files = dict(sc.cloudtrail_files())
    for n in range(4):  # four more files of disguised writes and an idle fleet address, spread over 3 h
        recs = [f.put(sc.T0 + timedelta(minutes=13 * n + 3 * j), sc.BOB_IP, key=f"b/{n}-{j}", session_name=sc.S1,
                      event_id=f"66666666-0000-4000-8000-{n * 10 + j:012d}") for j in range(5)]
        recs += [f.put(sc.T0 + timedelta(minutes=47 * n), "10.40.1.99", key=f"u/{n}",
                       event_id=f"77777777-0000-4000-8000-{n:012d}")]
        files[f.ct_name(300 + n)] = f.trail(recs)
    return files


def _findings_after(root, order: list[tuple[str, bytes]], report_at: int) -> list[dict]:
    lake = Lake.open(str(root))
    pipe = Pipeline(lake, Config(compact_threshold=3), clock=lambda: T + 5 * 86_400_000)
    for i, (key, body) in enumerate(order):
        if i == report_at:
            pipe.ingest_object(f"s3://{sc.APPSTREAM_BUCKET}/{sc.SESSIONS_KEY}", sc.sessions_report())
        pipe.ingest_object(f"s3://{sc.CLOUDTRAIL_BUCKET}/{key}", body)
    if report_at >= len(order):
        pipe.ingest_object(f"s3://{sc.APPSTREAM_BUCKET}/{sc.SESSIONS_KEY}", sc.sessions_report())
    t = lake.read("findings").drop_columns(["dt"])
    keep = ["finding_id", "rule", "status", "event_count", "first_event_time", "last_event_time",
            "sample_event_ids", "suppressed_count", "group_key"]
    return sorted(t.select(keep).to_pylist(), key=lambda r: r["finding_id"])


def test_the_same_findings_whatever_the_order_and_repetition(tmp_path):
    """The open findings (ids, counts, first/last event, samples) are the same in any order with any
    re-deliveries; a finding that an order raised and later retracted is closed (history), never open."""
    files = list(_world_files().items())
    want = _findings_after(tmp_path / "ref", files, report_at=len(files))
    want_open = [r for r in want if r["status"] != CLOSED]
    assert any(r["event_count"] > 1 for r in want_open)  # grouping happened
    rng = random.Random(12)
    for k in range(3):
        order = files[:]
        rng.shuffle(order)
        order += rng.sample(files, 3)  # re-deliveries
        got = _findings_after(tmp_path / f"run{k}", order, report_at=rng.randrange(len(order) + 1))
        assert [r for r in got if r["status"] != CLOSED] == want_open, k
        assert not {r["finding_id"] for r in got if r["status"] == CLOSED} & {r["finding_id"] for r in want_open}
    # the same order again (a re-ingest of everything): identical, closed history included
    assert _findings_after(tmp_path / "again", files + files, report_at=len(files)) == want
