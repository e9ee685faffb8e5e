"""The deployed application as the hardening tests drive it: every invocation goes through the handler
``template.yaml`` names, against the moto server, and S3 "Object Created" events for the lake's alert
files are derived from the requests the server really answered (a PutObject or a completed multipart
upload under ``<prefix>/alerts/dt=*/*.parquet`` is one event, as the EventBridge rule would send).

``App.clean_run`` is the reference: the five CloudTrail files of the scenario, the sessions and
applications reports, then every alert event published. ``App.snapshot`` normalises what a person
or a query would see: the tables read back from the moto bucket (raw rows for the append-once
tables, the latest row per key for the history tables, wall-clock columns dropped), every SNS
message with its count, and every Security Hub finding.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from auditcorr.schemas import TABLES
from tests.integration import aws
from tests.integration import scenario as sc

CT = "IngestCloudTrailFunction"
UR = "IngestUsageReportFunction"
PA = "PublishAlertsFunction"
PS = "PollSessionsFunction"

CT_KEYS = [sc.KEY_S3, sc.KEY_EB, sc.KEY_SNS1, sc.KEY_SNS2, sc.KEY_SNSRAW]
REPORT_KEYS = [sc.SESSIONS_KEY, sc.APPS_KEY]

#: written once per input and never rewritten: a retry must leave exactly the rows of a clean run
RAW_TABLES = ("s3_writes", "logons", "sessions", "applications", "live_sessions", "live_polls")
#: recomputed by appending rows: what counts is the latest row per key (the *_latest views)
HISTORY_TABLES = ("attributed_activity", "alerts", "findings")
#: stamped with the wall clock when computed: differ between two runs by construction
VOLATILE = frozenset({"computed_at", "detected_at", "updated_at", "created_at", "status_since", "previous_updated_at"})

#: what publish_alerts is notified of: changed findings files
_ALERT_KEY = re.compile(rf"^{aws.LAKE_PREFIX}/findings/dt=\d{{4}}-\d{{2}}-\d{{2}}/[^/]+\.parquet$")


def eventbridge(bucket: str, key: str, version: str | None = None, etag: str | None = None) -> dict[str, Any]:
    """An EventBridge "Object Created" event for one object (the shape of events/*/eventbridge-*.json)."""
    body = sc.payload("ingest_cloudtrail/eventbridge-direct.json")
    body["id"] = str(uuid.uuid4())
    body["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body["resources"] = [f"arn:aws:s3:::{bucket}"]
    body["detail"]["bucket"]["name"] = bucket
    body["detail"]["object"] = {"key": key, "size": 1, "etag": (etag or "0" * 32).strip('"'),
                                "sequencer": "00617F08299329D189"}
    if version:
        body["detail"]["object"]["version-id"] = version
    return body


def alert_events(requests: Iterable[aws.Request]) -> list[dict[str, Any]]:
    """One EventBridge event per findings file the requests completed (PutObject or CompleteMultipartUpload)."""
    out = []
    for r in requests:
        path = r.path.split("?", 1)[0].lstrip("/")
        bucket, _, key = path.partition("/")
        key = unquote(key)
        if bucket != aws.LAKE_BUCKET or not _ALERT_KEY.match(key):
            continue
        completes = (r.method == "PUT" and "partNumber=" not in r.query) or (
            r.method == "POST" and "uploadId=" in r.query)
        if completes:
            out.append(eventbridge(aws.LAKE_BUCKET, key))
    return out


class App:
    """Invoke the template's handlers; one module per "container" (``fresh=True`` starts a new one)."""

    def __init__(self, deployment: aws.Deployment, load: Callable[..., tuple[Any, Any]],
                 server: aws.RecordingMotoServer) -> None:
        self.deployment = deployment
        self.load = load
        self.server = server
        self.containers: dict[str, tuple[Any, Any]] = {}
        self.pending_alert_events: list[dict[str, Any]] = []
        self.versions: dict[tuple[str, str], str] = {}

    # -- sources --------------------------------------------------------------------------------
    def stage(self) -> None:
        sc.stage_sources(self.deployment.client("s3"))

    def ct_body(self, key: str) -> dict[str, Any]:
        return eventbridge(aws.CLOUDTRAIL_BUCKET, key, self.versions.get((aws.CLOUDTRAIL_BUCKET, key)))

    def report_body(self, key: str) -> dict[str, Any]:
        return eventbridge(aws.APPSTREAM_BUCKET, key, self.versions.get((aws.APPSTREAM_BUCKET, key)))

    # -- invocations ----------------------------------------------------------------------------
    def container(self, function: str, fresh: bool = False) -> tuple[Any, Any]:
        if fresh or function not in self.containers:
            self.containers[function] = self.load(function)
        return self.containers[function]

    def invoke(self, function: str, event: dict[str, Any], fresh: bool = False) -> dict[str, Any]:
        _, h = self.container(function, fresh)
        mark = self.server.log.mark()
        result = h(event, aws.FakeContext())
        self.pending_alert_events += alert_events(self.server.log.since(mark))
        return result

    def sqs(self, function: str, bodies: list[dict[str, Any]], fresh: bool = False) -> dict[str, Any]:
        return self.invoke(function, aws.sqs_event(bodies), fresh)

    def retry_failures(self, function: str, event: dict[str, Any], result: dict[str, Any],
                       fresh: bool = True) -> dict[str, Any]:
        """SQS re-delivers exactly the messages a batch reported as failed (to any container)."""
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        records = [r for r in event["Records"] if r["messageId"] in failed]
        return self.invoke(function, {"Records": records}, fresh) if records else {"batchItemFailures": []}

    def publish_pending(self, twice: bool = False, fresh: bool = False) -> None:
        """Deliver the alert events gathered so far (one SQS message each), then forget them."""
        events, self.pending_alert_events = self.pending_alert_events, []
        for body in events * (2 if twice else 1):
            result = self.sqs(PA, [body], fresh)
            assert result == {"batchItemFailures": []}, result

    def clean_run(self) -> None:
        """The reference: each input once, in order, every alert event published once."""
        self.stage()
        for pair in (CT_KEYS[:2], CT_KEYS[2:]):
            assert self.sqs(CT, [self.ct_body(k) for k in pair]) == {"batchItemFailures": []}
        assert self.sqs(UR, [self.report_body(k) for k in REPORT_KEYS]) == {"batchItemFailures": []}
        self.publish_pending()

    # -- what people and queries see -------------------------------------------------------------
    def lake(self, prefix: str = aws.LAKE_PREFIX) -> Any:
        from auditcorr.lake import Lake

        return Lake.open(f"s3://{aws.LAKE_BUCKET}/{prefix}", filesystem=self.deployment.filesystem())

    def snapshot(self, prefix: str = aws.LAKE_PREFIX) -> dict[str, Any]:
        lake = self.lake(prefix)
        tables: dict[str, Any] = {}
        for table in TABLES:
            t = lake.read(table, latest=table in HISTORY_TABLES)
            cols = [c for c in t.column_names if c not in VOLATILE]
            tables[table] = t.select(cols).to_pylist()
        # open and close announcements (updates depend on the wall clock's update window)
        sns = Counter((m["finding_id"], m["announcement"]) for m in
                      (json.loads(x["Message"]) for x in self.deployment.sns_messages())
                      if m["announcement"] != "update")
        findings = {f["Id"]: (f["RecordState"], f["Severity"]["Label"], f["Title"])
                    for f in self.deployment.findings()}
        return {"tables": tables, "sns": sns, "findings": findings}


def _rows(rows: list[dict[str, Any]], ignore: frozenset[str]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(r.items()) if k not in ignore)
                   for r in rows)


def differences(got: dict[str, Any], want: dict[str, Any],
                parts: tuple[str, ...] = ("tables", "sns", "findings"),
                ignore: dict[str, set[str]] | None = None) -> list[str]:
    """Readable differences between two snapshots (empty: identical); ``ignore``: table -> columns."""
    out = []
    for table in TABLES if "tables" in parts else ():
        skip = frozenset((ignore or {}).get(table, ()))
        g, w = _rows(got["tables"][table], skip), _rows(want["tables"][table], skip)
        if g != w:
            out.append(f"{table}: extra {list((g - w).items())[:3]} missing {list((w - g).items())[:3]}")
    if "sns" in parts and got["sns"] != want["sns"]:
        out.append(f"sns: extra {dict(got['sns'] - want['sns'])} missing {dict(want['sns'] - got['sns'])}")
    if "sns" in parts and any(n != 1 for n in got["sns"].values()):
        out.append(f"sns: sent more than once {[k for k, n in got['sns'].items() if n != 1]}")
    for fid in sorted(set(got["findings"]) | set(want["findings"])) if "findings" in parts else ():
        if got["findings"].get(fid) != want["findings"].get(fid):
            out.append(f"finding {fid}: {got['findings'].get(fid)} != {want['findings'].get(fid)}")
    return out
