"""Feed announced S3 objects to the core pipeline (shared by ``ingest_cloudtrail`` and
``ingest_usage_report``).

Failure policy -- a message is reported as a batch item failure only when retrying can help:

- the object is unreadable (corrupt gzip, not JSON/CSV, no report day): the pipeline quarantines it
  with its reason under ``<lake>/quarantine/`` and the message SUCCEEDS (a retry reads the same bytes);
- the object is gone (``NoSuchKey``, archived): logged, counted, the message succeeds;
- anything else (S3 throttling/5xx after the client's own retries, access denied, a lake write that
  failed, a concurrent compaction that removed a file being read): the exception propagates, the
  message is retried by SQS and lands in the dead-letter queue (alarmed) if it keeps failing;
- an envelope nobody knows: :class:`~.envelopes.UnrecognisedMessage` propagates too, so it ends in
  the dead-letter queue for a person to look at instead of being dropped.

A retried or re-delivered message is harmless: the pipeline keeps a manifest per input object
(name + ETag) and answers "already ingested" without writing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from auditcorr.counts import FileOutcome, IngestSummary
from auditcorr.lake import input_id
from auditcorr.pipeline import Pipeline, wall_clock

from . import s3 as s3mod
from .cloudtrail_keys import key_fetcher
from .envelopes import Decoded, ObjectRef, decode
from .settings import Settings, config_from_env, environment

Accept = Callable[[ObjectRef], str | None]  # None: accept; else the reason to ignore


def accept_bucket(buckets: str | Iterable[str] | None, prefixes: tuple[str, ...] = ()) -> Accept:
    """Accept objects of ``buckets`` (one name or several; any bucket if None or empty) whose key starts
    with one of ``prefixes``."""
    allowed = frozenset([buckets] if isinstance(buckets, str) else buckets or ())

    def check(ref: ObjectRef) -> str | None:
        if allowed and ref.bucket not in allowed:
            return "object of another bucket"
        if prefixes and not ref.key.startswith(prefixes):
            return "key outside the expected prefixes"
        return None

    return check


@dataclass
class IngestTotals:
    """What one invocation did (emitted as EMF metrics)."""

    messages_ignored: int = 0
    objects_ingested: int = 0
    objects_ignored: int = 0
    objects_missing: int = 0
    objects_already_ingested: int = 0
    files_quarantined: int = 0
    records_in: int = 0
    written: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: int = 0
    alerts_opened: int = 0
    alerts_closed: int = 0

    def add_outcome(self, out: FileOutcome) -> None:
        self.records_in += out.records_in
        self.written += out.written
        self.duplicates += out.duplicates
        self.skipped += out.skipped
        self.rejected += out.rejected
        if out.error:
            self.files_quarantined += 1

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Ingestor:
    """One per Lambda container: the pipeline and the S3 client are built once, on first use."""

    def __init__(self, s3_client: Any, pipeline: Pipeline, accept: Accept, logger: Any) -> None:
        self.s3 = s3_client
        self.pipeline = pipeline
        self.accept = accept
        self.log = logger
        self.totals = IngestTotals()
        self.summary = IngestSummary()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None, accept_for: Callable[[Settings], Accept],
                 logger: Any) -> Ingestor:
        env = environment(env)
        settings = Settings.from_env(env)
        lake = s3mod.open_lake(settings.lake_uri, settings.region, env)
        pipeline = Pipeline(lake, config_from_env(env), clock=wall_clock, key_fetcher=key_fetcher())
        return cls(s3mod.client("s3"), pipeline, accept_for(settings), logger)

    # -- per invocation -------------------------------------------------------------------------
    def start(self, lambda_context: Any = None) -> None:
        self.totals = IngestTotals()
        self.summary = IngestSummary()

    def emit(self, metrics: Any) -> None:
        t = self.totals
        t.alerts_opened, t.alerts_closed = self.summary.alerts_opened, self.summary.alerts_closed
        for name, value in t.as_dict().items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    # -- per message ----------------------------------------------------------------------------
    def handle(self, body: str | bytes | dict[str, Any]) -> Decoded:
        decoded = decode(body)
        if not decoded.refs:
            self.totals.messages_ignored += 1
            self.log.info("message ignored", extra={"ignored": decoded.ignored})
            return decoded
        for ref in decoded.refs:
            why = self.accept(ref)
            if why:
                self.totals.objects_ignored += 1
                self.log.info("object ignored", extra={"reason": why, "bucket": ref.bucket})
                continue
            self.ingest(ref)
        return decoded

    def ingest(self, ref: ObjectRef) -> FileOutcome | None:
        try:
            data, etag, metadata = s3mod.get_object_and_metadata(self.s3, ref)
        except s3mod.ObjectGone as exc:
            self.totals.objects_missing += 1
            self.log.warning("object gone before it could be read", extra={"error_code": exc.code,
                                                                           "object": ref.uri})
            return None
        # a digest's signature is its S3 user metadata; the bucket it was read from is checked against
        # the location the digest names
        out = self.pipeline.ingest_object(ref.uri, data, etag=etag, summary=self.summary,
                                          metadata={"Metadata": metadata}, bucket=ref.bucket)
        self.summary.files.append(out)
        self.totals.add_outcome(out)
        iid = input_id(ref.uri, data, etag)
        if out.error:
            # the pipeline has copied the object to <lake>/quarantine/<input_id>/ with the reason
            self.log.warning("object quarantined", extra={"object": ref.uri, "input_id": iid,
                                                           "reason": out.error})
            return out
        if out.note and out.note.startswith("already ingested"):
            self.totals.objects_already_ingested += 1
        else:
            self.totals.objects_ingested += 1
        self.log.info("object ingested", extra={
            "object": ref.uri, "input_id": iid, "kind": out.kind, "records_in": out.records_in,
            "written": out.written, "duplicates": out.duplicates, "skipped": out.skipped,
            "rejected": out.rejected, "note": out.note})
        return out
