"""A/B of the ingest pipeline: the day of ``benchmarks.e2e`` ingested by two versions of the core,
interleaved run by run, then the two lakes compared table by table.

    python -m benchmarks.pipeline_ab --base-ref deae2d6 --sizes 100000 1000000 --runs 2
    python -m benchmarks.pipeline_ab --base-ref deae2d6 --sizes 100000 --clock past

``--base-ref``: a git revision of this repository; its ``layers/core`` is extracted (``git archive``)
to a temporary directory and imported by the baseline's child processes, the working tree's
``layers/core`` by the candidate's.  ``--clock usual``: as ``benchmarks.e2e`` (the CloudTrail files at
the end of their day, the sessions report the next morning).  ``--clock past``: the day ingested
five days later, before its report (docs/performance.md, finding 4): every fleet write is final
and unattributed, so nearly every write raises alerts; the report then re-attributes the day and
closes them.  Each child runs in a fresh process; the figures are the per-run ratios
(candidate / baseline) and their median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAY0_MS = 1_772_409_600_000  # 2026-03-02T00:00:00Z, the scale world's first day
DAY_MS = 86_400_000


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(world_root: str, lake_dir: str, clock: str) -> dict[str, Any]:
    import pyarrow.compute as pc

    from auditcorr.config import Config
    from auditcorr.lake import Lake
    from auditcorr.pipeline import Pipeline

    meta = json.loads((Path(world_root) / "_world.json").read_text())
    files = sorted((Path(world_root) / p for p in meta["cloudtrail_files"]), key=lambda p: p.name)
    reports = [Path(world_root) / p for p in meta["sessions_reports"]]
    shutil.rmtree(lake_dir, ignore_errors=True)
    now = [DAY0_MS + DAY_MS - 1_000 if clock == "usual" else DAY0_MS + 5 * DAY_MS]
    pipe = Pipeline(Lake.open(lake_dir), Config(), clock=lambda: now[0])
    per_file = []
    t_all = time.perf_counter()
    for p in files:
        data = p.read_bytes()
        t0 = time.perf_counter()
        pipe.ingest_object(str(p), data)
        per_file.append(time.perf_counter() - t0)
    t_ct = time.perf_counter() - t_all
    stages = dict(pipe.times.seconds)
    now[0] = DAY0_MS + DAY_MS + 3 * 3_600_000 if clock == "usual" else now[0] + 3_600_000
    t0 = time.perf_counter()
    for p in reports:
        pipe.ingest_object(str(p), p.read_bytes())
    t_report = time.perf_counter() - t0
    act = pipe.lake.read("attributed_activity", columns=["event_id", "status"])
    alerts = pipe.lake.read("alerts", columns=["alert_id", "status"])
    count = lambda t: {d["values"]: d["counts"] for d in pc.value_counts(t.column("status")).to_pylist()}  # noqa: E731
    return {"files": len(files), "cloudtrail_seconds": t_ct, "report_seconds": t_report, "stages": stages,
            "per_file": per_file, "statuses": count(act), "alerts": count(alerts) if alerts.num_rows else {},
            "lake_files": {t: len(pipe.lake.files(t)) for t in ("s3_writes", "logons", "attributed_activity",
                                                                  "alerts")},
            "peak_rss_mb": _peak_mb()}


def compare_lakes(a_dir: str, b_dir: str) -> dict[str, bool]:
    """Every table's latest rows equal (sorted by key), and as many raw rows, in the two lakes."""
    from auditcorr.lake import Lake
    from auditcorr.schemas import ROW_KEYS, TABLES

    a, b = Lake.open(a_dir), Lake.open(b_dir)
    out = {}
    for table in TABLES:
        ta, tb = a.read(table), b.read(table)
        keys = [(k, "ascending") for k in (*ROW_KEYS[table], "dt")]
        same = ta.num_rows == tb.num_rows and (ta.num_rows == 0 or ta.sort_by(keys).equals(tb.sort_by(keys)))
        same = same and a.read(table, latest=False).num_rows == b.read(table, latest=False).num_rows
        out[table] = same
    return out


def extract(ref: str, dest: Path) -> Path:
    """``layers/core`` of git revision ``ref``, extracted under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "src.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "layers/core"], stdout=fh, check=True)  # noqa: S607
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "layers" / "core"


def run_one(core: Path, world: Path, lake: Path, clock: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(core), str(ROOT)]))
    code = ("import json, sys; from benchmarks.pipeline_ab import child; "
            "print('RESULT ' + json.dumps(child(sys.argv[1], sys.argv[2], sys.argv[3])))")
    proc = subprocess.run([sys.executable, "-c", code, str(world), str(lake), clock], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({core}):\n{proc.stderr[-3000:]}")
    res: dict[str, Any] = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_ab")
    ap.add_argument("--base-ref", required=True, help="git revision of the baseline core")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--runs", type=int, default=1, help="A/B pairs per size (order alternates)")
    ap.add_argument("--clock", choices=["usual", "past"], default="usual")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None, help="also write every run's figures here")
    a = ap.parse_args(argv)
    from .data import scale_world, workdir

    base = workdir(a.workdir)
    tmp = Path(tempfile.mkdtemp(prefix="pipeline-ab-"))
    all_runs: dict[str, Any] = {}
    try:
        cores = {"base": extract(a.base_ref, tmp / "base"), "new": ROOT / "layers" / "core"}
        for n in a.sizes:
            world, _ = scale_world(base, n, max(1, n // 10))
            runs: list[dict[str, Any]] = []
            for i in range(a.runs):
                order = ["base", "new"] if i % 2 == 0 else ["new", "base"]
                pair = {}
                for who in order:
                    pair[who] = run_one(cores[who], world.root, tmp / f"lake-{who}", a.clock)
                    r = pair[who]
                    print(f"  {n:,} writes, clock {a.clock}, run {i + 1} {who}: "
                          f"cloudtrail {r['cloudtrail_seconds']:.1f}s, report {r['report_seconds']:.1f}s; stages "
                          + ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
                          + f"; peak {r['peak_rss_mb']:.0f} MB; files {r['lake_files']}", flush=True)
                same = compare_lakes(str(tmp / "lake-base"), str(tmp / "lake-new"))
                pair["identical"] = same
                print(f"    lakes identical: {all(same.values())} {'' if all(same.values()) else same}", flush=True)
                runs.append(pair)
            ct = [p["new"]["cloudtrail_seconds"] / p["base"]["cloudtrail_seconds"] for p in runs]
            tot = [(p["new"]["cloudtrail_seconds"] + p["new"]["report_seconds"])
                   / (p["base"]["cloudtrail_seconds"] + p["base"]["report_seconds"]) for p in runs]
            print(f"  {n:,} writes: candidate/baseline, CloudTrail files {statistics.median(ct):.2f} "
                  f"({min(ct):.2f}-{max(ct):.2f}); with the report {statistics.median(tot):.2f} "
                  f"({min(tot):.2f}-{max(tot):.2f}); n={len(runs)}", flush=True)
            all_runs[str(n)] = runs
        if a.json:
            Path(a.json).write_text(json.dumps(all_runs, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
