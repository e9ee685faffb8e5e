"""Evidence bundles: one self-contained JSON file that lets anyone re-check an attribution offline.

A bundle holds, for each write of one object:

- the attribution decision (the ``attributed_activity`` row) and the tool version that made it;
- the CloudTrail log files behind the write and behind the user's logon, byte for byte as they were
  stored (base64 of the gzip object), and the two records themselves as found in them;
- the usage-report line (or live observation) that names the session;
- the digest files that list those log files (bytes as stored) with their S3 metadata (signature),
  and the digest after each (its copy of the signature, its hash of the digest before it);
- the CloudTrail public keys those digests name;
- a SHA-256 per part and one over the whole bundle.

``verify`` needs nothing but the bundle (and, optionally, keys obtained independently from
``ListPublicKeys``): it recomputes every hash, re-verifies every signature, re-reads the records
from the log files and checks that they, the session line and the decision agree.  The hashes over
the parts only catch accidental or naive edits; what cannot be forged without CloudTrail's private
key is the chain log file -> digest -> signature -> public key, which is why the key fingerprints
must be compared with AWS's (the verifier says so when no independent keys are given).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..integrity import KeyRing, digest_seen, metadata_from_head_object, validate
from ..integrity.gzipstream import hash_gzip_stream
from ..integrity.keys import relative_key
from ..integrity.rsakeys import KeyFormatError, fingerprint_of, load_public_key

FORMAT = "auditcorr-evidence/1"
PARTS = ("tool", "subject", "writes", "log_files", "sessions", "digests", "public_keys")
_MAX_LOG_BYTES = 1 << 30


def canonical(value: Any) -> bytes:
    """The bytes every bundle hash is computed over (sorted keys, no whitespace)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# -- building ---------------------------------------------------------------------------------------


def log_file_part(object_key: str, data: bytes | None, missing_reason: str | None = None) -> dict[str, Any]:
    """A log file as stored (or why it could not be read again)."""
    if data is None:
        return {"object_key": object_key, "rel_key": relative_key(object_key), "content_gzip_b64": None,
                "unavailable": missing_reason or "source file not found"}
    h = hash_gzip_stream([data], max_inflated_bytes=_MAX_LOG_BYTES)
    return {"object_key": object_key, "rel_key": relative_key(object_key), "content_gzip_b64": _b64(data),
            "stored_sha256": sha256_hex(data), "uncompressed_sha256": h.sha256, "gzip": h.outcome}


def find_record(data: bytes | None, event_id: str) -> dict[str, Any] | None:
    """The record with ``eventID`` in a CloudTrail log file (its JSON exactly as parsed from the file)."""
    if data is None:
        return None
    try:
        doc = orjson.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    except (OSError, EOFError, orjson.JSONDecodeError, ValueError):
        return None
    records = doc.get("Records") if isinstance(doc, dict) else doc if isinstance(doc, list) else None
    for rec in records or []:
        if isinstance(rec, dict) and rec.get("eventID") == event_id:
            return rec
    return None


def digest_part(object_key: str, data: bytes, head_object: Mapping[str, Any] | None,
                bucket: str | None) -> dict[str, Any]:
    return {"object_key": object_key, "rel_key": relative_key(object_key), "bucket": bucket,
            "content_gzip_b64": _b64(data), "stored_sha256": sha256_hex(data),
            "head_object": {"Metadata": dict((head_object or {}).get("Metadata", head_object or {}))}}


def key_part(fingerprint: str, der: bytes) -> dict[str, Any]:
    return {"fingerprint": fingerprint, "der_b64": _b64(der)}


def assemble(tool: Mapping[str, Any], subject: Mapping[str, Any], writes: Sequence[Mapping[str, Any]],
             log_files: Sequence[Mapping[str, Any]], sessions: Sequence[Mapping[str, Any]],
             digests: Sequence[Mapping[str, Any]], public_keys: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The bundle document, with its hashes."""
    doc: dict[str, Any] = {"format": FORMAT, "tool": dict(tool), "subject": dict(subject),
                           "writes": [dict(w) for w in writes], "log_files": list(log_files),
                           "sessions": list(sessions), "digests": list(digests), "public_keys": list(public_keys)}
    doc = orjson.loads(canonical(doc))  # exactly what a reader will see (datetimes as text)
    doc["part_sha256"] = {p: sha256_hex(canonical(doc[p])) for p in PARTS}
    doc["bundle_sha256"] = sha256_hex(canonical({k: v for k, v in doc.items() if k != "bundle_sha256"}))
    return doc


def dumps(doc: Mapping[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


# -- verifying --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    ok: bool | None  # None: could not be checked (says why)
    detail: str = ""


def verify(doc: Any, trusted: KeyRing | None = None) -> list[Check]:
    """Every check a bundle supports, each saying whether it holds."""
    checks: list[Check] = []
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return [Check("format", False, f"not an {FORMAT} bundle")]
    checks += _hashes(doc)
    ring, key_checks = _keys(doc, trusted)
    checks += key_checks
    logs = {lf.get("rel_key"): lf for lf in doc.get("log_files") or [] if isinstance(lf, dict)}
    checks += _integrity(doc, logs, ring)
    for w in doc.get("writes") or []:
        if isinstance(w, dict):
            checks += _write(w, logs, doc.get("sessions") or [], doc.get("subject") or {})
    return checks


def _hashes(doc: dict[str, Any]) -> list[Check]:
    out = []
    parts: dict[str, Any] = doc["part_sha256"] if isinstance(doc.get("part_sha256"), dict) else {}
    for p in PARTS:
        got = sha256_hex(canonical(doc.get(p)))
        out.append(Check(f"hash of part {p}", parts.get(p) == got, "" if parts.get(p) == got else "part was changed"))
    whole = sha256_hex(canonical({k: v for k, v in doc.items() if k != "bundle_sha256"}))
    out.append(Check("hash of the bundle", doc.get("bundle_sha256") == whole,
                     "" if doc.get("bundle_sha256") == whole else "bundle was changed"))
    return out


def _keys(doc: dict[str, Any], trusted: KeyRing | None) -> tuple[KeyRing, list[Check]]:
    ring, out = KeyRing(), []
    for k in doc.get("public_keys") or []:
        fp = k.get("fingerprint") if isinstance(k, dict) else None
        der = _unb64(k.get("der_b64")) if isinstance(k, dict) else None
        if not isinstance(fp, str) or der is None:
            out.append(Check("public key", False, "unreadable key entry"))
            continue
        try:
            key = load_public_key(der)
        except KeyFormatError as exc:
            out.append(Check(f"public key {fp}", False, exc.kind))
            continue
        if fp.lower() not in key.fingerprints() | {fingerprint_of(der)}:
            out.append(Check(f"public key {fp}", False, "the key does not have this fingerprint"))
            continue
        if trusted is not None:
            if trusted.get(fp) != key:
                out.append(Check(f"public key {fp}", False, "not among the independently obtained keys"))
                continue
            out.append(Check(f"public key {fp}", True, "matches the independently obtained key"))
        else:
            out.append(Check(f"public key {fp}", None, "taken from the bundle: compare the fingerprint with "
                                                      "`aws cloudtrail list-public-keys` for the region"))
        ring.add(key)
    return ring, out


def _integrity(doc: dict[str, Any], logs: dict[Any, dict[str, Any]], ring: KeyRing) -> list[Check]:
    out = []
    seen_digests = []
    for d in doc.get("digests") or []:
        data = _unb64(d.get("content_gzip_b64")) if isinstance(d, dict) else None
        if data is None:
            out.append(Check("digest", False, "unreadable digest entry"))
            continue
        head = d.get("head_object") if isinstance(d.get("head_object"), dict) else {}
        seen_digests.append(digest_seen(str(d.get("object_key")), data, metadata_from_head_object(head),
                                        bucket=d.get("bucket") if isinstance(d.get("bucket"), str) else None))
    seen_logs = []
    from ..integrity import log_file_seen

    for lf in logs.values():
        data = _unb64(lf.get("content_gzip_b64"))
        if data is not None:
            seen_logs.append(log_file_seen(str(lf.get("object_key")), [data], max_inflated_bytes=_MAX_LOG_BYTES))
    report = validate(seen_digests, seen_logs, ring)
    # a digest's own signature or link that does not hold is tampering even when its successor still
    # vouches for its content (digests in a bundle need not be adjacent: a gap is not a failure)
    flagged = {s.subject: f"{s.rule} ({s.reason})" for s in report.signals
               if s.rule in ("digest_signature_invalid", "digest_chain_broken")}
    for row in report.digests:
        ok = row.trust_source is not None and row.rel_key not in flagged
        out.append(Check(f"digest {row.rel_key}", ok, f"signature {row.signature_status}"
                         + (f", trusted by {row.trust_source}" if row.trust_source else "")
                         + (f"; {flagged[row.rel_key]}" if row.rel_key in flagged else "")))
    by_rel = {r.rel_key: r for r in report.logs}
    for rel, lf in logs.items():
        if lf.get("content_gzip_b64") is None:
            out.append(Check(f"log file {rel}", None, f"not in the bundle: {lf.get('unavailable')}"))
            continue
        r = by_rel.get(str(rel))
        status = r.status if r is not None else "not_listed"
        out.append(Check(f"log file {rel}", status == "verified",
                         f"{status}" + (f" ({r.reason})" if r is not None and r.reason else "")
                         + (f" by digest {relative_key(r.digest_key)}" if r is not None and r.digest_key else "")))
    return out


def _write(w: dict[str, Any], logs: dict[Any, dict[str, Any]], sessions: list[Any],
           subject: Mapping[str, Any]) -> list[Check]:
    out = []
    att: dict[str, Any] = w["attribution"] if isinstance(w.get("attribution"), dict) else {}
    event_id = w.get("event_id")
    name = f"write {event_id}"
    rec = _record_in(logs, w.get("write_log_file"), event_id)
    if rec is None:
        out.append(Check(f"{name}: record in its log file", None if _absent(logs, w.get("write_log_file")) else False,
                         "log file not in the bundle" if _absent(logs, w.get("write_log_file"))
                         else "no record with this eventID in the log file"))
    else:
        same = rec == w.get("write_record")
        out.append(Check(f"{name}: record in its log file", same, "" if same else "the bundle's copy differs"))
        params: dict[str, Any] = rec["requestParameters"] if isinstance(rec.get("requestParameters"), dict) else {}
        facts = (params.get("bucketName") == subject.get("bucket") and params.get("key") == subject.get("key")
                 and rec.get("sourceIPAddress") == att.get("source_ip"))
        out.append(Check(f"{name}: object and address", facts,
                         f"{rec.get('eventName')} s3://{params.get('bucketName')}/{params.get('key')} from "
                         f"{rec.get('sourceIPAddress')} at {rec.get('eventTime')}"))
    if att.get("logon_event_id"):
        logon = _record_in(logs, w.get("logon_log_file"), att.get("logon_event_id"))
        if logon is None:
            absent = _absent(logs, w.get("logon_log_file"))
            out.append(Check(f"{name}: logon record", None if absent else False,
                             "log file not in the bundle" if absent else "no such logon in the log file"))
        else:
            same = logon == w.get("logon_record")
            out.append(Check(f"{name}: logon record", same, "" if same else "the bundle's copy differs"))
    sid = att.get("session_id")
    if sid:
        s = next((x for x in sessions if isinstance(x, dict) and x.get("session_id") == sid), None)
        if s is None:
            out.append(Check(f"{name}: session {sid}", False, "no usage-report line or observation names it"))
        else:
            agree = (s.get("user_id") == att.get("user_id")
                     and (s.get("eni_private_ip_address") in (None, att.get("source_ip"))))
            line = s.get("line")
            in_line = line is None or (sid in line and str(att.get("user_id")) in line)
            out.append(Check(f"{name}: session {sid} names user {att.get('user_id')}", agree and in_line,
                             f"{s.get('source')} {s.get('object_key') or ''}".strip()))
    return out


def _absent(logs: dict[Any, dict[str, Any]], rel: Any) -> bool:
    lf = logs.get(rel)
    return lf is None or lf.get("content_gzip_b64") is None


def _record_in(logs: dict[Any, dict[str, Any]], rel: Any, event_id: Any) -> dict[str, Any] | None:
    lf = logs.get(rel)
    data = _unb64(lf.get("content_gzip_b64")) if lf else None
    return find_record(data, str(event_id)) if data is not None else None


def summary(checks: Sequence[Check]) -> tuple[bool, list[str]]:
    """(every check holds, one line per check)."""
    mark = {True: "ok  ", False: "FAIL", None: "n/a "}
    lines = [f"{mark[c.ok]} {c.what}" + (f": {c.detail}" if c.detail else "") for c in checks]
    return all(c.ok is not False for c in checks) and any(c.ok for c in checks), lines
