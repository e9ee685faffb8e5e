"""Broken and hostile CloudTrail objects: a clear reason, the rest processed, nothing lost.

Each case asserts what happens to the object (written / quarantined with a ``.reason.json`` /
recognised and skipped) and to the good records and objects around it, and that the counts
reconcile: records in = written + duplicates + skipped + rejected.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from datetime import datetime

import pytest
from click.testing import CliRunner

from auditcorr.config import Config
from auditcorr.ingest.cloudtrail import NOT_A_RECORD, parse_cloudtrail
from auditcorr_cli.main import main, run_ingest
from tests.factories import T0
from tests.fixtures.bad import make_corpus as corpus
from tests.hardening.util import CORPUS, alerts_view, by_event, new_pipe, quarantined

CT = CORPUS / "cloudtrail"


def case(name: str) -> bytes:
    return (CT / name).read_bytes()


def test_committed_corpus_matches_its_generator():
    made = {f"cloudtrail/{k}": v for k, v in corpus.cloudtrail_cases().items()}
    made |= {f"reports/{k}/{corpus.REPORT}": v for k, v in corpus.report_cases().items()}
    on_disk = {str(p.relative_to(CORPUS)): p.read_bytes() for p in CORPUS.rglob("*")
               if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts and p.name != "README.md"}
    assert on_disk.keys() == made.keys(), "run: python tests/fixtures/bad/make_corpus.py"
    for name, data in made.items():
        assert on_disk[name] == data, f"{name} differs from make_corpus.py; regenerate it"


# -- objects that cannot be read at all ----------------------------------------------------------

UNREADABLE = {
    "truncated_gzip.json.gz": "corrupt or truncated gzip",
    "gzip_magic_then_garbage.json.gz": "corrupt or truncated gzip",
    "gzip_then_garbage.json.gz": "corrupt or truncated gzip",  # a good member, then bytes that are no member
    "not_gzip.json.gz": "not valid JSON",
    "empty.json.gz": "empty object",
    "empty_gzip.json.gz": "empty object",
    "whitespace_only.json": "empty object",
    "not_cloudtrail.json": "not a CloudTrail log file",
    "json_scalar.json": "not a CloudTrail log file",
    "records_not_list.json.gz": "'Records' is not a list",
    "binary_garbage.json": "not valid JSON",
}


@pytest.mark.parametrize(("name", "reason"), sorted(UNREADABLE.items()))
def test_unreadable_object_is_quarantined_and_the_batch_goes_on(tmp_path, name, reason):
    # the batch: a good object, the bad one, another good object (processed in this order)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "1-before.json.gz").write_bytes(corpus.ct([corpus.good(1)]))
    shutil.copyfile(CT / name, inbox / f"2-{name}")
    (inbox / "3-after.json.gz").write_bytes(corpus.ct([corpus.good(2)]))
    pipe = new_pipe(tmp_path / "lake")

    summary = run_ingest(pipe, [str(inbox)])

    by_name = {f.source.rsplit("/", 1)[-1]: f for f in summary.files}
    bad = by_name[f"2-{name}"]
    assert bad.error is not None and reason in bad.error
    assert (bad.records_in, bad.written, bad.rejected) == (0, 0, 0)
    assert summary.reconciles
    # the good objects around it are fully processed
    assert by_name["1-before.json.gz"].written == 1 and by_name["3-after.json.gz"].written == 1
    assert set(by_event(pipe.lake)) == {"good-1", "good-2"}
    # the bad object is kept, byte for byte, with its reason beside it
    q = quarantined(pipe.lake)
    assert set(q) == {str(inbox / f"2-{name}")}
    note = q[str(inbox / f"2-{name}")]
    assert reason in note["reason"]
    assert note["copy"].read_bytes() == (CT / name).read_bytes()
    assert summary.reasons()[f"file rejected: {bad.error}"] == 1


def test_records_empty_is_an_empty_file_not_an_error(tmp_path):
    pipe = new_pipe(tmp_path)
    out = pipe.ingest_object("cloudtrail/records_empty.json.gz", case("records_empty.json.gz"))
    assert out.error is None and out.records_in == 0 and out.reconciles
    assert quarantined(pipe.lake) == {}


# -- objects with bad records among good ones ----------------------------------------------------

def ingest_case(tmp_path, name, config=None):
    pipe = new_pipe(tmp_path / "lake", config)
    out = pipe.ingest_object(f"cloudtrail/{name}", case(name))
    assert out.error is None, out.error
    assert out.reconciles, out.as_dict()
    assert quarantined(pipe.lake) == {}
    return pipe, out


def test_records_missing_eventid_eventtime_or_useridentity_are_rejected_with_reasons(tmp_path):
    pipe, out = ingest_case(tmp_path, "missing_fields.json.gz")
    assert (out.records_in, out.written, out.duplicates, out.skipped, out.rejected) == (9, 2, 0, 0, 7)
    assert out.reasons == Counter({"missing eventID": 3, "missing eventTime": 2, "missing userIdentity": 2})
    assert set(by_event(pipe.lake)) == {"good-1", "good-9"}


def test_unparseable_zoneless_and_impossible_times_are_rejected_the_rest_kept(tmp_path):
    pipe, out = ingest_case(tmp_path, "bad_times.json.gz")
    assert (out.records_in, out.written, out.rejected) == (10, 4, 6)
    assert out.reasons == Counter({"unparseable or zone-less eventTime": 6})
    got = {k: r["event_time"] for k, r in by_event(pipe.lake).items()}
    ms = {k: int(v.timestamp() * 1000) for k, v in got.items()}
    base = int(T0.timestamp() * 1000)
    assert ms == {
        "good-1": base + 60_000,
        "good-7": base + 7 * 60_000,  # 10:07+02:00 is 08:07Z
        "good-8": base + 8 * 60_000 + 250,  # fractional seconds kept (ms)
        "good-10": base + 10 * 60_000,
    }
    # 2026-02-30 must not have become March 2nd (Arrow's strptime would do that)
    assert "good-4" not in got


@pytest.mark.parametrize("value", ["2026-02-30T08:00:00Z", "2026-04-31T08:00:00Z", "2025-02-29T08:00:00Z",
                                   "2026-03-02T08:00:60Z", "2026-3-2T8:0:0Z", "2026-03-02T08:00:00",
                                   "2026-03-02T08:00:00+25:00", "٢٠٢٦-03-02T08:00:00Z"])
def test_time_strictness_is_the_same_on_the_fast_and_generic_paths(value):
    from tests.factories import put

    rec = put(T0, "10.40.0.1", event_id="t-1", eventTime=value)
    fast = parse_cloudtrail(corpus.ct([rec]), "x", Config())
    # a number where a string belongs makes the typed decoder give up: the generic path runs
    generic_body = corpus.ct([dict(rec, awsRegion=5)])
    generic = parse_cloudtrail(generic_body, "x", Config())
    from auditcorr.ingest.cloudtrail import _parse_fast, decode_body

    assert _parse_fast(decode_body(corpus.ct([rec])), "x", Config()) is not None
    assert _parse_fast(decode_body(generic_body), "x", Config()) is None
    for parsed in (fast, generic):
        assert parsed.writes.num_rows == 0
        assert parsed.outcome.rejected == 1


def test_source_ip_shapes_are_kept_and_classified_without_guessing(tmp_path):
    pipe, out = ingest_case(tmp_path, "source_ips.json.gz")
    assert (out.records_in, out.written) == (9, 9)
    writes = by_event(pipe.lake)
    # the raw value is kept as evidence, whatever it is
    assert [writes[f"ip-{i}"]["source_ip"] for i in range(8)] == [
        "AWS Internal", "athena.amazonaws.com", "10.40.0.17, 10.40.0.18", "2001:db8::17", "garbage", "",
        "999.1.1.1", " 10.40.0.19 "]
    act = {r["event_id"]: r for r in pipe.lake.read("attributed_activity").to_pylist()}
    status = {k: act[k]["status"] for k in act}
    for i in (0, 1, 2, 3, 4, 5, 6):  # not an IP (or not in the fleet): external, never matched to a session
        assert status[f"ip-{i}"] == "external"
        assert act[f"ip-{i}"]["session_id"] is None
    assert status["ip-7"] == "unattributed"  # a fleet IP with blanks around it is still that IP
    assert status["good-20"] == "unattributed"
    rules = Counter(rule for _, rule, _ in alerts_view(pipe.lake, open_only=True))
    # only the real IP outside the fleet is a credential replay; a service name or 'AWS Internal' that no
    # service claims (no invokedBy) is the fleet role's credentials used through a service (issue 15);
    # comma lists and garbage are not evidence of anything
    assert rules == Counter({"credentials_outside_fleet": 1, "unattributed_activity": 2,
                             "fleet_credentials_via_service": 2})
    via = {r["event_id"] for r in pipe.lake.read("alerts").to_pylist() if r["rule"] == "fleet_credentials_via_service"}
    assert via == {"ip-0", "ip-1"}
    outside = [r for r in pipe.lake.read("alerts").to_pylist() if r["rule"] == "credentials_outside_fleet"]
    assert outside[0]["event_id"] == "ip-3"


def test_odd_keys_round_trip_exactly_into_s3_writes(tmp_path):
    pipe, out = ingest_case(tmp_path, "odd_keys.json.gz")
    assert out.written == len(corpus.ODD_KEYS)
    writes = by_event(pipe.lake)
    assert [writes[f"key-{i}"]["key"] for i in range(len(corpus.ODD_KEYS))] == corpus.ODD_KEYS
    # and nothing named after a key appeared anywhere on disk
    names = {p.name for p in (tmp_path / "lake").rglob("*")}
    assert "passwd" not in names and not any("résumé" in n or "slash" in n for n in names)


def test_who_finds_objects_by_their_exact_raw_key(tmp_path):
    import orjson

    pipe, _ = ingest_case(tmp_path, "odd_keys.json.gz")
    runner = CliRunner()
    for i, key in enumerate(corpus.ODD_KEYS):
        res = runner.invoke(main, ["who", "--lake", str(tmp_path / "lake"), "--format", "json",
                                   "--bucket", "research-data", "--key", key])
        assert res.exit_code == 0, res.output
        found = orjson.loads(res.output)
        assert [r["event_id"] for r in found] == [f"key-{i}"], key
    # an URL-encoded form of a key is a different key: no guessing
    res = runner.invoke(main, ["who", "--lake", str(tmp_path / "lake"), "--format", "json",
                               "--bucket", "research-data", "--key", "plus/a%2Bb%2Bc.txt"])
    assert res.exit_code == 0 and orjson.loads(res.output) == []


def test_records_that_are_not_objects_are_rejected(tmp_path):
    pipe, out = ingest_case(tmp_path, "non_object_records.json.gz")
    assert (out.records_in, out.written, out.skipped, out.rejected) == (6, 1, 0, 5)
    assert out.reasons["record is not a JSON object"] == 4
    assert out.reasons[NOT_A_RECORD] == 1  # ``{}`` is no CloudTrail record: rejected, never "skipped"
    assert set(by_event(pipe.lake)) == {"good-2"}


def test_duplicates_in_one_file_are_counted_once_written_once(tmp_path):
    pipe, out = ingest_case(tmp_path, "duplicates_in_file.json.gz")
    assert (out.records_in, out.written, out.duplicates) == (4, 2, 2)
    assert pipe.lake.read("s3_writes").num_rows == 2


def test_non_write_events_are_skipped_logons_kept(tmp_path):
    pipe, out = ingest_case(tmp_path, "mixed_events.json.gz")
    assert (out.records_in, out.written, out.skipped) == (4, 2, 2)
    assert set(by_event(pipe.lake)) == {"good-1"}
    assert set(by_event(pipe.lake, "logons")) == {"logon-1"}


def test_json_lines_with_broken_lines(tmp_path):
    pipe, out = ingest_case(tmp_path, "ndjson_with_bad_lines.json")
    assert (out.records_in, out.written, out.rejected) == (4, 2, 2)
    assert out.reasons == Counter({"line is not valid JSON": 2})
    assert set(by_event(pipe.lake)) == {"good-1", "good-2"}


@pytest.mark.parametrize("name", ["bare_array.json", "bom_and_whitespace.json"])
def test_other_accepted_body_shapes(tmp_path, name):
    pipe, out = ingest_case(tmp_path, name)
    assert out.written == out.records_in >= 1


# -- digest and insight files ---------------------------------------------------------------------

DIGESTS = [n for n in corpus.cloudtrail_cases() if "Digest" in n or "digest" in n or "Insight" in n]


@pytest.mark.parametrize("name", DIGESTS)
def test_digest_and_insight_files_are_recognised_not_quarantined(tmp_path, name):
    pipe = new_pipe(tmp_path / "lake")
    out = pipe.ingest_object(name, case(name))
    assert out.error is None
    assert out.kind in ("digest", "insight")
    # insight files are skipped; digests are validated (issue 14), never quarantined
    assert out.note and ("skipped" in out.note if out.kind == "insight" else out.note.startswith("digest"))
    assert out.reconciles and out.records_in == 0
    assert quarantined(pipe.lake) == {}
    assert pipe.lake.read("s3_writes").num_rows == 0


# -- size ----------------------------------------------------------------------------------------

def test_a_10_mb_record_is_stored_whole_with_its_neighbours(tmp_path):
    data = corpus.big_record_file()
    pipe = new_pipe(tmp_path)
    out = pipe.ingest_object("cloudtrail/big.json.gz", data)
    assert out.error is None and out.reconciles
    assert out.written == 3
    writes = by_event(pipe.lake)
    assert set(writes) == {"good-1", "good-2", "good-3"}
    assert len(writes["good-2"]["additional_event_data"]) > 10 * 1024 * 1024


@pytest.mark.slow
def test_100_000_records_in_one_file_are_all_accounted_for(tmp_path):
    data = corpus.many_records_file(100_000)
    pipe = new_pipe(tmp_path)
    t0 = datetime.now()
    out = pipe.ingest_object("cloudtrail/many.json.gz", data)
    assert out.error is None and out.reconciles
    assert (out.records_in, out.written, out.skipped, out.rejected) == (100_000, 90_000, 10_000, 0)
    assert pipe.lake.read("s3_writes", columns=["event_id"]).num_rows == 90_000
    # the fleet role's writes (1 in 100) are attributed; the other role's are kept but out of scope
    assert pipe.lake.read("attributed_activity", columns=["event_id"]).num_rows == 1_000
    assert (datetime.now() - t0).total_seconds() < 120
    # re-delivering the same object changes nothing
    again = pipe.ingest_object("cloudtrail/many.json.gz", data)
    assert again.duplicates == 100_000 and again.written == 0


# -- what the operator sees --------------------------------------------------------------------------

def test_cli_ingest_of_the_whole_bad_corpus_summarises_every_reason(tmp_path):
    res = CliRunner().invoke(main, ["ingest", "--lake", str(tmp_path / "lake"), str(CT)])
    assert res.exit_code == 1, res.output  # bad inputs quarantined, bad records rejected: exit code 1
    text = res.output
    assert "ingest summary" in text
    assert "WARNING: counts do not reconcile" not in text
    for reason in set(UNREADABLE.values()) | {"missing eventID", "unparseable or zone-less eventTime",
                                                "line is not valid JSON", "record is not a JSON object"}:
        assert reason in text, reason
    pipe = new_pipe(tmp_path / "lake")
    assert len(quarantined(pipe.lake)) == len(UNREADABLE)


def test_rejections_are_logged_with_ids_and_reasons_never_raw_content(tmp_path, caplog):
    secret = "SAMLResponse=PHNhbWxwOlJlc3BvbnNlIHNlY3JldA"
    ua = "Mozilla/5.0 (SECRET-AGENT)"
    pipe = new_pipe(tmp_path)
    bad_body = ('{"hello": "' + secret + '"}').encode()
    records = [corpus.good(1, userAgent=ua), corpus.good(2, eventTime=secret),
               corpus.good(3, userIdentity=secret)]
    from tests.factories import report_csv, report_name, session_row, sid

    row = session_row(sid(1), "alice@example.com", "10.40.0.17", T0, T0,
                      session_start_time=secret, eni_private_ip_address=secret)
    with caplog.at_level(logging.DEBUG, logger="auditcorr"):
        outcomes = [
            pipe.ingest_object("cloudtrail/secret.json", bad_body),
            pipe.ingest_object("cloudtrail/mixed.json.gz", corpus.ct(records)),
            pipe.ingest_object(report_name("2026-03-02"), report_csv([row])),
            pipe.ingest_object("x/daily-session-report-2026-03-03.csv", secret.encode()),
        ]
    assert any("input rejected" in r.getMessage() for r in caplog.records)
    for r in caplog.records:
        blob = r.getMessage() + repr(r.__dict__)
        assert secret not in blob and "SECRET-AGENT" not in blob
    # the reasons (CLI summary, Lambda metrics and logs) are fixed texts, never the offending value
    assert sum(o.rejected for o in outcomes) == 3
    for o in outcomes:
        assert secret not in repr(o.reasons) and secret not in (o.error or "")


@pytest.mark.parametrize("resources", [1, "arn:aws:s3:::b/k", {"ARN": "arn:aws:s3:::b/k"}, [1, None, "x"]])
def test_resources_of_the_wrong_shape_never_raise(tmp_path, resources):
    """Found by hypothesis: ``resources`` that is not a list of objects (here with no
    ``requestParameters`` either) is no bucket/key, not a crash; the write is kept and counted."""
    from tests.factories import put, trail

    rec = put(T0, "10.40.0.17", event_id="odd-resources")
    rec.pop("requestParameters", None)
    rec["resources"] = resources
    pipe = new_pipe(tmp_path)
    out = pipe.ingest_object("cloudtrail/odd.json.gz", trail([rec, put(T0, "10.40.0.17", event_id="good-1")]))
    assert out.error is None and out.reconciles
    assert out.records_in == 2 and out.written + out.rejected == 2
    assert "good-1" in by_event(pipe.lake)
