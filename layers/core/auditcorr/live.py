"""Live AppStream observations: poll snapshots -> ``live_sessions`` rows -> observed session windows.

Pure: no AWS SDK.  The poller (``auditcorr_aws/appstream.py`` or the fake) hands over the session
dicts exactly as ``DescribeSessions`` returns them; this module turns them into Arrow.

How a window is derived (``observed_windows``)
- start: the session's ``StartTime`` (the first observation when the API gave none).
- a session listed by a poll was live at that poll (``observed_at`` is taken when the poll has
  finished, so "listed" means "live at some moment up to ``observed_at``").
- end, when a later complete poll of the same stack/fleet no longer listed it (or listed it as
  ``EXPIRED``): that poll's time.  The session ended somewhere between its last sighting and that
  poll; the window takes the *upper* bound, so a write made between the two polls is still
  explained by it (the report, authoritative, later narrows it).  A gap between polls longer than
  the freshness is not vouched for: the end is then capped at ``last seen + freshness``.
- end, while no later poll has been made: ``last seen + freshness`` when the last sighting is
  within the freshness of ``now`` (the session is presumed to run on), else ``last seen`` (the
  poller stopped: only what was seen is claimed).
- the end never passes ``MaxExpirationTime`` nor precedes the start.

A "complete poll" of a stack/fleet is a ``live_polls`` row without error: every authentication type
was asked for and every page read.  Error rows never end a window and never make the view fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .attribution.model import SESSION_COLS
from .schemas import LIVE_SESSIONS, TS

Pair = tuple[str, str]
#: a stack or fleet name that stands for "all" in an error row (discovery failed)
WILDCARD = "*"

_NEG = np.iinfo(np.int64).min // 4
_POS = np.iinfo(np.int64).max // 4

#: extra explanatory columns of ``observed_windows`` (after SESSION_COLS)
WINDOW_EXTRA = ("authentication_type", "state", "first_seen", "last_seen", "end_basis")
END_BASES = ("unlisted", "expired", "gap_capped", "fresh", "last_seen", "max_expiration")


# -- snapshots ------------------------------------------------------------------------------------
def _to_ms(value: Any) -> int | None:
    """A botocore timestamp (aware ``datetime``; naive means UTC), epoch seconds, or ISO text."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(round(dt.timestamp() * 1000))
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(round(float(value) * 1000))
    if isinstance(value, str):
        try:
            return _to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def snapshot_table(sessions: Iterable[Mapping[str, Any]], observed_at_ms: int) -> pa.Table:
    """One ``live_sessions`` row per session of one poll (the same ``Id`` twice is kept once)."""
    rows: dict[str, dict[str, Any]] = {}
    for s in sessions:
        sid = _str(s.get("Id"))
        if sid is None:
            continue
        net = s.get("NetworkAccessConfiguration")
        net = net if isinstance(net, Mapping) else {}
        rows[sid] = {
            "observed_at": observed_at_ms,
            "session_id": sid,
            "user_id": _str(s.get("UserId")),
            "authentication_type": _str(s.get("AuthenticationType")),
            "stack_name": _str(s.get("StackName")),
            "fleet_name": _str(s.get("FleetName")),
            "state": _str(s.get("State")),
            "connection_state": _str(s.get("ConnectionState")),
            "start_time": _to_ms(s.get("StartTime")),
            "max_expiration_time": _to_ms(s.get("MaxExpirationTime")),
            "eni_private_ip_address": _str(net.get("EniPrivateIpAddress")),
            "instance_id": _str(s.get("InstanceId")),
            "account_id": None,
            "region": None,
        }
    cols: dict[str, pa.Array] = {}
    ordered = [rows[k] for k in sorted(rows)]
    for field in LIVE_SESSIONS:
        vals = [r[field.name] for r in ordered]
        if field.type == TS:
            cols[field.name] = pa.array(vals, pa.int64()).cast(TS)
        else:
            cols[field.name] = pa.array(vals, field.type)
    return pa.Table.from_arrays(list(cols.values()), schema=LIVE_SESSIONS)


# -- polls ----------------------------------------------------------------------------------------
class PollLog:
    """The poll history: per stack/fleet, the times of complete polls and of every poll row."""

    def __init__(self, ok: dict[Pair, np.ndarray], any_row: dict[Pair, np.ndarray]) -> None:
        self.ok = ok
        self.any_row = any_row

    @classmethod
    def of(cls, polls: Mapping[Pair, Sequence[int]] | pa.Table | PollLog) -> PollLog:
        """From ``{(stack, fleet): [complete poll times ms]}`` or a ``live_polls`` table."""
        if isinstance(polls, PollLog):
            return polls
        if isinstance(polls, pa.Table):
            if polls.num_rows == 0:
                return cls({}, {})
            st = polls.column("stack_name").to_pylist()
            fl = polls.column("fleet_name").to_pylist()
            t = polls.column("observed_at").cast(pa.int64()).to_pylist()
            if "error" in polls.column_names:
                err = polls.column("error").is_valid().to_pylist()
            else:
                err = [False] * polls.num_rows
            ok: dict[Pair, list[int]] = {}
            every: dict[Pair, list[int]] = {}
            for s, f, ms, bad in zip(st, fl, t, err, strict=True):
                if ms is None:
                    continue
                key = (s or WILDCARD, f or WILDCARD)
                every.setdefault(key, []).append(ms)
                if not bad:
                    ok.setdefault(key, []).append(ms)
            return cls({k: np.unique(np.asarray(v, np.int64)) for k, v in ok.items()},
                       {k: np.unique(np.asarray(v, np.int64)) for k, v in every.items()})
        ok_arr = {(str(k[0]), str(k[1])): np.unique(np.asarray(list(v), np.int64)) for k, v in polls.items()}
        return cls(ok_arr, dict(ok_arr))


def _next_after(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """For each ``t``: the first time in sorted ``times`` strictly after it (``_POS`` if none)."""
    if len(times) == 0:
        return np.full(len(t), _POS, np.int64)
    i = np.searchsorted(times, t, side="right")
    return np.where(i < len(times), times[np.minimum(i, len(times) - 1)], _POS)


def _last_at_or_before(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    if len(times) == 0:
        return np.full(len(t), _NEG, np.int64)
    i = np.searchsorted(times, t, side="right") - 1
    return np.where(i >= 0, times[np.maximum(i, 0)], _NEG)


def _first_at_or_after(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    if len(times) == 0:
        return np.full(len(t), _POS, np.int64)
    i = np.searchsorted(times, t, side="left")
    return np.where(i < len(times), times[np.minimum(i, len(times) - 1)], _POS)


def live_fresh_mask(polls: Mapping[Pair, Sequence[int]] | pa.Table | PollLog,
                    stack_fleets: Iterable[Pair] | None, at_ms: np.ndarray | Sequence[int], now_ms: int,
                    freshness_ms: int) -> np.ndarray:
    """Per time in ``at_ms``: was the live view complete enough to call a claimed id unknown?

    True when every stack/fleet in scope had a complete poll at most ``freshness_ms`` before the
    time and another at most ``freshness_ms`` after it (or the time is within the freshness of
    ``now``: the next poll cannot have happened yet).  A session alive at that time was then listed
    by one of the two polls unless it lasted less than the gap between them.

    Scope: ``stack_fleets`` when given (configured pairs); otherwise every pair with any poll row
    (complete or failed) within the freshness of the time; at least one pair must be in scope.  A
    failed discovery (a ``*`` pair) is in scope and never complete, so it makes the view stale.
    """
    log = PollLog.of(polls)
    t = np.asarray(at_ms, dtype=np.int64)
    n = len(t)
    if n == 0:
        return np.zeros(0, dtype=bool)
    f = int(freshness_ms)
    fixed = None if stack_fleets is None else sorted({(str(a), str(b)) for a, b in stack_fleets})
    pairs = fixed if fixed is not None else sorted(log.any_row)
    if not pairs:
        return np.zeros(n, dtype=bool)
    fresh = np.ones(n, dtype=bool)
    in_scope_any = np.zeros(n, dtype=bool)
    for p in pairs:
        if fixed is not None:
            scope = np.ones(n, dtype=bool)
        else:
            rows = log.any_row.get(p, np.zeros(0, np.int64))
            before = _last_at_or_before(rows, t)
            after = _first_at_or_after(rows, t)
            scope = (t - before <= f) | (after - t <= f)
        ok = log.ok.get(p, np.zeros(0, np.int64))
        before_ok = t - _last_at_or_before(ok, t) <= f
        after_ok = (_first_at_or_after(ok, t) - t <= f) | (now_ms - t <= f)
        fresh &= ~scope | (before_ok & after_ok)
        in_scope_any |= scope
    return fresh & in_scope_any


def live_fresh(polls: Mapping[Pair, Sequence[int]] | pa.Table | PollLog, stack_fleets: Iterable[Pair] | None,
               at_ms: int, now_ms: int, freshness_ms: int) -> bool:
    """Scalar form of :func:`live_fresh_mask`."""
    return bool(live_fresh_mask(polls, stack_fleets, np.array([at_ms], np.int64), now_ms, freshness_ms)[0])


# -- observed windows -----------------------------------------------------------------------------
def _col(t: pa.Table, name: str) -> pa.Array:
    c = t.column(name)
    return c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c


def _maybe(live: pa.Table, name: str, latest_valid: Callable[[str], pa.Array]) -> pa.Array:
    """``latest_valid(name)``, or nulls where ``live`` (a lake of an earlier version) lacks the column."""
    if name in live.column_names:
        return latest_valid(name).cast(pa.string())
    n = len(pc.unique(_col(live, "session_id")))
    return pa.nulls(n, pa.string())


def _empty_windows() -> pa.Table:
    fields = [pa.field(c, TS if c in ("session_start_time", "session_end_time") else pa.string())
              for c in SESSION_COLS]
    fields += [pa.field("authentication_type", pa.string()), pa.field("state", pa.string()),
               pa.field("first_seen", TS), pa.field("last_seen", TS), pa.field("end_basis", pa.string())]
    return pa.schema(fields).empty_table()


def observed_windows(live: pa.Table, polls: Mapping[Pair, Sequence[int]] | pa.Table | PollLog, now_ms: int,
                     freshness_ms: int) -> pa.Table:
    """One sessions-shaped row per observed session id (columns ``SESSION_COLS`` + ``WINDOW_EXTRA``).

    ``live``: ``live_sessions`` rows (extra columns such as ``dt`` are ignored); ``polls``: the
    complete polls per stack/fleet, or ``live_polls`` rows.  See the module docstring for the rules.
    Vectorised: one sort of the observations, one search per stack/fleet.
    """
    if live.num_rows == 0:
        return _empty_windows()
    log = PollLog.of(polls)
    f = int(freshness_ms)
    obs_t = _col(live, "observed_at").cast(pa.int64())
    valid = obs_t.is_valid()
    sid_col = _col(live, "session_id")
    valid = pc.and_(valid, sid_col.is_valid())
    if not pc.all(valid).as_py():
        live = live.filter(valid)
        if live.num_rows == 0:
            return _empty_windows()
        obs_t = _col(live, "observed_at").cast(pa.int64())
        sid_col = _col(live, "session_id")
    t = obs_t.to_numpy(zero_copy_only=False).astype(np.int64)
    enc = pc.dictionary_encode(sid_col)
    code = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_sess = len(enc.dictionary)
    order = np.lexsort((t, code))
    code_o, t_o = code[order], t[order]
    last_in_group = np.ones(len(order), dtype=bool)
    last_in_group[:-1] = code_o[1:] != code_o[:-1]
    first_in_group = np.ones(len(order), dtype=bool)
    first_in_group[1:] = code_o[1:] != code_o[:-1]
    latest_row = order[last_in_group]  # per session code (codes are sorted 0..n-1)
    first_seen = t_o[first_in_group]

    state = _col(live, "state")
    expired = pc.fill_null(pc.equal(state, "EXPIRED"), False).to_numpy(zero_copy_only=False)
    # last sighting while live (not EXPIRED); sessions only ever seen EXPIRED keep _NEG here
    live_seen = np.full(n_sess, _NEG, np.int64)
    np.maximum.at(live_seen, code[~expired], t[~expired])
    # first EXPIRED sighting after the last live one
    first_expired = np.full(n_sess, _POS, np.int64)
    if expired.any():
        e = np.nonzero(expired)[0]
        e = e[t[e] > live_seen[code[e]]]
        np.minimum.at(first_expired, code[e], t[e])
    only_expired = live_seen == _NEG
    last_seen = np.where(only_expired, first_seen, live_seen)

    def latest_valid(name: str) -> pa.Array:
        """Per session: the value from its latest observation where it is not null."""
        col = _col(live, name)
        ok = col.is_valid().to_numpy(zero_copy_only=False)
        pick = np.full(n_sess, -1, np.int64)
        rows = np.nonzero(ok)[0]
        if len(rows):
            # latest observation wins; ties broken by row position
            key = t[rows]
            best_t = np.full(n_sess, _NEG, np.int64)
            np.maximum.at(best_t, code[rows], key)
            win = rows[key == best_t[code[rows]]]
            pick[code[win]] = win
        has = pick >= 0
        vals = col.take(pa.array(np.where(has, pick, 0)))
        return pc.if_else(pa.array(has), vals, pa.scalar(None, col.type))

    start = latest_valid("start_time").cast(pa.int64())
    start_ms = np.where(start.is_valid().to_numpy(zero_copy_only=False),
                        start.fill_null(0).to_numpy(zero_copy_only=False), first_seen).astype(np.int64)
    max_exp = latest_valid("max_expiration_time").cast(pa.int64())
    max_exp_ms = np.where(max_exp.is_valid().to_numpy(zero_copy_only=False),
                          max_exp.fill_null(0).to_numpy(zero_copy_only=False), _POS).astype(np.int64)
    stack = _col(live, "stack_name").take(pa.array(latest_row))
    fleet = _col(live, "fleet_name").take(pa.array(latest_row))

    # the first complete poll of the session's stack/fleet after its last live sighting
    next_poll = np.full(n_sess, _POS, np.int64)
    pair_keys = list(zip(stack.to_pylist(), fleet.to_pylist(), strict=True))
    by_pair: dict[Pair, list[int]] = {}
    for i, k in enumerate(pair_keys):
        by_pair.setdefault((k[0] or WILDCARD, k[1] or WILDCARD), []).append(i)
    for p, idx_list in by_pair.items():
        ok = log.ok.get(p)
        if ok is None or len(ok) == 0:
            continue
        idx = np.asarray(idx_list, np.int64)
        next_poll[idx] = _next_after(ok, last_seen[idx])

    unlisted = np.minimum(next_poll, first_expired)
    basis = np.full(n_sess, END_BASES.index("last_seen"), np.int8)
    end = last_seen.copy()
    ended = unlisted < _POS
    in_gap = ended & (unlisted - last_seen <= f)
    end[in_gap] = unlisted[in_gap]
    basis[in_gap & (first_expired <= next_poll)] = END_BASES.index("expired")
    basis[in_gap & (first_expired > next_poll)] = END_BASES.index("unlisted")
    capped = ended & ~in_gap
    end[capped] = last_seen[capped] + f
    basis[capped] = END_BASES.index("gap_capped")
    running = ~ended & (now_ms - last_seen <= f)
    end[running] = last_seen[running] + f
    basis[running] = END_BASES.index("fresh")
    over = end > max_exp_ms
    end = np.where(over, np.maximum(max_exp_ms, last_seen), end)
    basis[over] = END_BASES.index("max_expiration")
    end = np.maximum(end, start_ms)

    def ts(a: np.ndarray) -> pa.Array:
        return pa.array(a, pa.int64()).cast(TS)

    out = pa.table({
        "session_id": enc.dictionary.cast(pa.string()),
        "user_id": latest_valid("user_id"),
        "session_start_time": ts(start_ms),
        "session_end_time": ts(end),
        "eni_private_ip_address": latest_valid("eni_private_ip_address"),
        "fleet_name": fleet,
        "stack_name": stack,
        "instance_id": latest_valid("instance_id"),
        "aws_account_id": _maybe(live, "account_id", latest_valid),
        "region": _maybe(live, "region", latest_valid),
        "authentication_type": latest_valid("authentication_type"),
        "state": _col(live, "state").take(pa.array(latest_row)),
        "first_seen": ts(first_seen),
        "last_seen": ts(last_seen),
        "end_basis": pa.array(np.array(END_BASES, dtype=object)[basis], pa.string()),
    })
    return out.sort_by([("session_id", "ascending")])
