"""Read a local copy of a CloudTrail bucket (or part of one) into validator inputs.

The only module of the integrity package that touches the filesystem.  Layout it understands:

- log and digest files anywhere under a root, keyed by their path from the root (``AWSLogs/...``
  with any prefix before it, as ``aws s3 sync`` leaves them);
- next to each digest, ``<digest file name>.metadata.json``: the output of
  ``aws s3api head-object`` for that digest (its ``Metadata`` holds ``signature`` and
  ``signature-algorithm``), see ADR 0007;
- a key directory with one file per public key named by its fingerprint (``<fingerprint>.pem`` or
  ``.der``), and/or saved ``aws cloudtrail list-public-keys`` output (``*.json``).

Nothing read is ever fatal: an unreadable file is listed in ``skipped`` with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .digest import DEFAULT_MAX_DIGEST_BYTES
from .inputs import (
    DEFAULT_MAX_LOG_BYTES,
    DigestMetadata,
    DigestSeen,
    KeyRing,
    LogFileSeen,
    digest_seen,
    log_file_seen,
    metadata_from_head_object,
)
from .keys import parse_digest_key, parse_log_key

METADATA_SUFFIX = ".metadata.json"
_CHUNK = 1 << 20
_MAX_SIDECAR_BYTES = 64 << 10
_FINGERPRINT = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class LocalTree:
    digests: list[DigestSeen] = field(default_factory=list)
    logs: list[LogFileSeen] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def sidecar_document(path: Path) -> dict | None:
    """The ``head-object`` document a sidecar holds; None when absent or unreadable (then the digest is
    checked through its successor's copy of its signature)."""
    try:
        if not path.is_file() or path.stat().st_size > _MAX_SIDECAR_BYTES:
            return None
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def read_metadata_sidecar(path: Path) -> DigestMetadata | None:
    """``<digest>.metadata.json`` -> metadata; None when absent.  ValueError when unreadable."""
    if not path.is_file():
        return None
    if path.stat().st_size > _MAX_SIDECAR_BYTES:
        raise ValueError("metadata_sidecar_too_large")
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError("metadata_sidecar_not_json") from exc
    if not isinstance(doc, dict):
        raise ValueError("metadata_sidecar_not_an_object")
    return metadata_from_head_object(doc)


def load_tree(
    root: Path,
    *,
    max_digest_bytes: int = DEFAULT_MAX_DIGEST_BYTES,
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
) -> LocalTree:
    """Every CloudTrail log and digest file under ``root`` (sorted by path)."""
    tree = LocalTree()
    for path in sorted(root.rglob("*.json.gz")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if parse_digest_key(rel) is not None:
            try:
                body = path.read_bytes() if path.stat().st_size <= max_digest_bytes else None
            except OSError:
                tree.skipped.append((rel, "unreadable"))
                continue
            if body is None:
                tree.skipped.append((rel, "digest_too_large"))
                continue
            sidecar = path.with_name(path.name + METADATA_SUFFIX)
            try:
                metadata = read_metadata_sidecar(sidecar)
            except (ValueError, OSError) as exc:
                tree.skipped.append((rel + METADATA_SUFFIX, str(exc) or "unreadable"))
                metadata = None
            tree.digests.append(digest_seen(rel, body, metadata, max_inflated_bytes=max_digest_bytes))
        elif parse_log_key(rel) is not None:
            try:
                tree.logs.append(log_file_seen(rel, _chunks(path), max_inflated_bytes=max_log_bytes))
            except OSError:
                tree.skipped.append((rel, "unreadable"))
        else:
            tree.skipped.append((rel, "not_a_cloudtrail_key"))
    return tree


def load_key_directory(directory: Path, keys: KeyRing | None = None) -> KeyRing:
    """Keys from ``<fingerprint>.pem`` / ``<fingerprint>.der`` files and saved list-public-keys JSON.
    A file whose name is not the fingerprint of its key is rejected (``keys.rejected``)."""
    ring = keys if keys is not None else KeyRing()
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        try:
            data = path.read_bytes()
        except OSError:
            ring.rejected.append((path.name, "unreadable"))
            continue
        if suffix in (".pem", ".der"):
            stem = path.stem.lower()
            if not _FINGERPRINT.match(stem):
                ring.rejected.append((path.name, "name_is_not_a_fingerprint"))
                continue
            ring.add_bytes(path.name, data, expected_fingerprint=stem)
        elif suffix == ".json":
            try:
                doc = orjson.loads(data)
            except orjson.JSONDecodeError:
                ring.rejected.append((path.name, "not_json"))
                continue
            if isinstance(doc, dict):
                ring.add_list_public_keys(doc)
            else:
                ring.rejected.append((path.name, "not_an_object"))
    return ring
