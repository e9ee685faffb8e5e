"""CloudTrail log objects -> normalised ``s3_writes`` and ``logons`` Arrow tables.

Accepted bodies (gzip or plain): ``{"Records": [...]}`` (what trails deliver), a bare JSON array of
records, one record object, and newline-delimited records (common exports).  Digest and Insight
files are recognised and skipped.  Every record ends up written, a duplicate (same ``eventID``
earlier in the same object), skipped (not a write or logon event) or rejected with a reason.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from ..config import Config
from ..counts import FileOutcome
from ..integrity.gzipstream import GzipHash, PendingHash, inflate_hash_later
from ..schemas import LOGONS, S3_WRITES, conform
from ..timeparse import parse_column

S3_SOURCE = "s3.amazonaws.com"
LOGON_SOURCES = ("sts.amazonaws.com", "signin.amazonaws.com")


class UnreadableObject(ValueError):
    """The whole object cannot be read (quarantine it); the message is the reason."""


class DigestObject(UnreadableObject):
    """The body is a CloudTrail digest file (recognised by its content): skipped, not quarantined."""


#: largest inflated CloudTrail object read (CloudTrail's own files are far smaller)
MAX_INFLATED_BYTES = 1 << 30


@dataclass
class ParsedCloudTrail:
    writes: pa.Table
    logons: pa.Table
    outcome: FileOutcome
    #: SHA-256 of the uncompressed content as CloudTrail hashes it (first gzip member), with the gzip
    #: outcome; computed while inflating for the parse (integrity validation, ADR 0007)
    log_hash: GzipHash | None = None


def decode_body(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise UnreadableObject(f"corrupt or truncated gzip ({type(exc).__name__})") from exc
    return data


def decode_and_hash(data: bytes) -> tuple[bytes, GzipHash | PendingHash | None]:
    """``decode_body`` that also hashes the uncompressed content as CloudTrail does (one inflate;
    the hash of a large file runs while the caller parses: ``PendingHash.result()``)."""
    if data[:2] != b"\x1f\x8b":
        return data, None
    content, digest = inflate_hash_later(data, max_inflated_bytes=MAX_INFLATED_BYTES)
    if content is not None and isinstance(digest, PendingHash):
        return content, digest
    # a second member (every member is read, as before: the hash says it is not as delivered), or
    # corrupt / truncated gzip (decode_body raises UnreadableObject, as before)
    return decode_body(data), digest


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
        return _load_ndjson(text)
    if isinstance(doc, list):
        return doc
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
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        raise UnreadableObject("not valid JSON")
    out: list[Any] = []
    bad = 0
    for ln in lines:
        try:
            out.append(orjson.loads(ln))
        except orjson.JSONDecodeError:
            out.append(_BadLine)
            bad += 1
    if bad == len(lines):
        raise UnreadableObject("not valid JSON or JSON lines")
    return out


class _BadLineType:
    pass


_BadLine = _BadLineType()


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
    except TypeError:
        return None


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


def parse_cloudtrail(data: bytes, source: str, config: Config) -> ParsedCloudTrail:
    """Parse one CloudTrail object.  Raises UnreadableObject when nothing in it can be read."""
    body, pending = decode_and_hash(data)
    try:
        fast = _parse_fast(body, source, config)
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
    w_rows, l_rows = _extract(records, source, config, outcome)
    writes = _to_table(w_rows, S3_WRITES, outcome)
    logons = _to_table(l_rows, LOGONS, outcome)
    return ParsedCloudTrail(writes, logons, outcome, log_hash)


def _parse_fast(body: bytes, source: str, config: Config) -> ParsedCloudTrail | None:
    """Typed decoding (cloudtrail_fast); None when the body needs the tolerant generic path."""
    from .cloudtrail_fast import decode_typed, parse_typed

    text = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        typed = decode_typed(text)
        if typed is None:
            return None
        outcome = FileOutcome(source=source, kind="cloudtrail")
        res = parse_typed(typed, source, config, outcome)
        if res is None:
            return None
        writes, _, logon_dicts = res
        _, l_rows = _extract(logon_dicts, source, config, outcome, count_in=False)
        return ParsedCloudTrail(writes, _to_table(l_rows, LOGONS, outcome), outcome)
    except ValueError:
        # invalid UTF-8 (msgspec raises UnicodeDecodeError), a blob orjson cannot re-read, ...:
        # the generic path accounts for such a body (or declares it unreadable)
        return None


def _extract(records: list[Any], source: str, config: Config, outcome: FileOutcome,
             count_in: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Generic, record-by-record extraction: every record written, duplicate, skipped or rejected."""
    write_events = frozenset(config.write_events)
    logon_events = frozenset(config.logon_events)
    w_rows: list[dict[str, Any]] = []
    l_rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rec in records:
        if rec is _BadLine:
            outcome.reject("line is not valid JSON")
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
        else:
            outcome.skip("not an S3 write or logon event")
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
        if eid in seen:
            outcome.duplicates += 1
            continue
        seen.add(eid)
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
        if target is w_rows:
            bucket, key = _bucket_key(rec)
            base.update(_principal(rec))
            base["bucket"] = bucket
            base["key"] = key
            base["vpc_endpoint_id"] = _s(rec.get("vpcEndpointId"))
            rp = dict(rec["requestParameters"]) if isinstance(rec.get("requestParameters"), dict) else None
            base["request_parameters"] = _json(rp)
            base["additional_event_data"] = _json(rec.get("additionalEventData"))
        else:
            base.update(_logon_fields(rec, name))
        target.append(base)
    return w_rows, l_rows


def _to_table(rows: list[dict[str, Any]], schema: pa.Schema, outcome: FileOutcome) -> pa.Table:
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
        keep = pa.array([i not in set(bad) for i in range(table.num_rows)])
        table = table.filter(keep)
    return table
