"""Tolerant splitting of a CloudTrail body that is not valid JSON as a whole.

One record with something a strict JSON parser refuses (``NaN``, ``Infinity``, ``1e400``, a lone
surrogate escape ``"\\ud800"``, nesting deeper than the parser's limit, a byte that is not UTF-8)
makes ``orjson.loads`` refuse the whole document.  Rather than lose every good record of the file,
the body is split into its records by a small structural scanner (strings, brackets and commas;
nothing else is interpreted) and each record is parsed on its own: the bad one is rejected with the
reason, the rest are read.  This only runs when the whole-document parse failed, so its speed
matters little; it is linear in the body.

A body whose structure cannot be followed (unbalanced brackets, a truncated file, several
top-level values) gives ``None``: the caller tries JSON lines, then declares the object unreadable.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

#: strings (escapes included, so brackets inside them are not structure) and structural characters
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]', re.DOTALL)
_RECORDS_KEY = b'"Records"'
#: orjson refuses documents nested deeper than this (and re-serialises at most 255 levels)
MAX_DEPTH = 1024
NESTED_TOO_DEEPLY = "record nested too deeply"
NOT_JSON = "record is not valid JSON"


class BadRecord:
    """A record that could not be read on its own; ``reason`` is a fixed text (no content)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"BadRecord({self.reason!r})"


def split_records(text: bytes | memoryview) -> list[memoryview] | None:
    """The byte spans of the records of ``{"Records": [...]}`` (other keys ignored) or ``[...]``.

    None when ``text`` is not one such value with balanced structure."""
    view = memoryview(text)
    tokens = _TOKEN.finditer(text)
    first = next(tokens, None)
    if first is None or first.group() not in (b"{", b"["):
        return None
    if bytes(view[: first.start()]).strip():
        return None
    top_is_array = first.group() == b"["
    # depth of the elements we split on: 1 in a bare array, 2 inside the Records array
    element_depth = 1 if top_is_array else 2
    depth = 1
    in_records = top_is_array
    found_records = top_is_array
    spans: list[memoryview] = []
    start = first.end()
    prev_key: bytes | None = None  # a depth-1 string that may be a key
    expect_records_array = False
    end = -1
    for m in tokens:
        tok = m.group()
        c = tok[:1]
        if expect_records_array:
            expect_records_array = False
            if tok != b"[":
                return None  # "Records" is not a list: the strict path says so
            depth += 1
            in_records = found_records = True
            start = m.end()
            continue
        if c == b'"':
            if depth == 1 and not top_is_array:
                prev_key = tok
            continue
        if c == b":":
            if depth == 1 and not top_is_array and prev_key == _RECORDS_KEY and not found_records:
                expect_records_array = True
            prev_key = None
            continue
        if c == b",":
            if in_records and depth == element_depth:
                _add(spans, view, start, m.start())
                start = m.end()
            prev_key = None
            continue
        if c in (b"{", b"["):
            depth += 1
            continue
        # a closing bracket
        if in_records and depth == element_depth:
            _add(spans, view, start, m.start())
            in_records = False
        depth -= 1
        if depth == 0:
            end = m.end()
            break
    if end < 0 or not found_records:
        return None
    if bytes(view[end:]).strip():
        return None  # several top-level values: JSON lines, not one document
    return spans


def _add(spans: list[memoryview], view: memoryview, start: int, stop: int) -> None:
    part = view[start:stop]
    if bytes(part).strip():  # an empty array has no element (``[]``, ``[ ]``)
        spans.append(part)


def load_one(raw: bytes | memoryview) -> Any:
    """One record parsed on its own: the value, or a :class:`BadRecord` saying why not."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return BadRecord(why_not_json(bytes(raw)))


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _constant(_: str) -> Any:
    raise _Refused("record holds NaN or Infinity (not JSON)")


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused("record holds a number beyond the range of a double (e.g. 1e400)")
    return value


def _int(text: str) -> int:
    # orjson reads integers of at most 64 bits; longer digit strings are refused unread
    if len(text.lstrip("-")) > 20 or not -(2**63) <= int(text) < 2**64:
        raise _Refused("record holds an integer beyond 64 bits")
    return int(text)


def why_not_json(raw: bytes) -> str:
    """A fixed-text reason why ``raw`` (which orjson refused) is not a readable record.

    Decided by checks on the text, never by the parser's message."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "record is not valid UTF-8"
    if max_depth(raw) > MAX_DEPTH - 24:
        return NESTED_TOO_DEEPLY
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except _Refused as exc:
        return exc.reason
    except (ValueError, RecursionError):
        return NOT_JSON
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "record holds a lone surrogate escape (not a Unicode string)"
    return NOT_JSON


def max_depth(raw: bytes) -> int:
    """The deepest bracket nesting of ``raw`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for m in _TOKEN.finditer(raw):
        c = m.group()[:1]
        if c in (b"{", b"["):
            depth += 1
            deepest = max(deepest, depth)
        elif c in (b"}", b"]"):
            depth -= 1
    return deepest
