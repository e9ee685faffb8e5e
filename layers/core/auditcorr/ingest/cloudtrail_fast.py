"""The fast path of the CloudTrail parser: typed decoding with msgspec.

A CloudTrail record carries 20-40 fields and nested blobs; we need about fifteen of them.
``msgspec`` decodes straight into small typed structs, skipping what is not declared and keeping
the blobs we store as raw JSON bytes (``msgspec.Raw``: no decode, no re-encode).  That is several
times faster than ``orjson.loads`` into dicts (docs/performance.md).

Any surprise in the document's types (a number where a string belongs, a record that is not an
object, ...) makes the typed decoder raise; the caller then falls back to the tolerant, generic
path in ``cloudtrail.py``, which accounts for every record one by one.  A property test checks the
two paths give identical tables.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pyarrow as pa

from ..config import Config
from ..counts import FileOutcome
from ..schemas import LOGONS, S3_WRITES, conform
from ..timeparse import parse_column

_RAW_NONE = msgspec.Raw(b"null")


class _Issuer(msgspec.Struct):
    type: str | None = None
    arn: str | None = None


class _SessionContext(msgspec.Struct):
    sessionIssuer: _Issuer | None = None
    sourceIdentity: str | None = None


class _Identity(msgspec.Struct):
    type: str | None = None
    arn: str | None = None
    principalId: str | None = None
    accountId: str | None = None
    accessKeyId: str | None = None
    userName: str | None = None
    sourceIdentity: str | None = None
    sessionContext: _SessionContext | None = None


class _Resource(msgspec.Struct):
    type: str | None = None
    ARN: str | None = None


class _Record(msgspec.Struct):
    eventID: str | None = None
    eventTime: str | None = None
    eventName: str | None = None
    eventSource: str | None = None
    awsRegion: str | None = None
    sourceIPAddress: str | None = None
    userAgent: str | None = None
    errorCode: str | None = None
    recipientAccountId: str | None = None
    vpcEndpointId: str | None = None
    userIdentity: _Identity | None = None
    resources: list[_Resource] | None = None
    requestParameters: msgspec.Raw = _RAW_NONE
    responseElements: msgspec.Raw = _RAW_NONE
    additionalEventData: msgspec.Raw = _RAW_NONE


class _Trail(msgspec.Struct):
    Records: list[_Record]


class _BucketKey(msgspec.Struct):
    bucketName: str | None = None
    key: str | None = None


_trail = msgspec.json.Decoder(_Trail)
_array = msgspec.json.Decoder(list[_Record])
_bucket_key = msgspec.json.Decoder(_BucketKey)


def _raw_json(raw: msgspec.Raw) -> str | None:
    b = bytes(raw)
    if b in (b"null", b""):
        return None
    # re-serialise with sorted keys only when needed for a stable form: we keep the original
    # text, which is valid JSON and what CloudTrail delivered
    return b.decode()


def _role(ident: _Identity) -> tuple[str | None, str | None, str | None]:
    """(role_arn, role_session_name, source_identity), exactly as cloudtrail._principal does."""
    from .cloudtrail import role_from_assumed_arn

    sc = ident.sessionContext
    issuer = sc.sessionIssuer if sc is not None else None
    role_arn = issuer.arn if issuer is not None and issuer.type in ("Role", None) else None
    derived, session = role_from_assumed_arn(ident.arn)
    if role_arn is None or ":role/" not in role_arn:
        role_arn = derived or role_arn
    if session is None and ident.principalId and ":" in ident.principalId and ident.type == "AssumedRole":
        session = ident.principalId.split(":", 1)[1]
    source_identity = (sc.sourceIdentity if sc is not None else None) or ident.sourceIdentity
    return role_arn, session, source_identity


def decode_typed(text: bytes) -> list[_Record] | None:
    """Typed decode of a ``{"Records": [...]}`` body or a bare array; None if it does not fit."""
    try:
        if text[:1] == b"[":
            return _array.decode(text)
        return _trail.decode(text).Records
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def parse_typed(records: list[_Record], source: str, config: Config,
                outcome: FileOutcome) -> tuple[pa.Table, pa.Table, list[dict[str, Any]]] | None:
    """Build the writes table from typed records; logon records go back as dicts for the generic
    extractor (they are few).  Returns None if anything needs the generic path."""
    from .cloudtrail import LOGON_SOURCES, S3_SOURCE

    write_events = frozenset(config.write_events)
    logon_events = frozenset(config.logon_events)
    outcome.records_in = len(records)
    seen: set[str] = set()
    cols: dict[str, list[Any]] = {f.name: [] for f in S3_WRITES}
    logon_dicts: list[dict[str, Any]] = []
    for r in records:
        name, src = r.eventName, r.eventSource
        is_write = src == S3_SOURCE and name in write_events
        if not is_write:
            if name in logon_events and src in LOGON_SOURCES:
                logon_dicts.append(_as_dict(r))
            else:
                outcome.skip("not an S3 write or logon event")
            continue
        eid = r.eventID
        if not eid:
            outcome.reject("missing eventID")
            continue
        if r.eventTime is None:
            outcome.reject("missing eventTime")
            continue
        ident = r.userIdentity
        if ident is None:
            outcome.reject("missing userIdentity")
            continue
        if eid in seen:
            outcome.duplicates += 1
            continue
        seen.add(eid)
        rp = bytes(r.requestParameters)
        bucket = key = None
        if rp not in (b"null", b""):
            try:
                bk = _bucket_key.decode(rp)
                bucket, key = bk.bucketName, bk.key
            except (msgspec.ValidationError, msgspec.DecodeError):
                return None
        if (bucket is None or key is None) and r.resources:
            for res in r.resources:
                if res.type == "AWS::S3::Object" and res.ARN and res.ARN.startswith("arn:") and ":::" in res.ARN:
                    b, _, k = res.ARN.split(":::", 1)[1].partition("/")
                    bucket = bucket or b or None
                    key = key or k or None
                    break
        role_arn, session, source_identity = _role(ident)
        cols["event_id"].append(eid)
        cols["event_time"].append(r.eventTime)
        cols["event_name"].append(name)
        cols["event_source"].append(src)
        cols["aws_region"].append(r.awsRegion)
        cols["recipient_account_id"].append(r.recipientAccountId)
        cols["bucket"].append(bucket)
        cols["key"].append(key)
        cols["source_ip"].append(r.sourceIPAddress)
        cols["vpc_endpoint_id"].append(r.vpcEndpointId)
        cols["principal_type"].append(ident.type)
        cols["principal_arn"].append(ident.arn)
        cols["principal_id"].append(ident.principalId)
        cols["principal_account_id"].append(ident.accountId)
        cols["role_arn"].append(role_arn)
        cols["role_session_name"].append(session)
        cols["source_identity"].append(source_identity)
        cols["access_key_id"].append(ident.accessKeyId)
        cols["user_agent"].append(r.userAgent)
        cols["error_code"].append(r.errorCode)
        cols["request_parameters"].append(_sorted_json(rp))
        cols["additional_event_data"].append(_sorted_json(bytes(r.additionalEventData)))
        cols["source_object"].append(source)
    n = len(cols["event_id"])
    if n == 0:
        return S3_WRITES.empty_table(), LOGONS.empty_table(), logon_dicts
    times, bad = parse_column(pa.array(cols.pop("event_time"), pa.string()))
    arrays = {k: pa.array(v, pa.string()) for k, v in cols.items()}
    arrays["event_time"] = times
    table = conform(pa.table(arrays), S3_WRITES)
    if bad:
        for _ in bad:
            outcome.reject("unparseable or zone-less eventTime")
        bad_set = set(bad)
        table = table.filter(pa.array([i not in bad_set for i in range(n)]))
    return table, LOGONS.empty_table(), logon_dicts


def _sorted_json(raw: bytes) -> str | None:
    """The same canonical JSON text the generic path writes (sorted keys, compact)."""
    if raw in (b"null", b""):
        return None
    return orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS).decode()


_BLOBS = ("requestParameters", "responseElements", "additionalEventData")


def _as_dict(r: _Record) -> dict[str, Any]:
    d: dict[str, Any] = {f: getattr(r, f) for f in r.__struct_fields__ if f not in _BLOBS}
    d = msgspec.to_builtins(d)
    for k in _BLOBS:
        raw = bytes(getattr(r, k))
        d[k] = orjson.loads(raw) if raw not in (b"null", b"") else None
    return d
