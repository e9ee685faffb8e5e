"""Usage reports in every shape seen or feared (synthetic: no real AppStream report is public)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import orjson
import pytest

from tests.factories import T0, ct_name, put, report_csv, report_name, session_row, sid
from tests.fixtures.bad import make_corpus as corpus
from tests.hardening.util import CORPUS, activity_view, new_pipe, quarantined

REPORTS = CORPUS / "reports"
DAY_NAME = report_name(corpus.DAY)  # appstream-logs/sessions/schedule=DAILY/.../daily-session-report-<day>.csv
H = timedelta(hours=1)


def report(case: str) -> bytes:
    return (REPORTS / case / corpus.REPORT).read_bytes()


def sessions(pipe) -> dict[str, dict]:
    return {r["session_id"]: r for r in pipe.lake.read("sessions").to_pylist()}


def core(rows: dict[str, dict]) -> dict[str, tuple]:
    """What must not depend on the file's shape."""
    keep = ("user_id", "session_start_time", "session_end_time", "eni_private_ip_address", "fleet_name",
            "stack_name", "instance_id", "is_multisession", "client_ip_addresses", "report_date")
    return {k: tuple(r[c] for c in keep) for k, r in rows.items()}


def ingest(tmp_path, case: str, name: str = DAY_NAME):
    pipe = new_pipe(tmp_path / "lake")
    out = pipe.ingest_object(name, report(case))
    assert out.reconciles, out.as_dict()
    return pipe, out


@pytest.fixture
def canonical(tmp_path):
    pipe, out = ingest(tmp_path / "canonical", "canonical")
    assert (out.records_in, out.written) == (2, 2)
    return core(sessions(pipe))


@pytest.mark.parametrize("case", ["bom", "lf_only", "crlf_and_blank_lines", "reordered_columns", "uppercase_header",
                                  "extra_columns", "only_required_columns"])
def test_shapes_that_parse_to_the_same_sessions(tmp_path, canonical, case):
    pipe, out = ingest(tmp_path, case)
    assert out.error is None and (out.records_in, out.written, out.rejected) == (2, 2, 0)
    got = core(sessions(pipe))
    if case == "only_required_columns":  # the optional columns are simply empty
        assert {k: (v[0], v[1], v[2], v[3]) for k, v in got.items()} == \
               {k: (v[0], v[1], v[2], v[3]) for k, v in canonical.items()}
    else:
        assert got == canonical
    assert quarantined(pipe.lake) == {}


def test_unknown_extra_columns_are_kept_as_json(tmp_path):
    pipe, _ = ingest(tmp_path, "extra_columns")
    extra = orjson.loads(sessions(pipe)[sid(1)]["extra_columns"])
    assert extra["new_col_2027"] == "v1" and extra["another"] == "v2"


def test_quoted_commas_stay_inside_their_field(tmp_path):
    pipe, out = ingest(tmp_path, "quoted_commas")
    assert (out.written, out.rejected) == (2, 0)
    row = sessions(pipe)[sid(1)]
    assert row["user_id"] == "Doe, Jane"
    assert row["stack_name"] == 'analytics "blue", west'
    assert row["client_ip_addresses"] == ["198.51.100.7", "203.0.113.9"]


@pytest.mark.parametrize(("case", "reason"), [
    ("missing_required_column", "missing required column(s): eni_private_ip_address"),
    ("empty", "empty object"),
    ("not_utf8", "not UTF-8 text"),
    ("not_a_report", "missing required column(s): user_session_id"),
])
def test_unreadable_report_is_quarantined_and_never_replaces_the_day(tmp_path, case, reason):
    pipe = new_pipe(tmp_path / "lake")
    first = pipe.ingest_object(DAY_NAME, report("canonical"))
    assert first.written == 2
    bad_name = DAY_NAME.replace("appstream-logs/", "appstream-logs/redelivered/")
    out = pipe.ingest_object(bad_name, report(case))
    assert out.error is not None and reason in out.error
    assert out.reconciles
    q = quarantined(pipe.lake)
    assert set(q) == {bad_name} and reason in q[bad_name]["reason"]
    assert q[bad_name]["copy"].read_bytes() == report(case)
    assert set(sessions(pipe)) == {sid(1), sid(2)}  # the day's good delivery is intact


def test_header_only_report_is_read_with_zero_rows(tmp_path):
    pipe, out = ingest(tmp_path, "header_only")
    assert out.error is None and (out.records_in, out.written) == (0, 0)
    assert pipe.lake.read("sessions").num_rows == 0
    assert quarantined(pipe.lake) == {}


def test_duplicate_session_rows_are_counted_first_kept(tmp_path):
    pipe, out = ingest(tmp_path, "duplicate_rows")
    assert (out.records_in, out.written, out.duplicates, out.rejected) == (4, 2, 2, 0)
    assert out.reasons["duplicate session id with different values (first kept)"] == 1
    assert pipe.lake.read("sessions").num_rows == 2
    assert sessions(pipe)[sid(2)]["user_id"] == "bob@example.com"


def test_session_ending_before_it_starts_is_rejected_others_kept(tmp_path):
    pipe, out = ingest(tmp_path, "end_before_start")
    assert (out.records_in, out.written, out.rejected) == (2, 1, 1)
    assert out.reasons == Counter({"session ends before it starts": 1})
    assert set(sessions(pipe)) == {sid(1)}


def test_other_accepted_time_forms_and_rejected_ones(tmp_path):
    pipe, out = ingest(tmp_path, "time_forms")
    assert (out.records_in, out.written, out.rejected) == (5, 3, 2)
    assert out.reasons == Counter({"bad session time: time without a zone": 1,
                                   "bad session time: unparseable time": 1})
    got = {k: (int(r["session_start_time"].timestamp() * 1000), int(r["session_end_time"].timestamp() * 1000))
           for k, r in sessions(pipe).items()}
    t0 = int(T0.timestamp() * 1000)
    assert got == {
        sid(1): (t0, t0 + 3_600_000),  # +00:00 / .000Z
        sid(2): (t0 + 123, t0 + 7_200_000),  # space separator, microseconds / ' UTC'
        sid(3): (t0, t0 + 1_800_000),  # +02:00 / -05:00 offsets
    }


def test_bad_rows_are_rejected_one_by_one(tmp_path):
    pipe, out = ingest(tmp_path, "bad_rows")
    assert (out.records_in, out.written, out.rejected) == (4, 1, 3)
    assert out.reasons == Counter({"invalid eni_private_ip_address": 1, "missing user_session_id": 1,
                                   "row has 3 fields, header has 32": 1})
    assert set(sessions(pipe)) == {sid(1)}


@pytest.mark.parametrize("name", [
    "reports/daily-session-report-2026-13-45.csv",
    "appstream-logs/sessions/schedule=DAILY/year=2026/month=02/day=30/report.csv",
    "appstream-logs/sessions/schedule=DAILY/year=99999999999999999999/month=1/day=1/report.csv",
])
def test_an_impossible_day_in_the_name_is_rejected_and_does_not_poison_the_lake(tmp_path, name):
    pipe = new_pipe(tmp_path / "lake")
    out = pipe.ingest_object(name, report("canonical"))
    assert out.error is not None and "report's day" in out.error
    assert pipe.lake.partitions("sessions") == []
    # the lake still works afterwards (a dt=2026-13-45 partition used to break every later ingest)
    later = pipe.ingest_object(ct_name(1), corpus.ct([corpus.good(1)]))
    assert later.error is None and later.written == 1
    assert pipe.ingest_object(DAY_NAME, report("canonical")).written == 2


# -- the same day delivered again ------------------------------------------------------------------

def test_same_report_delivered_twice_is_ingested_once(tmp_path):
    pipe = new_pipe(tmp_path / "lake")
    pipe.ingest_object(DAY_NAME, report("canonical"))
    again = pipe.ingest_object(DAY_NAME, report("canonical"))
    assert again.note and "already ingested" in again.note
    assert again.reconciles and again.duplicates == 2
    assert pipe.lake.read("sessions").num_rows == 2


def test_same_day_under_another_name_replaces_never_duplicates(tmp_path):
    pipe = new_pipe(tmp_path / "lake")
    pipe.ingest_object(DAY_NAME, report("canonical"))
    pipe.ingest_object("copy/" + corpus.REPORT, report("canonical"))  # same day, other object
    assert pipe.lake.read("sessions").num_rows == 2
    assert len(pipe.lake.files("sessions", corpus.DAY)) == 1


def test_a_corrected_day_replaces_the_first_delivery_and_reattributes(tmp_path):
    pipe = new_pipe(tmp_path / "lake")
    pipe.ingest_object(ct_name(1), corpus.ct([put(T0 + timedelta(minutes=10), "10.40.0.17", event_id="w-1"),
                                              put(T0 + 3 * H + timedelta(minutes=1), "10.40.0.30", event_id="w-2")]))
    pipe.ingest_object(DAY_NAME, report("canonical"))
    assert {(e, s, u) for e, s, _, u in activity_view(pipe.lake)} == {
        ("w-1", "attributed", "alice@example.com"), ("w-2", "unattributed", None)}
    pipe.ingest_object(DAY_NAME, report("second_delivery"))  # the corrected report for the same day
    assert set(sessions(pipe)) == {sid(9)}
    assert pipe.lake.read("sessions").num_rows == 1
    assert {(e, s, u) for e, s, _, u in activity_view(pipe.lake)} == {
        ("w-1", "unattributed", None), ("w-2", "attributed", "zoe@example.com")}


def test_many_days_and_reports_in_any_order_keep_one_row_per_session(tmp_path):
    pipe = new_pipe(tmp_path / "lake")
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    for i, day in enumerate(reversed(days)):
        start = T0 + timedelta(days=days.index(day) - 1)
        rows = [session_row(sid(10 * i + k), f"u{k}@example.com", f"10.40.0.{k}", start, start + H) for k in range(3)]
        pipe.ingest_object(report_name(day), report_csv(rows))
        pipe.ingest_object(report_name(day), report_csv(rows[:2]))  # re-sent smaller: replaces
    assert pipe.lake.read("sessions").num_rows == 6
    assert pipe.lake.partitions("sessions") == days
