"""Real public CloudTrail records (tests/fixtures/cloudtrail-public, licences beside them) through ingest.

Every record is accounted for: the expected counts are computed here, independently of the parser,
from the raw files (what is a write or a logon, what lacks an id or a usable time).
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditcorr.config import Config
from auditcorr.ingest.cloudtrail import NOT_A_RECORD, SERVICE_STARTS
from auditcorr_cli.main import run_ingest
from tests.hardening.util import by_event, new_pipe, quarantined

PUBLIC = Path(__file__).resolve().parents[1] / "fixtures" / "cloudtrail-public"
FILES = sorted(PUBLIC.rglob("*.gz"))
STRICT_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
CFG = Config()


def raw_records(path: Path) -> list[Any]:
    body = gzip.decompress(path.read_bytes())
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [orjson.loads(line) for line in body.splitlines() if line.strip()]
    return doc["Records"] if isinstance(doc, dict) else doc


def kind(rec: dict[str, Any]) -> str:
    src, name = rec.get("eventSource"), rec.get("eventName")
    if src == "s3.amazonaws.com" and name in CFG.write_events:
        return "write"
    if src in ("sts.amazonaws.com", "signin.amazonaws.com") and name in CFG.logon_events:
        return "logon"
    if (src, name) in SERVICE_STARTS:
        return "service start"  # kept in credential_uses (panther-analysis has a real StartQueryExecution)
    if not (isinstance(src, str) and isinstance(name, str) and isinstance(rec.get("eventTime"), str)):
        return "not cloudtrail"  # e.g. Logstash's @timestamp instead of eventTime: rejected, not skipped
    return "other"


def test_fixtures_are_present_small_and_licensed():
    assert len(FILES) >= 30
    assert sum(p.stat().st_size for p in PUBLIC.rglob("*")) < 2 * 1024 * 1024
    for folder in {p.parent for p in FILES}:
        assert any(x.name.startswith("LICENSE") for x in folder.iterdir()), folder
    assert (PUBLIC / "README.md").is_file()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    pipe = new_pipe(tmp_path_factory.mktemp("public") / "lake")
    summary = run_ingest(pipe, [str(p) for p in FILES])  # the folder also holds licences and a README
    return pipe, summary


def test_every_public_record_is_accounted_for(ingested):
    pipe, summary = ingested
    assert [f.source for f in summary.files if f.error] == []
    assert quarantined(pipe.lake) == {}
    assert summary.reconciles
    by_file = {Path(f.source): f for f in summary.files}
    assert set(by_file) == set(FILES)
    total = Counter()
    for path in FILES:
        recs = raw_records(path)
        out = by_file[path]
        assert out.records_in == len(recs), path.name
        kinds = Counter(kind(r) for r in recs)
        # everything that is neither an S3 write, a logon nor a service start is skipped, and only that
        assert out.skipped == kinds["other"], path.name
        expected = kinds["write"] + kinds["logon"] + kinds["service start"] + kinds["not cloudtrail"]
        assert out.written + out.duplicates + out.rejected == expected, path.name
        assert out.reasons[NOT_A_RECORD] == kinds["not cloudtrail"], path.name
        total.update({"records": len(recs), "written": out.written, "rejected": out.rejected,
                      "service start": kinds["service start"]})
    assert total["records"] == 852  # 310 + 437 + 2 + 103
    assert total["written"] > 0
    assert total["service start"] == 1  # the one real StartQueryExecution sample


def test_rejections_are_only_the_known_malformed_shapes(ingested):
    _, summary = ingested
    reasons = summary.reasons()
    known = {"missing eventID", "missing eventTime", "unparseable or zone-less eventTime", NOT_A_RECORD}
    assert {r for r in reasons if not r.startswith("skipped: ")} <= known
    # OTRF's Logstash export has @timestamp instead of eventTime: those writes are rejected, not guessed,
    # and its other records are not CloudTrail records as CloudTrail writes them: rejected, not skipped
    otrf = next(f for f in summary.files if "otrf" in f.source)
    assert otrf.reasons["missing eventTime"] > 0 and otrf.reasons[NOT_A_RECORD] > 0
    assert otrf.reasons["missing eventTime"] + otrf.reasons[NOT_A_RECORD] == otrf.rejected


def test_public_s3_writes_land_in_s3_writes_exactly(ingested):
    pipe, _ = ingested
    expected = {}
    for path in FILES:
        for rec in raw_records(path):
            if kind(rec) != "write" or not rec.get("eventID") or not isinstance(rec.get("userIdentity"), dict):
                continue
            if not (isinstance(rec.get("eventTime"), str) and STRICT_Z.match(rec["eventTime"])):
                continue
            rp = rec.get("requestParameters") or {}
            expected.setdefault(rec["eventID"], (rec["eventName"], rp.get("bucketName"), rp.get("key"),
                                                 rec.get("sourceIPAddress")))
    writes = by_event(pipe.lake)
    got = {e: (r["event_name"], r["bucket"], r["key"], r["source_ip"]) for e, r in writes.items()}
    assert expected and got == expected
    assert {"PutObject", "CopyObject"} <= {v[0] for v in got.values()}


def test_public_writes_are_out_of_scope_of_the_join(ingested):
    # none of these principals is the configured fleet role: kept in s3_writes, never attributed or alerted
    pipe, _ = ingested
    assert pipe.lake.read("attributed_activity").num_rows == 0
    assert pipe.lake.read("alerts").num_rows == 0


def test_public_files_are_idempotent(ingested, tmp_path):
    pipe, summary = ingested
    before = pipe.lake.read("s3_writes").num_rows, pipe.lake.read("logons").num_rows
    again = run_ingest(pipe, [str(p) for p in FILES])
    assert all(f.written == 0 for f in again.files)
    assert (pipe.lake.read("s3_writes").num_rows, pipe.lake.read("logons").num_rows) == before


def test_public_records_one_by_one_never_crash(tmp_path):
    # each record alone, as an EventBridge-style single-record object: no crash, accounted for
    pipe = new_pipe(tmp_path / "lake")
    n = 0
    for path in FILES[::3]:
        for i, rec in enumerate(raw_records(path)[:10]):
            out = pipe.ingest_object(f"single/{path.stem}-{i}.json", orjson.dumps(rec))
            assert out.error is None and out.records_in == 1 and out.reconciles, (path.name, i)
            n += 1
    assert n > 50
