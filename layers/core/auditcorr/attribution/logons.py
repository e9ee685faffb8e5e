"""The logon behind a session: the same user's successful logon closest before its start, in the
session's own account.

A SAML user opens an AppStream session by assuming a role of the account that owns the stack
(``AssumeRoleWithSAML``, recorded with that account as ``recipientAccountId``), so a logon in another
account cannot have opened it: in an organisation the same user name logs on in several accounts, and
only the session's account's logons count.  Regions are not compared: STS logs a logon through its
global endpoint in us-east-1 whatever the stack's region.  A session or logon whose account is not
known (rows of lakes written before scopes) matches across accounts, as before.
"""

from __future__ import annotations

from bisect import bisect_right

import pyarrow as pa
import pyarrow.compute as pc

from ..arrow import epoch_ms
from ..config import Config
from ..schemas import TS


def same_account(logon_account: str | None, session_account: str | None) -> bool:
    """May a logon of ``logon_account`` have opened a session of ``session_account``?  Yes in the same
    account, and when either is unknown (rows written before scopes)."""
    return session_account is None or logon_account is None or logon_account == session_account


_Logons = tuple[list[int], list[str], list[str | None]]  # times (sorted), event ids, source ips


class _LogonIndex:
    """Successful logons by user and account.  ``of(account, user)``: the logons that may have opened
    a session of ``user`` in ``account`` -- that account's and those of no known account; with
    ``account`` None, all of the user's."""

    def __init__(self, logons: pa.Table) -> None:
        ok = pc.and_(pc.is_valid(logons.column("user_name")), pc.equal(logons.column("outcome"), "Success"))
        lg = logons.filter(pc.fill_null(ok, False))
        accounts = (lg.column("account_id").to_pylist() if "account_id" in lg.column_names
                    else [None] * lg.num_rows)
        self._rows: dict[str, list[tuple[int, str, str | None, str | None]]] = {}
        for u, t, eid, ip, acct in zip(lg.column("user_name").to_pylist(), epoch_ms(lg.column("event_time")).tolist(),
                                       lg.column("event_id").to_pylist(), lg.column("source_ip").to_pylist(),
                                       accounts, strict=True):
            self._rows.setdefault(u, []).append((t, eid, ip, acct))
        for rows in self._rows.values():
            rows.sort(key=lambda r: (r[0], r[1] or "", r[2] or "", r[3] or ""))
        self._cache: dict[tuple[str | None, str], _Logons] = {}

    def of(self, account: str | None, user: str) -> _Logons:
        key = (account, user)
        if key not in self._cache:
            rows = [r for r in self._rows.get(user, ()) if same_account(r[3], account)]
            self._cache[key] = ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        return self._cache[key]


def match_logons(users: pa.Array, starts: pa.Array, logons: pa.Table, config: Config,
                 accounts: pa.Array | None = None) -> tuple[pa.Array, pa.Array, pa.Array]:
    """For each (user, session start[, account]): the same user's successful logon closest before the
    start in that account (within ``config.logon_window_hours``; the clock-skew tolerance is allowed
    after the start).  ``accounts`` None or a null entry: any account's logon."""
    n = len(users)
    if n == 0 or logons.num_rows == 0:
        return pa.nulls(n, pa.string()), pa.nulls(n, TS), pa.nulls(n, pa.string())
    index = _LogonIndex(logons)
    tol = config.tolerance_seconds * 1000
    window = int(config.logon_window_hours * 3_600_000)
    u_list = users.to_pylist()
    s_list = starts.cast(pa.int64()).to_pylist()
    a_list = accounts.to_pylist() if accounts is not None else [None] * n
    memo: dict[tuple[str | None, str, int], tuple[str | None, int | None, str | None]] = {}
    out_id: list[str | None] = []
    out_t: list[int | None] = []
    out_ip: list[str | None] = []
    for u, s, a in zip(u_list, s_list, a_list, strict=True):
        res: tuple[str | None, int | None, str | None] = (None, None, None)
        if u is not None and s is not None:
            key = (a, u, s)
            if key in memo:
                res = memo[key]
            else:
                ts, ids, ips = index.of(a, u)
                j = bisect_right(ts, s + tol) - 1
                if j >= 0 and ts[j] >= s - window:
                    res = (ids[j], ts[j], ips[j])
                memo[key] = res
        out_id.append(res[0])
        out_t.append(res[1])
        out_ip.append(res[2])
    return (pa.array(out_id, pa.string()), pa.array(out_t, pa.int64()).cast(TS),
            pa.array(out_ip, pa.string()))
