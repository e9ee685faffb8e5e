"""``python -m benchmarks``: the whole harness, one command (``make bench``).

    python -m benchmarks                   # everything: joins to 10M, a 10M-row lake (~30 min)
    python -m benchmarks --quick           # stops at 1M
    python -m benchmarks --sizes 100000 1000000 --runs 7 --only join,growth
    python -m benchmarks --markdown results.md --json results.json

Every figure is a ratio against a baseline measured in the same run on the same data, with the
min/median/max of the runs (see benchmarks/common.py); docs/performance.md explains each section.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Any

from .common import Report, environment, human, print_environment, section
from .data import workdir

SECTIONS = ("parse", "join", "growth", "query", "e2e")


def sessions_for(n: int) -> int:
    return min(100_000, max(10_000, n // 10))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="stop at 1M (joins, lake, end to end)")
    ap.add_argument("--sizes", type=int, nargs="+", help="join sizes in writes (default 100k 1M 10M; quick: to 1M)")
    ap.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--query-rows", type=int, default=None, help="writes in the query lake (default 10M; quick 1M)")
    ap.add_argument("--e2e-sizes", type=int, nargs="+", default=None,
                    help="writes in the simulated days ingested end to end (default 100k 1M)")
    ap.add_argument("--no-refs", action="store_true", help="skip the pandas/Polars reference joins")
    ap.add_argument("--workdir", default=None, help="where generated worlds and lakes are cached")
    ap.add_argument("--markdown", default=None, help="also write the figures table to this file")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    a = ap.parse_args(argv)
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    sizes = a.sizes or ([100_000, 1_000_000] if a.quick else [100_000, 1_000_000, 10_000_000])
    query_rows = a.query_rows or (1_000_000 if a.quick else 10_000_000)
    e2e_sizes = a.e2e_sizes or [100_000, 1_000_000]
    base = workdir(a.workdir)

    t_start = time.perf_counter()
    command = "python -m benchmarks " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    print(f"auditcorr benchmarks: {command.strip()}")
    env = environment()
    print_environment(env)
    print(f"runs    : {a.runs} per measurement; work dir {base}")
    report = Report()
    report.data["environment"] = env
    report.data["command"] = command.strip()
    join_results: list[dict[str, Any]] = []

    if "parse" in only:
        from . import parse
        from .data import scale_world

        world, took = scale_world(base, 100_000, 10_000)
        if took:
            print(f"  (world of 100k writes generated in {took:.0f}s)")
        report.data["parse"] = parse.run(report, world, a.runs)
    if "join" in only or "growth" in only:
        from . import join

        join_results = join.run(report, [(n, sessions_for(n)) for n in sizes], a.runs, refs=not a.no_refs)
        report.data["join"] = join_results
    if "growth" in only:
        from . import growth

        report.data["growth"] = growth.join_growth(report, join_results)
        report.data["file_memory"] = growth.file_memory(report, base)
    if "query" in only:
        from . import query

        report.data["query"] = query.run(report, base, query_rows, sessions_for(query_rows), a.runs)
    if "e2e" in only:
        from . import e2e

        report.data["e2e"] = e2e.run(report, base, [(n, sessions_for(n)) for n in e2e_sizes])

    section("Figures")
    print(f"command : {command.strip()}")
    print(f"machine : {env['cpu']}, nproc={env['nproc']}, {env['memory_gib']} GiB; python {env['python']}")
    print()
    print(report.markdown())
    if report.notes:
        print()
        for n in report.notes:
            print(f"- {n}")
    bad = [r for r in report.rows if r.met is False]
    elapsed = time.perf_counter() - t_start
    print(f"\n{len(report.rows)} figures, {len(bad)} below the bar; {elapsed / 60:.1f} min"
          + (f" (sizes {', '.join(human(s) for s in sizes)})" if "join" in only else ""))
    report.data["elapsed_seconds"] = elapsed
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(f"Command: `{command.strip()}`\n\nMachine: {env['cpu']}, nproc={env['nproc']}, "
                    f"{env['memory_gib']} GiB, Python {env['python']}; "
                    + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v) + "\n\n")
            f.write(report.markdown() + "\n\n" + "\n".join(f"- {n}" for n in report.notes) + "\n")
    if a.json:
        report.dump(a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
