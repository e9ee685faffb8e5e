"""The logon behind a session: the same user's successful logon closest before its start."""

from __future__ import annotations

from bisect import bisect_right

import pyarrow as pa
import pyarrow.compute as pc

from ..arrow import epoch_ms
from ..config import Config
from ..schemas import TS


def match_logons(users: pa.Array, starts: pa.Array, logons: pa.Table,
                 config: Config) -> tuple[pa.Array, pa.Array, pa.Array]:
    """For each (user, session start): the same user's successful logon closest before the start
    (within ``config.logon_window_hours``; the clock-skew tolerance is allowed after the start)."""
    n = len(users)
    if n == 0 or logons.num_rows == 0:
        return pa.nulls(n, pa.string()), pa.nulls(n, TS), pa.nulls(n, pa.string())
    ok = pc.and_(pc.is_valid(logons.column("user_name")), pc.equal(logons.column("outcome"), "Success"))
    lg = logons.filter(pc.fill_null(ok, False))
    by_user: dict[str, tuple[list[int], list[str], list[str | None]]] = {}
    rows = sorted(zip(lg.column("user_name").to_pylist(), epoch_ms(lg.column("event_time")).tolist(),
                      lg.column("event_id").to_pylist(), lg.column("source_ip").to_pylist(), strict=True))
    for u, t, eid, ip in rows:
        ts, ids, ips = by_user.setdefault(u, ([], [], []))
        ts.append(t)
        ids.append(eid)
        ips.append(ip)
    tol = config.tolerance_seconds * 1000
    window = int(config.logon_window_hours * 3_600_000)
    u_list = users.to_pylist()
    s_list = starts.cast(pa.int64()).to_pylist()
    memo: dict[tuple[str, int], tuple[str | None, int | None, str | None]] = {}
    out_id: list[str | None] = []
    out_t: list[int | None] = []
    out_ip: list[str | None] = []
    for u, s in zip(u_list, s_list, strict=True):
        res: tuple[str | None, int | None, str | None] = (None, None, None)
        if u is not None and s is not None:
            key = (u, s)
            if key in memo:
                res = memo[key]
            else:
                entry = by_user.get(u)
                if entry:
                    ts, ids, ips = entry
                    j = bisect_right(ts, s + tol) - 1
                    if j >= 0 and ts[j] >= s - window:
                        res = (ids[j], ts[j], ips[j])
                memo[key] = res
        out_id.append(res[0])
        out_t.append(res[1])
        out_ip.append(res[2])
    return (pa.array(out_id, pa.string()), pa.array(out_t, pa.int64()).cast(TS),
            pa.array(out_ip, pa.string()))
