"""Strict UTC time parsing, vectorised where the data is large.

CloudTrail writes ``2026-03-02T08:38:05Z``; usage reports are ISO 8601 UTC in an unconfirmed exact
form (``Z``, ``+00:00``, fractions, a space instead of ``T``).  A time without a zone is rejected:
guessing a zone would silently shift a session window.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schemas import TS

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2}|UTC)$",
    re.IGNORECASE | re.ASCII,
)
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$", re.ASCII)


class TimeError(ValueError):
    """``kind`` names the problem without the value (safe for counters, metrics and logs)."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(f"{kind} {text[:40]!r}")
        self.kind = kind


def parse_ms(text: str) -> int:
    """Parse one ISO-8601 UTC (or offset) time to epoch milliseconds; raise TimeError."""
    s = text.strip()
    m = _ISO.match(s)
    if m:
        y, mo, d, h, mi, se, frac, zone = m.groups()
        try:
            base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(se), tzinfo=UTC)
        except ValueError as exc:
            raise TimeError("invalid time", text) from exc
        ms = int(base.timestamp()) * 1000 + (int((frac or "0").ljust(3, "0")[:3]))
        z = zone.upper()
        if z not in ("Z", "UTC"):
            sign = 1 if z[0] == "+" else -1
            digits = z[1:].replace(":", "")
            if int(digits[:2]) > 23 or int(digits[2:]) > 59:
                raise TimeError("invalid zone offset", text)
            offset_min = int(digits[:2]) * 60 + int(digits[2:])
            ms -= sign * offset_min * 60_000
        return ms
    m = _COMPACT.match(s)
    if m:
        try:
            y, mo, d, h, mi, se = map(int, m.groups())
            return int(datetime(y, mo, d, h, mi, se, tzinfo=UTC).timestamp()) * 1000
        except ValueError as exc:
            raise TimeError("invalid time", text) from exc
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?$", s, re.ASCII):
        raise TimeError("time without a zone", text)
    raise TimeError("unparseable time", text)


def parse_column(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, list[int]]:
    """Parse a string column; return (timestamp[ms, UTC] array, indexes of bad non-null values).

    The common CloudTrail form is parsed by Arrow's vectorised strptime; only the rest falls back
    to the Python parser.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    fast = pc.strptime(values, format="%Y-%m-%dT%H:%M:%SZ", unit="ms", error_is_null=True)
    fast = _strict(values, fast).cast(TS)
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


def _strict(values: pa.Array, fast: pa.Array) -> pa.Array:
    """Null out what Arrow's strptime accepted but the strict parser would not.

    strptime is lenient: it normalises ``2026-02-30`` to March 2nd, takes second ``60`` as the next
    minute and accepts unpadded digits.  Only rows that could be such a case (day > 28, second 60,
    not exactly 20 characters) are checked, vectorised; a row that fails goes to ``parse_ms``.
    """
    if values.type != pa.string():
        values = values.cast(pa.string())
    raw = values.cast(pa.binary())
    day_txt = pc.binary_slice(raw, 8, 10)
    sec_txt = pc.binary_slice(raw, 17, 19)
    odd = pc.or_(pc.not_equal(pc.binary_length(raw), 20),
                 pc.or_(pc.greater(day_txt, b"28"), pc.greater_equal(sec_txt, b"60")))
    suspect = pc.fill_null(pc.and_(pc.is_valid(fast), odd), False)
    if not pc.any(suspect).as_py():
        return fast
    idx = pc.indices_nonzero(suspect)
    sub = fast.take(idx)

    def two(x: pa.Array) -> pa.Array:
        return pc.utf8_lpad(pc.cast(x, pa.string()), 2, "0").cast(pa.binary())

    same = pc.and_(pc.equal(pc.binary_length(raw.take(idx)), 20),
                   pc.and_(pc.equal(two(pc.day(sub)), day_txt.take(idx)),
                           pc.equal(two(pc.second(sub)), sec_txt.take(idx))))
    wrong = idx.filter(pc.invert(pc.fill_null(same, False))).to_numpy(zero_copy_only=False)
    if len(wrong) == 0:
        return fast
    mask = np.zeros(len(fast), dtype=bool)
    mask[wrong] = True
    return pc.if_else(pa.array(mask), pa.scalar(None, fast.type), fast)


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%d")


def dt_column(ts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The ``dt`` partition value (``YYYY-MM-DD``, UTC) of a timestamp column."""
    return pc.strftime(ts, format="%Y-%m-%d")


def day_number(dt: str) -> int:
    """Days since the epoch of a ``YYYY-MM-DD`` partition value."""
    return int(np.datetime64(dt, "D").astype(np.int64))


def day_string(day: int) -> str:
    """The ``YYYY-MM-DD`` partition value of a day number (days since the epoch)."""
    return str(np.datetime64(day, "D"))
