"""Decode the notification envelopes that announce a new S3 object (pure: no AWS calls).

Real deployments deliver "an object was created" in several shapes; each may arrive as an SQS
message body, and may be wrapped once more in an SNS envelope (``{"Type": "Notification",
"Message": "<json>"}``) when a topic fans out to the queue:

- S3 event notification ``{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
  "s3": {"bucket": {"name"}, "object": {"key", "eTag", "versionId"}}}]}``. Keys are URL-encoded
  (``+`` for a space, ``%3D`` for ``=``) and are decoded with ``unquote_plus``. Other event names
  (``ObjectRemoved:*``, ...) are ignored.
- The S3 test message ``{"Service": "Amazon S3", "Event": "s3:TestEvent"}`` sent when a
  notification is configured: ignored.
- EventBridge ``{"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket":
  {"name"}, "object": {"key", "etag", "version-id"}}}``; decoded with ``unquote_plus`` like S3
  notifications (as Powertools' ``S3EventBridgeNotificationObject.key`` does). Other detail types
  ("Object Tags Added", "Object Deleted", ...) are ignored.
- CloudTrail's own delivery notification ``{"s3Bucket": "...", "s3ObjectKey": ["...", ...]}``
  (through SNS, raw or enveloped). CloudTrail puts the keys in as they are, not URL-encoded; its key
  alphabet has no ``+`` or ``%``, so the keys are used as given (decoding would be a no-op at best).

The same shapes are accepted as a direct Lambda event (a rule or topic invoking the function,
``sam local invoke -e``); :func:`is_sqs_batch` tells the two apart.

Anything else raises :class:`UnrecognisedMessage`: the caller lets it fail so it reaches the
dead-letter queue, where a person can look at it (a silent drop could hide a new envelope format).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import orjson


class UnrecognisedMessage(ValueError):
    """The message is not an envelope this module knows; the text says why (never the payload)."""


@dataclass(frozen=True)
class ObjectRef:
    """One announced object."""

    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None
    #: when the notification says the object was created (ISO 8601), if it says
    event_time: str | None = None
    #: which envelope carried it: s3 | eventbridge | cloudtrail-sns
    envelope: str = "s3"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class Decoded:
    refs: list[ObjectRef] = field(default_factory=list)
    #: why nothing (or not everything) in the message is an object to process
    ignored: list[str] = field(default_factory=list)


def _version(value: Any) -> str | None:
    if not isinstance(value, str) or value in ("", "null"):
        return None
    return value


def _load(body: str | bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UnrecognisedMessage("message body is not JSON") from exc
    if not isinstance(data, dict):
        raise UnrecognisedMessage(f"message body is a JSON {type(data).__name__}, not an object")
    return data


def decode(body: str | bytes | dict[str, Any], _depth: int = 0) -> Decoded:
    """The objects a message announces (see the module docstring for the shapes)."""
    data = _load(body)
    if data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
        if _depth >= 2:
            raise UnrecognisedMessage("SNS envelopes nested too deeply")
        return decode(data["Message"], _depth + 1)
    if data.get("Event") == "s3:TestEvent":
        return Decoded(ignored=["s3:TestEvent"])
    if "s3ObjectKey" in data or "s3Bucket" in data:
        return _cloudtrail_sns(data)
    if data.get("source") == "aws.s3" and isinstance(data.get("detail"), dict):
        return _eventbridge(data)
    records = data.get("Records")
    if isinstance(records, list) and records and all(
            isinstance(r, dict) and r.get("EventSource") == "aws:sns" for r in records):
        return _sns_records(records, _depth)
    if isinstance(records, list):
        return _s3_notification(records)
    raise UnrecognisedMessage("not an S3 notification, EventBridge S3 event or CloudTrail notification "
                              f"(top-level keys: {sorted(data)[:8]})")


def is_sqs_batch(event: Any) -> bool:
    """Is this Lambda event an SQS batch (as opposed to an envelope invoked directly)?"""
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and bool(records) and all(
        isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)


def _sns_records(records: list[dict[str, Any]], depth: int) -> Decoded:
    """A Lambda invoked by SNS directly: each record's ``Sns.Message`` is an envelope."""
    out = Decoded()
    for rec in records:
        message = (rec.get("Sns") or {}).get("Message")
        if not isinstance(message, str):
            raise UnrecognisedMessage("SNS record without a Message")
        inner = decode(message, depth + 1)
        out.refs += inner.refs
        out.ignored += inner.ignored
    return out


def _s3_notification(records: list[Any]) -> Decoded:
    out = Decoded()
    for rec in records:
        if not isinstance(rec, dict) or rec.get("eventSource") != "aws:s3":
            raise UnrecognisedMessage("Records[] entry is not an S3 event record")
        name = str(rec.get("eventName", ""))
        if not name.startswith("ObjectCreated:"):
            out.ignored.append(f"s3 event {name or '?'}")
            continue
        s3 = rec.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        key = obj.get("key")
        if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
            raise UnrecognisedMessage("S3 event record without bucket name or object key")
        out.refs.append(ObjectRef(bucket, unquote_plus(key), obj.get("eTag"), _version(obj.get("versionId")),
                                  rec.get("eventTime"), "s3"))
    return out


def _eventbridge(data: dict[str, Any]) -> Decoded:
    kind = data.get("detail-type")
    if kind != "Object Created":
        return Decoded(ignored=[f"eventbridge {kind or '?'}"])
    detail = data["detail"]
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    key = obj.get("key")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise UnrecognisedMessage("EventBridge Object Created event without bucket name or object key")
    return Decoded(refs=[ObjectRef(bucket, unquote_plus(key), obj.get("etag"), _version(obj.get("version-id")),
                                   data.get("time"), "eventbridge")])


def _cloudtrail_sns(data: dict[str, Any]) -> Decoded:
    bucket = data.get("s3Bucket")
    keys = data.get("s3ObjectKey")
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(bucket, str) or not bucket or not isinstance(keys, list) or not all(
            isinstance(k, str) and k for k in keys):
        raise UnrecognisedMessage("CloudTrail notification without s3Bucket or s3ObjectKey list")
    return Decoded(refs=[ObjectRef(bucket, k, envelope="cloudtrail-sns") for k in keys])
