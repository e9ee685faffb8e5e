"""Memory of the parse step: peak per MB of JSON, and what a decompression bomb costs.

    python -m benchmarks.memory                      # files of 1, 4 and 16 world files' records
    python -m benchmarks.memory --files 1 4 16 32 --workdir /tmp/auditcorr-bench

Each figure comes from a fresh child process (memory a step frees stays with the allocator and would
hide the next step's peak): the child imports everything and warms the decoders, then reads its peak
RSS (``VmHWM``, reset through ``/proc/self/clear_refs``) around one ``parse_cloudtrail`` call.  The
CloudTrail files are the parse benchmark's world files (real-shaped records), merged into one
object per size.  The bomb is a ~2 MB ``.json.gz`` that inflates to 2 GiB of JSON whitespace: with
the cap it must be refused holding about the cap, not gigabytes.

The fit ``peak = a + b x JSON MB`` gives ``b``, the multiple docs/reliability.md ("Memory") states,
and the largest object a 1,024 MB function can parse.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

import orjson

from .common import mb, peak_rss_bytes, reset_peak, rss_bytes
from .data import scale_world, workdir

LAMBDA_RUNTIME_MB = 60  # Lambda's own runtime and bootstrap beside our process (benchmarks/growth.py)
BOMB_JSON_BYTES = 2 * 1024**3


def child(path: str, cap: int | None) -> dict[str, Any]:
    from auditcorr.config import Config
    from auditcorr.ingest.cloudtrail import UnreadableObject, parse_cloudtrail
    from auditcorr.ingest.inflate import DEFAULT_MAX_INFLATED

    cfg = Config()
    data = Path(path).read_bytes()
    parse_cloudtrail(gzip.compress(b'{"Records":[]}'), "warm.json.gz", cfg)  # imports, decoders
    base = rss_bytes()
    reset_peak()
    out: dict[str, Any] = {"gzip_bytes": len(data), "cap": cap or DEFAULT_MAX_INFLATED, "rss_base_mb": mb(base)}
    try:
        parsed = parse_cloudtrail(data, path, cfg, max_inflated=cap or DEFAULT_MAX_INFLATED)
        out["writes"] = parsed.writes.num_rows
        out["records_in"] = parsed.outcome.records_in
    except UnreadableObject as exc:
        out["refused"] = str(exc)
    out["peak_extra_mb"] = mb(peak_rss_bytes() - base)
    return out


def run_child(path: Path, cap: int | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.memory", "child", str(path)] + (["--cap", str(cap)] if cap else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{proc.stderr[-3000:]}")
    res: dict[str, Any] = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    return res


def merged_file(files: list[Path], out: Path) -> int:
    """One object holding the records of ``files``; returns its JSON size in bytes."""
    records: list[Any] = []
    for p in files:
        records.extend(orjson.loads(gzip.decompress(p.read_bytes()))["Records"])
    body = orjson.dumps({"Records": records})
    out.write_bytes(gzip.compress(body, compresslevel=6, mtime=0))
    return len(body)


def bomb(out: Path, size: int = BOMB_JSON_BYTES) -> None:
    """A valid ``.json.gz`` of ``size`` bytes of JSON, nearly all whitespace (about 2 MB compressed)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head, tail = b'{"Records":[', b"]}"
    block = b" " * (16 * 1024 * 1024)
    with out.open("wb") as f:
        f.write(comp.compress(head))
        left = size - len(head) - len(tail)
        while left > 0:
            f.write(comp.compress(block[: min(left, len(block))]))
            left -= len(block)
        f.write(comp.compress(tail))
        f.write(comp.flush())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("child", help="one measurement; prints RESULT <json>")
    c.add_argument("path")
    c.add_argument("--cap", type=int, default=None)
    ap.add_argument("--files", type=int, nargs="+", default=[1, 4, 16],
                    help="world files merged into each measured object (default 1 4 16)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--memory-mb", type=int, default=1024, help="the function size to estimate for")
    a = ap.parse_args(argv)
    if a.cmd == "child":
        print("RESULT " + json.dumps(child(a.path, a.cap)), flush=True)
        return
    world, _ = scale_world(workdir(a.workdir), 100_000, 10_000)  # the parse benchmark's world
    files = sorted(world.cloudtrail_files)
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    rows = []
    for n in a.files:
        path = tmp / f"merged-{n}.json.gz"
        json_bytes = merged_file(files[:n], path)
        r = run_child(path)
        r["json_mb"] = mb(json_bytes)
        r["per_mb"] = r["peak_extra_mb"] / r["json_mb"]
        rows.append(r)
        print(f"  {n:>3} files: {r['records_in']:>7,} records, {mb(r['gzip_bytes']):6.1f} MB gzip, "
              f"{r['json_mb']:7.1f} MB JSON: parse peak +{r['peak_extra_mb']:6.0f} MB = {r['per_mb']:.2f} MB per MB "
              f"(process before: {r['rss_base_mb']:.0f} MB)", flush=True)
    xs = [r["json_mb"] for r in rows]
    ys = [r["peak_extra_mb"] for r in rows]
    if len(rows) > 1:
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
        fixed = my - b * mx
    else:
        b, fixed = ys[0] / xs[0], 0.0
    base = max(r["rss_base_mb"] for r in rows)
    largest = (a.memory_mb - LAMBDA_RUNTIME_MB - base - max(fixed, 0)) / b
    print(f"  fit: parse peak = {fixed:.0f} MB + {b:.2f} x JSON MB; with {base:.0f} MB for the process and "
          f"{LAMBDA_RUNTIME_MB} MB for the runtime, a {a.memory_mb} MB function parses objects up to "
          f"~{largest:.0f} MB of JSON")
    bomb_path = tmp / "bomb.json.gz"
    bomb(bomb_path)
    r = run_child(bomb_path)
    print(f"  bomb: {mb(bomb_path.stat().st_size):.1f} MB gzip inflating to {mb(BOMB_JSON_BYTES):,.0f} MB: "
          f"{'refused: ' + r['refused'] if 'refused' in r else 'ACCEPTED'}; peak +{r['peak_extra_mb']:.0f} MB "
          f"(cap {mb(r['cap']):.0f} MB)")
    print("RESULT " + json.dumps({"files": rows, "fit_mb_per_mb": b, "fit_fixed_mb": fixed,
                                  "largest_json_mb": largest, "bomb": r}))


if __name__ == "__main__":
    main()
