"""Attribution join: the core against DuckDB's interval join (the SQL an Athena user would write).

Both sides get the same Arrow tables and one thread; results are compared row for row
(status and session per event) before any time is reported.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from auditcorr.attribution import Coverage, attribute, candidate_pairs, classify_ips
from auditcorr.config import Config
from auditcorr.query.engine import fetch_arrow
from auditcorr.schemas import S3_WRITES, SESSIONS, TS, conform

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


def make_tables(n_writes: int, n_sessions: int, seed: int = 7, multi_share: float = 0.3,
                days: int = 1) -> tuple[pa.Table, pa.Table]:
    """Sessions with IP reuse (short gaps) and multi-session hosts; writes inside, at the edges,
    in the gaps and from idle addresses.  Claims (role session name = session id) on ~70%."""
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
    slot = np.zeros(n_sessions, dtype=np.int64)
    _, first = np.unique(host, return_index=True)
    idx = np.arange(n_sessions)
    slot = idx - np.repeat(first, np.diff(np.append(first, n_sessions)))
    slot = np.where(multi, slot // 3, slot)
    slot_len = span // (per_host + 1)
    start = T0_MS + slot * slot_len + rng.integers(0, 20_000, n_sessions)
    dur = (slot_len - rng.integers(20_000, 120_000, n_sessions)).clip(60_000)
    end = start + dur
    ip = np.char.add("10.40.", np.char.add((host // 250).astype(str), np.char.add(".", (host % 250).astype(str))))
    sid = np.array([f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(n_sessions)], dtype=object)
    sessions = conform(pa.table({
        "session_id": pa.array(sid, pa.string()),
        "user_id": pa.array([f"user{i % 5000}@example.com" for i in range(n_sessions)], pa.string()),
        "session_start_time": pa.array(start).cast(TS),
        "session_end_time": pa.array(end).cast(TS),
        "eni_private_ip_address": pa.array(ip, pa.string()),
        "is_multisession": pa.array(multi),
    }), SESSIONS)

    pick = rng.integers(0, n_sessions, n_writes)
    u = rng.random(n_writes)
    t = start[pick] + (u * (dur[pick] + 100_000)).astype(np.int64) - 50_000  # some in the tolerance/gap
    w_ip = ip[pick].astype(object)
    idle = rng.random(n_writes) < 0.01
    w_ip[idle] = "10.40.250.250"
    claim = np.where(rng.random(n_writes) < 0.7, sid[pick], "AppStream2.0")
    eid = np.array([f"e{i:010d}-aaaa-bbbb-cccc-dddddddddddd" for i in range(n_writes)], dtype=object)
    writes = conform(pa.table({
        "event_id": pa.array(eid, pa.string()),
        "event_time": pa.array(t).cast(TS),
        "event_name": pa.array(np.full(n_writes, "PutObject", dtype=object), pa.string()),
        "source_ip": pa.array(w_ip, pa.string()),
        "role_arn": pa.array(np.full(n_writes, ROLE, dtype=object), pa.string()),
        "role_session_name": pa.array(claim, pa.string()),
    }), S3_WRITES)
    return writes, sessions


def core_attribute(writes: pa.Table, sessions: pa.Table) -> pa.Table:
    cfg = Config()
    cov = Coverage(frozenset(range(0, 40000)), T0_MS, 0)
    res = attribute(writes, sessions, S3_WRITES.empty_table().slice(0, 0) if False else _no_logons(), cfg, cov,
                    T0_MS)
    return res.activity


def core_kernel(writes: pa.Table, sessions: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Just the join kernel (candidate pairs), for reference."""
    valid, fleet, norm = classify_ips(writes.column("source_ip").combine_chunks(), ("10.40.0.0/16",))
    t = writes.column("event_time").cast(pa.int64()).to_numpy()
    return candidate_pairs(norm, t, fleet, sessions, 60_000)


def _no_logons() -> pa.Table:
    from auditcorr.schemas import LOGONS

    return LOGONS.empty_table()


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
    c = core.select(["event_id", "status", "session_id"]).sort_by("event_id").to_pydict()
    d = duck.sort_by("event_id").to_pydict()
    c_status = ["none" if s in ("pending", "unattributed") else s for s in c["status"]]
    return c["event_id"] == d["event_id"] and c_status == d["status"] and c["session_id"] == d["session_id"]
