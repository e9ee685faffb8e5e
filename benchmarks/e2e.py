"""End to end: ``auditcorr ingest`` of a simulated day (the demo's scale world) on this machine.

What ``auditcorr ingest`` does, file by file (``Pipeline.ingest_object``), in the usual order: the
day's CloudTrail files as they are delivered (writes and logons land minutes after the calls), then
the day's sessions report, which arrives the next day and re-attributes the whole day.  The clock
is the simulated one (end of the day while the files arrive, the next morning for the report), as
in production; with the wall clock every write of a past day would count as final without its
report and raise alerts.

Time per stage: ``read`` (the file's bytes, measured here), ``parse``, ``write`` and ``attribute``
(``Pipeline.times``), and inside ``attribute`` the alerts (``rules.write_alerts`` and the merge of
alert versions, measured here by wrapping them).  The baseline, interleaved file by file, is the
parse limit of the same bytes (gzip + ``orjson.loads``).  Runs in a child process.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from .common import Report, Stats, fit_exponent, human, mb, peak_rss_bytes, section
from .data import scale_world

DAY0_MS = 1_772_409_600_000  # 2026-03-02T00:00:00Z, the scale world's first day


def child(world_root: str, lake_dir: str) -> dict[str, Any]:
    from auditcorr import pipeline as pl
    from auditcorr import rules
    from auditcorr.config import Config
    from auditcorr.lake import Lake

    meta = json.loads((Path(world_root) / "_world.json").read_text())
    files = [Path(world_root) / p for p in meta["cloudtrail_files"]]
    files.sort(key=lambda p: p.name)  # delivery order (the name carries the delivery time)
    reports = [Path(world_root) / p for p in meta["sessions_reports"]]
    shutil.rmtree(lake_dir, ignore_errors=True)
    extra: dict[str, float] = {"alerts": 0.0}

    def timing(fn: Any, bucket: str) -> Any:
        @functools.wraps(fn)
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                extra[bucket] += time.perf_counter() - t0
        return wrapper

    from auditcorr.pipeline.alert_merge import AlertMerge

    rules.write_alerts = timing(rules.write_alerts, "alerts")  # type: ignore[method-assign]
    AlertMerge.merge = timing(AlertMerge.merge, "alerts")  # type: ignore[method-assign]
    now = [DAY0_MS + 86_399_000]
    pipe = pl.Pipeline(Lake.open(lake_dir), Config(), clock=lambda: now[0])
    read = 0.0
    per_file: list[float] = []
    limit: list[float] = []
    records = 0
    written = 0
    t_all = time.perf_counter()
    for p in files:
        t0 = time.perf_counter()
        data = p.read_bytes()
        t1 = time.perf_counter()
        read += t1 - t0
        out = pipe.ingest_object(str(p), data)
        t2 = time.perf_counter()
        records += len(orjson.loads(gzip.decompress(data))["Records"])  # the limit, same bytes, right after
        t3 = time.perf_counter()
        per_file.append(t2 - t1)
        limit.append(t3 - t2)
        written += out.written
    t_ct = time.perf_counter() - t_all
    ct_alerts = extra["alerts"]
    stages = dict(pipe.times.seconds)
    # the next morning: the day's sessions report, and the re-attribution of the whole day
    now[0] = DAY0_MS + 86_400_000 + 3 * 3_600_000
    t0 = time.perf_counter()
    for p in reports:
        pipe.ingest_object(str(p), p.read_bytes())
    t_report = time.perf_counter() - t0
    act = pipe.lake.read("attributed_activity", columns=["event_id", "status"])
    import pyarrow.compute as pc

    status = {d["values"]: d["counts"] for d in pc.value_counts(act.column("status")).to_pylist()}
    return {
        "files": len(files), "records": records, "written": written, "n_writes": meta["n_writes"],
        "n_records": meta["n_records"],
        "gzip_mb": mb(sum(p.stat().st_size for p in files)),
        "cloudtrail_seconds": t_ct, "report_seconds": t_report, "report_alerts_seconds": extra["alerts"] - ct_alerts,
        "stages": {"read": read, **stages, "alerts (in attribute)": ct_alerts},
        "per_file": per_file, "limit_per_file": limit, "statuses": status, "activity_rows": act.num_rows,
        "peak_rss_mb": mb(peak_rss_bytes()),
    }


def run_child(world: Any, lake_dir: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.e2e", "child", str(world.root), str(lake_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"e2e child failed:\n{proc.stderr[-3000:]}")
    res: dict[str, Any] = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    return res


def run(report: Report, base: Path, sizes: list[tuple[int, int]]) -> list[dict[str, Any]]:
    section("5. End to end: Pipeline.ingest_object over a simulated day (CloudTrail files, then the report)")
    results = []
    for n, s in sizes:
        world, took = scale_world(base, n, s)
        print(f"  world {human(n)} writes x {human(s)} sessions: {len(world.cloudtrail_files)} files"
              + (f" (generated in {took:.0f}s)" if took else " (cached)"), flush=True)
        r = run_child(world, base / f"e2e-lake-{n}")
        shutil.rmtree(base / f"e2e-lake-{n}", ignore_errors=True)
        results.append(r)
        total = r["cloudtrail_seconds"] + r["report_seconds"]
        pf, lim = Stats(r["per_file"]), Stats(r["limit_per_file"])
        ratio = Stats([a / b for a, b in zip(r["per_file"], r["limit_per_file"], strict=True)])
        st = r["stages"]
        slow = max((k for k in st if "(in" not in k), key=lambda k: st[k])
        print(f"    {r['records']:,} records ({r['gzip_mb']:.0f} MB gzip) in {r['cloudtrail_seconds']:.1f}s = "
              f"{r['records'] / r['cloudtrail_seconds']:,.0f} rec/s; report + re-attribution of the day "
              f"{r['report_seconds']:.1f}s; total {total:.1f}s; peak RSS {r['peak_rss_mb']:.0f} MB")
        print("    stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in st.items())
              + f"; report {r['report_seconds']:.1f} (alerts {r['report_alerts_seconds']:.1f}); slowest: {slow}")
        print(f"    per file: ingest {pf.fmt('ms')}, parse limit {lim.fmt('ms')}; ingest/limit {ratio.median:.1f}x")
        print(f"    statuses after the report: {r['statuses']}")
        correct = r["written"] == r["n_records"] and r["activity_rows"] == r["n_writes"]
        report.add("e2e", f"ingest of a day: {r['files']} CloudTrail files + sessions report",
                   f"{human(n)} writes, {human(s)} sessions",
                   f"{total:.0f}s ({r['records'] / total:,.0f} rec/s); per file {pf.fmt('ms')}",
                   f"parse limit per file {lim.fmt('ms')}",
                   f"{ratio.median:.1f}x the limit per file; stages: "
                   + ", ".join(f"{k} {v:.0f}s" for k, v in st.items() if "(in" not in k)
                   + f", report {r['report_seconds']:.0f}s",
                   f"slowest stage visible ({slow}); every write in", correct)
    if len(results) >= 2:
        ns = [r["n_writes"] for r in results]
        ts = [r["cloudtrail_seconds"] + r["report_seconds"] for r in results]
        k = fit_exponent(ns, ts)
        report.add("growth", "end-to-end ingest time exponent", " -> ".join(human(n) for n in ns),
                   f"k = {k:.2f}", ", ".join(f"{t:.0f}s" for t in ts), "", "info (per-file work: ~linear)", None)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.e2e")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child")
    c.add_argument("world")
    c.add_argument("lake")
    a = ap.parse_args(argv)
    print("RESULT " + json.dumps(child(a.world, a.lake)), flush=True)


if __name__ == "__main__":
    main()
