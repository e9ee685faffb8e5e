"""The integrity alerts: the validator's signals as rows of the ``alerts`` table.

Same life cycle as every other alert (``rules.alert_id``, ``rules.reconcile`` through
``pipeline.alert_merge``): the subject of an integrity alert is the file it is about, by its key
from ``AWSLogs/`` on, stored in the alert's ``event_id`` column (that is what the merge reads
earlier versions by, and what a later validation closes them by); ``bucket``/``key`` name the
object; ``event_time`` is the file's time (its ``dt``).

Severities (defaults in ``config.INTEGRITY_SEVERITY``, overridable in ``[alerts.severity]``):
``log_file_modified`` CRITICAL (the evidence itself was altered), ``digest_signature_invalid``
CRITICAL (a digest that does not verify with CloudTrail's key was forged or altered),
``log_file_missing`` HIGH (a log file CloudTrail delivered is gone: events may be hidden),
``digest_chain_broken`` HIGH (a digest names a predecessor that does not match: re-ordered or
substituted digests), ``digest_chain_gap`` MEDIUM (digests are missing: deleted, or not delivered
to this lake; their log files cannot be verified).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from .. import rules
from ..config import Config
from ..schemas import ALERTS, conform
from .validate import (
    RULE_CHAIN_BROKEN,
    RULE_CHAIN_GAP,
    RULE_DIGEST_SIGNATURE,
    RULE_LOG_MISSING,
    RULE_LOG_MODIFIED,
    Signal,
)

INTEGRITY_RULES = (RULE_LOG_MODIFIED, RULE_LOG_MISSING, RULE_DIGEST_SIGNATURE, RULE_CHAIN_GAP, RULE_CHAIN_BROKEN)

#: why an integrity alert was closed: a later validation no longer finds the problem
CLOSED_REASON = "no longer found by a later validation (e.g. the log file or digest arrived after the check)"

@dataclass(frozen=True)
class _Text:
    title: str
    description: str


RULES: dict[str, _Text] = {
    RULE_LOG_MODIFIED: _Text(
        "CloudTrail log file differs from what CloudTrail delivered",
        "Log file {key} does not match the SHA-256 its signed digest lists ({reason}): the records "
        "attributed from it may have been altered.",
    ),
    RULE_LOG_MISSING: _Text(
        "CloudTrail log file listed by a signed digest is missing",
        "Digest {digest} lists log file {key}, which was never ingested ({reason}): events may have been "
        "deleted.",
    ),
    RULE_DIGEST_SIGNATURE: _Text(
        "CloudTrail digest signature does not verify",
        "Digest {key} does not verify with CloudTrail's public key ({reason}): it was altered, moved or forged.",
    ),
    RULE_CHAIN_GAP: _Text(
        "CloudTrail digests missing from the chain",
        "Digest {key} names a predecessor that was never ingested ({reason}): digests were deleted or not "
        "delivered, and the log files of those hours cannot be verified.",
    ),
    RULE_CHAIN_BROKEN: _Text(
        "CloudTrail digest chain broken",
        "Digest {key} does not chain to the digest before it ({reason}): digests were re-ordered, substituted "
        "or forged.",
    ),
}


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alert row says about its file: the object as ingested, its time."""

    object_key: str
    file_time: datetime | None
    digest_key: str | None = None


def signal_event_id(signal: Signal) -> str:
    """The alert's subject: the file's key from ``AWSLogs/`` on (a gap: the digest after it)."""
    return signal.subject.split("\n", 1)[0]


def bucket_and_key(object_key: str) -> tuple[str | None, str]:
    """``s3://bucket/key`` -> (bucket, key); a local path -> (None, path)."""
    if object_key.startswith("s3://"):
        bucket, _, key = object_key[5:].partition("/")
        return bucket, key
    return None, object_key


def alert_rows(signals: Sequence[Signal], subjects: Mapping[str, Subject], config: Config) -> pa.Table:
    """Alert rows (``rules.ALERT_IN`` conformed to ALERTS) for the signals whose subject is known."""
    out = []
    for s in signals:
        if not config.rule_enabled(s.rule):
            continue
        event_id = signal_event_id(s)
        subject = subjects.get(event_id)
        if subject is None:
            continue
        bucket, key = bucket_and_key(subject.object_key)
        info = RULES[s.rule]
        fields = {"key": subject.object_key, "reason": s.reason or "-", "digest": subject.digest_key or "-"}
        out.append({
            "alert_id": rules.alert_id(s.rule, event_id),
            "rule": s.rule,
            "severity": config.severity.get(s.rule, "MEDIUM"),
            "status": rules.OPEN,
            "status_reason": None,
            "event_id": event_id,
            "event_time": subject.file_time,
            "bucket": bucket,
            "key": key,
            "title": info.title,
            "description": info.description.format(**fields),
        })
    if not out:
        return ALERTS.empty_table()
    return conform(pa.Table.from_pylist(out, schema=rules.ALERT_IN), ALERTS)
