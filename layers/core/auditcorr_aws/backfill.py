"""Backfill: onboard an existing trail and report history by enqueuing its objects, in delivery
order, into the same ingest queues live notifications use (docs/adr/0011-backfill.md).

The ingest functions then do the work exactly as they do live: one S3 event notification per object,
the same partial-batch failure policy, the same manifests (an object already ingested is answered
"already ingested", so running a backfill twice, or over a period live ingestion already covered,
costs a read and writes nothing).

What is listed, per day from ``since`` to ``until`` (UTC dates, both included):

- the trail: ``<prefix>AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`` and, for an organisation
  trail, ``<prefix>AWSLogs/<o-org id>/<account>/CloudTrail/<region>/YYYY/MM/DD/``.  Accounts and
  regions are discovered with delimiter listings (a few requests), so only the days asked for are
  listed object by object.  Digest and Insights files are not enqueued (the pipeline does nothing
  with them at ingest);
- each report bucket: ``sessions/schedule=DAILY/year=YYYY/month=MM/day=DD/`` and the same under
  ``applications/``.

Delivery order: a CloudTrail file's delivery time is in its name (``..._20260302T0835Z_...``); the
report of day D is placed at the start of day D+1 (AppStream delivers it after the day ends),
after every file CloudTrail delivered during day D.  Ties fall back to the object's name.  Standard
SQS queues do not keep order strictly; the pipeline does not need it (completeness is decided in
data time per account-region, so any order ends in the same tables and opens no alert on a benign
write); the order only keeps re-attribution work small.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, urlsplit

import orjson

#: the configuration id the messages carry, so a backfilled object is recognisable in the logs
CONFIGURATION_ID = "auditcorr-backfill"
REPORT_KINDS = ("sessions", "applications")
#: SendMessageBatch takes at most 10 entries
SQS_BATCH = 10

_CT_TIME = re.compile(r"_CloudTrail_[a-z0-9-]+_(\d{8}T\d{4})Z_")
_ACCOUNT = re.compile(r"^\d{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_REPORT_DAY = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/")


class BackfillError(ValueError):
    """The request cannot be carried out as given (bad location, dates, messages refused)."""


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> Location:
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise BackfillError(f"not an s3:// location: {uri!r}")
        prefix = parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(parts.netloc, prefix)


@dataclass(frozen=True)
class Found:
    """One object to enqueue."""

    source: str  # cloudtrail | report
    bucket: str
    key: str
    etag: str | None
    size: int
    last_modified: datetime
    delivered: datetime

    def sort_key(self) -> tuple[datetime, int, str, str]:
        return (self.delivered, 0 if self.source == "cloudtrail" else 1, self.bucket, self.key)


@dataclass
class BackfillResult:
    found: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    bytes_found: int = 0
    first_delivery: datetime | None = None
    last_delivery: datetime | None = None
    prefixes_listed: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run, "found": dict(self.found), "sent": dict(self.sent),
            "bytes_found": self.bytes_found, "prefixes_listed": self.prefixes_listed,
            "first_delivery": self.first_delivery.isoformat() if self.first_delivery else None,
            "last_delivery": self.last_delivery.isoformat() if self.last_delivery else None,
        }


def days(since: date, until: date) -> list[date]:
    if until < since:
        raise BackfillError(f"--until ({until}) is before --since ({since})")
    return [since + timedelta(days=i) for i in range((until - since).days + 1)]


# -- listing --------------------------------------------------------------------------------------
def _children(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The 'folders' directly under ``prefix`` (their last path part, without the slash)."""
    out: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for cp in page.get("CommonPrefixes", []):
            out.append(cp["Prefix"][len(prefix):].rstrip("/"))
    return out


def _objects(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def trail_region_prefixes(s3: Any, trail: Location) -> list[str]:
    """``.../AWSLogs/[<org>/]<account>/CloudTrail/<region>/`` for every account and region present."""
    root = f"{trail.prefix}AWSLogs/"
    accounts: list[str] = []
    for child in _children(s3, trail.bucket, root):
        if _ACCOUNT.match(child):
            accounts.append(f"{root}{child}/")
        elif _ORG.match(child):
            accounts += [f"{root}{child}/{a}/" for a in _children(s3, trail.bucket, f"{root}{child}/")
                         if _ACCOUNT.match(a)]
    out = []
    for acct in accounts:
        out += [f"{acct}CloudTrail/{r}/" for r in _children(s3, trail.bucket, f"{acct}CloudTrail/")]
    return sorted(out)


def _delivered_cloudtrail(key: str, last_modified: datetime) -> datetime:
    m = _CT_TIME.search(key.rsplit("/", 1)[-1])
    if m:
        return datetime.strptime(m.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)
    return last_modified


def _delivered_report(key: str, last_modified: datetime) -> datetime:
    m = _REPORT_DAY.search(key)
    if m:
        d = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)
    return last_modified


def _found(source: str, bucket: str, obj: dict[str, Any]) -> Found:
    lm = obj["LastModified"]
    lm = lm if lm.tzinfo else lm.replace(tzinfo=UTC)
    key = obj["Key"]
    delivered = (_delivered_cloudtrail if source == "cloudtrail" else _delivered_report)(key, lm)
    etag = obj.get("ETag")
    return Found(source, bucket, key, etag.strip('"') if etag else None, int(obj.get("Size", 0)), lm, delivered)


def list_objects(s3: Any, trails: Iterable[Location], reports: Iterable[Location], since: date, until: date,
                 result: BackfillResult | None = None) -> list[Found]:
    """Every object to enqueue, in delivery order."""
    result = result if result is not None else BackfillResult()
    wanted = days(since, until)
    found: list[Found] = []
    for trail in trails:
        for region_prefix in trail_region_prefixes(s3, trail):
            for d in wanted:
                result.prefixes_listed += 1
                for obj in _objects(s3, trail.bucket, f"{region_prefix}{d:%Y/%m/%d}/"):
                    if obj["Key"].endswith("/") or not int(obj.get("Size", 1)):
                        continue  # folder markers and empty objects
                    found.append(_found("cloudtrail", trail.bucket, obj))
    for rep in reports:
        for kind in REPORT_KINDS:
            for d in wanted:
                result.prefixes_listed += 1
                prefix = f"{rep.prefix}{kind}/schedule=DAILY/year={d:%Y}/month={d:%m}/day={d:%d}/"
                for obj in _objects(s3, rep.bucket, prefix):
                    if obj["Key"].endswith("/"):
                        continue
                    found.append(_found("report", rep.bucket, obj))
    found.sort(key=Found.sort_key)
    for f in found:
        result.found[f.source] += 1
        result.bytes_found += f.size
    if found:
        result.first_delivery, result.last_delivery = found[0].delivered, found[-1].delivered
    return found


# -- the messages ---------------------------------------------------------------------------------
def notification(f: Found, region: str) -> str:
    """The S3 event notification body the ingest functions accept (auditcorr_aws.envelopes)."""
    obj: dict[str, Any] = {"key": quote_plus(f.key, safe="/"), "size": f.size}
    if f.etag:
        obj["eTag"] = f.etag
    record = {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventTime": f.last_modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": CONFIGURATION_ID,
               "bucket": {"name": f.bucket, "arn": f"arn:aws:s3:::{f.bucket}"}, "object": obj},
    }
    return orjson.dumps({"Records": [record]}).decode()


def enqueue(sqs: Any, found: list[Found], queues: dict[str, str], region: str,
            result: BackfillResult | None = None,
            on_batch: Callable[[int], None] | None = None) -> BackfillResult:
    """Send one message per object to its source's queue, in the order given, 10 per request.
    An entry SQS refuses is retried once; what is still refused raises :class:`BackfillError`
    after the rest has been sent (the objects sent are harmless to send again: manifests)."""
    result = result if result is not None else BackfillResult()
    missing = {f.source for f in found} - set(queues)
    if missing:
        raise BackfillError(f"no queue given for: {', '.join(sorted(missing))}")
    refused: list[str] = []
    batch: list[Found] = []

    def flush() -> None:
        if not batch:
            return
        source = batch[0].source
        entries = [{"Id": str(i), "MessageBody": notification(f, region)} for i, f in enumerate(batch)]
        for attempt in range(2):
            resp = sqs.send_message_batch(QueueUrl=queues[source], Entries=entries)
            failed = {e["Id"] for e in resp.get("Failed", [])}
            result.sent[source] += len(entries) - len(failed)
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                break
            if attempt == 1:
                refused.extend(batch[int(e["Id"])].key for e in entries)
        if on_batch:
            on_batch(len(batch))
        batch.clear()

    for f in found:
        if batch and (batch[0].source != f.source or len(batch) == SQS_BATCH):
            flush()
        batch.append(f)
    flush()
    if refused:
        raise BackfillError(f"{len(refused)} message(s) refused by SQS twice, e.g. {refused[0]}")
    return result


def backfill(s3: Any, sqs: Any, trails: list[Location], reports: list[Location], since: date, until: date,
             queues: dict[str, str], region: str, dry_run: bool = False,
             on_batch: Callable[[int], None] | None = None) -> tuple[BackfillResult, list[Found]]:
    """List, order and (unless ``dry_run``) enqueue."""
    result = BackfillResult(dry_run=dry_run)
    found = list_objects(s3, trails, reports, since, until, result)
    if not dry_run:
        enqueue(sqs, found, queues, region, result, on_batch)
    return result, found
