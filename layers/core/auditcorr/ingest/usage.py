"""AppStream usage reports (sessions and applications CSVs) -> Arrow tables.

Parsed by header name, in any column order; unknown extra columns are kept as a JSON string.
A file missing a required column is rejected with the column named.  Reports are small (one row a
session a day), so the stdlib ``csv`` reader is the right tool here: it handles quoting, CRLF and,
with ``utf-8-sig``, a byte-order mark.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
import pyarrow as pa

from ..counts import FileOutcome
from ..schemas import APPLICATIONS, SESSIONS, TS, conform
from ..timeparse import TimeError, parse_ms
from .cloudtrail import UnreadableObject, decode_body
from .inflate import DEFAULT_MAX_INFLATED
from .plausible import plausible_ms

SESSION_REQUIRED = ("user_session_id", "session_start_time", "session_end_time", "user_id",
                    "eni_private_ip_address")
APP_REQUIRED = ("user_session_id", "application_name")

_KNOWN_SESSION_COLS = {
    "user_session_id", "aws_account_id", "region", "session_start_time", "session_end_time",
    "session_duration_in_seconds", "user_id", "user_arn", "authentication_type",
    "authentication_type_user_id", "fleet_name", "stack_name", "instance_type", "eni_private_ip_address",
    "connected_at_least_once", "client_ip_addresses", "instance_id", "is_multisession",
    "max_session_duration", "session_type",
}
_DATE_IN_NAME = re.compile(r"daily-(?:session|app)-report-(\d{4}-\d{2}-\d{2})\.csv")
_DATE_IN_PATH = re.compile(r"year=(\d{4})/month=(\d{1,2})/day=(\d{1,2})")
#: the largest field a row may hold (the stdlib csv reader's own default limit): a row with a larger
#: field is rejected alone, the rest of the report is kept
MAX_FIELD_CHARS = 131_072


@dataclass
class ParsedReport:
    kind: str  # sessions_report | applications_report
    report_date: str | None
    table: pa.Table
    outcome: FileOutcome


def report_kind(path: str) -> str | None:
    p = path.replace("\\", "/")
    if "daily-session-report" in p or "/sessions/schedule=" in p:
        return "sessions_report"
    if "daily-app-report" in p or "/applications/schedule=" in p:
        return "applications_report"
    return None


def report_date_from_path(path: str) -> str | None:
    """The report's day from its name (or its ``year=/month=/day=`` folders); None if there is none.

    Only a real calendar date counts: the value becomes a partition name, and a partition such as
    ``dt=2026-13-45`` would break every later date computation over the table.
    """
    m = _DATE_IN_NAME.search(path)
    if m:
        return _real_date(*m.group(1).split("-"))
    m = _DATE_IN_PATH.search(path.replace("\\", "/"))
    if m:
        return _real_date(*m.groups())
    return None


def _real_date(y: str, mo: str, d: str) -> str | None:
    try:
        return date(int(y), int(mo), int(d)).isoformat()
    except (ValueError, OverflowError):  # not digits, not a day, or a 40-digit year
        return None


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """csv's field-size limit is process-wide: raise it for one read, then put it back.

    The reader must not stop at a huge field (its error would end the whole report, and resuming
    after it would start mid-field, where a forged row could hide): it reads every field whole, up
    to the size of the body (itself capped), and the rows with an oversized field are rejected after."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, limit))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _read_rows(data: bytes, max_bytes: int = DEFAULT_MAX_INFLATED) -> tuple[list[str], list[list[str]]]:
    body = decode_body(data, max_bytes)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableObject("not UTF-8 text") from exc
    if not text.strip():
        raise UnreadableObject("empty object")
    if "\x00" in text:
        raise UnreadableObject("binary content (NUL bytes): not a CSV report")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        with _field_limit(len(text) + 1):
            rows = [r for r in reader]
    except csv.Error as exc:
        raise UnreadableObject(f"malformed CSV: {exc}") from exc
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise UnreadableObject("empty object")
    header = [h.strip().lower() for h in rows[0]]
    return header, rows[1:]


def _bool(v: str | None) -> bool | None:
    if v is None or v == "":
        return None
    s = v.strip().lower()
    if s in ("true", "t", "1", "yes", "y"):
        return True
    if s in ("false", "f", "0", "no", "n"):
        return False
    return None


def _int(v: str | None) -> int | None:
    if v is None or v.strip() == "":
        return None
    try:
        n = int(float(v))
    except (ValueError, OverflowError):  # "x", "nan", "1e400"
        return None
    return n if -(2**63) <= n < 2**63 else None  # the column is int64


def parse_usage_report(data: bytes, source: str, kind: str | None = None, *,
                       max_inflated: int = DEFAULT_MAX_INFLATED, max_field_chars: int = MAX_FIELD_CHARS,
                       now_ms: int | None = None) -> ParsedReport:
    """Parse one usage report.  Raises UnreadableObject when the report as a whole cannot be read.

    ``max_inflated`` caps the body (``inflate``); a row with a field over ``max_field_chars`` is
    rejected alone; session times outside ``plausible`` bounds (``now_ms`` narrows them) too."""
    header, rows = _read_rows(data, max_inflated)
    if any(len(h) > MAX_FIELD_CHARS for h in header):  # a column name, not a value: not a report
        raise UnreadableObject(f"header has a field over {MAX_FIELD_CHARS:,} characters: not a report")
    if kind is None:
        kind = report_kind(source)
    if kind is None:
        if "session_start_time" in header:
            kind = "sessions_report"
        elif "application_name" in header:
            kind = "applications_report"
        else:
            raise UnreadableObject("CSV is neither a sessions nor an applications report")
    required = SESSION_REQUIRED if kind == "sessions_report" else APP_REQUIRED
    missing = [c for c in required if c not in header]
    if missing:
        raise UnreadableObject(f"missing required column(s): {', '.join(missing)}")
    report_date = report_date_from_path(source)
    outcome = FileOutcome(source=source, kind=kind, records_in=len(rows))
    records = []
    width = len(header)
    for r in rows:
        if len(r) != width:
            outcome.reject(f"row has {len(r)} fields, header has {width}")
            continue
        if any(len(v) > max_field_chars for v in r):
            outcome.reject(f"row has a field over {max_field_chars:,} characters")
            continue
        records.append(dict(zip(header, r, strict=True)))
    if kind == "sessions_report":
        table = _sessions(records, report_date, source, outcome, now_ms)
    else:
        table = _applications(records, report_date, source, outcome)
    return ParsedReport(kind, report_date, table, outcome)


def _extra(rec: dict[str, str], known: set[str]) -> str | None:
    extra = {k: v for k, v in rec.items() if k not in known and k}
    return orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode() if extra else None


def _sessions(records: list[dict[str, str]], report_date: str | None, source: str,
              outcome: FileOutcome, now_ms: int | None = None) -> pa.Table:
    out: list[dict[str, Any]] = []
    seen: dict[str, tuple[Any, ...]] = {}
    for rec in records:
        sid = rec.get("user_session_id", "").strip()
        if not sid:
            outcome.reject("missing user_session_id")
            continue
        try:
            start = parse_ms(rec["session_start_time"])
            end = parse_ms(rec["session_end_time"])
        except TimeError as exc:
            outcome.reject(f"bad session time: {exc.kind}")
            continue
        if end < start:
            outcome.reject("session ends before it starts")
            continue
        if not (plausible_ms(start, now_ms) and plausible_ms(end, now_ms)):
            # year 0001 or 9999 would break date arithmetic (the report's day, re-attribution windows)
            outcome.reject("bad session time: outside the plausible range")
            continue
        ip = rec.get("eni_private_ip_address", "").strip() or None
        if ip is not None:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                outcome.reject("invalid eni_private_ip_address")
                continue
        key = (start, end, ip, rec.get("user_id"))
        if sid in seen:
            outcome.duplicates += 1
            if seen[sid] != key:
                outcome.reasons["duplicate session id with different values (first kept)"] += 1
            continue
        seen[sid] = key
        clients = [c.strip() for c in rec.get("client_ip_addresses", "").split(";") if c.strip()]
        out.append({
            "session_id": sid,
            "aws_account_id": rec.get("aws_account_id") or None,
            "region": rec.get("region") or None,
            "session_start_time": start,
            "session_end_time": end,
            "session_duration_in_seconds": _int(rec.get("session_duration_in_seconds")),
            "user_id": rec.get("user_id") or None,
            "user_arn": rec.get("user_arn") or None,
            "authentication_type": rec.get("authentication_type") or None,
            "authentication_type_user_id": rec.get("authentication_type_user_id") or None,
            "fleet_name": rec.get("fleet_name") or None,
            "stack_name": rec.get("stack_name") or None,
            "instance_type": rec.get("instance_type") or None,
            "eni_private_ip_address": ip,
            "connected_at_least_once": _bool(rec.get("connected_at_least_once")),
            "client_ip_addresses": clients,
            "instance_id": rec.get("instance_id") or None,
            "is_multisession": _bool(rec.get("is_multisession")),
            "max_session_duration": _int(rec.get("max_session_duration")),
            "session_type": rec.get("session_type") or None,
            "extra_columns": _extra(rec, _KNOWN_SESSION_COLS),
            "report_date": report_date,
            "source_object": source,
        })
    if report_date is None and out:
        from ..timeparse import day_of_ms

        report_date = max(day_of_ms(r["session_end_time"]) for r in out)
        for r in out:
            r["report_date"] = report_date
    outcome.written = len(out)
    if not out:
        return SESSIONS.empty_table()
    cols = {f.name: [r[f.name] for r in out] for f in SESSIONS}
    arrays = {}
    for f in SESSIONS:
        if f.type == TS:
            arrays[f.name] = pa.array(cols[f.name], type=pa.int64()).cast(TS)
        else:
            arrays[f.name] = pa.array(cols[f.name], type=f.type)
    return conform(pa.table(arrays), SESSIONS)


def _applications(records: list[dict[str, str]], report_date: str | None, source: str,
                  outcome: FileOutcome) -> pa.Table:
    out = []
    seen: set[tuple[str, str]] = set()
    known = {"user_session_id", "application_name", "schedule", "year", "month", "day"}
    for rec in records:
        sid = rec.get("user_session_id", "").strip()
        app = rec.get("application_name", "").strip()
        if not sid:
            outcome.reject("missing user_session_id")
            continue
        if (sid, app) in seen:
            outcome.duplicates += 1
            continue
        seen.add((sid, app))
        rd = report_date
        if rd is None and rec.get("year") and rec.get("month") and rec.get("day"):
            rd = _real_date(rec["year"], rec["month"], rec["day"])
        out.append({"session_id": sid, "application_name": app or None, "report_date": rd,
                    "extra_columns": _extra(rec, known), "source_object": source})
    outcome.written = len(out)
    if not out:
        return APPLICATIONS.empty_table()
    return conform(pa.Table.from_pylist(out), APPLICATIONS)
