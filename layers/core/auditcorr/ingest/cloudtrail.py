"""CloudTrail log objects -> normalised ``s3_writes`` and ``logons`` Arrow tables.

Accepted bodies (gzip, one or more members, or plain): ``{"Records": [...]}`` (what trails
deliver), a bare JSON array of records, one record object, and JSON lines holding records or whole
trail documents (common exports).  Digest and Insight files are recognised and skipped.  Every
record ends up written, a duplicate (same ``eventID`` earlier in the same object), skipped (a
CloudTrail record that is not a write or logon event) or rejected with a reason -- including a
record no strict JSON parser reads (``NaN``, ``1e400``, a lone surrogate, deep nesting: see
``jsonsplit``), one that is not a CloudTrail record at all, and one whose time is implausible
(``plausible``).  Gzip is inflated as a stream with a cap (``inflate``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from ..config import Config
from ..conflicts import note_in_object, record_hash
from ..counts import FileOutcome
from ..integrity.gzipstream import GzipHash, PendingHash, inflate_hash_later
from ..schemas import CREDENTIAL_USES, LOGONS, S3_WRITES, conform
from ..timeparse import parse_column
from .inflate import DEFAULT_MAX_INFLATED, TooLarge, inflate
from .jsonsplit import NESTED_TOO_DEEPLY, NOT_JSON, BadRecord, load_one, split_records
from .plausible import reject_implausible

S3_SOURCE = "s3.amazonaws.com"
LOGON_SOURCES = ("sts.amazonaws.com", "signin.amazonaws.com")
#: (eventSource, eventName) of the calls that hand the caller's credentials to a service which then
#: writes for it (``credential_uses``): Athena writes a query's results with the caller's access key
SERVICE_STARTS = frozenset({("athena.amazonaws.com", "StartQueryExecution")})


class UnreadableObject(ValueError):
    """The whole object cannot be read (quarantine it); the message is the reason."""


class DigestObject(UnreadableObject):
    """The body is a CloudTrail digest file (recognised by its content): skipped, not quarantined."""


#: largest inflated CloudTrail object read (CloudTrail's own files are far smaller)


@dataclass
class ParsedCloudTrail:
    writes: pa.Table
    logons: pa.Table
    outcome: FileOutcome
    #: SHA-256 of the uncompressed content as CloudTrail hashes it (first gzip member), with the gzip
    #: outcome; computed while inflating for the parse (integrity validation, ADR 0007)
    log_hash: GzipHash | None = None
    #: calls that start a service's work with the caller's credentials (``SERVICE_STARTS``)
    credential_uses: pa.Table = field(default_factory=CREDENTIAL_USES.empty_table)


#: why a CloudTrail record of another kind is skipped
NOT_KEPT = "not an S3 write or logon event"
#: a record that is not a CloudTrail record (counted as rejected, never as a skipped event)
NOT_A_RECORD = "not a CloudTrail record (no eventName, eventSource and eventTime strings)"


def decode_body(data: bytes, max_bytes: int = DEFAULT_MAX_INFLATED) -> bytes:
    """The body of an object (gzip inflated), at most ``max_bytes`` of it, or UnreadableObject."""
    try:
        return inflate(data, max_bytes)
    except TooLarge as exc:
        raise UnreadableObject(str(exc)) from exc
    except (EOFError, OSError, zlib.error) as exc:
        kind = "zlib" if isinstance(exc, zlib.error) else type(exc).__name__  # zlib's class is named "error"
        raise UnreadableObject(f"corrupt or truncated gzip ({kind})") from exc


def decode_and_hash(data: bytes, max_bytes: int = DEFAULT_MAX_INFLATED) -> tuple[bytes, GzipHash | PendingHash | None]:
    """``decode_body`` that also hashes the uncompressed content as CloudTrail does (one inflate;
    the hash of a large file runs while the caller parses: ``PendingHash.result()``)."""
    if data[:2] != b"\x1f\x8b":
        return decode_body(data, max_bytes), None  # (a plain body over the cap is refused too)
    content, digest = inflate_hash_later(data, max_inflated_bytes=max_bytes)
    if content is not None and isinstance(digest, PendingHash):
        return content, digest
    # a second member (every member is read, as before: the hash says it is not as delivered), or
    # corrupt / truncated gzip (decode_body raises UnreadableObject, as before)
    return decode_body(data, max_bytes), digest


def _resolved(log_hash: GzipHash | PendingHash | None) -> GzipHash | None:
    return log_hash.result() if isinstance(log_hash, PendingHash) else log_hash


def is_digest(path: str, body: Any = None) -> bool:
    if "CloudTrail-Digest/" in path or "_CloudTrail-Digest_" in path or path.endswith("-Digest.json.gz"):
        return True
    return isinstance(body, dict) and "digestStartTime" in body and "Records" not in body


def is_insight(path: str) -> bool:
    return "CloudTrail-Insight/" in path


def load_records(body: bytes) -> list[Any]:
    """Return the list of records in a decoded body, or raise UnreadableObject."""
    text = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise UnreadableObject("empty object")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        # one unreadable record (NaN, 1e400, a lone surrogate, deep nesting, a bad byte) must not
        # cost the others: split the document into its records and read each on its own
        spans = split_records(text)
        if spans is not None:
            return _expand([load_one(s) for s in spans])
        return _load_ndjson(text)
    if isinstance(doc, list):
        return _expand(doc)
    if isinstance(doc, dict):
        if "Records" in doc:
            recs = doc["Records"]
            if not isinstance(recs, list):
                raise UnreadableObject("'Records' is not a list")
            return recs
        if "digestStartTime" in doc:
            raise DigestObject("digest file")
        if "eventID" in doc or "eventVersion" in doc:
            return [doc]
        raise UnreadableObject("JSON object without 'Records': not a CloudTrail log file")
    raise UnreadableObject("JSON value is not an object or array: not a CloudTrail log file")


def _load_ndjson(text: bytes) -> list[Any]:
    """JSON lines: each line a record or a whole trail document (``{"Records": [...]}``)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        raise UnreadableObject("not valid JSON")
    values: list[Any] = []
    bad = 0
    for ln in lines:
        value = load_one(ln)
        if isinstance(value, BadRecord):
            spans = split_records(ln)  # a trail document with one unreadable record in it
            if spans is not None:
                values.append(_Document([load_one(s) for s in spans]))
                continue
            bad += 1
            if value.reason == NOT_JSON:
                value = BadRecord("line is not valid JSON")
        values.append(value)
    if bad == len(lines):
        raise UnreadableObject("not valid JSON or JSON lines")
    return _expand(values)


class _Document(list[Any]):
    """The records of a trail document found where a record was expected (a JSON line)."""


def _expand(values: list[Any]) -> list[Any]:
    """Records, with every trail document (``{"Records": [...]}``) in ``values`` replaced by its
    records (one level: a document inside a document's records is not a record, and is rejected)."""
    if not any(isinstance(v, _Document) or (isinstance(v, dict) and "Records" in v) for v in values):
        return values
    out: list[Any] = []
    for v in values:
        if isinstance(v, _Document):
            out.extend(v)
        elif isinstance(v, dict) and "Records" in v and "eventName" not in v:
            recs = v["Records"]
            if isinstance(recs, list):
                out.extend(recs)
            else:
                out.append(BadRecord("'Records' is not a list"))
        else:
            out.append(v)
    return out


class _Unstorable(Exception):
    """A record holds a value that cannot be stored (a blob nested too deeply to re-serialise)."""


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _s(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, int | float | bool):
        return str(v)
    return None


def _json(v: Any) -> str | None:
    if v is None:
        return None
    try:
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:  # orjson re-serialises at most 255 levels: never store a blob half-written
        raise _Unstorable(NESTED_TOO_DEEPLY) from exc


def role_from_assumed_arn(arn: str | None) -> tuple[str | None, str | None]:
    """``arn:aws:sts::1:assumed-role/R/s`` -> (``arn:aws:iam::1:role/R``, ``s``)."""
    if not arn or ":assumed-role/" not in arn:
        return None, None
    head, _, rest = arn.partition(":assumed-role/")
    role, _, session = rest.partition("/")
    parts = head.split(":")
    if len(parts) < 5 or not role:
        return None, None
    partition, account = parts[1], parts[4]
    return f"arn:{partition}:iam::{account}:role/{role}", (session or None)


def _obj(v: Any) -> dict[str, Any]:
    """``v`` if it is a JSON object, else an empty one (fields of odd records can be anything)."""
    return v if isinstance(v, dict) else {}


def _principal(rec: dict[str, Any]) -> dict[str, str | None]:
    ui = _obj(rec.get("userIdentity"))
    arn = _s(ui.get("arn"))
    sc = _obj(ui.get("sessionContext"))
    issuer = _obj(sc.get("sessionIssuer"))
    role_arn = _s(issuer.get("arn")) if issuer.get("type") in ("Role", None) else None
    derived_role, session_name = role_from_assumed_arn(arn)
    if role_arn is None or ":role/" not in (role_arn or ""):
        role_arn = derived_role or role_arn
    if session_name is None:
        pid = _s(ui.get("principalId"))
        if pid and ":" in pid and ui.get("type") == "AssumedRole":
            session_name = pid.split(":", 1)[1]
    source_identity = _s(sc.get("sourceIdentity")) or _s(ui.get("sourceIdentity"))
    return {
        "principal_type": _s(ui.get("type")),
        "principal_arn": arn,
        "principal_id": _s(ui.get("principalId")),
        "principal_account_id": _s(ui.get("accountId")),
        "role_arn": role_arn,
        "role_session_name": session_name,
        "source_identity": source_identity,
        "access_key_id": _s(ui.get("accessKeyId")),
    }


def _bucket_key(rec: dict[str, Any]) -> tuple[str | None, str | None]:
    rp = rec.get("requestParameters")
    bucket = key = None
    if isinstance(rp, dict):
        bucket = _s(rp.get("bucketName"))
        key = _s(rp.get("key"))
    if bucket is None or key is None:
        resources = rec.get("resources")
        for res in resources if isinstance(resources, list) else []:
            if isinstance(res, dict) and res.get("type") == "AWS::S3::Object":
                arn = _s(res.get("ARN")) or ""
                if arn.startswith("arn:") and ":::" in arn:
                    b, _, k = arn.split(":::", 1)[1].partition("/")
                    bucket = bucket or b or None
                    key = key or k or None
                    break
    return bucket, key


def _logon_fields(rec: dict[str, Any], name: str) -> dict[str, Any]:
    ui = _obj(rec.get("userIdentity"))
    rp = _obj(rec.get("requestParameters"))
    re_ = _obj(rec.get("responseElements"))
    tags: Any = None
    user: str | None = None
    if name == "AssumeRoleWithSAML":
        user = _s(re_.get("subject")) or _s(ui.get("userName"))
        tags = rp.get("principalTags")
    elif name == "AssumeRoleWithWebIdentity":
        user = _s(ui.get("userName")) or _s(re_.get("subjectFromWebIdentityToken"))
    elif name == "AssumeRole":
        user = _s(rp.get("sourceIdentity")) or _s(rp.get("roleSessionName"))
        raw = rp.get("tags")
        if isinstance(raw, list):
            tags = {t.get("key"): t.get("value") for t in raw if isinstance(t, dict) and "key" in t}
    elif name == "ConsoleLogin":
        user = _s(ui.get("userName"))
        if user is None:
            _, user = role_from_assumed_arn(_s(ui.get("arn")))
    outcome = _s(re_.get("ConsoleLogin")) if name == "ConsoleLogin" else None
    if outcome is None:
        outcome = "Failure" if rec.get("errorCode") else "Success"
    creds = _obj(re_.get("credentials"))
    aru = _obj(re_.get("assumedRoleUser"))
    return {
        "user_name": user,
        "principal_type": _s(ui.get("type")),
        "principal_arn": _s(ui.get("arn")),
        "role_arn": _s(rp.get("roleArn")),
        "role_session_name": _s(rp.get("roleSessionName")),
        "source_identity": _s(rp.get("sourceIdentity")) or _s(re_.get("sourceIdentity")),
        "saml_issuer": _s(re_.get("issuer")),
        "assumed_role_arn": _s(aru.get("arn")),
        "issued_access_key_id": _s(creds.get("accessKeyId")),
        "principal_tags": _json(tags) if tags else None,
        "outcome": outcome,
    }


def parse_cloudtrail(data: bytes, source: str, config: Config, *, max_inflated: int = DEFAULT_MAX_INFLATED,
                     now_ms: int | None = None) -> ParsedCloudTrail:
    """Parse one CloudTrail object.  Raises UnreadableObject when nothing in it can be read.

    ``max_inflated`` caps the body's size (gzip inflated; ``inflate.cap_for_memory``); ``now_ms``,
    when known, bounds the plausible event times from above (``plausible.window``).  The uncompressed
    content is hashed as CloudTrail does (``log_hash``), in the same inflate."""
    body, pending = decode_and_hash(data, max_inflated)
    try:
        fast = _parse_fast(body, source, config, now_ms)
    finally:
        log_hash = _resolved(pending)  # never leave a hash running past the parse
    if fast is not None:
        fast.log_hash = log_hash
        return fast
    outcome = FileOutcome(source=source, kind="cloudtrail")
    try:
        records = load_records(body)
    except DigestObject:
        # a digest file outside a CloudTrail-Digest/ folder: recognised, skipped, nothing to read
        outcome.kind = "digest"
        outcome.note = "digest file (recognised by its content): not an event log, skipped"
        return ParsedCloudTrail(S3_WRITES.empty_table(), LOGONS.empty_table(), outcome, log_hash)
    outcome.records_in = len(records)
    w_rows, l_rows, u_rows = _extract(records, source, config, outcome)
    writes = _to_table(w_rows, S3_WRITES, outcome, now_ms)
    logons = _to_table(l_rows, LOGONS, outcome, now_ms)
    uses = _to_table(u_rows, CREDENTIAL_USES, outcome, now_ms)
    return ParsedCloudTrail(writes, logons, outcome, log_hash, uses)


def _parse_fast(body: bytes, source: str, config: Config, now_ms: int | None = None) -> ParsedCloudTrail | None:
    """Typed decoding (cloudtrail_fast); None when the body needs the tolerant generic path."""
    from .cloudtrail_fast import parse_typed, split_typed

    text = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        typed = split_typed(text)
        if typed is None:
            return None
        outcome = FileOutcome(source=source, kind="cloudtrail")
        res = parse_typed(typed, source, config, outcome)
        if res is None:
            return None
        writes, uses, logon_dicts = res
        _, l_rows, _ = _extract(logon_dicts, source, config, outcome, count_in=False)
        writes = reject_implausible(writes, source, outcome, now_ms)
        uses = reject_implausible(uses, source, outcome, now_ms)
        return ParsedCloudTrail(writes, _to_table(l_rows, LOGONS, outcome, now_ms), outcome, None, uses)
    except (ValueError, TypeError, RecursionError):
        # invalid UTF-8 (msgspec raises UnicodeDecodeError), a blob orjson cannot re-read or
        # re-serialise (TypeError past 255 levels), nesting past the decoder's recursion limit:
        # the generic path accounts for such a body record by record (or declares it unreadable)
        return None


def _extract(records: list[Any], source: str, config: Config, outcome: FileOutcome,
             count_in: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Generic, record-by-record extraction: every record written, duplicate, skipped or rejected.
    Rows of ``s3_writes``, ``logons`` and ``credential_uses``."""
    write_events = frozenset(config.write_events)
    logon_events = frozenset(config.logon_events)
    w_rows: list[dict[str, Any]] = []
    l_rows: list[dict[str, Any]] = []
    u_rows: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}  # each id's first copy: a later differing copy is a conflict
    for rec in records:
        if isinstance(rec, BadRecord):
            outcome.reject(rec.reason)
            continue
        if not isinstance(rec, dict):
            outcome.reject("record is not a JSON object")
            continue
        name = rec.get("eventName")
        src = rec.get("eventSource")
        if src == S3_SOURCE and name in write_events:
            target = w_rows
        elif name in logon_events and src in LOGON_SOURCES:
            target = l_rows
        elif (src, name) in SERVICE_STARTS:
            target = u_rows
        elif not (isinstance(name, str) and isinstance(src, str) and isinstance(rec.get("eventTime"), str)):
            outcome.reject(NOT_A_RECORD)
            continue
        else:
            outcome.skip(NOT_KEPT)
            continue
        eid = rec.get("eventID")
        if not isinstance(eid, str) or not eid:
            outcome.reject("missing eventID")
            continue
        if not isinstance(rec.get("eventTime"), str):
            outcome.reject("missing eventTime")
            continue
        if not isinstance(rec.get("userIdentity"), dict):
            outcome.reject("missing userIdentity")
            continue
        first = seen.get(eid)
        if first is not None:
            outcome.duplicates += 1
            if first != rec and (kept := record_hash(first)) != (other := record_hash(rec)):
                table = "s3_writes" if target is w_rows else "logons" if target is l_rows else "credential_uses"
                note_in_object(outcome, table, eid, kept, other)
            continue
        seen[eid] = rec
        base = {
            "event_id": eid,
            "event_time": rec["eventTime"],
            "event_name": name,
            "event_source": src,
            "aws_region": _s(rec.get("awsRegion")),
            "recipient_account_id": _s(rec.get("recipientAccountId")),
            "source_ip": _s(rec.get("sourceIPAddress")),
            "user_agent": _s(rec.get("userAgent")),
            "error_code": _s(rec.get("errorCode")),
            "source_object": source,
        }
        try:
            if target is not l_rows:
                bucket, key = _bucket_key(rec) if target is w_rows else (None, None)
                base.update(_principal(rec))
                base["bucket"] = bucket
                base["key"] = key
                base["vpc_endpoint_id"] = _s(rec.get("vpcEndpointId"))
                base["vpc_endpoint_account_id"] = _s(rec.get("vpcEndpointAccountId"))
                base["invoked_by"] = _s(_obj(rec.get("userIdentity")).get("invokedBy"))
                if target is w_rows:  # a service start's request (a query's text) is not kept
                    rp = dict(rec["requestParameters"]) if isinstance(rec.get("requestParameters"), dict) else None
                    base["request_parameters"] = _json(rp)
                    base["additional_event_data"] = _json(rec.get("additionalEventData"))
            else:
                base.update(_logon_fields(rec, str(name)))
        except _Unstorable as exc:
            seen.pop(eid, None)  # a later, storable copy of the id is not a duplicate of nothing
            outcome.reject(str(exc))
            continue
        target.append(base)
    return w_rows, l_rows, u_rows


def _to_table(rows: list[dict[str, Any]], schema: pa.Schema, outcome: FileOutcome,
              now_ms: int | None = None) -> pa.Table:
    if not rows:
        return schema.empty_table()
    cols: dict[str, list[Any]] = {f.name: [r.get(f.name) for r in rows] for f in schema}
    times_raw = pa.array(cols.pop("event_time"), type=pa.string())
    times, bad = parse_column(times_raw)
    arrays = {n: pa.array(v, type=schema.field(n).type) for n, v in cols.items()}
    arrays["event_time"] = times
    table = conform(pa.table(arrays), schema)
    if bad:
        for _ in bad:
            outcome.reject("unparseable or zone-less eventTime")
        bad_set = set(bad)
        table = table.filter(pa.array([i not in bad_set for i in range(table.num_rows)]))
    return reject_implausible(table, outcome.source, outcome, now_ms)
