"""Strict UTC time parsing, vectorised where the data is large.

CloudTrail writes ``2026-03-02T08:38:05Z``; usage reports are ISO 8601 UTC in an unconfirmed exact
form (``Z``, ``+00:00``, fractions, a space instead of ``T``).  A time without a zone is rejected:
guessing a zone would silently shift a session window.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from .schemas import TS

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2}|UTC)$",
    re.IGNORECASE,
)
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


class TimeError(ValueError):
    pass


def parse_ms(text: str) -> int:
    """Parse one ISO-8601 UTC (or offset) time to epoch milliseconds; raise TimeError."""
    s = text.strip()
    m = _ISO.match(s)
    if m:
        y, mo, d, h, mi, se, frac, zone = m.groups()
        try:
            base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(se), tzinfo=UTC)
        except ValueError as exc:
            raise TimeError(f"invalid time {text[:40]!r}") from exc
        ms = int(base.timestamp()) * 1000 + (int((frac or "0").ljust(3, "0")[:3]))
        z = zone.upper()
        if z not in ("Z", "UTC"):
            sign = 1 if z[0] == "+" else -1
            digits = z[1:].replace(":", "")
            offset_min = int(digits[:2]) * 60 + int(digits[2:])
            ms -= sign * offset_min * 60_000
        return ms
    m = _COMPACT.match(s)
    if m:
        try:
            return int(datetime(*map(int, m.groups()), tzinfo=UTC).timestamp()) * 1000  # type: ignore[misc]
        except ValueError as exc:
            raise TimeError(f"invalid time {text[:40]!r}") from exc
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?$", s):
        raise TimeError(f"time without a zone {text[:40]!r}")
    raise TimeError(f"unparseable time {text[:40]!r}")


def parse_column(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, list[int]]:
    """Parse a string column; return (timestamp[ms, UTC] array, indexes of bad non-null values).

    The common CloudTrail form is parsed by Arrow's vectorised strptime; only the rest falls back
    to the Python parser.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    fast = pc.strptime(values, format="%Y-%m-%dT%H:%M:%SZ", unit="ms", error_is_null=True)
    fast = fast.cast(TS)
    missing = pc.and_(pc.is_null(fast), pc.is_valid(values))
    if not pc.any(missing).as_py():
        return fast, []
    idx = pc.indices_nonzero(missing).to_pylist()
    out = fast.cast(pa.int64()).to_pylist()
    strs = values.to_pylist()
    bad: list[int] = []
    for i in idx:
        try:
            out[i] = parse_ms(strs[i])
        except TimeError:
            bad.append(i)
            out[i] = None
    return pa.array(out, type=pa.int64()).cast(TS), bad


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%d")


def dt_column(ts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The ``dt`` partition value (``YYYY-MM-DD``, UTC) of a timestamp column."""
    return pc.strftime(ts, format="%Y-%m-%d")
