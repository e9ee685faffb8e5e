"""Issue 11, parser classes: bounded memory, one record never costs its file, trail documents per
line, a huge CSV field costs its row.  Property tests search each class (nesting depth, number
edges, time edges, compression ratios); the corpus cases (tests/fixtures/bad) pin what was found.

Every case asserts what happens to the bad record (rejected, with which reason) and to the good
records around it (written), and that the counts reconcile.
"""

from __future__ import annotations

import gzip
import math
import os
import tracemalloc
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditcorr.config import Config
from auditcorr.ingest.cloudtrail import NOT_A_RECORD, UnreadableObject, _parse_fast, decode_body, parse_cloudtrail
from auditcorr.ingest.inflate import DEFAULT_MAX_INFLATED, TooLarge, cap_for_memory, inflate
from auditcorr.ingest.jsonsplit import NESTED_TOO_DEEPLY, split_records
from auditcorr.ingest.plausible import (
    ABSOLUTE_MAX,
    ABSOLUTE_MIN,
    AFTER_DELIVERY,
    BEFORE_DELIVERY,
    OUTSIDE_ABSOLUTE,
    OUTSIDE_DELIVERY,
    delivery_ms,
    window,
)
from auditcorr.ingest.usage import MAX_FIELD_CHARS, parse_usage_report
from tests.factories import T0, report_csv, saml_logon, session_row, sid
from tests.fixtures.bad import make_corpus as corpus
from tests.hardening.util import CORPUS, by_event, new_pipe, quarantined

N = int(os.environ.get("AUDITCORR_PROPERTY_EXAMPLES", "40"))
SETTINGS = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CFG = Config()
CT = CORPUS / "cloudtrail"
REPORT = "daily-session-report-2026-03-02.csv"
#: every reason a bad record may be given (fixed texts: no content in a reason)
RECORD_REASONS = {
    "record holds NaN or Infinity (not JSON)",
    "record holds a number beyond the range of a double (e.g. 1e400)",
    "record holds an integer beyond 64 bits",
    "record holds a lone surrogate escape (not a Unicode string)",
    "record is not valid UTF-8",
    "record is not valid JSON",
    NESTED_TOO_DEEPLY,
}


def parse(data: bytes, source: str = "cloudtrail/x.json.gz", **kw: Any):
    parsed = parse_cloudtrail(data, source, CFG, **kw)
    out = parsed.outcome
    rows = parsed.writes.num_rows + parsed.logons.num_rows
    assert out.records_in == rows + out.duplicates + out.skipped + out.rejected, out.as_dict()
    return parsed, out


def ids(parsed) -> set[str]:
    return set(parsed.writes.column("event_id").to_pylist()) | set(parsed.logons.column("event_id").to_pylist())


def doc_with(raw_value: bytes, where: str) -> bytes:
    """good-1, a record holding ``raw_value`` (raw JSON text) at ``where``, good-3."""
    marker = "@VALUE@"
    if where == "requestParameters":
        bad = corpus.good(2, requestParameters={"bucketName": "research-data", "key": "good/2", "v": marker})
    elif where == "additionalEventData":
        bad = corpus.good(2, additionalEventData={"v": marker})
    elif where == "responseElements":
        bad = corpus.good(2, responseElements={"v": marker})
    elif where == "key":
        bad = corpus.good(2, key=marker)
    else:  # a field nobody reads
        bad = corpus.good(2, unknownField=marker)
    body = orjson.dumps({"Records": [corpus.good(1), bad, corpus.good(3)]})
    assert body.count(orjson.dumps(marker)) == 1
    return body.replace(orjson.dumps(marker), raw_value)


PLACES = st.sampled_from(["requestParameters", "additionalEventData", "responseElements", "unknownField"])


# -- §1 bounded memory -----------------------------------------------------------------------------

@SETTINGS
@given(size=st.integers(0, 300_000), repetitive=st.booleans(), members=st.integers(1, 3),
       cap=st.integers(1, 400_000), padding=st.integers(0, 3))
def test_inflate_returns_the_body_exactly_or_refuses_past_the_cap(size, repetitive, members, cap, padding):
    unit = (b"abc" * (size // 3 + 1))[:size] if repetitive else os.urandom(size)
    data = b"".join(gzip.compress(unit, mtime=0) for _ in range(members)) + b"\x00" * padding
    body = unit * members
    if len(body) <= cap:
        assert inflate(data, cap) == body == gzip.decompress(data)
    else:
        with pytest.raises(TooLarge, match="cap"):
            inflate(data, cap)


@SETTINGS
@given(ratio_log2=st.integers(0, 10), cap_kib=st.integers(4, 512))
def test_compression_ratio_does_not_matter_only_the_inflated_size(ratio_log2, cap_kib):
    # a body of 1 MiB compressed at ratios from 1:1 to ~1000:1
    body = b"".join(os.urandom(1) * (2**ratio_log2) for _ in range((1 << 20) >> ratio_log2))
    data = gzip.compress(body, compresslevel=9, mtime=0)
    with pytest.raises(TooLarge):
        inflate(data, cap_kib * 1024)
    assert inflate(data, len(body)) == body


def test_a_gzip_bomb_is_refused_holding_about_the_cap_not_what_it_inflates_to():
    bomb = corpus.gzip_bomb(256 * 1024 * 1024)  # ~250 KB inflating to 256 MiB
    assert len(bomb) < 512 * 1024
    cap = 8 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableObject, match="more than the 8.0 MiB cap"):
            parse_cloudtrail(bomb, "cloudtrail/bomb.json.gz", CFG, max_inflated=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * cap  # the output held is bounded by the cap (plus one step), never 256 MiB


def test_a_bomb_in_a_batch_is_quarantined_with_its_reason_and_the_batch_goes_on(tmp_path):
    pipe = new_pipe(tmp_path / "lake")
    outs = [pipe.ingest_object("cloudtrail/1.json.gz", corpus.ct([corpus.good(1)])),
            pipe.ingest_object("cloudtrail/bomb.json.gz", corpus.gzip_bomb(512 * 1024 * 1024)),
            pipe.ingest_object("cloudtrail/3.json.gz", corpus.ct([corpus.good(3)]))]
    assert outs[1].error is not None and "cap" in outs[1].error
    assert [o.written for o in outs] == [1, 0, 1]
    assert set(by_event(pipe.lake)) == {"good-1", "good-3"}
    (note,) = quarantined(pipe.lake).values()
    assert "inflates to more than" in note["reason"]


def test_a_plain_body_over_the_cap_is_refused_too():
    body = orjson.dumps({"Records": [corpus.good(i) for i in range(50)]})
    with pytest.raises(UnreadableObject, match="larger than"):
        parse_cloudtrail(body, "x.json", CFG, max_inflated=len(body) - 1)
    assert parse(body, "x.json", max_inflated=len(body))[0].writes.num_rows == 50


def test_the_cap_follows_the_function_memory():
    assert cap_for_memory(1024) == DEFAULT_MAX_INFLATED
    assert cap_for_memory(2048) > 2 * cap_for_memory(1024)  # the reserve is fixed, the rest scales
    assert cap_for_memory(128) == 1024 * 1024  # never zero: a floor of 1 MiB
    with pytest.raises(UnreadableObject, match="cap"):
        decode_body(gzip.compress(b" " * (2 * 1024 * 1024)), cap_for_memory(128))


@pytest.mark.parametrize(("tail", "readable"), [
    (b"", True), (b"\x00" * 10, True), (b"\x00" * 70_000, True),
    (b"garbage", False), (b"\x1f", False), (b"\x1f\x8b", False), (b"\x00\x00\x1f\x8bxx", False),
])
def test_what_may_follow_a_gzip_member(tail, readable):
    data = corpus.ct([corpus.good(1)]) + tail
    if readable:
        assert ids(parse(data)[0]) == {"good-1"}
    else:
        with pytest.raises(UnreadableObject, match="corrupt or truncated gzip"):
            parse_cloudtrail(data, "x.json.gz", CFG)


# -- §2 one record never costs its file: nesting ------------------------------------------------------

@SETTINGS
@given(depth=st.integers(1, 3000), where=PLACES, array=st.booleans())
def test_nesting_of_any_depth_costs_at_most_its_record(depth, where, array):
    raw = corpus.nested_raw(depth)
    body = doc_with(raw, where)
    if array:
        body = b"[" + body[len(b'{"Records":['):-2] + b"]"
    parsed, out = parse(body)
    assert {"good-1", "good-3"} <= ids(parsed)
    if "good-2" not in ids(parsed):
        assert out.reasons == Counter({NESTED_TOO_DEEPLY: 1})
    # where it is kept, the stored blob is the whole value, not a truncation
    if where == "requestParameters" and "good-2" in ids(parsed):
        (rp,) = [r["request_parameters"] for r in parsed.writes.to_pylist() if r["event_id"] == "good-2"]
        assert orjson.loads(rp)["v"] == orjson.loads(raw)
    # shallow values are always kept; a stored blob orjson cannot read (past 1024 levels) is always
    # rejected (a deep field that is not stored may be skipped over by the typed decoder)
    if depth <= 100:
        assert "good-2" in ids(parsed)
    if depth >= 1100 and where in ("requestParameters", "additionalEventData"):
        assert "good-2" not in ids(parsed)


def test_deep_nesting_never_escapes_the_fast_path():
    body = doc_with(corpus.nested_raw(5000), "requestParameters")
    assert _parse_fast(body, "x", CFG) is None  # the typed decoder hit its recursion limit: generic path
    parsed, out = parse(body)
    assert ids(parsed) == {"good-1", "good-3"} and out.reasons == Counter({NESTED_TOO_DEEPLY: 1})


# -- §2 numbers and strings no strict parser reads --------------------------------------------------

NUMBERS = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e-400", b"1E308",
                           b"18446744073709551615", b"18446744073709551616", b"-9223372036854775808",
                           b"-9223372036854775809", b"1" + b"0" * 5000, b"-0", b"0.1", b"123456789.123e-5"])


@SETTINGS
@given(value=NUMBERS, where=PLACES)
def test_a_number_edge_costs_at_most_its_record(value, where):
    parsed, out = parse(doc_with(value, where))
    assert {"good-1", "good-3"} <= ids(parsed)
    try:  # the oracle: can a strict parser read the value on its own?
        expected = orjson.loads(value)
        readable = not (isinstance(expected, float) and math.isinf(expected))
    except orjson.JSONDecodeError:
        readable = False
    if readable:
        assert "good-2" in ids(parsed) and out.rejected == 0
    elif where in ("requestParameters", "additionalEventData") or value in (b"NaN", b"Infinity", b"-Infinity"):
        # a stored field, or a value no decoder reads: the record is rejected, with the reason
        assert "good-2" not in ids(parsed) and out.rejected == 1
        assert set(out.reasons) <= RECORD_REASONS - {"record is not valid JSON"}
    else:
        # a field that is not stored (responseElements of a write, an unknown field): the typed
        # decoder skips over it without converting the number, and the record may be kept
        assert out.rejected == 0 or set(out.reasons) <= RECORD_REASONS - {"record is not valid JSON"}


@SETTINGS
@given(code=st.integers(0xD800, 0xDFFF), where=st.sampled_from(["key", "additionalEventData", "unknownField"]),
       follow=st.sampled_from([b"", b"x", b"\\u0041"]))
def test_a_lone_surrogate_escape_costs_only_its_record(code, where, follow):
    raw = b'"k' + f"\\u{code:04x}".encode() + follow + b'"'
    parsed, out = parse(doc_with(raw, where))
    assert ids(parsed) == {"good-1", "good-3"}
    assert out.reasons == Counter({"record holds a lone surrogate escape (not a Unicode string)": 1})


def test_a_surrogate_pair_is_a_character_and_is_kept():
    parsed, out = parse(doc_with(b'"emoji-\\ud83d\\ude00"', "key"))
    assert out.rejected == 0
    (row,) = [r for r in parsed.writes.to_pylist() if r["event_id"] == "good-2"]
    assert row["key"] == "emoji-\U0001f600"


def test_invalid_utf8_in_one_record_costs_that_record():
    parsed, out = parse(doc_with(b'"bad \xff\xfe byte"', "key"))
    assert ids(parsed) == {"good-1", "good-3"}
    assert out.reasons == Counter({"record is not valid UTF-8": 1})


def test_the_committed_round_two_cases():
    expected = {
        "nan_infinity_1e400.json.gz": ({"good-1", "good-6", "good-7"},
                                       {"record holds NaN or Infinity (not JSON)": 3,
                                        "record holds a number beyond the range of a double (e.g. 1e400)": 1}),
        "lone_surrogates.json.gz": ({"good-1", "good-4", "good-5"},
                                    {"record holds a lone surrogate escape (not a Unicode string)": 2}),
        "deeply_nested.json.gz": ({"good-1", "good-2", "good-6"}, {NESTED_TOO_DEEPLY: 3}),
        "trail_documents_per_line.json": ({"good-1", "good-2", "good-3", "good-4"},
                                          {"record holds NaN or Infinity (not JSON)": 1}),
        "two_gzip_members.json.gz": ({"good-1", "good-2"}, {}),
        "not_cloudtrail_records.json.gz": ({"good-1", "good-2"},
                                           {NOT_A_RECORD: 4, "skipped: not an S3 write or logon event": 1}),
    }
    for name, (kept, reasons) in expected.items():
        parsed, out = parse((CT / name).read_bytes(), f"cloudtrail/{name}")
        assert ids(parsed) == kept, name
        assert dict(out.reasons) == reasons, name


def test_a_file_that_is_not_json_at_all_is_still_quarantined_whole():
    for body in (b'{"Records": [{"eventID": "a"}, {"eventID": "b"', b'{"Records": [NaN', b"[[[[", b'{"Records": 5}'):
        with pytest.raises(UnreadableObject):
            parse_cloudtrail(body, "x.json", CFG)
    assert split_records(b'{"Records": [1, 2]} {"Records": [3]}') is None  # two documents: JSON lines


# -- §2 event times --------------------------------------------------------------------------------

KEY = corpus.DELIVERED_KEY
DELIVERED = datetime(2026, 3, 2, 8, 5, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"


@SETTINGS
@given(at=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
       offset_min=st.sampled_from([0, 0, 60, -60, 23 * 60 + 59, -(23 * 60 + 59), 14 * 60]),
       named=st.booleans(), logon=st.booleans())
def test_an_event_time_anywhere_in_the_calendar_costs_at_most_its_record(at, offset_min, named, logon):
    at = at.replace(tzinfo=UTC, microsecond=0)
    if offset_min:
        sign = "+" if offset_min > 0 else "-"
        text = iso(at)[:-1] + f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    else:
        text = iso(at)
    instant_ms = int(at.timestamp() * 1000) - offset_min * 60_000  # the oracle: plain arithmetic
    source = KEY if named else "cloudtrail/export.json.gz"
    rec = saml_logon(T0, "alice@example.com", event_id="edge") if logon else corpus.good(2, eventID="edge")
    rec["eventTime"] = text
    parsed, out = parse(corpus.ct([corpus.good(1), rec, corpus.good(3)]), source)
    assert {"good-1", "good-3"} <= ids(parsed)
    lo = max(ABSOLUTE_MIN, int(DELIVERED.timestamp() * 1000) - BEFORE_DELIVERY) if named else ABSOLUTE_MIN
    hi = min(ABSOLUTE_MAX, int(DELIVERED.timestamp() * 1000) + AFTER_DELIVERY) if named else ABSOLUTE_MAX
    if lo <= instant_ms <= hi:
        assert "edge" in ids(parsed), text
        table = parsed.logons if logon else parsed.writes
        (got,) = [r["event_time"] for r in table.to_pylist() if r["event_id"] == "edge"]
        assert int(got.timestamp() * 1000) == instant_ms
    else:
        assert "edge" not in ids(parsed), text
        assert set(out.reasons) <= {OUTSIDE_ABSOLUTE, OUTSIDE_DELIVERY}, out.reasons


@pytest.mark.parametrize("text", ["2026-02-30T08:00:00Z", "2025-02-29T08:00:00Z", "2026-04-31T08:00:00Z",
                                  "2026-03-02T24:00:00Z", "2026-03-02T08:60:00Z", "0000-01-01T00:00:00Z",
                                  "10000-01-01T00:00:00Z", "-001-01-01T00:00:00Z", "2026-13-01T00:00:00Z"])
def test_times_that_do_not_exist_cost_their_record(text):
    parsed, out = parse(corpus.ct([corpus.good(1), corpus.good(2, eventTime=text)]), KEY)
    assert ids(parsed) == {"good-1"} and out.rejected == 1


def test_the_committed_time_edges_file():
    parsed, out = parse((CT / KEY).read_bytes(), KEY)
    assert ids(parsed) == {"good-1", "good-9", "good-10"}
    assert out.reasons == Counter({OUTSIDE_ABSOLUTE: 4, OUTSIDE_DELIVERY: 2, "unparseable or zone-less eventTime": 1})


def test_delivery_time_from_the_key():
    assert delivery_ms(KEY) == int(DELIVERED.timestamp() * 1000)
    assert delivery_ms("x/111122223333_CloudTrail_us-east-1_20261345T9999Z_abc.json.gz") is None  # no such time
    assert delivery_ms("x/export.json.gz") is None
    # an absurd delivery time in a name does not widen the absolute bounds
    lo, hi, relative = window("111122223333_CloudTrail_us-east-1_99991231T2359Z_abc.json.gz")
    assert (lo, hi, relative) == (ABSOLUTE_MIN, ABSOLUTE_MAX, False)
    now = int(datetime(2026, 3, 5, tzinfo=UTC).timestamp() * 1000)
    assert window("export.json", now_ms=now)[1] == now + AFTER_DELIVERY


def test_now_bounds_times_from_above_when_the_caller_knows_it():
    future = iso(datetime(2030, 1, 1, tzinfo=UTC))
    body = corpus.ct([corpus.good(1), corpus.good(2, eventTime=future)])
    assert ids(parse(body, "export.json.gz")[0]) == {"good-1", "good-2"}
    now = int((T0 + timedelta(days=1)).timestamp() * 1000)
    parsed, out = parse(body, "export.json.gz", now_ms=now)
    assert ids(parsed) == {"good-1"} and out.reasons == Counter({OUTSIDE_ABSOLUTE: 1})


def test_a_year_9999_write_never_reaches_the_lake_and_its_neighbour_is_attributed(tmp_path):
    # issue 11: a year-9999 time crashed partition naming, lost the neighbouring write and crashed
    # again on every re-run.  Now the record is rejected at parse time; the neighbour goes through.
    from tests.factories import report_name

    rows = [session_row(sid(1), "alice@example.com", corpus.FLEET_IP, T0, T0 + timedelta(hours=2))]
    pipe = new_pipe(tmp_path / "lake")
    pipe.ingest_object(report_name("2026-03-02"), report_csv(rows))
    body = corpus.ct([corpus.good(1), corpus.good(2, eventTime="9999-12-31T23:59:59Z"),
                      corpus.good(3, eventTime="9999-12-31T23:59:59-23:59")])
    out = pipe.ingest_object("cloudtrail/edge.json.gz", body)
    assert out.error is None and out.reconciles and out.written == 1
    assert out.reasons == Counter({OUTSIDE_ABSOLUTE: 2})
    # a re-run (a fresh process on the same lake, the same object again) is clean
    again = new_pipe(tmp_path / "lake").ingest_object("cloudtrail/edge.json.gz", body)
    assert again.error is None and again.written == 0
    assert set(by_event(pipe.lake)) == {"good-1"}
    activity = {r["event_id"]: r for r in pipe.lake.read("attributed_activity").to_pylist()}
    assert activity["good-1"]["user_id"] == "alice@example.com"


# -- §3 trail documents per line; records that are not CloudTrail records ----------------------------

@SETTINGS
@given(lines=st.lists(st.tuples(st.sampled_from(["doc", "record", "junk", "bad"]), st.integers(0, 4)),
                      min_size=2, max_size=8))
def test_trail_documents_one_per_line_are_read_and_nothing_is_mis_skipped(lines):
    text, n, expect_written, expect_not_ct, expect_bad = [], 0, set(), 0, 0
    for kind, k in lines:
        recs = [corpus.good(n + i) for i in range(k)]
        if kind == "doc":
            text.append(orjson.dumps({"Records": recs}))
            expect_written |= {f"good-{n + i}" for i in range(k)}
        elif kind == "record":
            text.append(orjson.dumps(corpus.good(n)))
            expect_written.add(f"good-{n}")
        elif kind == "junk":
            text.append(orjson.dumps({"name": "not an event", "n": k}))
            expect_not_ct += 1
        else:
            text.append(b'{"Records": [' + b"{" * (k + 1))
            expect_bad += 1
        n += 10
    body = b"\n".join(text)
    if expect_bad == len(lines):
        with pytest.raises(UnreadableObject):
            parse_cloudtrail(body, "x.jsonl", CFG)
        return
    parsed, out = parse(body, "x.jsonl")
    assert ids(parsed) == expect_written
    assert out.skipped == 0  # none of these is a CloudTrail event that is not a write
    assert out.reasons[NOT_A_RECORD] == expect_not_ct
    assert out.reasons["line is not valid JSON"] == expect_bad


@SETTINGS
@given(rec=st.dictionaries(st.sampled_from(["eventName", "eventSource", "eventTime", "eventID", "x", "Records"]),
                           st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=5),
                                     st.just("2026-03-02T08:00:00Z"), st.just("ec2.amazonaws.com"))))
def test_a_record_without_the_cloudtrail_shape_is_rejected_never_skipped(rec):
    parsed, out = parse(corpus.ct([corpus.good(1), rec]))
    shaped = all(isinstance(rec.get(f), str) for f in ("eventName", "eventSource", "eventTime"))
    if shaped:
        assert out.reasons[NOT_A_RECORD] == 0
    elif not (rec.get("eventSource") == "s3.amazonaws.com" or rec.get("eventName") in CFG.logon_events):
        assert out.reasons == Counter({NOT_A_RECORD: 1}), rec
    assert "good-1" in ids(parsed)


# -- §7 a huge CSV field costs its row ---------------------------------------------------------------

@SETTINGS
@given(row=st.integers(0, 3), column=st.sampled_from(["user_arn", "stack_name", "user_id", "client_ip_addresses"]),
       excess=st.integers(-2, 2), quoted_newline=st.booleans(), limit=st.sampled_from([40, 1000]))
def test_a_huge_field_costs_only_its_row(row, column, excess, quoted_newline, limit):
    rows = [session_row(sid(i + 1), f"user{i}@example.com", f"10.40.0.{i + 10}", T0, T0 + timedelta(hours=1))
            for i in range(4)]
    value = "z" * (limit + excess)
    if quoted_newline:  # a field spanning lines, holding what looks like a whole row
        forged = report_csv([session_row(sid(9), "mallory@example.com", "10.40.0.66", T0, T0)]).split(b"\r\n")[1]
        value = value[: max(0, len(value) - len(forged) - 2)] + "\r\n" + forged.decode()
        value = value + "z" * max(0, limit + excess - len(value))
    rows[row][column] = value
    rep = parse_usage_report(report_csv(rows), REPORT, max_field_chars=limit)
    kept = set(rep.table.column("session_id").to_pylist())
    assert rep.outcome.reconciles and rep.outcome.records_in == 4
    assert sid(9) not in kept  # nothing inside a field ever becomes a row
    if len(value) > limit:
        assert kept == {sid(i + 1) for i in range(4)} - {sid(row + 1)}
        assert rep.outcome.reasons == Counter({f"row has a field over {limit:,} characters": 1})
    elif column != "user_id" or len(value) > 0:
        assert sid(row + 1) in kept


def test_the_committed_huge_field_report_keeps_its_other_rows():
    data = (CORPUS / "reports" / "huge_field" / REPORT).read_bytes()
    rep = parse_usage_report(data, REPORT)
    assert rep.outcome.reasons == Counter({f"row has a field over {MAX_FIELD_CHARS:,} characters": 2})
    assert rep.table.column("session_id").to_pylist() == [sid(1)]
    import csv

    assert csv.field_size_limit() == 131_072  # the process-wide limit is put back


def test_session_times_outside_the_plausible_range_cost_their_row():
    data = (CORPUS / "reports" / "session_time_edges" / REPORT).read_bytes()
    rep = parse_usage_report(data, REPORT)
    assert set(rep.table.column("session_id").to_pylist()) == {sid(1), sid(2)}
    assert rep.outcome.reasons == Counter({"bad session time: outside the plausible range": 2})


def test_streamed_inflate_matches_zlib_on_every_committed_gzip():
    for path in sorted(CORPUS.rglob("*.gz")):
        data = path.read_bytes()
        if data[:2] != b"\x1f\x8b":
            continue  # not gzip: passed through as it is (and read as JSON or refused there)
        try:
            expected: bytes | None = gzip.decompress(data)
        except (EOFError, OSError, zlib.error):
            expected = None
        try:
            got: bytes | None = inflate(data)
        except (EOFError, zlib.error):
            got = None
        assert got == expected, path.name
