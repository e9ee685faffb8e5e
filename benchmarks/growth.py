"""Growth: how time and memory grow with the data.

- The attribution join, 100k -> 1M -> 10M writes: the core's time (median of its runs) and its own
  peak memory, each size in a fresh child process (figures come from the join section's children).
  The fitted exponent of t ~ n^k is printed next to the exponent n log n shows over the same sizes.
- One CloudTrail file: the peak memory of parsing it, and of ingesting it whole (parse, lake writes,
  attribution against a day of sessions, alerts), in a fresh child process per file size, as a
  multiple of the file's uncompressed size -- the number the Lambda's MemorySize rests on.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import (
    Report,
    Stats,
    fit_exponent,
    human,
    mb,
    nlogn_exponent,
    peak_rss_bytes,
    reset_peak,
    rss_bytes,
    section,
)
from .data import scale_world

#: records per file for the single-file memory probe (CloudTrail files run to tens of MB uncompressed)
FILE_SIZES = (2_000, 10_000, 40_000)
LAMBDA_RUNTIME_MB = 60  # Lambda's own Python runtime and bootstrap, beside our process's libraries
#: the Lambda also imports boto3, Powertools (logger, tracer, metrics) and the AWS adapters: measured
#: below by importing them when they are installed


def join_growth(report: Report, results: list[dict[str, Any]]) -> dict[str, Any]:
    section("3. Growth")
    if len(results) < 2:
        report.note("growth: fewer than two join sizes measured; no exponent")
        return {}
    ns = [r["writes"] for r in results]
    ts = [Stats(r["core"]["runs"]).median for r in results]
    mem = [max(r["core_extra_mb"], 1.0) for r in results]
    k = fit_exponent(ns, ts)
    k_ref = nlogn_exponent(ns)
    k_mem = fit_exponent(ns, mem)
    steps = []
    for a, b in zip(results, results[1:], strict=False):
        ta, tb = Stats(a["core"]["runs"]).median, Stats(b["core"]["runs"]).median
        na, nb = a["writes"], b["writes"]
        grow = nb * math.log(nb) / (na * math.log(na))
        steps.append(f"{human(na)}->{human(nb)}: time x{tb / ta:.1f} (n log n: x{grow:.1f})")
    for r, t in zip(results, ts, strict=True):
        print(f"  {human(r['writes']):>4} writes x {human(r['sessions']):>4} sessions: core median {t:.3f}s, "
              f"own peak +{r['core_extra_mb']:.0f} MB over {r['rss_inputs_mb']:.0f} MB holding the inputs "
              f"({r['input_mb']:.0f} MB of tables; output {r['output_mb']:.0f} MB)")
    print("  " + "; ".join(steps))
    print(f"  fitted exponent: time ~ n^{k:.2f} (n log n over these sizes: n^{k_ref:.2f}); "
          f"memory ~ n^{k_mem:.2f}")
    sizes = " -> ".join(human(n) for n in ns)
    report.add("growth", "join time exponent (t ~ n^k)", sizes,
               f"k = {k:.2f}; medians " + ", ".join(f"{t:.2f}s" for t in ts), f"n log n: k = {k_ref:.2f}",
               f"{k - k_ref:+.2f}", "k <= n log n's", k <= k_ref + 1e-9)
    report.add("growth", "join own peak memory (over inputs)", sizes,
               ", ".join(f"{m:.0f} MB" for m in mem), "inputs " + ", ".join(f"{r['input_mb']:.0f} MB" for r in results),
               f"k = {k_mem:.2f}; {mem[-1] / results[-1]['input_mb']:.1f}x inputs at {human(ns[-1])}",
               "info (Lambda joins one file at a time)", None)
    return {"exponent": k, "nlogn_exponent": k_ref, "memory_exponent": k_mem}


# -- one CloudTrail file ----------------------------------------------------------------------------------------
def file_child(path: str, report_csv: str | None, step: str) -> dict[str, Any]:
    """Peak memory of one step on one CloudTrail file: ``parse`` (parse_cloudtrail) or ``ingest``
    (Pipeline.ingest_object: parse, lake writes, attribution, alerts).  One step per process: memory a
    step frees stays resident in the allocator and would hide the next step's peak."""
    from auditcorr.config import Config
    from auditcorr.ingest.cloudtrail import parse_cloudtrail
    from auditcorr.lake import Lake
    from auditcorr.pipeline import Pipeline

    out: dict[str, Any] = {"step": step}
    data = Path(path).read_bytes()
    out["gzip_bytes"] = len(data)
    out["json_bytes"] = len(gzip.decompress(data))
    cfg = Config()
    tmp = Path(tempfile.mkdtemp(prefix="bench-file-"))
    try:
        lake = Lake.open(str(tmp / "lake"))
        day0 = 1_772_409_600_000  # 2026-03-02, the worlds' day
        pipe = Pipeline(lake, cfg, clock=lambda: day0 + 86_399_000)
        parse_cloudtrail(b'{"Records":[]}', "warm.json", cfg)  # imports, decoders
        if report_csv and step == "ingest":  # the day's sessions are in the lake, as in production
            pipe.ingest_object(report_csv, Path(report_csv).read_bytes())
        before = rss_bytes()
        try:  # what the Lambda also loads (when installed here): boto3, Powertools, the AWS adapters
            import aws_lambda_powertools  # noqa: F401
            import boto3  # noqa: F401

            import auditcorr_aws.ingest  # noqa: F401
            out["libs_lambda_mb"] = mb(rss_bytes() - before)
        except Exception:  # noqa: BLE001 - informational
            out["libs_lambda_mb"] = None
        base = rss_bytes()
        out["rss_base_mb"] = mb(base)
        reset_peak()
        if step == "parse":
            parsed = parse_cloudtrail(data, path, cfg)
            out["writes"] = parsed.writes.num_rows
        else:
            res = pipe.ingest_object(path, data)
            out["writes"] = res.written
        out["peak_extra_mb"] = mb(peak_rss_bytes() - base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _file_child(path: Path, report_csv: str | None, step: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.growth", "file", str(path), "--step", step]
    cmd += ["--report", report_csv] if report_csv else []
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"file child failed:\n{proc.stderr[-3000:]}")
    res: dict[str, Any] = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    return res


def file_memory(report: Report, base: Path, sizes: tuple[int, ...] = FILE_SIZES) -> list[dict[str, Any]]:
    print("  one CloudTrail file, a fresh process per file and step: peak RSS over the process before the step",
          flush=True)
    results = []
    for k in sizes:
        n_sessions = max(100, k // 10)  # all writes and logons in one file
        world, _ = scale_world(base, n_writes=k, n_sessions=n_sessions, records_per_file=k + n_sessions + 1)
        path = max(world.cloudtrail_files, key=lambda p: p.stat().st_size)
        rep = str(world.sessions_reports[0]) if world.sessions_reports else None
        p = _file_child(path, rep, "parse")
        i = _file_child(path, rep, "ingest")
        json_mb = mb(p["json_bytes"])
        r = {"records": k + n_sessions, "writes": p["writes"], "gzip_mb": mb(p["gzip_bytes"]), "json_mb": json_mb,
             "parse_extra_mb": p["peak_extra_mb"], "ingest_extra_mb": i["peak_extra_mb"],
             "parse_multiple": p["peak_extra_mb"] / json_mb, "ingest_multiple": i["peak_extra_mb"] / json_mb,
             "rss_base_mb": i["rss_base_mb"], "libs_lambda_mb": i.get("libs_lambda_mb")}
        results.append(r)
        print(f"    {r['records']:>6,} records, {r['gzip_mb']:5.1f} MB gzip / {json_mb:6.1f} MB JSON: parse "
              f"+{r['parse_extra_mb']:.0f} MB ({r['parse_multiple']:.1f}x JSON), ingest +{r['ingest_extra_mb']:.0f}"
              f" MB ({r['ingest_multiple']:.1f}x JSON); process before the step {r['rss_base_mb']:.0f} MB"
              + (f" (of which boto3/Powertools/adapters {r['libs_lambda_mb']:.0f} MB)"
                 if r.get("libs_lambda_mb") else ""),
              flush=True)
    # peak = a + b * size: b is the multiple the Lambda's memory must allow per MB of file
    xs = [r["json_mb"] for r in results]
    ys = [r["ingest_extra_mb"] for r in results]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else my / mx
    a = my - b * mx
    base_mb = max(r["rss_base_mb"] for r in results)
    worst = max(r["ingest_multiple"] for r in results[1:]) if len(results) > 1 else results[0]["ingest_multiple"]
    big = results[-1]
    report.add("growth", "peak memory of ingesting one CloudTrail file (fresh process)",
               " / ".join(f"{x:.0f} MB JSON" for x in xs),
               " / ".join(f"{r['ingest_multiple']:.1f}x" for r in results) + " of JSON size",
               "parse alone: " + " / ".join(f"{r['parse_multiple']:.1f}x" for r in results),
               f"fit: {a:.0f} MB + {b:.1f} x JSON",
               "a fixed multiple of the file", b <= worst * 1.25)
    mem = 1024 - LAMBDA_RUNTIME_MB - base_mb - max(a, 0)
    largest = mem / b
    ratio = big["json_mb"] / big["gzip_mb"]
    report.note(f"Lambda memory: peak = {base_mb:.0f} MB (process, libraries, a day's sessions) + {max(a, 0):.0f} MB "
                f"+ {b:.1f} x the file's uncompressed JSON. MemorySize 1024 fits files up to ~{largest:.0f} MB of "
                f"JSON (~{largest / ratio:.1f} MB gzip at this data's {ratio:.0f}:1 ratio).")
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.growth")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("file", help="peak memory of one file's parse and ingest; prints RESULT <json>")
    f.add_argument("path")
    f.add_argument("--report", default=None)
    f.add_argument("--step", choices=("parse", "ingest"), default="parse")
    a = ap.parse_args(argv)
    print("RESULT " + json.dumps(file_child(a.path, a.report, a.step)), flush=True)


if __name__ == "__main__":
    main()
