"""Attribution join: the core against DuckDB's interval join (the SQL an Athena user would write).

Both sides get the same Arrow tables and one thread; results are compared row for row
(status and session per event) before any time is reported.  Each size runs in a child process
of its own (``python -m benchmarks.join child ...``), which also gives the growth figures: the
core's time and its own peak memory (peak RSS during the join minus the RSS holding the inputs).

pandas ``merge_asof`` and Polars ``join_asof`` are timed for reference only: they answer a simpler
question (the nearest session start at or before the write, per IP) -- no end of session, no clock
tolerance, no claim, no ambiguity -- so they are a floor for "a sorted join on this data", not an
equivalent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from auditcorr import config as cfgmod
from auditcorr.attribution import Coverage, attribute, candidate_pairs, classify_ips
from auditcorr.config import Config
from auditcorr.schemas import LOGONS, S3_WRITES, SESSIONS, TS, conform
from auditcorr_cli.query.engine import fetch_arrow

from .common import (
    Report,
    Stats,
    human,
    interleaved,
    mb,
    peak_rss_bytes,
    ratios,
    reset_peak,
    rss_bytes,
    section,
    timed,
)

DUCKDB_SQL = """
WITH c AS (
  SELECT w.event_id, s.session_id,
         (w.event_time BETWEEN s.session_start_time AND s.session_end_time) AS strict,
         coalesce(w.role_session_name = s.session_id, false) AS claim
  FROM writes w
  JOIN sessions s
    ON w.source_ip = s.eni_private_ip_address
   AND w.event_time BETWEEN s.session_start_time - INTERVAL 60 SECOND
                        AND s.session_end_time + INTERVAL 60 SECOND
), r AS (
  SELECT *, bool_or(claim) OVER (PARTITION BY event_id) AS any_claim,
            bool_or(strict) OVER (PARTITION BY event_id) AS any_strict
  FROM c
), k AS (
  SELECT event_id, session_id FROM r
  WHERE claim OR (NOT any_claim AND strict) OR (NOT any_claim AND NOT any_strict)
)
SELECT w.event_id,
       CASE WHEN count(k.session_id) = 1 THEN 'attributed'
            WHEN count(k.session_id) > 1 THEN 'ambiguous' ELSE 'none' END AS status,
       CASE WHEN count(k.session_id) = 1 THEN min(k.session_id) END AS session_id
FROM writes w LEFT JOIN k ON k.event_id = w.event_id
GROUP BY w.event_id
"""

T0_MS = 1_772_438_400_000  # 2026-03-02T08:00:00Z
ROLE = "arn:aws:iam::111122223333:role/AppStreamFleetRole"
REGION = "us-east-1"
#: the organisation case: accounts sharing one address range (issue 15: within 10% of one account)
ORG_ACCOUNTS = 20
ORG_AIM = 1.10
#: default sizes: (writes, sessions)
SIZES = ((100_000, 10_000), (1_000_000, 100_000), (10_000_000, 100_000))
BAR_FROM = 1_000_000  # "faster than DuckDB at 1M and 10M"
AIM = 2.0


def fixed_strings(prefix: str, numbers: np.ndarray, width: int, suffix: str = "", hexa: bool = False) -> pa.Array:
    """``f"{prefix}{n:0{width}d}{suffix}"`` (or ``x``) for every n, built as one Arrow buffer (no
    Python string per row: 10M rows take a fraction of a second)."""
    base = 16 if hexa else 10
    digits = b"0123456789abcdef"
    nums = np.asarray(numbers, dtype=np.int64)
    n = len(nums)
    pre, suf = prefix.encode(), suffix.encode()
    row = len(pre) + width + len(suf)
    buf = np.empty((n, row), dtype=np.uint8)
    buf[:, : len(pre)] = np.frombuffer(pre, np.uint8)
    rest = nums.copy()
    table = np.frombuffer(digits, np.uint8)
    for k in range(width - 1, -1, -1):
        buf[:, len(pre) + k] = table[rest % base]
        rest //= base
    if len(suf):
        buf[:, len(pre) + width:] = np.frombuffer(suf, np.uint8)
    offsets = np.arange(n + 1, dtype=np.int32) * row
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf.reshape(-1))])


def account_id(k: int) -> str:
    return f"{111122223333 + k * 1_000_000_001:012d}"


def role_of(k: int) -> str:
    return ROLE.replace("111122223333", account_id(k))


def make_tables(n_writes: int, n_sessions: int, seed: int = 7, multi_share: float = 0.3,
                days: int = 1, accounts: int = 1) -> tuple[pa.Table, pa.Table]:
    """Sessions with IP reuse (short gaps) and multi-session hosts; writes inside, at the edges,
    in the gaps and from idle addresses.  Claims (role session name = session id) on ~70%.

    ``accounts`` > 1 spreads the hosts over that many accounts (host ``h`` in account ``h % accounts``)
    that REUSE one address range: host ``h`` gets the address of host ``h // accounts`` of the
    single-account world, so every address is held in every account at once, and only the scope
    (account, region) keeps the join right.  The same seed gives the same sessions, times and
    claims whatever ``accounts`` is: the answers must be the single-account world's."""
    rng = np.random.default_rng(seed)
    span = days * 86_400_000
    # hosts: each host IP serves a sequence of sessions (reuse); multi hosts hold 3 at once
    per_host = 8
    n_hosts = max(1, n_sessions // per_host)
    host = rng.integers(0, n_hosts, n_sessions)
    multi = (host % 10) < int(multi_share * 10)
    order = np.lexsort((rng.random(n_sessions), host))
    host = host[order]
    multi = multi[order]
    # sequential slots per host; multi hosts run 3 slots in parallel
    _, first = np.unique(host, return_index=True)
    idx = np.arange(n_sessions)
    slot = idx - np.repeat(first, np.diff(np.append(first, n_sessions)))
    slot = np.where(multi, slot // 3, slot)
    slot_len = span // (per_host + 1)
    start = T0_MS + slot * slot_len + rng.integers(0, 20_000, n_sessions)
    dur = (slot_len - rng.integers(20_000, 120_000, n_sessions)).clip(60_000)
    end = start + dur
    ip_host = host // accounts
    ip = np.char.add("10.40.", np.char.add((ip_host // 250).astype(str), np.char.add(".", (ip_host % 250).astype(str))))
    ip_arr = pa.array(ip, pa.string())
    acct_of_session = host % accounts
    acct_names = pa.array([account_id(k) for k in range(accounts)], pa.string())
    role_names = pa.array([role_of(k) for k in range(accounts)], pa.string())
    sid = pc.binary_join_element_wise(fixed_strings("", np.arange(n_sessions), 8, hexa=True),
                                      fixed_strings("0000-4000-8000-", np.arange(n_sessions), 12, hexa=True), "-")
    sessions = conform(pa.table({
        "session_id": sid,
        "user_id": pa.array([f"user{i}@example.com" for i in range(min(n_sessions, 5000))],
                            pa.string()).take(pa.array(np.arange(n_sessions) % 5000)),
        "session_start_time": pa.array(start).cast(TS),
        "session_end_time": pa.array(end).cast(TS),
        "eni_private_ip_address": ip_arr,
        "is_multisession": pa.array(multi),
        "aws_account_id": acct_names.take(pa.array(acct_of_session)),
        "region": pa.repeat(pa.scalar(REGION), n_sessions).cast(pa.string()),
    }), SESSIONS)

    pick = rng.integers(0, n_sessions, n_writes)
    u = rng.random(n_writes)
    t = start[pick] + (u * (dur[pick] + 100_000)).astype(np.int64) - 50_000  # some in the tolerance/gap
    idle = rng.random(n_writes) < 0.01
    w_ip = pc.if_else(pa.array(idle), pa.scalar("10.40.250.250"), ip_arr.take(pa.array(pick)))
    claimed = rng.random(n_writes) < 0.7
    claim = pc.if_else(pa.array(claimed), sid.take(pa.array(pick)), pa.scalar("AppStream2.0"))
    eid = fixed_strings("e", np.arange(n_writes), 10, "-aaaa-bbbb-cccc-dddddddddddd")
    writes = conform(pa.table({
        "event_id": eid,
        "event_time": pa.array(t).cast(TS),
        "event_name": pa.repeat(pa.scalar("PutObject"), n_writes).cast(pa.string()),
        "source_ip": w_ip,
        "role_arn": role_names.take(pa.array(acct_of_session[pick])),
        "role_session_name": claim,
        "aws_region": pa.repeat(pa.scalar(REGION), n_writes).cast(pa.string()),
    }), S3_WRITES)
    return writes, sessions


def org_config(accounts: int) -> Config:
    """One ``[[fleets]]`` group per account, all on the same CIDR, as an organisation writes it."""
    return cfgmod.from_mapping({"fleets": [
        {"account": account_id(k), "regions": [REGION], "cidrs": ["10.40.0.0/16"], "roles": [role_of(k)]}
        for k in range(accounts)]})


def core_attribute(writes: pa.Table, sessions: pa.Table, cfg: Config | None = None) -> pa.Table:
    cov = Coverage.every_scope(range(0, 40000), T0_MS)
    return attribute(writes, sessions, LOGONS.empty_table(), cfg or Config(), cov, T0_MS).activity


def core_kernel(writes: pa.Table, sessions: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Just the join kernel (candidate pairs), for reference."""
    valid, fleet, norm = classify_ips(writes.column("source_ip").combine_chunks(), ("10.40.0.0/16",))
    t = writes.column("event_time").cast(pa.int64()).to_numpy()
    return candidate_pairs(norm, t, fleet, sessions, 60_000)


def duckdb_attribute(writes: pa.Table, sessions: pa.Table) -> pa.Table:
    import duckdb

    con = duckdb.connect(config={"threads": 1})
    con.execute("SET TimeZone='UTC'")
    con.register("writes", writes.select(["event_id", "event_time", "source_ip", "role_session_name"]))
    con.register("sessions", sessions.select(["session_id", "session_start_time", "session_end_time",
                                              "eni_private_ip_address"]))
    out = fetch_arrow(con.sql(DUCKDB_SQL))
    con.close()
    return out


def same_answers(core: pa.Table, duck: pa.Table) -> bool:
    """Same events, and per event the same status and chosen session (core's pending/unattributed
    are DuckDB's 'none').  Columnar, so it stays cheap at 10M rows."""
    if core.num_rows != duck.num_rows:
        return False
    c = core.select(["event_id", "status", "session_id"]).sort_by("event_id")
    d = duck.select(["event_id", "status", "session_id"]).sort_by("event_id")
    none = pc.is_in(c.column("status"), value_set=pa.array(["pending", "unattributed"]))
    c_status = pc.if_else(none, pa.scalar("none"), c.column("status"))
    return (c.column("event_id").equals(d.column("event_id")) and c_status.equals(d.column("status").cast(pa.string()))
            and c.column("session_id").equals(d.column("session_id").cast(pa.string())))


# -- references: the simpler "nearest start before" question ------------------------------------------------
def asof_inputs(writes: pa.Table, sessions: pa.Table) -> tuple[pa.Table, pa.Table]:
    w = pa.table({"ip": writes.column("source_ip"), "t": writes.column("event_time").cast(pa.int64())})
    s = pa.table({"ip": sessions.column("eni_private_ip_address"),
                  "start": sessions.column("session_start_time").cast(pa.int64()),
                  "session_id": sessions.column("session_id")})
    return w, s


def pandas_asof(w: Any, s: Any) -> int:
    import pandas as pd

    m = pd.merge_asof(w.sort_values("t"), s.sort_values("start"), left_on="t", right_on="start", by="ip",
                      direction="backward")
    return int(m["session_id"].notna().sum())


def polars_asof(w: Any, s: Any) -> int:
    import warnings

    with warnings.catch_warnings():  # "sortedness cannot be checked with 'by' groups": both are sorted
        warnings.simplefilter("ignore")
        out = w.sort("t").join_asof(s.sort("start"), left_on="t", right_on="start", by="ip", strategy="backward")
    return int(out["session_id"].is_not_null().sum())


# -- the child process: one size ---------------------------------------------------------------------------
def child(n_writes: int, n_sessions: int, runs: int, refs: bool, ref_runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"writes": n_writes, "sessions": n_sessions}
    t_make, (writes, sessions) = timed(lambda: make_tables(n_writes, n_sessions))
    out["make_seconds"] = t_make
    out["input_mb"] = mb(writes.nbytes + sessions.nbytes)
    # warm up both sides on a slice (imports, DuckDB start-up), then let go of everything
    small = writes.slice(0, min(10_000, n_writes))
    core_attribute(small, sessions)
    duckdb_attribute(small, sessions)
    del small
    rss_in = rss_bytes()
    out["rss_inputs_mb"] = mb(rss_in)
    # the core's own peak: reset the high-water mark, run once, read it
    out["peak_reset"] = reset_peak()
    t_first, act = timed(lambda: core_attribute(writes, sessions))
    out["core_peak_rss_mb"] = mb(peak_rss_bytes())
    out["core_extra_mb"] = mb(peak_rss_bytes() - rss_in)
    out["output_mb"] = mb(act.nbytes)
    out["core_first_run"] = t_first
    del act
    stats, last = interleaved({"duckdb": lambda: duckdb_attribute(writes, sessions),
                               "core": lambda: core_attribute(writes, sessions)}, runs)
    out["core"] = stats["core"].as_dict()
    out["duckdb"] = stats["duckdb"].as_dict()
    out["ratio"] = ratios(stats["duckdb"], stats["core"]).as_dict()
    out["same_answers"] = same_answers(last["core"], last["duckdb"])
    status = pc.value_counts(last["core"].column("status")).to_pylist()
    out["statuses"] = {d["values"]: d["counts"] for d in status}
    del last
    out["refs"] = {}
    if refs:
        w, s = asof_inputs(writes, sessions)
        fns: dict[str, Any] = {}
        try:
            wp, sp = w.to_pandas(), s.to_pandas()
            fns["pandas merge_asof"] = lambda: pandas_asof(wp, sp)
        except ImportError:
            out["refs"]["pandas merge_asof"] = None
        try:
            import polars as pl

            wl, sl = pl.from_arrow(w), pl.from_arrow(s)
            fns["polars join_asof"] = lambda: polars_asof(wl, sl)
        except ImportError:
            out["refs"]["polars join_asof"] = None
        if fns:
            st, res = interleaved(fns, ref_runs)
            for k, v in st.items():
                out["refs"][k] = v.as_dict() | {"matched": res[k]}
    out["peak_rss_mb"] = mb(peak_rss_bytes())
    return out


def org_child(n_writes: int, n_sessions: int, accounts: int, runs: int) -> dict[str, Any]:
    """The same world on one account and spread over ``accounts`` accounts reusing one CIDR, timed
    interleaved in one process; the answers must be identical event by event."""
    out: dict[str, Any] = {"writes": n_writes, "sessions": n_sessions, "accounts": accounts}
    single_w, single_s = make_tables(n_writes, n_sessions)
    org_w, org_s = make_tables(n_writes, n_sessions, accounts=accounts)
    cfg = org_config(accounts)
    out["distinct_addresses"] = {"single": pc.count_distinct(single_s.column("eni_private_ip_address")).as_py(),
                                 "org": pc.count_distinct(org_s.column("eni_private_ip_address")).as_py()}
    core_attribute(single_w.slice(0, 10_000), single_s)  # warm-up
    core_attribute(org_w.slice(0, 10_000), org_s, cfg)
    stats, last = interleaved({"single": lambda: core_attribute(single_w, single_s),
                               "org": lambda: core_attribute(org_w, org_s, cfg)}, runs)
    out["single"] = stats["single"].as_dict()
    out["org"] = stats["org"].as_dict()
    # org time / single time per round (> 1: the organisation case is slower)
    out["ratio"] = ratios(stats["org"], stats["single"]).as_dict()
    keys = ["event_id", "status", "session_id"]
    out["same_answers"] = last["single"].select(keys).sort_by("event_id").equals(
        last["org"].select(keys).sort_by("event_id"))
    status = pc.value_counts(last["org"].column("status")).to_pylist()
    out["statuses"] = {d["values"]: d["counts"] for d in status}
    return out


def run_org(report: Report, n_writes: int, n_sessions: int, accounts: int, runs: int) -> dict[str, Any]:
    section(f"2b. Join: {human(n_writes)} writes over {accounts} accounts reusing one CIDR vs one account")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "benchmarks.join", "org", "--writes", str(n_writes), "--sessions",
           str(n_sessions), "--accounts", str(accounts), "--runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"join org child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res: dict[str, Any] = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    single, org, ratio = Stats(res["single"]["runs"]), Stats(res["org"]["runs"]), Stats(res["ratio"]["runs"])
    print(f"    one account {single.fmt()}   {accounts} accounts {org.fmt()}   org/single {ratio.median:.3f} "
          f"(per-run {ratio.min:.3f}-{ratio.max:.3f}); same answers: {res['same_answers']}")
    report.add("join", f"core attribute(), {accounts} accounts sharing 10.40.0.0/16 vs one account",
               f"{human(n_writes)} w x {human(n_sessions)} s", org.fmt(), f"one account {single.fmt()}",
               f"{ratio.median:.3f}x its time (per-run {ratio.min:.3f}-{ratio.max:.3f})",
               f"within {ORG_AIM:.2f}x; identical answers", res["same_answers"] and ratio.median <= ORG_AIM)
    return res


def run_child(n_writes: int, n_sessions: int, runs: int, refs: bool, ref_runs: int) -> dict[str, Any]:
    env = dict(os.environ, POLARS_MAX_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "benchmarks.join", "child", "--writes", str(n_writes), "--sessions",
           str(n_sessions), "--runs", str(runs), "--ref-runs", str(ref_runs)] + (["--refs"] if refs else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"join child {n_writes} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    res: dict[str, Any] = json.loads(line[len("RESULT "):])
    res["wall_seconds"] = time.perf_counter() - t0
    return res


def run(report: Report, sizes: list[tuple[int, int]], runs: int, refs: bool = True,
        ref_runs: int | None = None) -> list[dict[str, Any]]:
    section("2. Join: core attribute() vs DuckDB interval join, 1 thread each, same Arrow tables")
    results = []
    for n, s in sizes:
        rr = ref_runs if ref_runs is not None else (runs if n < 10_000_000 else max(3, runs // 2))
        print(f"  {human(n)} writes x {human(s)} sessions: child process ...", flush=True)
        res = run_child(n, s, runs, refs, rr)
        results.append(res)
        core, duck, ratio = Stats(res["core"]["runs"]), Stats(res["duckdb"]["runs"]), Stats(res["ratio"]["runs"])
        print(f"    tables built in {res['make_seconds']:.1f}s ({res['input_mb']:.0f} MB); statuses {res['statuses']}")
        print(f"    core   {core.fmt()}   duckdb {duck.fmt()}   duckdb/core {ratio.fmt('s').replace(' s', '')}")
        print(f"    same answers: {res['same_answers']}; core peak +{res['core_extra_mb']:.0f} MB over inputs")
        bar = n >= BAR_FROM
        met = res["same_answers"] and (ratio.median > 1.0 if bar else True)
        report.add("join", "core vs DuckDB interval join (1 thread)", f"{human(n)} w x {human(s)} s",
                   core.fmt(), f"DuckDB {duck.fmt()}",
                   f"{ratio.median:.2f}x faster (per-run {ratio.min:.2f}-{ratio.max:.2f})",
                   ("faster than DuckDB (aim 2x); identical answers" if bar else "identical answers"), met)
        for name, st in res["refs"].items():
            if st is None:
                report.note(f"{name}: not installed, not measured")
                continue
            rs = Stats(st["runs"])
            report.add("join (reference)", f"{name} (nearest start, simpler question)",
                       f"{human(n)} w x {human(s)} s", rs.fmt(), f"core {core.fmt()}",
                       f"core {rs.median / core.median:.2f}x its time", "info only", None)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.join")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child", help="one size, in this process; prints RESULT <json>")
    c.add_argument("--writes", type=int, required=True)
    c.add_argument("--sessions", type=int, required=True)
    c.add_argument("--runs", type=int, default=5)
    c.add_argument("--ref-runs", type=int, default=5)
    c.add_argument("--refs", action="store_true")
    o = sub.add_parser("org", help="one account vs ACCOUNTS accounts on one CIDR; prints RESULT <json>")
    o.add_argument("--writes", type=int, default=1_000_000)
    o.add_argument("--sessions", type=int, default=100_000)
    o.add_argument("--accounts", type=int, default=ORG_ACCOUNTS)
    o.add_argument("--runs", type=int, default=5)
    o.add_argument("--report", action="store_true", help="run it in a child process and print the report row")
    a = ap.parse_args(argv)
    if a.cmd == "org":
        if a.report:
            report = Report()
            run_org(report, a.writes, a.sessions, a.accounts, a.runs)
            print(report.markdown())
            return
        res = org_child(a.writes, a.sessions, a.accounts, a.runs)
    else:
        res = child(a.writes, a.sessions, a.runs, a.refs, a.ref_runs)
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
