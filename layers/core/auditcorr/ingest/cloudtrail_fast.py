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
from ..schemas import CREDENTIAL_USES, S3_WRITES, conform
from ..timeparse import parse_column

_RAW_NONE = msgspec.Raw(b"null")

# The structs hold only strings, raw bytes and other structs: they cannot form reference cycles, so
# they are kept out of the cyclic garbage collector (``gc=False``), which otherwise walks every
# record of a file again and again while the file is decoded.


class _Issuer(msgspec.Struct, gc=False):
    type: str | None = None
    arn: str | None = None


class _SessionContext(msgspec.Struct, gc=False):
    sessionIssuer: _Issuer | None = None
    sourceIdentity: str | None = None


class _Identity(msgspec.Struct, gc=False):
    type: str | None = None
    arn: str | None = None
    principalId: str | None = None
    accountId: str | None = None
    accessKeyId: str | None = None
    userName: str | None = None
    sourceIdentity: str | None = None
    invokedBy: str | None = None
    sessionContext: _SessionContext | None = None


class _Resource(msgspec.Struct, gc=False):
    type: str | None = None
    ARN: str | None = None


class _Record(msgspec.Struct, gc=False):
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
    vpcEndpointAccountId: str | None = None
    userIdentity: _Identity | None = None
    resources: list[_Resource] | None = None
    requestParameters: msgspec.Raw = _RAW_NONE
    responseElements: msgspec.Raw = _RAW_NONE
    additionalEventData: msgspec.Raw = _RAW_NONE


class _Trail(msgspec.Struct, gc=False):
    Records: list[_Record]


class _BucketKey(msgspec.Struct, gc=False):
    bucketName: str | None = None
    key: str | None = None


class _TrailSpans(msgspec.Struct, gc=False):
    Records: list[msgspec.Raw]


_trail = msgspec.json.Decoder(_Trail)
_array = msgspec.json.Decoder(list[_Record])
_trail_spans = msgspec.json.Decoder(_TrailSpans)
_array_spans = msgspec.json.Decoder(list[msgspec.Raw])
_record = msgspec.json.Decoder(_Record)
_bucket_key = msgspec.json.Decoder(_BucketKey)


def _role(ident: _Identity) -> tuple[str | None, str | None, str | None]:
    """(role_arn, role_session_name, source_identity), exactly as cloudtrail._principal does."""
    sc = ident.sessionContext
    issuer = sc.sessionIssuer if sc is not None else None
    role_arn = issuer.arn if issuer is not None and issuer.type in ("Role", None) else None
    derived, session = _assumed(ident.arn)
    if role_arn is None or ":role/" not in role_arn:
        role_arn = derived or role_arn
    if session is None and ident.principalId and ":" in ident.principalId and ident.type == "AssumedRole":
        session = ident.principalId.split(":", 1)[1]
    source_identity = (sc.sourceIdentity if sc is not None else None) or ident.sourceIdentity
    return role_arn, session, source_identity


_ASSUMED: dict[str | None, tuple[str | None, str | None]] = {}


def _assumed(arn: str | None) -> tuple[str | None, str | None]:
    """``role_from_assumed_arn``, remembered: a file repeats the same few session ARNs."""
    hit = _ASSUMED.get(arn)
    if hit is None:
        from .cloudtrail import role_from_assumed_arn

        if len(_ASSUMED) > 50_000:
            _ASSUMED.clear()
        hit = _ASSUMED[arn] = role_from_assumed_arn(arn)
    return hit


def decode_typed(text: bytes) -> list[_Record] | None:
    """Typed decode of a ``{"Records": [...]}`` body or a bare array; None if it does not fit."""
    try:
        if text[:1] == b"[":
            return _array.decode(text)
        return _trail.decode(text).Records
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        # RecursionError: nesting past the decoder's limit; the generic path rejects that one record
        return None


def split_typed(text: bytes) -> list[msgspec.Raw] | None:
    """The records of a ``{"Records": [...]}`` body or a bare array as raw JSON spans (no copy: each
    span points into ``text``), for :func:`parse_typed`; None if the body does not fit."""
    try:
        if text[:1] == b"[":
            return _array_spans.decode(text)
        return _trail_spans.decode(text).Records
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None


def parse_typed(records: list[msgspec.Raw], source: str, config: Config,
                outcome: FileOutcome) -> tuple[pa.Table, pa.Table, list[dict[str, Any]]] | None:
    """Build the writes table and the credential uses table from the records' raw spans
    (:func:`split_typed`); logon records go back as dicts for the generic extractor (they are few).
    Returns None if anything needs the generic path.

    Memory: each record is decoded into its typed struct only when its turn comes, and the struct
    is dropped once its row is built; every ``_CHUNK`` rows become Arrow columns (the row tuples and
    the strings only they hold are freed).  So a file's typed records are never all alive at once,
    nor beside its columns (docs/reliability.md, "Memory"); decoding the whole file into structs
    first cost 1.3 MB per MB of JSON more at the peak, for no gain in speed."""
    from ..conflicts import note_in_object, raw_record_hash
    from .cloudtrail import LOGON_SOURCES, NOT_KEPT, S3_SOURCE, SERVICE_STARTS

    write_events = frozenset(config.write_events)
    logon_events = frozenset(config.logon_events)
    outcome.records_in = len(records)
    seen: dict[str, msgspec.Raw] = {}  # each id's first copy: a later differing copy is a conflict
    rows: list[tuple[Any, ...]] = []
    add = rows.append
    use_rows: list[tuple[Any, ...]] = []  # credential_uses: few, built at the end
    chunks: list[list[pa.Array]] = []  # the columns of every _CHUNK rows already built
    logon_dicts: list[dict[str, Any]] = []
    loads, dumps, sort_keys = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
    decode = _record.decode
    for raw in records:
        try:
            r = decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None  # a record the typed decoder refuses: the generic path accounts for it
        name, src = r.eventName, r.eventSource
        is_write = src == S3_SOURCE and name in write_events
        is_use = not is_write and (src, name) in SERVICE_STARTS
        if not (is_write or is_use):
            if name in logon_events and src in LOGON_SOURCES:
                logon_dicts.append(_as_dict(r))
            elif name is None or src is None or r.eventTime is None:
                # not a CloudTrail record (or a whole trail document in a bare array): the generic
                # path expands documents and rejects the rest with the reason, never skips them
                return None
            else:
                outcome.skip(NOT_KEPT)
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
        first = seen.get(eid)
        if first is not None:
            outcome.duplicates += 1
            if bytes(first) != bytes(raw):
                kept, other = raw_record_hash(bytes(first)), raw_record_hash(bytes(raw))
                if kept != other:
                    note_in_object(outcome, "credential_uses" if is_use else "s3_writes", eid, kept, other)
            continue
        seen[eid] = raw
        if is_use:  # who called, from where, with which key: the request itself is not kept
            role_arn, session, source_identity = _role(ident)
            use_rows.append((eid, r.eventTime, name, src, r.awsRegion, r.recipientAccountId, None, None,
                             r.sourceIPAddress, r.vpcEndpointId, ident.type, ident.arn, ident.principalId,
                             ident.accountId, role_arn, session, source_identity, ident.accessKeyId, r.userAgent,
                             r.errorCode, None, None, r.vpcEndpointAccountId, ident.invokedBy))
            continue
        rp = bytes(r.requestParameters)
        bucket = key = rp_json = None
        if rp not in (b"null", b""):
            # one decode serves both the bucket and key and the canonical (sorted-keys) JSON text
            params = loads(rp)
            if not isinstance(params, dict):
                return None  # the typed decoder would refuse it: let the generic path account for it
            bucket, key = params.get("bucketName"), params.get("key")
            if not (bucket is None or type(bucket) is str) or not (key is None or type(key) is str):
                return None
            # (decoded at once: orjson's bytes keep their whole output buffer, ~4 KB each, alive)
            rp_json = dumps(params, option=sort_keys).decode()
        if (bucket is None or key is None) and r.resources:
            for res in r.resources:
                if res.type == "AWS::S3::Object" and res.ARN and res.ARN.startswith("arn:") and ":::" in res.ARN:
                    b, _, k = res.ARN.split(":::", 1)[1].partition("/")
                    bucket = bucket or b or None
                    key = key or k or None
                    break
        role_arn, session, source_identity = _role(ident)
        aed = bytes(r.additionalEventData)
        add((eid, r.eventTime, name, src, r.awsRegion, r.recipientAccountId, bucket, key, r.sourceIPAddress,
             r.vpcEndpointId, ident.type, ident.arn, ident.principalId, ident.accountId, role_arn, session,
             source_identity, ident.accessKeyId, r.userAgent, r.errorCode, rp_json,
             None if aed in (b"null", b"") else dumps(loads(aed), option=sort_keys).decode(),
             r.vpcEndpointAccountId, ident.invokedBy))
        if len(rows) >= _CHUNK:
            chunks.append([pa.array(col, pa.string()) for col in zip(*rows, strict=True)])
            rows.clear()
    if rows:
        chunks.append([pa.array(col, pa.string()) for col in zip(*rows, strict=True)])
        rows.clear()
    uses = _table([[pa.array(col, pa.string()) for col in zip(*use_rows, strict=True)]] if use_rows else [],
                  source, CREDENTIAL_USES, outcome)
    return _table(chunks, source, S3_WRITES, outcome), uses, logon_dicts


def _table(chunks: list[list[pa.Array]], source: str, schema: pa.Schema, outcome: FileOutcome) -> pa.Table:
    """The rows built (column chunks in ``_ROW_FIELDS`` order) as a ``schema`` table; rows whose time
    does not parse are rejected."""
    if not chunks:
        return schema.empty_table()
    cols = {k: pa.chunked_array([c[i] for c in chunks], pa.string()) if len(chunks) > 1 else chunks[0][i]
            for i, k in enumerate(_ROW_FIELDS)}
    del chunks
    n = len(cols["event_id"])
    times, bad = parse_column(cols.pop("event_time"))
    arrays: dict[str, Any] = dict(cols)
    arrays["source_object"] = pa.array([source] * n, pa.string())
    arrays["event_time"] = times
    table = conform(pa.table(arrays), schema)
    if bad:
        for _ in bad:
            outcome.reject("unparseable or zone-less eventTime")
        bad_set = set(bad)
        table = table.filter(pa.array([i not in bad_set for i in range(n)]))
    return table


#: rows turned into Arrow columns at a time (large enough that the per-chunk cost is nothing)
_CHUNK = 4096
#: the order of the per-record tuples built by parse_typed
_ROW_FIELDS = ("event_id", "event_time", "event_name", "event_source", "aws_region", "recipient_account_id",
               "bucket", "key", "source_ip", "vpc_endpoint_id", "principal_type", "principal_arn", "principal_id",
               "principal_account_id", "role_arn", "role_session_name", "source_identity", "access_key_id",
               "user_agent", "error_code", "request_parameters", "additional_event_data", "vpc_endpoint_account_id",
               "invoked_by")


_BLOBS = ("requestParameters", "responseElements", "additionalEventData")


def _as_dict(r: _Record) -> dict[str, Any]:
    d: dict[str, Any] = {f: getattr(r, f) for f in r.__struct_fields__ if f not in _BLOBS}
    d = msgspec.to_builtins(d)
    for k in _BLOBS:
        raw = bytes(getattr(r, k))
        d[k] = orjson.loads(raw) if raw not in (b"null", b"") else None
    return d
