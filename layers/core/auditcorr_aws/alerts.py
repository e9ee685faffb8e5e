"""Publish alert changes: SNS (exactly once per alert and status) and Security Hub (ASFF).

The pipeline appends the alert rows that CHANGED (new, re-opened, closed) as
``<lake>/alerts/dt=<day>/<part-|recompute-|logons-...>.parquet``; ``compact-*`` files only hold rows
already announced. A notification for such a file is turned into:

- one Security Hub ``BatchImportFindings`` call per 100 rows, finding ``Id`` = ``alert_id``: a retry
  (or a later status change) updates the finding instead of adding one; closed alerts are imported
  with ``RecordState: ARCHIVED``;
- one SNS message per row, under Powertools idempotency keyed on ``[alert_id, status]`` in DynamoDB:
  a retried or re-delivered notification, or two concurrent invocations raising the same alert,
  never send the same message twice. (Security Hub is called first: if SNS then fails, the retry
  re-imports identical findings, a no-op, and sends only what was not sent.)

If the file is already gone when the notification is handled (a compaction in the same partition
deleted it), and no version id came with the notification, the rows are taken from the partition's
files whose ``updated_at`` falls in the window before the notification; the idempotency table keeps
that from re-sending anything already sent. With bucket versioning on, the exact version is read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from auditcorr.lake import Lake
from auditcorr.rules import RULES
from auditcorr.schemas import ALERTS, conform

from . import s3 as s3mod
from .envelopes import Decoded, ObjectRef, decode
from .settings import Settings, environment

ASFF_SCHEMA_VERSION = "2018-10-08"
FINDINGS_PER_CALL = 100  # BatchImportFindings limit
#: how long before its notification a changed-alerts file can have been computed (the pipeline
#: reads its clock before writing; a Lambda runs at most 15 minutes), plus clock skew
FALLBACK_LOOKBACK = timedelta(minutes=20)
FALLBACK_LOOKAHEAD = timedelta(minutes=5)

FINDING_TYPES: dict[str, list[str]] = {r.id: list(r.asff_types) for r in RULES.values()}

_ALERT_FILE = re.compile(r"/alerts/dt=(\d{4}-\d{2}-\d{2})/([^/]+)\.parquet$")


def iso(value: Any) -> Any:
    """ISO 8601 UTC with milliseconds and ``Z`` (ASFF and JSON messages)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: iso(v) for k, v in row.items()}


def read_alert_rows(data: bytes) -> list[dict[str, Any]]:
    """The rows of one alerts file, in the ALERTS schema, JSON-ready (timestamps as ISO strings)."""
    table = pq.read_table(io.BytesIO(data))
    if "dt" in table.column_names:
        table = table.drop_columns(["dt"])
    return [jsonable(r) for r in conform(table, ALERTS).to_pylist()]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _truncate(text: str | None, limit: int) -> str:
    text = text or "-"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finding(alert: Mapping[str, Any], account_id: str, region: str, partition: str = "aws") -> dict[str, Any]:
    """One alert row as an ASFF (2018-10-08) finding for the account's default product."""
    product = f"arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default"
    resources: list[dict[str, Any]] = []
    if alert.get("bucket") and alert.get("key"):
        resources.append({"Type": "AwsS3Object", "Id": f"arn:{partition}:s3:::{alert['bucket']}/{alert['key']}",
                          "Partition": partition, "Region": region})
    if alert.get("session_id") or alert.get("claimed_session_id"):
        sid = alert.get("session_id") or alert.get("claimed_session_id")
        resources.append({"Type": "Other", "Id": f"appstream-session/{sid}", "Partition": partition,
                          "Region": region})
    if not resources:
        resources.append({"Type": "Other", "Id": f"auditcorr-event/{alert.get('event_id') or alert['alert_id']}",
                          "Partition": partition, "Region": region})
    product_fields = {f"auditcorr/{k}": str(alert[k]) for k in
                      ("rule", "status", "event_id", "user_id", "session_id", "claimed_session_id", "status_reason")
                      if alert.get(k)}
    out: dict[str, Any] = {
        "SchemaVersion": ASFF_SCHEMA_VERSION,
        "Id": alert["alert_id"],
        "ProductArn": product,
        "GeneratorId": f"auditcorr/{alert['rule']}",
        "AwsAccountId": account_id,
        "Types": FINDING_TYPES.get(str(alert["rule"]), ["Unusual Behaviors/User"]),
        "CreatedAt": alert.get("detected_at") or alert.get("updated_at"),
        "UpdatedAt": alert.get("updated_at") or alert.get("detected_at"),
        "Severity": {"Label": alert.get("severity") or "MEDIUM"},
        "Title": _truncate(alert.get("title"), 256),
        "Description": _truncate(alert.get("description"), 1024),
        "Resources": resources,
        "ProductFields": product_fields,
        "RecordState": "ARCHIVED" if alert.get("status") == "closed" else "ACTIVE",
    }
    if alert.get("event_time"):
        out["FirstObservedAt"] = out["LastObservedAt"] = alert["event_time"]
    ip = alert.get("source_ip")
    if ip and re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", str(ip)):
        out["Network"] = {"Direction": "IN", "SourceIpV4": ip}
    return out


def sns_message(alert: Mapping[str, Any]) -> dict[str, Any]:
    """``sns.publish`` arguments: a short subject, the alert as JSON, attributes for filter policies."""
    subject = f"auditcorr {alert.get('severity')} {alert.get('status')}: {alert.get('rule')}"
    subject = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)[:100]
    attributes = {k: {"DataType": "String", "StringValue": str(alert[k])}
                  for k in ("rule", "severity", "status") if alert.get(k)}
    return {"Subject": subject, "Message": orjson.dumps(dict(alert), option=orjson.OPT_INDENT_2).decode(),
            "MessageAttributes": attributes}


def batched(items: list[Any], n: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i: i + n]


@dataclass
class PublishTotals:
    alert_files: int = 0
    alert_files_skipped: int = 0
    alert_files_missing: int = 0
    alert_rows: int = 0
    alerts_published: int = 0
    alerts_already_published: int = 0
    findings_imported: int = 0
    findings_failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class SecurityHubSink:
    def __init__(self, client: Any, account_id: str, region: str, partition: str, logger: Any) -> None:
        self.client = client
        self.account_id = account_id
        self.region = region
        self.partition = partition
        self.log = logger

    def import_alerts(self, alerts: list[dict[str, Any]]) -> tuple[int, int]:
        """Import (or update) one finding per alert; ``(imported, failed)``. A finding Security Hub
        rejects as invalid is logged and counted (retrying the same finding cannot help); an API
        error (throttling, 5xx, access) propagates so the message is retried."""
        imported = failed = 0
        findings = [finding(a, self.account_id, self.region, self.partition) for a in alerts]
        for chunk in batched(findings, FINDINGS_PER_CALL):
            resp = self.client.batch_import_findings(Findings=chunk)
            imported += int(resp.get("SuccessCount", 0))
            bad = resp.get("FailedFindings") or []
            failed += int(resp.get("FailedCount", len(bad)))
            for f in bad:
                self.log.error("finding rejected by Security Hub",
                               extra={"alert_id": f.get("Id"), "error_code": f.get("ErrorCode")})
        return imported, failed


class AlertPublisher:
    """One per Lambda container; the clients and the idempotency store are made on first use."""

    def __init__(self, settings: Settings, s3_client: Any, sns_client: Any, persistence: Any,
                 hub: SecurityHubSink | None, lake_factory: Callable[[], Lake], logger: Any) -> None:
        self.settings = settings
        self.s3 = s3_client
        self.sns = sns_client
        self.hub = hub
        self.log = logger
        self._lake_factory = lake_factory
        self._lake: Lake | None = None
        self.totals = PublishTotals()
        self.idempotency = IdempotencyConfig(event_key_jmespath="[alert_id, status]",
                                             raise_on_no_idempotency_key=True,
                                             expires_after_seconds=settings.idempotency_days * 86400)
        self._sent_now = 0

        @idempotent_function(data_keyword_argument="alert", persistence_store=persistence,
                             config=self.idempotency, key_prefix="auditcorr-alert")
        def send_once(alert: dict[str, Any]) -> dict[str, Any]:
            resp = self.sns.publish(TopicArn=self.settings.alert_topic_arn, **sns_message(alert))
            self._sent_now += 1
            return {"MessageId": resp.get("MessageId")}

        self._send_once = send_once

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None, logger: Any) -> AlertPublisher:
        env = environment(env)
        settings = Settings.from_env(env)
        if not settings.alert_topic_arn or not settings.idempotency_table:
            raise ValueError("AUDITCORR_ALERT_TOPIC_ARN and AUDITCORR_IDEMPOTENCY_TABLE must be set")
        persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table,
                                               boto3_client=s3mod.client("dynamodb"))
        hub = None
        if settings.security_hub:
            account = settings.account_id or s3mod.client("sts").get_caller_identity()["Account"]
            hub = SecurityHubSink(s3mod.client("securityhub"), account, settings.region, settings.partition, logger)
        return cls(settings, s3mod.client("s3"), s3mod.client("sns"), persistence, hub,
                   lambda: s3mod.open_lake(settings.lake_uri, settings.region, env), logger)

    # -- per invocation -------------------------------------------------------------------------
    def start(self, lambda_context: Any = None) -> None:
        self.totals = PublishTotals()
        if lambda_context is not None:
            self.idempotency.register_lambda_context(lambda_context)

    def emit(self, metrics: Any) -> None:
        for name, value in self.totals.as_dict().items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    # -- per message ----------------------------------------------------------------------------
    def handle(self, body: str | bytes | dict[str, Any]) -> Decoded:
        decoded = decode(body)
        for ref in decoded.refs:
            self.publish_object(ref)
        if not decoded.refs:
            self.log.info("message ignored", extra={"ignored": decoded.ignored})
        return decoded

    def _alerts_file(self, ref: ObjectRef) -> tuple[str, str] | None:
        """``(dt, file name)`` if ``ref`` is a changed-alerts file of this lake, else None."""
        prefix = f"{self.settings.lake_prefix}/alerts/" if self.settings.lake_prefix else "alerts/"
        if ref.bucket != self.settings.lake_bucket or not ref.key.startswith(prefix):
            return None
        m = _ALERT_FILE.search("/" + ref.key)
        if not m:
            return None
        return m.group(1), m.group(2)

    def publish_object(self, ref: ObjectRef) -> None:
        found = self._alerts_file(ref)
        if found is None or found[1].startswith(("compact-", ".", "_")):
            # directory markers, other tables, compactions (rows already announced)
            self.totals.alert_files_skipped += 1
            return
        dt, name = found
        self.totals.alert_files += 1
        try:
            data, _ = s3mod.get_object(self.s3, ref)
            alerts = read_alert_rows(data)
        except s3mod.ObjectGone as exc:
            self.totals.alert_files_missing += 1
            alerts = self.recent_rows(dt, _parse_time(ref.event_time) or datetime.now(UTC))
            self.log.warning("alerts file gone (compacted); using the partition's recent changes",
                             extra={"error_code": exc.code, "dt": dt, "file": name, "rows": len(alerts)})
        self.publish(alerts, source=f"{dt}/{name}", dt=dt)

    def recent_rows(self, dt: str, at: datetime) -> list[dict[str, Any]]:
        """Rows of partition ``dt`` whose ``updated_at`` lies in the window before ``at``."""
        t = self._lake_or_open().read("alerts", [dt], latest=False)
        if t.num_rows == 0:
            return []
        lo = pa.scalar(at - FALLBACK_LOOKBACK, ALERTS.field("updated_at").type)
        hi = pa.scalar(at + FALLBACK_LOOKAHEAD, ALERTS.field("updated_at").type)
        upd = t.column("updated_at")
        t = t.filter(pc.and_(pc.greater_equal(upd, lo), pc.less_equal(upd, hi)))
        t = t.drop_columns(["dt"]) if "dt" in t.column_names else t
        return [jsonable(r) for r in conform(t, ALERTS).to_pylist()]

    def _lake_or_open(self) -> Lake:
        if self._lake is None:
            self._lake = self._lake_factory()
        return self._lake

    def current_states(self, dt: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """For each alert in ``rows``, its latest state in the lake (``alerts_latest``), or the row
        itself when the lake holds nothing newer. A late duplicate or a retry of an OLDER changed-alerts
        file must not put an alert Security Hub already holds as closed back to ACTIVE."""
        if not rows:
            return rows
        ids = sorted({str(a["alert_id"]) for a in rows})
        t = self._lake_or_open().read("alerts", [dt], filter=pc.field("alert_id").isin(ids), latest=True)
        t = t.drop_columns(["dt"]) if "dt" in t.column_names else t
        lake_rows = {r["alert_id"]: jsonable(r) for r in conform(t, ALERTS).to_pylist()} if t.num_rows else {}
        out: dict[str, dict[str, Any]] = {}
        for a in rows:
            best = out.get(a["alert_id"], a)
            if str(a.get("updated_at") or "") > str(best.get("updated_at") or ""):
                best = a
            current = lake_rows.get(a["alert_id"])
            if current is not None and str(current.get("updated_at") or "") >= str(best.get("updated_at") or ""):
                best = current
            out[a["alert_id"]] = best
        return list(out.values())

    def publish(self, alerts: list[dict[str, Any]], source: str, dt: str | None = None) -> None:
        # one message per (alert, status): the latest row of each pair in this batch
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for a in sorted(alerts, key=lambda r: str(r.get("updated_at") or "")):
            latest[(a["alert_id"], a["status"])] = a
        rows = list(latest.values())
        self.totals.alert_rows += len(rows)
        if self.hub is not None and rows:
            imported, failed = self.hub.import_alerts(self.current_states(dt, rows) if dt else rows)
            self.totals.findings_imported += imported
            self.totals.findings_failed += failed
        sent_before = self._sent_now
        for a in rows:
            self._send_once(alert=a)
        sent = self._sent_now - sent_before
        self.totals.alerts_published += sent
        self.totals.alerts_already_published += len(rows) - sent
        self.log.info("alerts published", extra={
            "file": source, "rows": len(rows), "sns_sent": sent, "sns_already_sent": len(rows) - sent,
            "alert_ids": [a["alert_id"] for a in rows][:50],
            "statuses": sorted({a["status"] for a in rows})})
