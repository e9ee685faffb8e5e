"""Bounded decoding of an input object's body: gzip is inflated as a stream, with a cap.

A small ``.json.gz`` can inflate to gigabytes (deflate reaches about 1,000:1).  ``gzip.decompress``
builds the whole output before anyone can look at its size, so one such object would take a Lambda
past its memory and be retried forever.  Here the output is produced in bounded steps and the
object is refused (:class:`~auditcorr.ingest.cloudtrail.UnreadableObject`, so quarantined with the
reason) as soon as it would exceed ``max_bytes``.  A plain (uncompressed) body larger than the cap
is refused the same way: the cap bounds what the parse step is handed, and the parse step's memory
is a multiple of that (docs/reliability.md, "Memory").

The default cap is derived from the function's memory by :func:`cap_for_memory`; callers pass
their own (the Lambda from its ``MemorySize``, the CLI from its configuration).
"""

from __future__ import annotations

import zlib

#: peak memory of the parse step per byte of JSON handed to it: benchmarks/memory.py measures
#: 2.3 (2.5 on a 130 MB object); 3 leaves room for the rest of the ingest step holding the parsed
#: tables (docs/reliability.md, "Memory")
PARSE_PEAK_PER_BYTE = 3.0
#: what a warm process holds before the parse step: interpreter, pyarrow, msgspec/orjson, boto3,
#: Powertools (benchmarks/growth.py measures ~150-200 MB); kept out of the budget for the body
RESERVED_MB = 256
#: the Lambda's MemorySize the default is derived for (template.yaml: the ingest function)
DEFAULT_MEMORY_MB = 1024

_GZIP_MAGIC = b"\x1f\x8b"
_IN_STEP = 64 * 1024  # compressed bytes fed per step: the leftover input copied per step stays small
_OUT_STEP = 4 * 1024 * 1024  # at most this much output per call


def cap_for_memory(memory_mb: int, reserved_mb: int = RESERVED_MB,
                   peak_per_byte: float = PARSE_PEAK_PER_BYTE) -> int:
    """The largest body (bytes of JSON or CSV) a function with ``memory_mb`` can parse.

    ``(memory - reserved) / peak_per_byte``; never below 1 MiB (a function that small cannot run
    the parsers at all, and a cap of zero would quarantine everything)."""
    budget = (memory_mb - reserved_mb) * 1024 * 1024
    return max(1024 * 1024, int(budget / peak_per_byte))


DEFAULT_MAX_INFLATED = cap_for_memory(DEFAULT_MEMORY_MB)


class TooLarge(ValueError):
    """The body is (or would inflate to) more than the cap; the message is the reason."""


def inflate(data: bytes, max_bytes: int = DEFAULT_MAX_INFLATED) -> bytes:
    """The body of ``data``: gzip (one or more members) inflated, or ``data`` as it is.

    Raises :class:`TooLarge` when the body would exceed ``max_bytes``, ``zlib.error``/``EOFError``
    for corrupt or truncated gzip (the caller turns both into a quarantine reason).  Never holds
    more than about ``max_bytes`` plus one step of output."""
    if data[:2] != _GZIP_MAGIC:
        if len(data) > max_bytes:
            raise TooLarge(f"object larger than the {_mib(max_bytes)} cap")
        return data
    parts: list[bytes] = []
    total = 0
    view = memoryview(data)
    pos = 0  # where the next gzip member starts
    while pos < len(view):
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # one gzip member, header and trailer checked
        while not d.eof:
            if pos >= len(view):
                raise EOFError("compressed data ended before the end-of-stream marker")
            chunk: bytes | memoryview = view[pos:pos + _IN_STEP]
            pos += len(chunk)
            while chunk:
                out = d.decompress(chunk, min(_OUT_STEP, max_bytes - total + 1))
                total += len(out)
                if total > max_bytes:
                    raise TooLarge(f"gzip inflates to more than the {_mib(max_bytes)} cap "
                                   f"(from {_mib(len(data))} compressed)")
                if out:
                    parts.append(out)
                if d.eof:
                    break
                chunk = d.unconsumed_tail  # what max_length left unread (at most one input step)
        pos -= len(d.unused_data)  # the member ended there
        # what follows: another member, zero padding (tolerated, like gzip.decompress) or garbage
        while pos < len(view) and view[pos] == 0:
            step = bytes(view[pos:pos + _IN_STEP])
            pos += len(step) - len(step.lstrip(b"\x00"))
        if pos < len(view) and bytes(view[pos:pos + 2]) != _GZIP_MAGIC:
            raise zlib.error("trailing data after the gzip stream is not a gzip member")
    return b"".join(parts) if len(parts) != 1 else parts[0]


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):,.1f} MiB"
