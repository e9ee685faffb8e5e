"""Happy-path shapes of the parsers (the hostile corpus lives in tests/hardening)."""

from __future__ import annotations

import gzip
from datetime import timedelta

import orjson
import pytest

from auditcorr.config import Config
from auditcorr.ingest.cloudtrail import UnreadableObject, parse_cloudtrail, role_from_assumed_arn
from auditcorr.ingest.usage import parse_usage_report, report_date_from_path
from tests.factories import SESSION_COLUMNS, T0, put, report_csv, report_name, saml_logon, session_row, sid

CFG = Config()


def body_forms():
    recs = [put(T0, "10.40.0.17", key="a", event_id="e1"), saml_logon(T0, "alice@example.com", event_id="l1"),
            {"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "eventID": "x1",
             "eventTime": "2026-03-02T08:00:00Z", "userIdentity": {"type": "AWSService"}}]
    return {
        "records": orjson.dumps({"Records": recs}),
        "records-gz": gzip.compress(orjson.dumps({"Records": recs})),
        "bare-array": orjson.dumps(recs),
        "ndjson": b"\n".join(orjson.dumps(r) for r in recs) + b"\n",
        "ndjson-gz": gzip.compress(b"\n".join(orjson.dumps(r) for r in recs)),
    }


@pytest.mark.parametrize("form", sorted(body_forms()))
def test_every_accepted_body_form_parses_the_same(form):
    p = parse_cloudtrail(body_forms()[form], "x.json", CFG)
    o = p.outcome
    assert (o.records_in, o.written, o.skipped, o.rejected) == (3, 0, 1, 0)
    assert p.writes.column("event_id").to_pylist() == ["e1"]
    assert p.logons.column("event_id").to_pylist() == ["l1"]
    assert p.logons.column("user_name").to_pylist() == ["alice@example.com"]


def test_write_fields_are_normalised():
    rec = put(T0, "10.40.0.17", key="dir/a b.csv", session_name=sid(1), event_id="e1")
    w = parse_cloudtrail(orjson.dumps({"Records": [rec]}), "x", CFG).writes.to_pylist()[0]
    assert w["bucket"] == "research-data" and w["key"] == "dir/a b.csv"
    assert w["role_arn"] == "arn:aws:iam::111122223333:role/AppStreamFleetRole"
    assert w["role_session_name"] == sid(1)
    assert w["vpc_endpoint_id"] == "vpce-0a1b2c3d4e5f60718"
    assert w["event_time"].isoformat() == "2026-03-02T08:00:00+00:00"
    assert orjson.loads(w["request_parameters"])["key"] == "dir/a b.csv"


def test_same_event_twice_in_one_file_is_a_duplicate():
    rec = put(T0, "10.40.0.17", event_id="e1")
    o = parse_cloudtrail(orjson.dumps({"Records": [rec, rec]}), "x", CFG).outcome
    assert (o.records_in, o.duplicates, o.rejected) == (2, 1, 0)


def test_write_events_are_configurable():
    recs = [put(T0, "10.40.0.17", event_id="e1", event_name="DeleteObject")]
    assert parse_cloudtrail(orjson.dumps(recs), "x", CFG).writes.num_rows == 0
    cfg = Config(write_events=("DeleteObject",))
    assert parse_cloudtrail(orjson.dumps(recs), "x", cfg).writes.num_rows == 1


def test_not_cloudtrail_is_unreadable():
    with pytest.raises(UnreadableObject, match="not a CloudTrail"):
        parse_cloudtrail(b'{"hello": 1}', "x", CFG)


@pytest.mark.parametrize(("arn", "role", "session"), [
    ("arn:aws:sts::1:assumed-role/R/s", "arn:aws:iam::1:role/R", "s"),
    ("arn:aws-us-gov:sts::1:assumed-role/R/s", "arn:aws-us-gov:iam::1:role/R", "s"),
    ("arn:aws:iam::1:user/u", None, None),
    (None, None, None),
])
def test_role_from_assumed_arn(arn, role, session):
    assert role_from_assumed_arn(arn) == (role, session)


def test_report_parsed_by_header_name_in_any_order_with_extra_columns():
    cols = list(reversed(SESSION_COLUMNS)) + ["a_new_column"]
    row = session_row(sid(1), "alice@example.com", "10.40.0.17", T0, T0 + timedelta(hours=1), a_new_column="v")
    rep = parse_usage_report(report_csv([row], columns=cols), report_name("2026-03-02"))
    r = rep.table.to_pylist()[0]
    assert rep.report_date == "2026-03-02"
    assert (r["session_id"], r["user_id"], r["eni_private_ip_address"]) == (sid(1), "alice@example.com",
                                                                             "10.40.0.17")
    assert orjson.loads(r["extra_columns"])["a_new_column"] == "v"
    assert r["client_ip_addresses"] == ["198.51.100.7"]
    assert rep.outcome.reconciles


def test_report_missing_a_required_column_is_rejected_with_its_name():
    cols = [c for c in SESSION_COLUMNS if c != "eni_private_ip_address"]
    row = session_row(sid(1), "a", "10.40.0.17", T0, T0)
    with pytest.raises(UnreadableObject, match="eni_private_ip_address"):
        parse_usage_report(report_csv([row], columns=cols), report_name("2026-03-02"))


@pytest.mark.parametrize(("path", "day"), [
    ("sessions/schedule=DAILY/year=2026/month=03/day=02/daily-session-report-2026-03-02.csv", "2026-03-02"),
    ("x/year=2026/month=3/day=9/report.csv", "2026-03-09"),
    ("report.csv", None),
])
def test_report_date_from_path(path, day):
    assert report_date_from_path(path) == day


def _generic(body: bytes):
    from auditcorr.counts import FileOutcome
    from auditcorr.ingest import cloudtrail as ct
    from auditcorr.schemas import CREDENTIAL_USES, LOGONS, S3_WRITES

    out = FileOutcome(source="x", kind="cloudtrail")
    recs = ct.load_records(body)
    out.records_in = len(recs)
    w, lg, u = ct._extract(recs, "x", CFG, out)
    return ct._to_table(w, S3_WRITES, out), ct._to_table(lg, LOGONS, out), out, ct._to_table(u, CREDENTIAL_USES, out)


def start_query(at, ip: str, key_id: str, event_id: str | None = None) -> dict:
    """An Athena ``StartQueryExecution`` by the fleet role (the call that hands its key to Athena)."""
    rec = put(at, ip, event_id=event_id)
    rec.update({"eventSource": "athena.amazonaws.com", "eventName": "StartQueryExecution",
                "requestParameters": {"queryString": "SELECT 1", "workGroup": "primary"},
                "responseElements": {"queryExecutionId": "q-1"}, "resources": None, "readOnly": False})
    rec["userIdentity"]["accessKeyId"] = key_id
    return rec


def test_fast_and_generic_paths_agree():
    recs = [put(T0 + timedelta(seconds=i), f"10.40.0.{i}", key=f"k{i}", session_name=sid(i)) for i in range(20)]
    recs[3]["userIdentity"]["sessionContext"]["sourceIdentity"] = "alice"
    recs[4]["requestParameters"] = None  # bucket/key from resources
    recs[5]["resources"] = []
    recs += [saml_logon(T0, "bob@example.com"), put(T0, "10.40.0.1", event_id=recs[0]["eventID"])]
    recs.append({"eventSource": "s3.amazonaws.com", "eventName": "PutObject", "eventTime": "2026-03-02T08:00:00Z",
                 "userIdentity": {"type": "AssumedRole"}})  # no eventID
    recs += [start_query(T0, "10.40.0.9", "ASIASTARTKEY0000001", event_id="sq-1"),
             start_query(T0, "10.40.0.9", "ASIASTARTKEY0000001", event_id="sq-1")]  # twice: a duplicate
    body = orjson.dumps({"Records": recs})
    from auditcorr.ingest.cloudtrail_fast import decode_typed

    assert decode_typed(body) is not None  # the fast path really is taken
    fast = parse_cloudtrail(body, "x", CFG)
    gw, gl, go, gu = _generic(body)
    assert fast.writes.equals(gw)
    assert fast.logons.equals(gl)
    assert fast.credential_uses.equals(gu)
    assert fast.credential_uses.select(["event_id", "event_name", "source_ip", "access_key_id", "bucket"]).to_pylist() \
        == [{"event_id": "sq-1", "event_name": "StartQueryExecution", "source_ip": "10.40.0.9",
             "access_key_id": "ASIASTARTKEY0000001", "bucket": None}]
    assert (fast.outcome.records_in, fast.outcome.duplicates, fast.outcome.skipped, fast.outcome.rejected) == (
        go.records_in, go.duplicates, go.skipped, go.rejected)


def test_type_surprise_falls_back_to_generic_path():
    recs = [put(T0, "10.40.0.1", key="ok", event_id="e1"), put(T0, "10.40.0.2", key="odd", event_id="e2")]
    recs[1]["awsRegion"] = 42  # not a string: the typed decoder refuses the whole document
    body = orjson.dumps({"Records": recs})
    from auditcorr.ingest.cloudtrail_fast import decode_typed

    assert decode_typed(body) is None
    p = parse_cloudtrail(body, "x", CFG)
    assert sorted(p.writes.column("key").to_pylist()) == ["odd", "ok"]
    regions = dict(zip(p.writes.column("key").to_pylist(), p.writes.column("aws_region").to_pylist(), strict=True))
    assert regions == {"ok": "us-east-1", "odd": "42"}
