"""``auditcorr rules replay`` over a generated lake: how long a configuration change takes to evaluate.

    python -m benchmarks.replay                         # 3 days x 30k and 3 days x 100k writes a day
    python -m benchmarks.replay --per-day 50000 --days 2

A lake is built as the pipeline builds it (the scale world's CloudTrail files, then its sessions
reports), then ``replay`` runs in a child process (its own peak RSS) with three configurations:

``same``        the lake's own configuration (nothing changes: the floor, attribution + rules)
``regroup``     dedup 30 min, a suppression, a severity: every finding regrouped
``flood``       the fleet CIDR narrowed so that EVERY write is a ``credentials_outside_fleet``
                signal (the worst case for the signal and finding stages)

Replay is one day at a time (memory: one day of writes and the signals so far), so its time is
the sum over days: the figure printed is seconds per day per million writes, and the month of a
1M-writes-a-day lake is extrapolated from the per-day cost (docs/performance.md, "Replaying a
configuration").
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import fit_exponent, human, mb, peak_rss_bytes
from .data import workdir

DAY0_MS = 1_772_409_600_000  # 2026-03-02T00:00:00Z, the scale world's first day
DAY_MS = 86_400_000
CONFIGS = ("same", "regroup", "flood")


def build_lake(base: Path, per_day: int, days: int) -> tuple[Path, int]:
    """A lake of ``days`` simulated days of ``per_day`` writes (cached under ``base``)."""
    from auditcorr.config import Config
    from auditcorr.lake import Lake
    from auditcorr.pipeline import Pipeline
    from auditcorr_sim import generate_scale

    lake_dir = base / f"replay-lake-{per_day}-{days}"
    marker = lake_dir / "_built.json"
    if marker.exists():
        return lake_dir, json.loads(marker.read_text())["now_ms"]
    shutil.rmtree(lake_dir, ignore_errors=True)
    world_dir = base / f"replay-world-{per_day}-{days}"
    shutil.rmtree(world_dir, ignore_errors=True)
    world = generate_scale(world_dir, n_writes=per_day * days, n_sessions=max(100, per_day // 10) * days,
                           days=days)
    now = DAY0_MS + (days + 1) * DAY_MS + 3 * 3_600_000  # the morning after the last report
    pipe = Pipeline(Lake.open(str(lake_dir)), Config(), clock=lambda: now)
    for p in sorted(world.cloudtrail_files, key=lambda p: p.name):
        pipe.ingest_object(str(p), p.read_bytes())
    for p in world.sessions_reports:
        pipe.ingest_object(str(p), p.read_bytes())
    shutil.rmtree(world_dir, ignore_errors=True)
    marker.write_text(json.dumps({"now_ms": now}))
    return lake_dir, now


def config_for(name: str) -> Any:
    from auditcorr.config import Config, Suppression

    if name == "same":
        return Config()
    if name == "regroup":
        return Config(dedup_minutes=30, severity={**Config().severity, "unattributed_activity": "LOW"},
                      suppressions=(Suppression("*", "benchmark", source="10.40.0.0/24"),))
    if name == "flood":
        return Config(fleet_cidrs=("10.99.0.0/16",))
    raise ValueError(name)


def child(lake_dir: str, now_ms: int, name: str) -> dict[str, Any]:
    from auditcorr.lake import Lake
    from auditcorr.replay import replay

    lake = Lake.open(lake_dir)
    per_day: list[float] = []
    t_last = [time.perf_counter()]

    def tick(_: str) -> None:
        t = time.perf_counter()
        per_day.append(t - t_last[0])
        t_last[0] = t

    t0 = time.perf_counter()
    res = replay(lake, config_for(name), now_ms, progress=tick)
    took = time.perf_counter() - t0
    return {"config": name, "seconds": took, "per_day": per_day, "days": len(res.days), "writes": res.writes,
            "changed": res.changed.num_rows, "signals": sum(sum(c.values()) for c in res.signals.values()),
            "findings_after": res.after.num_rows, "peak_rss_mb": mb(peak_rss_bytes())}


def run_child(lake_dir: Path, now_ms: int, name: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.replay", "child", str(lake_dir), str(now_ms), name]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"replay child failed:\n{proc.stderr[-3000:]}")
    res: dict[str, Any] = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    return res


def run(base: Path, sizes: list[int], days: int, configs: tuple[str, ...] = CONFIGS) -> list[dict[str, Any]]:
    print(f"replay benchmark: {days} day(s) per lake, writes a day {', '.join(human(s) for s in sizes)}")
    out = []
    for per_day in sizes:
        t0 = time.perf_counter()
        lake_dir, now = build_lake(base, per_day, days)
        print(f"  lake {human(per_day)} writes/day x {days} days ready in {time.perf_counter() - t0:.0f}s", flush=True)
        for name in configs:
            r = run_child(lake_dir, now, name)
            r["per_day_writes"] = per_day
            per_m = r["seconds"] / r["days"] / (r["writes"] / r["days"] / 1e6) if r["writes"] else 0.0
            r["s_per_day_per_M"] = per_m
            print(f"    {name:<8} {r['seconds']:6.1f}s for {r['days']} days ({r['writes']:,} writes): "
                  f"{r['seconds'] / max(1, r['days']):.2f} s/day, {per_m:.1f} s per day of 1M; "
                  f"{r['signals']:,} signal changes, {r['changed']:,} findings would change; "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
            out.append(r)
    for name in configs:
        rs = [r for r in out if r["config"] == name]
        if len(rs) >= 2:
            k = fit_exponent([r["per_day_writes"] for r in rs], [r["seconds"] / r["days"] for r in rs])
            big = max(rs, key=lambda r: r["per_day_writes"])
            day_1m = big["s_per_day_per_M"]  # linear in the day's writes (one day at a time)
            print(f"  {name}: per-day time ~ writes^{k:.2f} between the sizes; linear from the largest: a day of "
                  f"1M writes ~{day_1m:.0f}s, a month (30 days) ~{30 * day_1m / 60:.0f} min; peak RSS at "
                  f"{human(big['per_day_writes'])}/day {big['peak_rss_mb']:.0f} MB (one day in memory)")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.replay")
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("child")
    c.add_argument("lake")
    c.add_argument("now", type=int)
    c.add_argument("config", choices=CONFIGS)
    ap.add_argument("--per-day", type=int, nargs="+", default=[30_000, 100_000])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.cmd == "child":
        print("RESULT " + json.dumps(child(a.lake, a.now, a.config)), flush=True)
        return
    res = run(workdir(a.workdir), a.per_day, a.days)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
