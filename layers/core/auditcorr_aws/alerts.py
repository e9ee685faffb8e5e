"""Publish findings: SNS and Security Hub (ASFF) hear about findings, not about each signal.

The pipeline appends the finding rows that CHANGED as
``<lake>/findings/dt=<window day>/<part-|recompute-|logons-...>.parquet``; ``compact-*`` files only
hold rows already announced.  Each row is one version of a finding and says what it announces
(``auditcorr.findings.announcement``, a pure function of the row):

- ``open``   the finding opened (or re-opened): one message, Security Hub finding created;
- ``update`` it grew: at most one message per ``update_minutes`` window of the pipeline clock
  (``[alerts] update_minutes``, ``FindingUpdateMinutes``); Security Hub, a state and not a pager,
  gets the current count with every findings file (one upsert per finding and file);
- ``close``  every signal was retracted, or every open one is suppressed: one message, Security Hub
  ``RecordState: ARCHIVED``.

Security Hub: ``BatchImportFindings`` (100 per call), ``Id`` = ``finding_id``, with
``FirstObservedAt``/``LastObservedAt``, the signal count (ASFF has no top-level count attribute: it is
``ProductFields["auditcorr/event_count"]`` and the description's first words) and the sample events
as resources and ``ProductFields["auditcorr/sample_event_ids"]``; the imported state is the
finding's LATEST (``findings_latest``), so a late duplicate of an older file never puts a closed
finding back to ACTIVE.  SNS: one message per (finding, announcement, status_since or update
window), under Powertools idempotency in DynamoDB: a retried or re-delivered notification, or two
concurrent invocations, never send the same message twice.  (Security Hub is called first: if SNS
then fails, the retry re-imports identical findings, a no-op, and sends only what was not sent.)

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

from auditcorr.findings import announcement
from auditcorr.lake import Lake
from auditcorr.rules import RULES
from auditcorr.schemas import FINDINGS, conform

from . import s3 as s3mod
from .envelopes import Decoded, ObjectRef, decode
from .settings import Settings, config_from_env, environment

ASFF_SCHEMA_VERSION = "2018-10-08"
FINDINGS_PER_CALL = 100  # BatchImportFindings limit
#: how many sample events a message and a Security Hub finding carry
SAMPLES_SHOWN = 10
#: how long before its notification a changed-findings file can have been computed (the pipeline
#: reads its clock before writing; a Lambda runs at most 15 minutes), plus clock skew
FALLBACK_LOOKBACK = timedelta(minutes=20)
FALLBACK_LOOKAHEAD = timedelta(minutes=5)

FINDING_TYPES: dict[str, list[str]] = {r.id: list(r.asff_types) for r in RULES.values()}

_FINDING_FILE = re.compile(r"/findings/dt=(\d{4}-\d{2}-\d{2})/([^/]+)\.parquet$")


def iso(value: Any) -> Any:
    """ISO 8601 UTC with milliseconds and ``Z`` (ASFF and JSON messages)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: iso(v) for k, v in row.items()}


def read_finding_rows(data: bytes) -> list[dict[str, Any]]:
    """The rows of one findings file, in the FINDINGS schema, JSON-ready (timestamps as ISO strings)."""
    table = pq.read_table(io.BytesIO(data))
    if "dt" in table.column_names:
        table = table.drop_columns(["dt"])
    return [jsonable(r) for r in conform(table, FINDINGS).to_pylist()]


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


def finding(f: Mapping[str, Any], account_id: str, region: str, partition: str = "aws") -> dict[str, Any]:
    """One finding row as an ASFF (2018-10-08) finding for the account's default product."""
    product = f"arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default"
    resources: list[dict[str, Any]] = []
    if f.get("claimed_session_id"):
        resources.append({"Type": "Other", "Id": f"appstream-session/{f['claimed_session_id']}",
                          "Partition": partition, "Region": region})
    if f.get("principal_arn"):
        resources.append({"Type": "Other", "Id": str(f["principal_arn"])[:512], "Partition": partition,
                          "Region": region})
    for ev in (f.get("sample_event_ids") or [])[:SAMPLES_SHOWN]:
        resources.append({"Type": "Other", "Id": f"cloudtrail-event/{ev}", "Partition": partition, "Region": region})
    if not resources:
        resources.append({"Type": "Other", "Id": f"auditcorr-finding/{f['finding_id']}", "Partition": partition,
                          "Region": region})
    product_fields = {f"auditcorr/{k}": str(f[k]) for k in
                      ("rule", "status", "group_key", "status_reason", "user_id", "claimed_session_id", "account_id")
                      if f.get(k)}
    product_fields["auditcorr/event_count"] = str(f.get("event_count") or 0)
    product_fields["auditcorr/sample_event_ids"] = ",".join((f.get("sample_event_ids") or [])[:SAMPLES_SHOWN])
    out: dict[str, Any] = {
        "SchemaVersion": ASFF_SCHEMA_VERSION,
        "Id": f["finding_id"],
        "ProductArn": product,
        "GeneratorId": f"auditcorr/{f['rule']}",
        # the account that imports the finding (BatchImportFindings of the default product takes its
        # own account); the account the finding is about is in ProductFields ``auditcorr/account_id``
        "AwsAccountId": account_id,
        "Types": FINDING_TYPES.get(str(f["rule"]), ["Unusual Behaviors/User"]),
        "CreatedAt": f.get("created_at") or f.get("updated_at"),
        "UpdatedAt": f.get("updated_at") or f.get("created_at"),
        "Severity": {"Label": f.get("severity") or "MEDIUM"},
        "Title": _truncate(f.get("title"), 256),
        "Description": _truncate(f.get("description"), 1024),
        "Resources": resources[:32],
        "ProductFields": product_fields,
        "RecordState": "ACTIVE" if f.get("status") == "open" else "ARCHIVED",
    }
    if f.get("first_event_time"):
        out["FirstObservedAt"] = f["first_event_time"]
    if f.get("last_event_time"):
        out["LastObservedAt"] = f["last_event_time"]
    ip = f.get("source_ip")
    if ip and re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", str(ip)):
        out["Network"] = {"Direction": "IN", "SourceIpV4": ip}
    return out


_VERB = {"open": "opened", "update": "grew", "close": "closed"}


def sns_message(f: Mapping[str, Any]) -> dict[str, Any]:
    """``sns.publish`` arguments for one announcement (``f["announcement"]``): a short subject, the
    finding as JSON, attributes for filter policies."""
    kind = f.get("announcement")
    subject = (f"auditcorr {f.get('severity')} {_VERB.get(str(kind), kind)}: {f.get('rule')} "
               f"({f.get('event_count')} signal(s))")
    subject = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)[:100]
    attributes = {k: {"DataType": "String", "StringValue": str(f[k])}
                  for k in ("rule", "severity", "status", "announcement") if f.get(k)}
    body = {k: v for k, v in f.items() if k != "idempotency_key"}
    return {"Subject": subject, "Message": orjson.dumps(body, option=orjson.OPT_INDENT_2).decode(),
            "MessageAttributes": attributes}


def batched(items: list[Any], n: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i: i + n]


@dataclass
class PublishTotals:
    finding_files: int = 0
    finding_files_skipped: int = 0
    finding_files_missing: int = 0
    finding_rows: int = 0
    #: rows with nothing to announce (an update inside the throttle window, a suppressed finding)
    finding_rows_quiet: int = 0
    messages_sent: int = 0
    messages_already_sent: int = 0
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

    def import_findings(self, rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Import (or update) one Security Hub finding per row; ``(imported, failed)``. A finding Security
        Hub rejects as invalid is logged and counted (retrying the same finding cannot help); an API
        error (throttling, 5xx, access) propagates so the message is retried."""
        imported = failed = 0
        findings = [finding(a, self.account_id, self.region, self.partition) for a in rows]
        for chunk in batched(findings, FINDINGS_PER_CALL):
            resp = self.client.batch_import_findings(Findings=chunk)
            imported += int(resp.get("SuccessCount", 0))
            bad = resp.get("FailedFindings") or []
            failed += int(resp.get("FailedCount", len(bad)))
            for f in bad:
                self.log.error("finding rejected by Security Hub",
                               extra={"finding_id": f.get("Id"), "error_code": f.get("ErrorCode")})
        return imported, failed


class AlertPublisher:
    """One per Lambda container; the clients and the idempotency store are made on first use."""

    def __init__(self, settings: Settings, s3_client: Any, sns_client: Any, persistence: Any,
                 hub: SecurityHubSink | None, lake_factory: Callable[[], Lake], logger: Any,
                 update_minutes: int = 15) -> None:
        self.settings = settings
        self.update_ms = int(update_minutes) * 60_000
        self.s3 = s3_client
        self.sns = sns_client
        self.hub = hub
        self.log = logger
        self._lake_factory = lake_factory
        self._lake: Lake | None = None
        self.totals = PublishTotals()
        self.idempotency = IdempotencyConfig(event_key_jmespath="idempotency_key",
                                             raise_on_no_idempotency_key=True,
                                             expires_after_seconds=settings.idempotency_days * 86400)
        self._sent_now = 0

        @idempotent_function(data_keyword_argument="finding", persistence_store=persistence,
                             config=self.idempotency, key_prefix="auditcorr-finding")
        def send_once(finding: dict[str, Any]) -> dict[str, Any]:
            resp = self.sns.publish(TopicArn=self.settings.alert_topic_arn, **sns_message(finding))
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
                   lambda: s3mod.open_lake(settings.lake_uri, settings.region, env), logger,
                   update_minutes=config_from_env(env).update_minutes)

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

    def _findings_file(self, ref: ObjectRef) -> tuple[str, str] | None:
        """``(dt, file name)`` if ``ref`` is a changed-findings file of this lake, else None."""
        prefix = f"{self.settings.lake_prefix}/findings/" if self.settings.lake_prefix else "findings/"
        if ref.bucket != self.settings.lake_bucket or not ref.key.startswith(prefix):
            return None
        m = _FINDING_FILE.search("/" + ref.key)
        if not m:
            return None
        return m.group(1), m.group(2)

    def publish_object(self, ref: ObjectRef) -> None:
        found = self._findings_file(ref)
        if found is None or found[1].startswith(("compact-", ".", "_")):
            # directory markers, other tables (signals in alerts/ are not published), compactions
            self.totals.finding_files_skipped += 1
            return
        dt, name = found
        self.totals.finding_files += 1
        try:
            data, _ = s3mod.get_object(self.s3, ref)
            rows = read_finding_rows(data)
        except s3mod.ObjectGone as exc:
            self.totals.finding_files_missing += 1
            rows = self.recent_rows(dt, _parse_time(ref.event_time) or datetime.now(UTC))
            self.log.warning("findings file gone (compacted); using the partition's recent changes",
                             extra={"error_code": exc.code, "dt": dt, "file": name, "rows": len(rows)})
        self.publish(rows, source=f"{dt}/{name}", dt=dt)

    def recent_rows(self, dt: str, at: datetime) -> list[dict[str, Any]]:
        """Rows of partition ``dt`` whose ``updated_at`` lies in the window before ``at``."""
        t = self._lake_or_open().read("findings", [dt], latest=False)
        if t.num_rows == 0:
            return []
        lo = pa.scalar(at - FALLBACK_LOOKBACK, FINDINGS.field("updated_at").type)
        hi = pa.scalar(at + FALLBACK_LOOKAHEAD, FINDINGS.field("updated_at").type)
        upd = t.column("updated_at")
        t = t.filter(pc.and_(pc.greater_equal(upd, lo), pc.less_equal(upd, hi)))
        t = t.drop_columns(["dt"]) if "dt" in t.column_names else t
        return [jsonable(r) for r in conform(t, FINDINGS).to_pylist()]

    def _lake_or_open(self) -> Lake:
        if self._lake is None:
            self._lake = self._lake_factory()
        return self._lake

    def current_states(self, dt: str | None, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """For each finding in ``rows``, its latest state: the lake's (``findings_latest``) or the
        newest row given, whichever is later.  What Security Hub gets: a late duplicate or a retry
        of an OLDER file must not put a finding it already holds as closed back to ACTIVE."""
        out: dict[str, dict[str, Any]] = {}
        for a in rows:
            best = out.get(a["finding_id"])
            if best is None or str(a.get("updated_at") or "") > str(best.get("updated_at") or ""):
                out[a["finding_id"]] = a
        if not rows or dt is None:
            return out
        ids = sorted(out)
        t = self._lake_or_open().read("findings", [dt], filter=pc.field("finding_id").isin(ids), latest=True)
        t = t.drop_columns(["dt"]) if "dt" in t.column_names else t
        for r in conform(t, FINDINGS).to_pylist() if t.num_rows else []:
            current = jsonable(r)
            if str(current.get("updated_at") or "") >= str(out[current["finding_id"]].get("updated_at") or ""):
                out[current["finding_id"]] = current
        return out

    def announcements(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages ``rows`` (finding versions) make: each row with its ``announcement`` and the
        ``idempotency_key`` that makes it go out once (open/close: the status' start; update: the
        update window of the version's ``updated_at``)."""
        out: dict[str, dict[str, Any]] = {}
        for r in sorted(rows, key=lambda x: str(x.get("updated_at") or "")):
            kind = announcement(r.get("status"), r.get("previous_status"), _ms(r.get("updated_at")),
                                _ms(r.get("previous_updated_at")), self.update_ms)
            if kind is None:
                continue
            if kind == "update":
                upd = _ms(r.get("updated_at")) or 0
                when = str(upd // self.update_ms if self.update_ms > 0 else upd)
            else:
                when = str(r.get("status_since") or r.get("updated_at"))
            key = f"{r['finding_id']}|{kind}|{when}"
            out[key] = {**r, "announcement": kind, "idempotency_key": key}
        return list(out.values())

    def publish(self, rows: list[dict[str, Any]], source: str, dt: str | None = None) -> None:
        self.totals.finding_rows += len(rows)
        messages = self.announcements(rows)
        self.totals.finding_rows_quiet += len(rows) - len(messages)
        # Security Hub mirrors the state: every version of a finding that is or was open (an upsert by
        # id, one call per 100 findings of the file: its rate follows the files, not the signals)
        mirrored = sorted({r["finding_id"] for r in rows if "open" in (r.get("status"), r.get("previous_status"))})
        if self.hub is not None and mirrored:
            current = self.current_states(dt, rows)
            imported, failed = self.hub.import_findings([current[fid] for fid in mirrored])
            self.totals.findings_imported += imported
            self.totals.findings_failed += failed
        sent_before = self._sent_now
        for m in messages:
            self._send_once(finding=m)
        sent = self._sent_now - sent_before
        self.totals.messages_sent += sent
        self.totals.messages_already_sent += len(messages) - sent
        self.log.info("findings published", extra={
            "file": source, "rows": len(rows), "messages": len(messages), "sns_sent": sent,
            "sns_already_sent": len(messages) - sent,
            "finding_ids": sorted({m["finding_id"] for m in messages})[:50],
            "announcements": sorted({m["announcement"] for m in messages})})


def _ms(value: Any) -> int | None:
    t = _parse_time(value) if isinstance(value, str) else value
    return int(t.timestamp() * 1000) if isinstance(t, datetime) else None
