"""Partitioning an organisation lake: ``dt`` only vs ``dt`` + ``account_id`` (docs/adr/0012).

A generated 20-account lake of ``attributed_activity``-shaped rows (account sizes skewed as in an
organisation: a few large AppStream accounts, many small ones) is written with pyarrow in four
layouts, and the three typical questions are asked with DuckDB (the local engine) over each:

- ``q_account_day``: one account's writes on one day (an investigation, a per-account report);
- ``q_all_day``: all accounts, one day, counted per account and status (the daily overview);
- ``q_user``: one user's timeline over every day (``auditcorr timeline``; the user_id Bloom filter).

Layouts, each in two states: *fresh* (a day as the Lambdas leave it: one small file per ingested
CloudTrail object, every account's files in the same day) and *compacted* (what compaction leaves:
a few large files per partition, row groups of 16k rows, as ``lake.COMPACTED_WRITE_OPTIONS``):

- ``dt``: today's layout, compacted files sorted by the table's sort keys (source_ip, event_time);
- ``dt+sorted``: ``dt`` only, compacted files sorted by account_id first;
- ``dt/account``: Hive partitions ``dt=<day>/account_id=<account>/``.

For each question and layout: files the engine must open after partition pruning (Athena: one GET
for the footer each, then GETs per column chunk), row groups whose min/max (or Bloom filter) cannot
exclude them (what is actually read), and DuckDB's median time.  Counts are exact; times are this
machine's (2 shared cores), medians of interleaved runs.

Run: ``python -m benchmarks.partitioning [--days 7 --rows-per-day 300000 --runs 5]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ACCOUNTS = 20
ROW_GROUP = 16 * 1024  # lake.COMPACTED_WRITE_OPTIONS
FRESH_GROUP = 128 * 1024  # lake.WRITE_OPTIONS
#: compacted file size in rows (a compaction tier of ~1M rows: ~60 MB of this table)
COMPACTED_ROWS = 1_000_000
#: files a fresh day holds per account (CloudTrail delivers ~every 5 minutes per account and region;
#: 288 x regions in production, scaled down here so the lake writes in seconds: the ratio matters)
FRESH_FILES_PER_ACCOUNT = 24
T0_MS = 1_772_409_600_000  # 2026-03-02T00:00:00Z
DAY_MS = 86_400_000


def account_weights(n: int) -> np.ndarray:
    """Zipf-like sizes: the largest account ~30% of the writes, the smallest well under 1%."""
    w = 1.0 / np.arange(1, n + 1) ** 1.1
    return np.asarray(w / w.sum())


def make_day(day: int, rows: int, seed: int, users: int = 4000) -> pa.Table:
    rng = np.random.default_rng(seed + day)
    acct_idx = rng.choice(ACCOUNTS, size=rows, p=account_weights(ACCOUNTS))
    accounts = pa.array([f"{111122223333 + k * 1_000_000_001:012d}" for k in range(ACCOUNTS)])
    t = T0_MS + day * DAY_MS + np.sort(rng.integers(0, DAY_MS, rows))
    host = rng.integers(0, 2000, rows)
    ip = pa.array(np.char.add("10.40.", np.char.add((host // 250).astype(str),
                                                     np.char.add(".", (host % 250).astype(str)))))
    # users belong to an account (user u in account u % ACCOUNTS)
    user = (rng.integers(0, users // ACCOUNTS, rows) * ACCOUNTS + acct_idx)
    status = np.where(rng.random(rows) < 0.9, "attributed", np.where(rng.random(rows) < 0.5, "ambiguous",
                                                                      "unattributed"))
    ids = np.arange(rows) + day * 10_000_000
    return pa.table({
        "event_id": pa.array(np.char.add("e", ids.astype(str))),
        "event_time": pa.array(t).cast(pa.timestamp("ms", tz="UTC")),
        "account_id": accounts.take(pa.array(acct_idx)),
        "region": pa.array(np.where(rng.random(rows) < 0.8, "us-east-1", "eu-west-1")),
        "source_ip": ip,
        "user_id": pa.array(np.char.add("user", user.astype(str))),
        "session_id": pa.array(np.char.add("s", (user * 1000 + day).astype(str))),
        "status": pa.array(status),
        "bucket": pa.array(np.char.add("research-", acct_idx.astype(str))),
        "key": pa.array(np.char.add("exports/f", (ids % 100_000).astype(str))),
    })


def _write(path: Path, table: pa.Table, group: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=group, write_statistics=True,
                   bloom_filter_options={"user_id": {"ndv": min(max(table.num_rows, 1), group), "fpp": 0.01}})


def _chunks(table: pa.Table, rows: int) -> list[pa.Table]:
    return [table.slice(i, rows) for i in range(0, max(table.num_rows, 1), rows)] if table.num_rows else []


def write_layout(root: Path, days: list[pa.Table], layout: str, state: str) -> None:
    for d, day in enumerate(days):
        dt = f"dt=2026-03-{2 + d:02d}"
        if state == "fresh":
            # one file per delivered object: each account's rows in FRESH_FILES_PER_ACCOUNT time slices
            order = pc.sort_indices(day, [("account_id", "ascending"), ("event_time", "ascending")])
            day_sorted = day.take(order)
            for acct in pc.unique(day.column("account_id")).to_pylist():
                part = day_sorted.filter(pc.equal(day_sorted.column("account_id"), acct))
                per = -(-part.num_rows // FRESH_FILES_PER_ACCOUNT)
                for i, chunk in enumerate(_chunks(part, per)):
                    folder = root / dt / f"account_id={acct}" if layout == "dt/account" else root / dt
                    _write(folder / f"{acct}-{i:04d}.parquet", chunk.drop_columns(["account_id"])
                           if layout == "dt/account" else chunk, FRESH_GROUP)
            continue
        if layout == "dt":
            keys = [("source_ip", "ascending"), ("event_time", "ascending")]
        else:
            keys = [("account_id", "ascending"), ("source_ip", "ascending"), ("event_time", "ascending")]
        day_sorted = day.take(pc.sort_indices(day, keys))
        if layout == "dt/account":
            for acct in pc.unique(day.column("account_id")).to_pylist():
                part = day_sorted.filter(pc.equal(day_sorted.column("account_id"), acct)).drop_columns(["account_id"])
                for i, chunk in enumerate(_chunks(part, COMPACTED_ROWS)):
                    _write(root / dt / f"account_id={acct}" / f"c-{i:04d}.parquet", chunk, ROW_GROUP)
        else:
            for i, chunk in enumerate(_chunks(day_sorted, COMPACTED_ROWS)):
                _write(root / dt / f"c-{i:04d}.parquet", chunk, ROW_GROUP)


# -- what an engine must read ---------------------------------------------------------------------
def _stats_exclude(rg: Any, schema: Any, column: str, value: str) -> bool:
    for j in range(rg.num_columns):
        col = rg.column(j)
        if col.path_in_schema == column and col.is_stats_set and col.statistics.has_min_max:
            return bool(value < col.statistics.min or value > col.statistics.max)
    return False


def reads(root: Path, dt: str | None, account: str | None, user: str | None) -> dict[str, int]:
    """Files opened after partition pruning and row groups min/max cannot exclude, for a filter."""
    files = sorted(root.rglob("*.parquet"))
    opened = groups = kept = 0
    for f in files:
        parts = dict(p.split("=", 1) for p in f.relative_to(root).parts[:-1])
        if dt and parts.get("dt") != dt:
            continue
        if account and "account_id" in parts and parts["account_id"] != account:
            continue
        opened += 1
        md = pq.ParquetFile(f).metadata
        for g in range(md.num_row_groups):
            groups += 1
            rg = md.row_group(g)
            if account and "account_id" not in parts and _stats_exclude(rg, md.schema, "account_id", account):
                continue
            if user and _stats_exclude(rg, md.schema, "user_id", user):
                continue
            kept += 1
    return {"files_opened": opened, "row_groups_in_files": groups, "row_groups_read": kept}


QUERIES: dict[str, tuple[str, dict[str, Any]]] = {
    "q_account_day": ("SELECT count(*), count(DISTINCT user_id) FROM t WHERE dt = $dt AND account_id = $acct",
                      {"dt": True, "account": True}),
    "q_all_day": ("SELECT account_id, status, count(*) FROM t WHERE dt = $dt GROUP BY ALL ORDER BY ALL",
                  {"dt": True}),
    "q_user": ("SELECT event_time, source_ip, bucket, key FROM t WHERE user_id = $user ORDER BY event_time",
               {"user": True}),
}


def run_query(con: Any, root: Path, sql: str, params: dict[str, Any]) -> tuple[float, Any]:
    view = (f"read_parquet('{root}/**/*.parquet', hive_partitioning = true, hive_types_autocast = false, "
            "union_by_name = true)")
    con.execute(f"CREATE OR REPLACE TEMP VIEW t AS SELECT * FROM {view}")
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    t0 = time.perf_counter()
    rows = con.execute(sql, used).fetchall()
    return time.perf_counter() - t0, rows


def measure(days_n: int, rows_per_day: int, runs: int, seed: int = 7,
            echo: Callable[[str], None] = print) -> dict[str, Any]:
    import duckdb

    days = [make_day(d, rows_per_day, seed) for d in range(days_n)]
    weights = account_weights(ACCOUNTS)
    small = f"{111122223333 + (ACCOUNTS - 1) * 1_000_000_001:012d}"
    large = f"{111122223333:012d}"
    user = "user" + str(5 * ACCOUNTS + 3)  # a user of account 3
    dt = "2026-03-03"
    out: dict[str, Any] = {"days": days_n, "rows_per_day": rows_per_day, "accounts": ACCOUNTS,
                           "largest_share": float(weights[0]), "smallest_share": float(weights[-1]), "layouts": {}}
    tmp = Path(tempfile.mkdtemp(prefix="auditcorr-partitioning-"))
    con = duckdb.connect(config={"threads": 1})
    try:
        for state in ("fresh", "compacted"):
            for layout in ("dt", "dt+sorted", "dt/account"):
                if state == "fresh" and layout == "dt+sorted":
                    continue  # a fresh file holds one account already: sorting changes nothing
                root = tmp / state / layout.replace("/", "_")
                t0 = time.perf_counter()
                write_layout(root, days, layout, state)
                files = list(root.rglob("*.parquet"))
                res: dict[str, Any] = {"write_seconds": time.perf_counter() - t0, "files": len(files),
                                       "files_per_day": len(files) / days_n,
                                       "mb": sum(f.stat().st_size for f in files) / 1e6, "queries": {}}
                cases = {
                    "q_account_day (large account)": ("q_account_day", {"dt": dt, "acct": large},
                                                      dict(dt=dt, account=large, user=None)),
                    "q_account_day (small account)": ("q_account_day", {"dt": dt, "acct": small},
                                                      dict(dt=dt, account=small, user=None)),
                    "q_all_day": ("q_all_day", {"dt": dt}, dict(dt=dt, account=None, user=None)),
                    "q_user": ("q_user", {"user": user}, dict(dt=None, account=None, user=user)),
                }
                for name, (q, params, filt) in cases.items():
                    sql = QUERIES[q][0]
                    run_query(con, root, sql, params)  # warm the file cache
                    times = []
                    answer = None
                    for _ in range(runs):
                        dt_s, answer = run_query(con, root, sql, params)
                        times.append(dt_s)
                    res["queries"][name] = reads(root, **filt) | {
                        "median_ms": statistics.median(times) * 1000, "min_ms": min(times) * 1000,
                        "answer_rows": len(answer or []), "answer_hash": hash(str(answer))}
                out["layouts"][f"{state} {layout}"] = res
                echo(f"  {state:9} {layout:11} files {len(files):6}  ({res['files_per_day']:.0f}/day, "
                     f"{res['mb']:.0f} MB)")
                for name, r in res["queries"].items():
                    echo(f"      {name:32} files {r['files_opened']:5}  row groups {r['row_groups_read']:5}/"
                         f"{r['row_groups_in_files']:<5}  {r['median_ms']:8.1f} ms")
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    # every layout must give the same answers
    for name in next(iter(out["layouts"].values()))["queries"]:
        answers = {lay: r["queries"][name]["answer_hash"] for lay, r in out["layouts"].items()}
        out.setdefault("same_answers", {})[name] = len(set(answers.values())) == 1
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.partitioning")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--rows-per-day", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    a = ap.parse_args(argv)
    res = measure(a.days, a.rows_per_day, a.runs)
    print("same answers in every layout:", res["same_answers"])
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
