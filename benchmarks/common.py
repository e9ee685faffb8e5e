"""Shared pieces of the harness: interleaved timing, statistics, memory probes, the machine, the report.

Absolute times on a shared 2-core machine are noise; every figure is therefore a ratio against a
baseline measured in the same run, on the same data, interleaved run by run (baseline, candidate,
candidate, baseline, ...) so that a burst of load elsewhere hits both sides alike.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

PACKAGES = ("pyarrow", "duckdb", "numpy", "msgspec", "orjson", "pandas", "polars", "isal", "zlib-ng", "sqlglot")


# -- statistics ------------------------------------------------------------------------------------------------
@dataclass
class Stats:
    runs: list[float]

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def max(self) -> float:
        return max(self.runs)

    def fmt(self, unit: str = "s") -> str:
        scale = {"s": 1.0, "ms": 1000.0}[unit]
        return (f"{self.min * scale:.3g}/{self.median * scale:.3g}/{self.max * scale:.3g} {unit}"
                f" (n={len(self.runs)})")

    def as_dict(self) -> dict[str, Any]:
        return {"min": self.min, "median": self.median, "max": self.max, "runs": self.runs}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fns: dict[str, Callable[[], Any]], runs: int,
                warmup: bool = False) -> tuple[dict[str, Stats], dict[str, Any]]:
    """Run every function ``runs`` times, interleaved, alternating the order each round (ABBA...).

    Returns the timings and the last result of each function (for the correctness checks)."""
    names = list(fns)
    last: dict[str, Any] = {}
    if warmup:
        for n in names:
            last[n] = fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(runs):
        order = names if i % 2 == 0 else names[::-1]
        for n in order:
            dt, last[n] = timed(fns[n])
            times[n].append(dt)
    return {n: Stats(t) for n, t in times.items()}, last


def ratios(base: Stats, cand: Stats) -> Stats:
    """Per-round ratio baseline time / candidate time (> 1: the candidate is faster)."""
    return Stats([b / c for b, c in zip(base.runs, cand.runs, strict=True)])


def fit_exponent(ns: list[float], ts: list[float]) -> float:
    """Least-squares slope of log(t) over log(n): t ~ n^k."""
    xs = [math.log(n) for n in ns]
    ys = [math.log(t) for t in ts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def nlogn_exponent(ns: list[float]) -> float:
    """The exponent an n log n curve shows over the same sizes (the bar for growth)."""
    return fit_exponent(ns, [n * math.log(n) for n in ns])


# -- memory --------------------------------------------------------------------------------------------------
def _status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    return _status("VmRSS") or 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far.

    Linux: ``VmHWM``, the high-water mark of this process's own memory, which :func:`reset_peak`
    resets.  ``getrusage``'s ``ru_maxrss`` is not usable for a child process: it keeps the RSS of
    the parent's forked copy from before ``exec`` and is not reset; it is the fallback elsewhere."""
    hwm = _status("VmHWM")
    if hwm is not None:
        return hwm
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru * 1024 if sys.platform != "darwin" else ru


def reset_peak() -> bool:
    """Reset the peak RSS (Linux >= 4.0: ``/proc/self/clear_refs`` 5) so a step's own peak can be read."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def mb(n: float) -> float:
    return n / 1024 / 1024


# -- the machine ---------------------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except OSError:
        pass
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "nproc": affinity,
        "memory_gib": round(mem / 2**30, 1) if mem else None,
        "load_avg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "packages": versions,
    }


def print_environment(env: dict[str, Any], out: Any = sys.stdout) -> None:
    print(f"machine : {env['cpu']}, nproc={env['nproc']}, {env['memory_gib']} GiB, {env['platform']}", file=out)
    print(f"python  : {env['implementation']} {env['python']}", file=out)
    la = env.get("load_avg_at_start")
    if la:
        print(f"load    : {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} (1/5/15 min, at start: the machine is shared)",
              file=out)
    pk = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    missing = ", ".join(k for k, v in env["packages"].items() if not v)
    print(f"packages: {pk}" + (f" (not installed: {missing})" if missing else ""), file=out)


# -- the report ----------------------------------------------------------------------------------------------
@dataclass
class Row:
    section: str
    what: str
    size: str
    candidate: str  # min/median/max of the measured thing
    baseline: str  # what it is compared with, and its min/median/max
    ratio: str
    bar: str
    met: bool | None

    def cells(self) -> list[str]:
        ok = "" if self.met is None else ("yes" if self.met else "NO")
        return [self.section, self.what, self.size, self.candidate, self.baseline, self.ratio, self.bar, ok]


HEAD = ["section", "measurement", "size", "candidate min/med/max", "baseline min/med/max", "ratio", "bar", "met"]


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: Any, **kw: Any) -> Row:
        row = Row(*args, **kw)
        self.rows.append(row)
        print("  -> " + " | ".join(c for c in row.cells() if c), flush=True)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)
        print("  note: " + text, flush=True)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
        for r in self.rows:
            lines.append("| " + " | ".join(c.replace("|", "/") for c in r.cells()) + " |")
        return "\n".join(lines)

    def dump(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump({"rows": [r.__dict__ for r in self.rows], "notes": self.notes, "data": self.data}, f,
                      indent=1, default=str)


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 90 - len(title)), flush=True)


def human(n: int) -> str:
    for div, suf in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % (div // 10) == 0:
            v = n / div
            return f"{v:g}{suf}"
    return str(n)
