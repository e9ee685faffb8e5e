"""export_ocsf through its template handler with ``events/export_ocsf.json``, against the moto server:
the lake filled by the real ingest handlers, the Security Lake bucket and the provider roles in moto.

Given ingested CloudTrail files (and later the day's usage report), when the scheduled run fires, then
the custom sources hold the day's OCSF objects, written only with the provider roles' credentials
(assumed with the external id), only by PUT under each source's own prefix; an unchanged lake writes
nothing; a late report rewrites its day; a refused write keeps the day for the next run; and every
request made with the function's own credentials is one its template policy allows."""

from __future__ import annotations

import io
import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, unquote

import pyarrow.parquet as pq
import pytest

from auditcorr.ocsf.export import AUTHENTICATION, DATASTORE, FINDING, SOURCES
from auditcorr_aws.ocsf import STATE, ExportIncomplete
from tests.integration import aws
from tests.integration import scenario as sc
from tests.lambda_hardening import iam

FN = "ExportOcsfFunction"
PAYLOAD = "export_ocsf.json"
CT_PAYLOADS = ["ingest_cloudtrail/s3-notification-via-sqs.json", "ingest_cloudtrail/eventbridge-via-sqs.json",
               "ingest_cloudtrail/cloudtrail-sns-via-sqs.json"]
REPORT_PAYLOAD = "ingest_usage_report/eventbridge-sessions-report-via-sqs.json"
CLASS_UID = {DATASTORE: 6005, AUTHENTICATION: 3002, FINDING: 2004}
KEY = re.compile(r"^ext/(?P<source>[a-z-]+)/region=us-east-1/accountId=(?P<account>\d{12})/"
                 r"eventDay=(?P<day>\d{8})/(?P=source)-(?P=day)-\d{4}\.parquet$")
_ACCESS_KEY = re.compile(r"Credential=([^/]+)/")


def ingest(handler, payloads: list[str], hours_after_t0: int = 6) -> None:
    module, h = handler("IngestCloudTrailFunction" if payloads[0].startswith("ingest_cloudtrail")
                        else "IngestUsageReportFunction")
    module.ingestor().pipeline.clock = lambda: int((sc.T0.timestamp() + hours_after_t0 * 3600) * 1000)
    for p in payloads:
        assert h(sc.payload(p), aws.FakeContext()) == {"batchItemFailures": []}


class Container:
    """One warm export_ocsf container: ``run()`` hands the scheduled payload to its handler and answers
    (result, assumed): ``assumed`` maps each access key STS gave this run to its role."""

    def __init__(self, handler, monkeypatch) -> None:
        import auditcorr_aws.ocsf as adapter

        self._load = handler
        self.module: Any = None
        self.assumed: dict[str, str] = {}
        real = adapter.assume_role

        def recording(sts, role_arn, external_id):
            creds = real(sts, role_arn, external_id)
            self.assumed[creds["AccessKeyId"]] = role_arn
            return creds

        monkeypatch.setattr(adapter, "assume_role", recording)

    def _started(self) -> Any:
        if self.module is None:  # the container starts on its first use (after the test's ingests)
            self.module, self.handler = self._load(FN)
        return self.module

    @property
    def exporter(self):
        return self._started().exporter()

    def run(self, context: aws.FakeContext | None = None) -> tuple[dict, dict[str, str]]:
        self._started()
        self.assumed = {}
        result = self.handler(sc.payload(PAYLOAD), context or aws.FakeContext(remaining_ms=900_000))
        return result, self.assumed


@pytest.fixture
def export(handler, monkeypatch) -> Container:
    return Container(handler, monkeypatch)


def security_lake_objects(deployment) -> dict[str, bytes]:
    s3 = deployment.client("s3")
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.SECURITY_LAKE_BUCKET):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=aws.SECURITY_LAKE_BUCKET, Key=o["Key"])["Body"].read()
    return out


def records(objects: dict[str, bytes], source: str) -> list[dict]:
    rows: list[dict] = []
    for key, body in sorted(objects.items()):
        if KEY.match(key)["source"] == source:
            rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return rows


def access_key(req: aws.Request) -> str:
    m = _ACCESS_KEY.search(req.auth)
    return m.group(1) if m else ""


def security_lake_requests(requests: list[aws.Request]) -> list[aws.Request]:
    return [r for r in requests if r.path.lstrip("/").startswith(aws.SECURITY_LAKE_BUCKET)]


def test_the_payload_exports_the_lake_to_the_custom_sources_through_their_provider_roles(
        deployment, handler, export, moto_server, capsys):
    sc.stage_sources(deployment.client("s3"))
    ingest(handler, CT_PAYLOADS)
    mark = moto_server.log.mark()
    capsys.readouterr()

    result, assumed = export.run()
    requests = moto_server.log.since(mark)
    logged = capsys.readouterr()

    # the custom sources hold the lake's day, one class per source, in the Security Lake layout
    objects = security_lake_objects(deployment)
    assert objects and all(KEY.match(k) for k in objects), sorted(objects)
    assert {KEY.match(k)["source"] for k in objects} == set(SOURCES)
    assert {KEY.match(k)["day"] for k in objects} == {"20260302"}
    lake = deployment.lake()
    for source in SOURCES:
        assert {r["class_uid"] for r in records(objects, source)} == {CLASS_UID[source]}
    datastore = records(objects, DATASTORE)
    assert sorted(r["metadata"]["uid"] for r in datastore) == sorted(
        set(lake.read("attributed_activity").column("event_id").to_pylist()))
    logons = {r["metadata"]["uid"] for r in records(objects, AUTHENTICATION)}
    assert logons == set(lake.read("logons").column("event_id").to_pylist()) and sc.EV["alice_logon"] in logons
    assert {r["finding_info"]["uid"] for r in records(objects, FINDING)} == set(
        lake.read("alerts").column("alert_id").to_pylist())
    assert result["records"] == sum(len(records(objects, s)) for s in SOURCES)
    assert result["files_written"] == len(objects) and result["days_exported"] >= 1
    assert result["days_left"] == 0 and result["days_failed"] == 0 and result["records_rejected"] == 0

    # each provider role assumed once, with the external id the sources were registered with
    sts = [parse_qs(r.body.decode()) for r in requests if b"Action=AssumeRole" in r.body]
    assert sorted(q["RoleArn"][0] for q in sts) == sorted(aws.PROVIDER_ROLES.values())
    assert {q["ExternalId"][0] for q in sts} == {aws.SECURITY_LAKE_EXTERNAL_ID}
    assert set(assumed.values()) == set(aws.PROVIDER_ROLES.values())
    # Security Lake is written only with those credentials, and each role needs no more than s3:PutObject
    # under its own source's prefix (its boundary, AmazonSecurityLakePermissionsBoundary, has no delete)
    to_lake = security_lake_requests(requests)
    assert to_lake
    by_role = {arn: [{"Effect": "Allow", "Action": "s3:PutObject",
                      "Resource": f"arn:aws:s3:::{aws.SECURITY_LAKE_BUCKET}/ext/{source}/*"}]
               for source, arn in aws.PROVIDER_ROLES.items()}
    for r in to_lake:
        role = assumed.get(access_key(r))
        assert role is not None, f"{r.method} {r.path} not signed by a provider role"
        assert all(iam.allows(by_role[role], c) for c in iam.calls_of(r)), (role, r.method, r.path)
    # the function's own credentials never touch the Security Lake bucket, and stay within its policy
    own = [r for r in requests if access_key(r) not in assumed]
    assert not security_lake_requests(own)
    assert [str(c) for c in iam.denied(deployment, FN, own)] == []
    metrics = aws.emf_metrics(logged.out)
    assert metrics["records"] == result["records"] and metrics["files_written"] == len(objects)
    assert "OCSF day exported" in logged.out
    for personal in ("alice", "bob", sc.ALICE_IP, sc.BOB_IP, sc.OUTSIDE_IP, sc.DATA_KEY_ALICE):
        assert personal not in logged.out + logged.err  # days and counts only


def test_an_unchanged_lake_writes_nothing_and_a_late_report_rewrites_its_day(
        deployment, handler, export, moto_server):
    sc.stage_sources(deployment.client("s3"))
    ingest(handler, CT_PAYLOADS)
    export.exporter.overlap_ms = 0  # only files written after the previous look count as changed
    export.run()
    before = security_lake_objects(deployment)
    status = {r["metadata"]["uid"]: r["enrichments"][0]["short_desc"] for r in records(before, DATASTORE)}
    assert status[sc.EV["alice_put"]] != "attributed"  # no usage report yet: nobody named

    mark = moto_server.log.mark()
    again, _ = export.run()
    assert (again["days_exported"], again["files_written"], again["records"]) == (0, 0, 0)
    assert security_lake_requests(moto_server.log.since(mark)) == []  # not even an AssumeRole-signed read
    assert security_lake_objects(deployment) == before

    time.sleep(1.1)  # S3 dates objects to the second: the report's files must be younger than the last look
    ingest(handler, [REPORT_PAYLOAD], hours_after_t0=30)  # the report, a day later
    mark = moto_server.log.mark()
    late, _ = export.run()
    writes = security_lake_requests(moto_server.log.since(mark))
    after = security_lake_objects(deployment)
    assert late["days_exported"] >= 1 and late["files_written"] >= 1
    rewritten = {unquote(r.path.split("?", 1)[0].split("/", 2)[2]) for r in writes}
    assert rewritten == {k for k in after if after[k] != before.get(k)}  # only changed objects were PUT
    attributed = {r["metadata"]["uid"]: r for r in records(after, DATASTORE)}
    alice = attributed[sc.EV["alice_put"]]
    assert alice["enrichments"][0]["short_desc"] == "attributed"
    assert (alice["actor"]["user"]["name"], alice["actor"]["session"]["uid"]) == ("alice", sc.S1)
    earlier = {r["metadata"]["uid"]: r for r in records(before, DATASTORE)}[sc.EV["alice_put"]]
    assert alice["metadata"]["modified_time"] > earlier["metadata"]["modified_time"]  # consumers keep the latest


def test_a_refused_write_keeps_the_day_for_the_next_run_and_fails_the_invocation(deployment, handler, export):
    sc.stage_sources(deployment.client("s3"))
    ingest(handler, CT_PAYLOADS)
    s3 = deployment.client("s3")
    s3.delete_bucket(Bucket=aws.SECURITY_LAKE_BUCKET)  # every PUT now fails (NoSuchBucket)

    with pytest.raises(ExportIncomplete, match="2026-03-02"):
        export.run()
    state = json.loads(s3.get_object(Bucket=aws.LAKE_BUCKET, Key=f"{aws.LAKE_PREFIX}/_state/{'/'.join(STATE)}")
                       ["Body"].read())
    assert state["todo"] == ["2026-03-02"]

    s3.create_bucket(Bucket=aws.SECURITY_LAKE_BUCKET)
    result, _ = export.run()
    assert result["days_exported"] >= 1 and result["days_left"] == 0
    assert {KEY.match(k)["source"] for k in security_lake_objects(deployment)} == set(SOURCES)


def test_a_run_short_of_time_leaves_its_days_for_the_next(deployment, handler, export):
    sc.stage_sources(deployment.client("s3"))
    ingest(handler, CT_PAYLOADS)
    result, assumed = export.run(aws.FakeContext(remaining_ms=30_000))  # less than the reserve: no day started
    assert result["days_exported"] == 0 and result["days_left"] >= 1
    assert assumed == {}  # no role assumed for nothing
    assert security_lake_objects(deployment) == {}
    result, _ = export.run()
    assert result["days_exported"] >= 1 and result["days_left"] == 0


def test_clients_are_built_lazily_not_at_import(deployment, handler):
    module, _ = handler(FN)
    assert module._exporter is None
