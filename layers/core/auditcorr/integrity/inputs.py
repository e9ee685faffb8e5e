"""What the validator is given: digests and log files as seen, and the trusted public keys.

Everything here is built from bytes and mappings handed in by an adapter (S3, a local copy); nothing
reads a file or calls AWS.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .digest import DEFAULT_MAX_DIGEST_BYTES, DigestFormatError, ParsedDigest, parse_digest
from .gzipstream import hash_gzip_stream
from .rsakeys import KeyFormatError, RsaPublicKey, fingerprint_of, load_public_key

DEFAULT_MAX_LOG_BYTES = 1 << 30  # inflated; CloudTrail log files are far smaller


@dataclass(frozen=True, slots=True)
class DigestMetadata:
    """The digest object's S3 user metadata (lower-case names, as S3 returns them)."""

    signature: str | None
    signature_algorithm: str | None
    backfill_generation_timestamp: str | None = None


def metadata_from_head_object(doc: Mapping[str, object]) -> DigestMetadata:
    """``aws s3api head-object`` / boto3 ``head_object`` output (or just its ``Metadata`` map)."""
    inner = doc.get("Metadata", doc)
    meta = inner if isinstance(inner, Mapping) else {}
    lowered = {str(k).lower(): v for k, v in meta.items()}

    def text(name: str) -> str | None:
        value = lowered.get(name)
        return value if isinstance(value, str) and value else None

    return DigestMetadata(text("signature"), text("signature-algorithm"), text("backfill-generation-timestamp"))


@dataclass(frozen=True, slots=True)
class DigestSeen:
    key: str  # the object key as observed (an S3 key, or a path under a local copy)
    parsed: ParsedDigest | None
    error: str | None  # why it could not be parsed (a DigestFormatError kind)
    metadata: DigestMetadata | None
    bucket: str | None = None  # the bucket it was read from, when known


def digest_seen(
    key: str,
    body: bytes,
    metadata: DigestMetadata | None,
    *,
    bucket: str | None = None,
    max_inflated_bytes: int = DEFAULT_MAX_DIGEST_BYTES,
) -> DigestSeen:
    try:
        parsed = parse_digest(body, max_inflated_bytes=max_inflated_bytes)
    except DigestFormatError as exc:
        return DigestSeen(key, None, exc.kind, metadata, bucket)
    return DigestSeen(key, parsed, None, metadata, bucket)


@dataclass(frozen=True, slots=True)
class LogFileSeen:
    key: str
    sha256: str | None  # of the uncompressed content; None unless outcome == "ok"
    outcome: str  # a gzipstream outcome: ok, trailing_data, truncated, corrupt, too_large
    bucket: str | None = None


def log_file_seen(
    key: str,
    chunks: Iterable[bytes],
    *,
    bucket: str | None = None,
    max_inflated_bytes: int = DEFAULT_MAX_LOG_BYTES,
) -> LogFileSeen:
    result = hash_gzip_stream(chunks, max_inflated_bytes=max_inflated_bytes)
    return LogFileSeen(key, result.sha256, result.outcome, bucket)


@dataclass
class KeyRing:
    """Trusted CloudTrail public keys by fingerprint.  A key is reachable by the MD5 of its PKCS#1 DER
    (what ListPublicKeys fingerprints) and of its SPKI DER."""

    _keys: dict[str, RsaPublicKey] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, reason), never the key bytes

    def add(self, key: RsaPublicKey) -> None:
        for fp in key.fingerprints():
            self._keys[fp] = key

    def add_bytes(self, name: str, data: bytes, *, expected_fingerprint: str | None = None) -> bool:
        """Load a PEM/DER/base64 key; when ``expected_fingerprint`` is given (a file named by its
        fingerprint, or ListPublicKeys' ``Fingerprint``) it must match the key or the raw bytes."""
        try:
            key = load_public_key(data)
        except KeyFormatError as exc:
            self.rejected.append((name, exc.kind))
            return False
        if expected_fingerprint is not None:
            names = set(key.fingerprints()) | {fingerprint_of(data)}
            if expected_fingerprint.lower() not in names:
                self.rejected.append((name, "fingerprint_mismatch"))
                return False
        self.add(key)
        return True

    def add_list_public_keys(self, doc: Mapping[str, object]) -> int:
        """``aws cloudtrail list-public-keys`` output (``PublicKeyList``, base64 ``Value``)."""
        added = 0
        items = doc.get("PublicKeyList") or doc.get("publicKeyList") or []
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, Mapping):
                self.rejected.append((f"PublicKeyList[{index}]", "not_an_object"))
                continue
            value, fingerprint = item.get("Value"), item.get("Fingerprint")
            name = str(fingerprint or f"PublicKeyList[{index}]")
            if isinstance(value, bytes):  # boto3 returns the blob decoded
                der = value
            elif isinstance(value, str):
                try:
                    der = base64.b64decode(value, validate=True)
                except binascii.Error:
                    self.rejected.append((name, "bad_base64"))
                    continue
            else:
                self.rejected.append((name, "missing_value"))
                continue
            added += self.add_bytes(
                name, der, expected_fingerprint=fingerprint if isinstance(fingerprint, str) else None
            )
        return added

    def get(self, fingerprint: str) -> RsaPublicKey | None:
        return self._keys.get(fingerprint.lower())

    def __len__(self) -> int:
        return len(set(self._keys.values()))

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._keys))
