"""Bring a lake written by the previous version (schema v1) up to date, where reading alone is not enough.

Reading needs nothing: v1 files lack the v2 columns (``account_id``, ``region``), which read as
null, and the next re-attribution of a day fills them in.  One thing does not heal by itself: v1
kept a day's sessions report as ``sessions/dt=<day>/report.parquet`` with no scope, while v2 keeps
one file per (account, region), ``report-<account>_<region>.parquet``, and replaces only its own
scope's file when a report is delivered again.  A corrected report for a v1 day would then leave
the v1 file beside it (a session the correction removed would linger), and the v1 file counts as
"the report is in" for every scope (``Completeness._legacy_days``).

:func:`migrate_legacy_reports` splits each such file by the scope its rows name (the report's own
``aws_account_id`` and ``region`` columns), records each scope's report as in, and only then
deletes the v1 file: a crash in between leaves files a second run rewrites identically.  The
pipeline calls it for a day before writing a report of that day; ``auditcorr lake migrate`` does
every day at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from ..attribution.scope import UNKNOWN, Scopes, session_scope_columns
from ..completeness import Completeness, scope_name
from ..lake import SORT_KEYS, Lake

LEGACY_REPORT = "report"


def legacy_report_days(lake: Lake) -> list[str]:
    return [dt for dt in lake.partitions("sessions")
            if lake.exists(f"{lake.part_dir('sessions', dt)}/{LEGACY_REPORT}.parquet")]


def migrate_legacy_reports(lake: Lake, scopes: Scopes, completeness: Completeness,
                           dts: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Split the v1 sessions report files of ``dts`` (default: every day that has one) into
    per-scope files; returns day -> the scopes written."""
    done: dict[str, list[str]] = {}
    # a given day costs one existence check (a report ingest asks for its own day only)
    days = legacy_report_days(lake) if dts is None else sorted(set(dts))
    for dt in days:
        path = f"{lake.part_dir('sessions', dt)}/{LEGACY_REPORT}.parquet"
        if dts is not None and not lake.exists(path):
            continue
        rows = lake.read("sessions", files=[path], latest=False).drop_columns(["dt"])
        account, region = session_scope_columns(rows)
        keys, code, _ = scopes.keys(account, region)
        written = []
        for i, scope in enumerate(keys.to_pylist()):
            part = rows.filter(pa.array(code == i)).sort_by([(k, "ascending") for k in SORT_KEYS["sessions"]])
            known = not scope.startswith(UNKNOWN)
            lake.write_file("sessions", dt, f"report-{scope_name(scope) if known else 'unknown'}", part)
            if known:
                completeness.record_report(scope, dt)
            written.append(scope)
        lake.delete([path])
        done[dt] = written
    return done
