"""CloudTrail digest files: parsing, and the string CloudTrail signs.

Field names as in the AWS CloudTrail User Guide, "CloudTrail digest file structure", and as the AWS
CLI's validator (aws-cli ``awscli/customizations/cloudtrail/validation.py``) reads them.  The digest
is a gzip JSON object; its signature is NOT in it but in the object's S3 user metadata
(``signature``: hex, ``signature-algorithm``: ``SHA256withRSA``; a backfill digest also carries
``backfill-generation-timestamp``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from .gzipstream import InflateError, inflate_bounded

DEFAULT_MAX_DIGEST_BYTES = 64 << 20  # inflated; a digest lists one hour of log files (~400 bytes each)
SIGNATURE_ALGORITHM = "SHA256withRSA"
HASH_ALGORITHM = "SHA-256"
_PREVIOUS = (
    "previousDigestS3Bucket",
    "previousDigestS3Object",
    "previousDigestHashValue",
    "previousDigestHashAlgorithm",
    "previousDigestSignature",
)


class DigestFormatError(ValueError):
    """``kind`` names what is wrong (safe to log and count)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class LogFileEntry:
    s3_bucket: str
    s3_object: str
    hash_value: str  # lower-case hex
    hash_algorithm: str
    newest_event_time: str | None
    oldest_event_time: str | None


@dataclass(frozen=True, slots=True)
class Digest:
    aws_account_id: str | None
    digest_start_time: datetime
    digest_end_time: datetime
    digest_end_time_text: str  # exactly as written: it is part of the signed string
    digest_s3_bucket: str
    digest_s3_object: str
    public_key_fingerprint: str
    signature_algorithm: str
    newest_event_time: str | None
    oldest_event_time: str | None
    previous_s3_bucket: str | None
    previous_s3_object: str | None
    previous_hash_value: str | None
    previous_hash_algorithm: str | None
    previous_signature: str | None
    log_files: tuple[LogFileEntry, ...]

    @property
    def starts_chain(self) -> bool:
        """A first digest (logging or validation just switched on): no previous digest."""
        return self.previous_s3_object is None and self.previous_signature is None


@dataclass(frozen=True, slots=True)
class ParsedDigest:
    digest: Digest
    sha256: str  # hex SHA-256 of the uncompressed digest bytes (what the signature and the chain cover)


def _utc(text: object, field: str) -> datetime:
    if not isinstance(text, str):
        raise DigestFormatError(f"bad_{field}")
    try:
        when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise DigestFormatError(f"bad_{field}") from exc
        if when.tzinfo is None:
            raise DigestFormatError(f"bad_{field}") from None
        return when.astimezone(UTC)
    return when.replace(tzinfo=UTC)


def _required(doc: dict, field: str) -> str:
    value = doc.get(field)
    if field not in doc:
        raise DigestFormatError(f"missing_{field}")
    if not isinstance(value, str) or not value:
        raise DigestFormatError(f"bad_{field}")
    return value


def _nullable(doc: dict, field: str) -> str | None:
    value = doc.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise DigestFormatError(f"bad_{field}")
    return value


def _optional_text(doc: dict, field: str) -> str | None:
    value = doc.get(field)
    return value if isinstance(value, str) else None


def _log_entry(item: object) -> LogFileEntry:
    if not isinstance(item, dict):
        raise DigestFormatError("bad_logFiles_entry")
    return LogFileEntry(
        _required(item, "s3Bucket"),
        _required(item, "s3Object"),
        _required(item, "hashValue").lower(),
        _required(item, "hashAlgorithm"),
        _optional_text(item, "newestEventTime"),
        _optional_text(item, "oldestEventTime"),
    )


def parse_digest_json(content: bytes) -> Digest:
    """Uncompressed digest JSON -> Digest, or DigestFormatError."""
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise DigestFormatError("not_json") from exc
    if not isinstance(doc, dict):
        raise DigestFormatError("not_an_object")
    end_text = _required(doc, "digestEndTime")
    previous = {field: _nullable(doc, field) for field in _PREVIOUS}
    if "previousDigestSignature" not in doc:  # the CLI requires it (null in a first digest)
        raise DigestFormatError("missing_previousDigestSignature")
    files = doc.get("logFiles")
    if not isinstance(files, list):
        raise DigestFormatError("bad_logFiles")
    account = doc.get("awsAccountId")
    return Digest(
        aws_account_id=account if isinstance(account, str) else None,
        digest_start_time=_utc(doc.get("digestStartTime"), "digestStartTime"),
        digest_end_time=_utc(end_text, "digestEndTime"),
        digest_end_time_text=end_text,
        digest_s3_bucket=_required(doc, "digestS3Bucket"),
        digest_s3_object=_required(doc, "digestS3Object"),
        public_key_fingerprint=_required(doc, "digestPublicKeyFingerprint").lower(),
        signature_algorithm=_required(doc, "digestSignatureAlgorithm"),
        newest_event_time=_optional_text(doc, "newestEventTime"),
        oldest_event_time=_optional_text(doc, "oldestEventTime"),
        previous_s3_bucket=previous["previousDigestS3Bucket"],
        previous_s3_object=previous["previousDigestS3Object"],
        previous_hash_value=previous["previousDigestHashValue"],
        previous_hash_algorithm=previous["previousDigestHashAlgorithm"],
        previous_signature=previous["previousDigestSignature"],  # as written: it is signed
        log_files=tuple(_log_entry(item) for item in files),
    )


def parse_digest(body: bytes, *, max_inflated_bytes: int = DEFAULT_MAX_DIGEST_BYTES) -> ParsedDigest:
    """A digest object's bytes (gzip) -> parsed digest + SHA-256 of its uncompressed content."""
    try:
        content = inflate_bounded(body, max_inflated_bytes=max_inflated_bytes)
    except InflateError as exc:
        raise DigestFormatError(f"gzip_{exc.kind}") from exc
    return ParsedDigest(parse_digest_json(content), hashlib.sha256(content).hexdigest())


def signing_string(digest: Digest, content_sha256: str) -> bytes:
    """The bytes CloudTrail signs (User Guide, "Custom implementations of CloudTrail log file
    integrity validation"; aws-cli validation.py ``_create_string_to_sign``)::

        digestEndTime \\n digestS3Bucket/digestS3Object \\n hex(SHA-256(uncompressed digest))
        \\n previousDigestSignature

    with the text ``null`` for the previous signature of a chain's first digest.
    """
    previous = digest.previous_signature if digest.previous_signature is not None else "null"
    text = (
        f"{digest.digest_end_time_text}\n{digest.digest_s3_bucket}/{digest.digest_s3_object}\n"
        f"{content_sha256}\n{previous}"
    )
    return text.encode("utf-8")
