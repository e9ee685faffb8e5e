"""Bounded, streaming gunzip + SHA-256 of the uncompressed bytes.

CloudTrail hashes the UNCOMPRESSED content of a log file (and of a digest file).  It writes each
object as one gzip member.  ``zlib`` stops at the end of the first member and keeps whatever follows
in ``unused_data``; a validator that ignores it (the AWS CLI does) reports a file with an appended
second member, or appended garbage, as valid.  Such an object is not the file CloudTrail hashed, so
here it is an outcome of its own (``trailing_data``), which the validator maps to ``modified``.

The inflated size is capped (a parameter): a small object can inflate to gigabytes.
"""

from __future__ import annotations

import hashlib
import itertools
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

# gzip container (header + CRC32/ISIZE trailer checked by zlib), not raw deflate or zlib.
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_STEP = 1 << 20  # inflate at most 1 MiB per call, so memory stays flat

OK = "ok"
TRAILING_DATA = "trailing_data"  # bytes after the end of the first gzip member
TRUNCATED = "truncated"  # the stream ended inside the first member
CORRUPT = "corrupt"  # not gzip, bad deflate data, CRC or length mismatch
TOO_LARGE = "too_large"  # inflated beyond the cap; hashing stopped
OUTCOMES = (OK, TRAILING_DATA, TRUNCATED, CORRUPT, TOO_LARGE)


@dataclass(frozen=True, slots=True)
class GzipHash:
    """SHA-256 (hex) of the first member's content; ``sha256`` is None unless ``outcome == ok``."""

    outcome: str
    sha256: str | None
    inflated_bytes: int


class InflateError(ValueError):
    """A gzip body could not be inflated to a complete, single-member content.  ``kind`` is one of
    OUTCOMES (never the payload)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _inflate(chunks: Iterable[bytes], max_inflated_bytes: int, sink: Callable[[bytes], object]) -> tuple[str, int]:
    inflater = zlib.decompressobj(_GZIP_WBITS)
    total = 0
    # a final empty chunk drains output zlib still holds after the last input chunk
    for chunk in itertools.chain(chunks, (b"",)):
        if inflater.eof:
            if chunk:
                return TRAILING_DATA, total
            continue
        data = chunk
        while True:
            try:
                out = inflater.decompress(data, _STEP)
            except zlib.error:
                return CORRUPT, total
            total += len(out)
            if total > max_inflated_bytes:
                return TOO_LARGE, total
            if out:
                sink(out)
            if inflater.eof:
                if inflater.unused_data:
                    return TRAILING_DATA, total
                break
            data = inflater.unconsumed_tail
            # zlib may hold output back when the step limit was hit; ask again until it is drained
            if not data and len(out) < _STEP:
                break
    if not inflater.eof:
        return TRUNCATED, total
    return OK, total


def hash_gzip_stream(chunks: Iterable[bytes], *, max_inflated_bytes: int) -> GzipHash:
    """Stream ``chunks`` (a gzip object's bytes, in order) through gunzip into SHA-256.

    Never raises for bad input: the outcome says what was wrong.
    """
    digest = hashlib.sha256()
    outcome, total = _inflate(chunks, max_inflated_bytes, digest.update)
    return GzipHash(outcome, digest.hexdigest() if outcome == OK else None, total)


def inflate_bounded(data: bytes, *, max_inflated_bytes: int) -> bytes:
    """Whole single-member gzip ``data`` -> its content, or InflateError (for digest files, which
    are parsed after inflating and are small)."""
    parts: list[bytes] = []
    outcome, _ = _inflate((data,), max_inflated_bytes, parts.append)
    if outcome != OK:
        raise InflateError(outcome)
    return b"".join(parts)


#: content at least this large is hashed on a worker thread while the caller parses it (hashlib
#: releases the GIL on large buffers: on two or more cores the hash costs almost no wall time)
BACKGROUND_HASH_BYTES = 1 << 20
_executor: ThreadPoolExecutor | None = None


def _hasher() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="auditcorr-sha256")
    return _executor


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PendingHash:
    """A hash being computed; ``result()`` waits for it."""

    def __init__(self, content: bytes) -> None:
        self._n = len(content)
        self._future: Future[str] | None = None
        self._done: str | None = None
        if len(content) >= BACKGROUND_HASH_BYTES:
            self._future = _hasher().submit(_sha256_hex, content)
        else:
            self._done = _sha256_hex(content)

    def result(self) -> GzipHash:
        digest = self._future.result() if self._future is not None else self._done
        return GzipHash(OK, digest, self._n)


def inflate_and_hash(data: bytes, *, max_inflated_bytes: int) -> tuple[bytes | None, GzipHash]:
    """Whole gzip ``data`` -> (the first member's content, its hash), in one pass: for callers that
    need the content anyway (the CloudTrail parser), so a log file is inflated once, not twice.

    The content is None unless the outcome is ``ok`` or ``trailing_data`` (then it is the first
    member only; a caller that reads every member, as ``gzip.decompress`` does, inflates again --
    rare: CloudTrail writes one member)."""
    content, pending = inflate_hash_later(data, max_inflated_bytes=max_inflated_bytes)
    return content, pending.result() if isinstance(pending, PendingHash) else pending


def inflate_hash_later(data: bytes, *, max_inflated_bytes: int) -> tuple[bytes | None, GzipHash | PendingHash]:
    """``inflate_and_hash`` whose hash of a complete single member may still be running (a
    ``PendingHash``: call ``result()`` after using the content)."""
    if data[:2] != b"\x1f\x8b":
        return None, GzipHash(CORRUPT, None, 0)
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        content = inflater.decompress(data, max_inflated_bytes + 1)
    except zlib.error:
        return None, GzipHash(CORRUPT, None, 0)
    if len(content) > max_inflated_bytes:
        return None, GzipHash(TOO_LARGE, None, len(content))
    if not inflater.eof:
        return None, GzipHash(TRUNCATED, None, len(content))
    if inflater.unused_data:
        return content, GzipHash(TRAILING_DATA, None, len(content))
    return content, PendingHash(content)
