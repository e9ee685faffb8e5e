"""CloudTrail log file integrity validation: the pure core (no AWS SDK; bytes and values in).

Public surface:
- ``digest_seen`` / ``log_file_seen`` build the inputs from an object's bytes (bounded gunzip);
- ``metadata_from_head_object`` reads a digest's S3 user metadata (signature);
- ``KeyRing`` holds the trusted CloudTrail public keys by fingerprint;
- ``validate`` returns an ``IntegrityReport`` (rows per log file and per digest, and signals),
  each also as an Arrow table.
The local-copy loader is ``auditcorr.integrity.local`` (reads files).
"""

from .digest import Digest, DigestFormatError, LogFileEntry, ParsedDigest, parse_digest, signing_string
from .gzipstream import GzipHash, hash_gzip_stream
from .inputs import (
    DigestMetadata,
    DigestSeen,
    KeyRing,
    LogFileSeen,
    digest_seen,
    log_file_seen,
    metadata_from_head_object,
)
from .rsakeys import KeyFormatError, RsaPublicKey, load_public_key, verify_sha256_rsa
from .validate import DigestRow, IntegrityReport, LogRow, Signal, signal_id, validate

__all__ = [
    "Digest",
    "DigestFormatError",
    "DigestMetadata",
    "DigestRow",
    "DigestSeen",
    "GzipHash",
    "IntegrityReport",
    "KeyFormatError",
    "KeyRing",
    "LogFileEntry",
    "LogFileSeen",
    "LogRow",
    "ParsedDigest",
    "RsaPublicKey",
    "Signal",
    "digest_seen",
    "hash_gzip_stream",
    "load_public_key",
    "log_file_seen",
    "metadata_from_head_object",
    "parse_digest",
    "signal_id",
    "signing_string",
    "validate",
    "verify_sha256_rsa",
]
