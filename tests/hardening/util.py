"""Shared helpers of the hardening and property tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from auditcorr.config import Config
from auditcorr.lake import Lake, keep_latest
from auditcorr.pipeline import Pipeline
from auditcorr.timeparse import day_string
from tests.factories import T0

NOW_MS = int(T0.timestamp() * 1000) + 5 * 86_400_000  # five days after the world: reports are due
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "bad"


SCOPE = "111122223333|us-east-1"  # the factories' account and region


def new_pipe(path: Path | str, config: Config | None = None, now_ms: int = NOW_MS, reports_in: bool = True) -> Pipeline:
    """A pipeline on ``path``; ``reports_in``: the sessions reports of the days around the world (from
    three days before to five days after ``T0``) count as in, with no sessions unless a test ingests a
    report of its own -- every write of the world is final."""
    pipe = Pipeline(Lake.open(str(path)), config or Config(), clock=lambda: now_ms)
    if reports_in:
        for day in range(-3, 6):
            pipe.completeness.record_report(SCOPE, day_string(int(T0.timestamp() * 1000) // 86_400_000 + day))
    return pipe


def quarantined(lake: Lake) -> dict[str, dict[str, Any]]:
    """source -> the ``.reason.json`` written beside the quarantined copy (which must exist)."""
    root = Path(lake.base) / "quarantine"
    out: dict[str, dict[str, Any]] = {}
    for reason_file in root.rglob("*.reason.json") if root.exists() else []:
        reason = orjson.loads(reason_file.read_bytes())
        copy = reason_file.with_name(reason_file.name[: -len(".reason.json")])
        assert copy.is_file(), f"quarantine note without the object: {reason_file}"
        reason["copy"] = copy
        out[reason["source"]] = reason
    return out


def rows(lake: Lake, table: str, *cols: str) -> list[dict[str, Any]]:
    t = lake.read(table)
    return t.select(list(cols)).to_pylist() if cols else t.to_pylist()


def by_event(lake: Lake, table: str = "s3_writes") -> dict[str, dict[str, Any]]:
    return {r["event_id"]: r for r in lake.read(table).to_pylist()}


def activity_view(lake: Lake, extra: tuple[str, ...] = ()) -> set[tuple[Any, ...]]:
    """(event_id, status, session_id, user_id, *extra) of every write's latest attribution."""
    cols = ["event_id", "status", "session_id", "user_id", *extra]
    return {tuple(r.values()) for r in lake.read("attributed_activity").select(cols).to_pylist()}


def alerts_view(lake: Lake, open_only: bool = False) -> set[tuple[Any, ...]]:
    t = lake.read("alerts")
    if t.num_rows == 0:
        return set()
    t = keep_latest(t.drop_columns(["dt"]), "alerts")
    return {(r["alert_id"], r["rule"], r["status"]) for r in t.to_pylist()
            if not open_only or r["status"] == "open"}


def assert_same_alerts(a: Lake, b: Lake) -> None:
    """The same alerts, each in the same state -- except that an alert raised on what was known at the
    time (a report not yet in) and closed when the report came is history one order has and another
    need not: closed and absent are the same final answer.  Open alerts must match exactly."""
    va = {aid: (rule, status) for aid, rule, status in alerts_view(a)}
    vb = {aid: (rule, status) for aid, rule, status in alerts_view(b)}
    for aid in va.keys() & vb.keys():
        assert va[aid] == vb[aid], (aid, va[aid], vb[aid])
    for aid in va.keys() ^ vb.keys():
        assert (va.get(aid) or vb[aid])[1] == "closed", (aid, va.get(aid), vb.get(aid))


def snapshot(lake: Lake, drop: tuple[str, ...] = ("source_object", "log_file")) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (latest per key), as sorted tuples, minus the ``drop`` columns (by default the
    input names: ``source_object`` and ``attributed_activity.log_file``)."""
    from auditcorr.schemas import TABLES

    out = {}
    for table in TABLES:
        t = lake.read(table)
        keep = [c for c in t.column_names if c not in drop]
        out[table] = sorted(tuple(repr(v) for v in r.values()) for r in t.select(keep).to_pylist())
    return out


def visible_table_files(lake_dir: Path) -> list[Path]:
    """Files a reader (Lake.read, DuckDB, Athena) would consider under the tables."""
    from auditcorr.schemas import TABLES

    out = []
    for table in TABLES:
        for p in (lake_dir / table).rglob("*") if (lake_dir / table).exists() else []:
            if p.is_file() and not p.name.startswith((".", "_")):
                out.append(p)
    return out


def assert_no_half_written_files(lake_dir: Path) -> None:
    """Every visible table file is a complete Parquet file; leftovers are hidden temp files."""
    for p in visible_table_files(lake_dir):
        assert p.suffix == ".parquet", f"unexpected visible file {p}"
        pq.read_table(p)  # raises on a truncated or partial file
    for root, _dirs, files in os.walk(lake_dir):
        for name in files:
            path = Path(root) / name
            if name.startswith(".tmp-"):
                continue  # hidden: readers skip names starting with '.'
            assert not name.startswith("tmp"), f"visible temp file {path}"
