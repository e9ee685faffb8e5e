"""The attribution join: S3 writes x sessions (IP + time window) x logons.

Pure: Arrow tables in, Arrow tables out, time passed in.  Works on columns (NumPy over Arrow
buffers), never on per-row Python objects, except for the small sets it must (distinct IPs,
distinct claimed ids, attributed sessions).

Rules (see README "Attribution"):
- in scope: the write's role is one of ``config.roles``; others are not attributed at all.
- ``external``: the source is not an IP inside ``config.fleet_cidrs``.
- candidates: sessions with ``eni_private_ip_address == source_ip`` and
  ``start - tolerance <= event_time <= end + tolerance``.
- a claimed session id among the candidates settles the choice; otherwise sessions whose own
  window contains the event beat those matched only through the tolerance.
- one left: ``attributed``; several: ``ambiguous``; none: ``pending`` until the sessions reports
  covering the event are in, then ``unattributed``.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .config import Config
from .schemas import ATTRIBUTED_ACTIVITY, TS, conform

DAY_MS = 86_400_000

ATTRIBUTED = "attributed"
AMBIGUOUS = "ambiguous"
PENDING = "pending"
UNATTRIBUTED = "unattributed"
EXTERNAL = "external"
STATUSES = (ATTRIBUTED, AMBIGUOUS, PENDING, UNATTRIBUTED, EXTERNAL)

#: columns of the sessions frame the join needs (report sessions and live observations alike)
SESSION_COLS = ("session_id", "user_id", "session_start_time", "session_end_time",
                "eni_private_ip_address", "fleet_name", "stack_name", "instance_id")


@dataclass(frozen=True)
class Coverage:
    """Which days' sessions reports are in, and the clock, to tell ``pending`` from final."""

    report_days: frozenset[int]  # days since the epoch with a sessions report ingested
    now_ms: int
    grace_ms: int

    @classmethod
    def from_dates(cls, dates: list[str], now_ms: int, grace_hours: float) -> Coverage:
        days = frozenset(int(np.datetime64(d, "D").astype(np.int64)) for d in dates if d)
        return cls(days, now_ms, int(grace_hours * 3_600_000))

    def covered(self, day: int) -> bool:
        if day in self.report_days:
            return True
        # reports are written within 24 h of the day closing: a report two days later proves it
        if any(d >= day + 2 for d in self.report_days):
            return True
        return self.now_ms >= (day + 1) * DAY_MS + self.grace_ms

    def covered_range(self, first: int, last: int) -> bool:
        return all(self.covered(d) for d in range(first, last + 1))


@dataclass
class AttributionResult:
    activity: pa.Table  # ATTRIBUTED_ACTIVITY schema (without dt)
    #: per activity row: does it settle the claim?  (True: claim known & not the holder; used by rules)
    claim_known_elsewhere: np.ndarray
    final: np.ndarray  # per row: covering reports are in (decisions that wait for reports may be taken)
    #: per row: an unknown claimed id may be called unknown now (reports in, or a fresh live view)
    claim_decidable: np.ndarray


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _one(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array; no copy when it already is one chunk (``combine_chunks`` copies)."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


#: a dotted quad exactly as ``str(ipaddress.ip_address(...))`` prints it (no spaces, no leading zeros)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_V4 = rf"^(?:{_OCTET}\.){{3}}{_OCTET}$"


def _ip_codes(values: pa.Array | pa.ChunkedArray,
              cidrs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray]:
    """(is_valid_ip, in_fleet, distinct normalised IPs, per row index into them or -1), computed
    once per distinct value.  Canonical dotted quads (nearly all of CloudTrail's) are checked
    without a Python object each; anything else goes through ``ipaddress``."""
    nets = _networks(cidrs)
    enc = pc.dictionary_encode(_one(values))
    dictionary = enc.dictionary
    k = len(dictionary)
    valid = np.zeros(k + 1, dtype=bool)
    fleet = np.zeros(k + 1, dtype=bool)
    code = np.full(k + 1, -1, dtype=np.int64)
    canon = pc.fill_null(pc.match_substring_regex(dictionary, _CANONICAL_V4), False).to_numpy(
        zero_copy_only=False) if k else np.zeros(0, bool)
    canon_idx = np.nonzero(canon)[0]
    canon_text = dictionary.filter(pa.array(canon)) if k else pa.array([], pa.string())
    if len(canon_idx):
        octets = pc.list_flatten(pc.split_pattern(canon_text, ".")).cast(pa.int64()).to_numpy()
        o = octets.reshape(-1, 4)
        as_int = (o[:, 0] << 24) | (o[:, 1] << 16) | (o[:, 2] << 8) | o[:, 3]
        in_any = np.zeros(len(canon_idx), dtype=bool)
        for net in nets:
            if net.version == 4:
                in_any |= (as_int & int(net.netmask)) == int(net.network_address)
        valid[canon_idx] = True
        fleet[canon_idx] = in_any
        code[canon_idx] = np.arange(len(canon_idx))
    norm_text: list[str] = []
    other = np.nonzero(~canon)[0]
    if len(other):
        norm_of = {t: i for i, t in enumerate(canon_text.to_pylist())}
        norm_text = list(norm_of)
        for i, text in zip(other.tolist(), dictionary.take(pa.array(other)).to_pylist(), strict=True):
            try:
                ip = ipaddress.ip_address(text.strip())
            except (ValueError, AttributeError):
                continue
            valid[i] = True
            key = str(ip)
            c = norm_of.get(key)
            if c is None:
                c = norm_of[key] = len(norm_text)
                norm_text.append(key)
            code[i] = c
            fleet[i] = any(ip in n for n in nets if n.version == ip.version)
        norm_arr = pa.array(norm_text, type=pa.string())
    else:
        norm_arr = canon_text.cast(pa.string())
    idx = enc.indices.fill_null(k).to_numpy(zero_copy_only=False)
    return valid[idx], fleet[idx], norm_arr, code[idx]


def classify_ips(values: pa.Array, cidrs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Return (is_valid_ip, in_fleet, normalised_ip) for a string column, via its distinct values."""
    valid, fleet, norm, code = _ip_codes(values, cidrs)
    return valid, fleet, norm.take(pa.array(code, mask=code < 0))


def extract_claims(writes: pa.Table, config: Config, logons: pa.Table | None = None) -> pa.Array:
    """The session id each write claims (null when it claims none), per ``config.claim``."""
    spec = config.claim
    n = writes.num_rows
    if spec.source == "none" or n == 0:
        return pa.nulls(n, pa.string())
    if spec.source == "role_session_name":
        raw = writes.column("role_session_name")
    elif spec.source == "source_identity":
        raw = writes.column("source_identity")
    elif spec.source == "key_regex":
        rx = re.compile(spec.argument or "")
        vals = []
        for k in writes.column("key").to_pylist():
            m = rx.search(k) if k else None
            vals.append(m.group(1) if m else None)
        raw = pa.chunked_array([pa.array(vals, type=pa.string())])
    else:  # principal_tag:<key> -- tags of the role session that issued the write's access key
        tags: dict[str, str] = {}
        if logons is not None and logons.num_rows:
            for akid, ptags in zip(logons.column("issued_access_key_id").to_pylist(),
                                   logons.column("principal_tags").to_pylist(), strict=True):
                if akid and ptags:
                    try:
                        val = orjson.loads(ptags).get(spec.argument)
                    except (orjson.JSONDecodeError, AttributeError):
                        continue
                    if isinstance(val, str):
                        tags[akid] = val
        raw = pa.chunked_array([pa.array([tags.get(a) if a else None
                                          for a in writes.column("access_key_id").to_pylist()],
                                         type=pa.string())])
    raw = _one(raw)
    ok = pc.fill_null(pc.match_substring_regex(raw, spec.pattern), False)
    return _keep_where(raw, ok)


def _keep_where(raw: pa.Array, ok: pa.Array) -> pa.Array:
    """``if_else(ok, raw, null)`` for a string array; without copying the strings (new validity)."""
    if raw.type != pa.string() or raw.offset or len(raw) == 0:
        return pc.if_else(ok, raw, pa.scalar(None, pa.string()))
    keep = ok.to_numpy(zero_copy_only=False)  # ok is false wherever raw is null
    bits = pa.py_buffer(np.packbits(keep, bitorder="little"))
    bufs = raw.buffers()
    return pa.Array.from_buffers(pa.string(), len(raw), [bits, bufs[1], bufs[2]],
                                 null_count=len(raw) - int(np.count_nonzero(keep)))


def _ms(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return _one(col).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)


def candidate_pairs(w_ip: pa.Array, w_ms: np.ndarray, w_mask: np.ndarray,
                    sessions: pa.Table, tol_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (write index, session index, strict) with same IP and time within the tolerant window.

    Sorted interval join: sessions ordered by (ip, start); each write finds the last session of its
    IP starting at or before ``t + tol`` and walks back while an earlier session could still
    cover ``t`` (bounded by the longest session in the data).
    """
    if sessions.num_rows == 0 or not w_mask.any():
        return _NO_PAIRS
    enc = pc.dictionary_encode(_one(w_ip).cast(pa.string()))
    w_code = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return _candidate_pairs(enc.dictionary, w_code, w_ms, w_mask, sessions, tol_ms)


_NO_PAIRS = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, bool))


def _candidate_pairs(ips: pa.Array, w_code: np.ndarray, w_ms: np.ndarray, w_mask: np.ndarray,
                     sessions: pa.Table, tol_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`candidate_pairs` with the writes' IPs given as codes into ``ips`` (distinct values;
    -1: none).  Sessions on an IP no write has cannot match and are left out."""
    empty = _NO_PAIRS
    if sessions.num_rows == 0 or not w_mask.any():
        return empty
    s_ip = _one(sessions.column("eni_private_ip_address")).cast(pa.string())
    s_code = pc.index_in(s_ip, value_set=ips).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    s_start = _ms(sessions.column("session_start_time"))
    s_end = _ms(sessions.column("session_end_time"))
    s_ok = (s_code >= 0) & sessions.column("session_start_time").is_valid().to_numpy(zero_copy_only=False)
    s_idx_all = np.nonzero(s_ok)[0]
    if len(s_idx_all) == 0:
        return empty
    order = s_idx_all[np.lexsort((s_start[s_idx_all], s_code[s_idx_all]))]
    so_code, so_start, so_end = s_code[order], s_start[order], s_end[order]
    max_len = int((so_end - so_start).max()) if len(order) else 0

    w_idx = np.nonzero(w_mask & (w_code >= 0))[0]
    wc, wt = w_code[w_idx], w_ms[w_idx]
    # position of the last session with (code, start) <= (wc, wt + tol)
    # compare lexicographically via a structured search: search within each code's run
    counts = np.bincount(so_code, minlength=int(max(so_code.max(), wc.max() if len(wc) else 0)) + 1)
    ends = np.cumsum(counts)
    run_lo = (ends - counts)[wc]
    run_hi = ends[wc]
    # one search over a combined (code-major, start-minor) key
    span = int(so_start.max() - so_start.min() + max_len + 4 * tol_ms + 2) if len(order) else 1
    base = int(so_start.min())
    comb = so_code * span + (so_start - base)
    qry = wc * span + np.clip(wt + tol_ms - base, -1, span - 1)
    pos = np.searchsorted(comb, qry, side="right") - 1

    out_w, out_s, out_strict = [], [], []
    active = np.ones(len(w_idx), dtype=bool)
    cur = pos.copy()
    while True:
        active &= (cur >= run_lo) & (cur < run_hi) & (cur >= 0)
        if not active.any():
            break
        a = np.nonzero(active)[0]
        c = cur[a]
        st, en, t = so_start[c], so_end[c], wt[a]
        hit = (st - tol_ms <= t) & (t <= en + tol_ms)
        if hit.any():
            h = a[hit]
            out_w.append(w_idx[h])
            out_s.append(order[c[hit]])
            out_strict.append((st[hit] <= t[hit]) & (t[hit] <= en[hit]))
        # stop walking once no earlier session on this IP can reach t
        active[a] = st + max_len + tol_ms >= t
        cur -= 1
    if not out_w:
        return empty
    return np.concatenate(out_w), np.concatenate(out_s), np.concatenate(out_strict)


def _string_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(valid, start, length, bytes) of a string array's values, without per-row objects; the
    bytes are padded with 8 zeros so any value can be read 8 bytes at a time."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    n = len(arr)
    bufs = arr.buffers()
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    if bufs[1] is None:
        offsets = np.zeros(n + 1, np.int64)
    else:
        offsets = np.frombuffer(bufs[1], dtype=off_type)[arr.offset: arr.offset + n + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and n else np.zeros(0, np.uint8)
    padded = np.zeros(len(data) + 8, np.uint8)
    padded[: len(data)] = data
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else np.ones(n, bool)
    return valid, offsets[:-1], np.diff(offsets), padded


def _words(padded: np.ndarray) -> np.ndarray:
    """An unaligned little-endian uint64 view starting at every byte of ``padded``."""
    return np.ndarray(shape=(max(len(padded) - 7, 0),), dtype="<u8", buffer=padded, strides=(1,))


def equal_pairs(a: pa.Array, ia: np.ndarray, b: pa.Array, ib: np.ndarray) -> np.ndarray:
    """``a[ia] == b[ib]`` element-wise for string arrays, as a bool array (two nulls compare equal,
    as two absent keys do in a lookup).  Compares 8 bytes at a time; no hashing, no row objects."""
    va, sa, la, da = _string_parts(a)
    vb, sb, lb, db = _string_parts(b)
    both_valid = va[ia] & vb[ib]
    out = ~va[ia] & ~vb[ib]
    cand = np.nonzero(both_valid & (la[ia] == lb[ib]))[0]
    if len(cand) == 0:
        return out
    ln = la[ia[cand]]
    # longest first, so each 8-byte step works on a prefix
    by_len = np.argsort(-ln, kind="stable")
    cand, ln = cand[by_len], ln[by_len]
    pa_, pb_ = sa[ia[cand]], sb[ib[cand]]
    wa, wb = _words(da), _words(db)
    ok = np.ones(len(cand), bool)
    neg = -ln
    k = 0
    while True:
        m = int(np.searchsorted(neg, -k, side="left"))  # how many have length > k
        if m == 0:
            break
        rem = ln[:m] - k
        diff = wa[pa_[:m] + k] ^ wb[pb_[:m] + k]
        short = rem < 8
        if short.any():
            mask = np.where(short, (np.uint64(1) << (rem.clip(0, 7) * 8).astype(np.uint64)) - np.uint64(1),
                            np.uint64(0xFFFFFFFFFFFFFFFF))
            diff &= mask
        ok[:m] &= diff == 0
        k += 8
    out[cand] = ok
    return out


def _masked_take(values: pa.Array | pa.ChunkedArray, idx: np.ndarray) -> pa.Array:
    """``values[idx]`` with null where ``idx < 0``."""
    arr = _one(values)
    return arr.take(pa.array(idx, mask=idx < 0))


def _list_array(offsets_src: np.ndarray, n: int, values: pa.Array) -> pa.Array:
    counts = np.bincount(offsets_src, minlength=n) if len(offsets_src) else np.zeros(n, np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def attribute(writes: pa.Table, sessions: pa.Table, logons: pa.Table, config: Config,
              coverage: Coverage, now_ms: int,
              known_session: Callable[[list[str]], set[str]] | None = None,
              session_source: pa.Array | None = None,
              live_fresh: Callable[[np.ndarray], np.ndarray] | None = None) -> AttributionResult:
    """Attribute in-scope ``writes`` (S3_WRITES rows).  Out-of-scope writes are dropped.

    ``sessions`` holds every session that could explain these writes (SESSION_COLS at least);
    ``known_session(ids)`` answers which claimed ids exist anywhere (default: in ``sessions``);
    ``session_source`` labels each session row ``report`` or ``live``; ``live_fresh(event_ms)`` tells
    for which events the live AppStream view was fresh enough to call a claimed id unknown.
    """
    in_scope = pc.fill_null(pc.is_in(writes.column("role_arn"), pa.array(list(config.roles), pa.string())),
                            False)
    if not pc.all(in_scope).as_py():  # (filtering copies every column: skip it when all are in)
        writes = writes.filter(in_scope)
    n = writes.num_rows
    tol = config.tolerance_seconds * 1000
    src = _one(writes.column("source_ip")) if n else pa.array([], pa.string())
    if n:
        _, in_fleet, ip_values, ip_code = _ip_codes(src, config.fleet_cidrs)
    else:
        in_fleet, ip_values, ip_code = np.zeros(0, bool), pa.array([], pa.string()), np.zeros(0, np.int64)
    w_ms = _ms(writes.column("event_time")) if n else np.zeros(0, np.int64)
    claims = extract_claims(writes, config, logons)
    if sessions.num_rows and "session_source" not in sessions.column_names:
        src_col = session_source if session_source is not None else pa.array(["report"] * sessions.num_rows)
        sessions = sessions.append_column("session_source", src_col)

    pw, ps, strict = _candidate_pairs(ip_values, ip_code, w_ms, in_fleet, sessions, tol)
    s_ids = _one(sessions.column("session_id")) if sessions.num_rows else pa.array([], pa.string())
    # claimed id equals candidate session id?
    if len(pw):
        # compare the claimed id with the candidate's id pair by pair, 8 bytes at a time (cheaper
        # than hashing every claim into the session ids)
        cm = equal_pairs(claims, pw, s_ids, ps)
    else:
        cm = np.zeros(0, bool)
    n_all = np.bincount(pw, minlength=n) if len(pw) else np.zeros(n, np.int64)
    n_cm = np.bincount(pw, weights=cm, minlength=n) if len(pw) else np.zeros(n)
    n_st = np.bincount(pw, weights=strict, minlength=n) if len(pw) else np.zeros(n)
    keep = cm | ((n_cm[pw] == 0) & strict) | ((n_cm[pw] == 0) & (n_st[pw] == 0))
    kw, ks = pw[keep], ps[keep]
    n_keep = np.bincount(kw, minlength=n) if len(kw) else np.zeros(n, np.int64)
    chosen = np.full(n, -1, dtype=np.int64)
    single = n_keep[kw] == 1
    chosen[kw[single]] = ks[single]

    # coverage: a write is final once the reports for day(t - tol) .. day(t + max session + tol) are in
    first_day = (w_ms - tol) // DAY_MS
    last_day = (w_ms + int(config.max_session_hours * 3_600_000) + tol) // DAY_MS
    final = np.zeros(n, dtype=bool)
    if n:
        width = int((last_day - first_day).max()) + 1
        key = first_day * width + (last_day - first_day)
        uniq, inv = np.unique(key, return_inverse=True)
        ok = np.array([coverage.covered_range(int(k // width), int(k // width + k % width)) for k in uniq],
                      dtype=bool)
        final = ok[inv.reshape(-1)]

    status_code = np.full(n, STATUSES.index(EXTERNAL), dtype=np.int8)
    status_code[in_fleet & (n_all == 0)] = STATUSES.index(UNATTRIBUTED)
    status_code[in_fleet & (n_all == 0) & ~final] = STATUSES.index(PENDING)
    status_code[in_fleet & (n_keep == 1)] = STATUSES.index(ATTRIBUTED)
    status_code[in_fleet & (n_keep > 1)] = STATUSES.index(AMBIGUOUS)
    status_arr = pa.array(np.array(STATUSES, dtype=object)).take(pa.array(status_code))
    has = in_fleet & (n_keep >= 1)
    match_code = np.full(n, 3, dtype=np.int8)  # 3 = null
    match_code[has & (n_cm > 0)] = 0
    match_code[has & (n_cm == 0) & (n_st > 0)] = 1
    match_code[has & (n_cm == 0) & (n_st == 0)] = 2
    if config.nat_cidrs:
        _, via_nat, _ = classify_ips(src, config.nat_cidrs)
        match_code[~in_fleet & via_nat] = 4
    match_arr = pa.array(["claim", "window", "tolerance", None, "nat"], pa.string()).take(pa.array(match_code))

    # candidate lists (all candidates, sorted by session id), per write; order by a precomputed
    # rank of the session ids instead of comparing strings per pair
    if len(pw):
        rank = np.empty(sessions.num_rows, dtype=np.int64)
        rank[pc.sort_indices(s_ids).to_numpy()] = np.arange(sessions.num_rows)
        # one int64 key (write, rank): pairs arrive in a few runs already sorted by write, which a
        # stable sort (timsort/radix) merges in near-linear time
        if n * sessions.num_rows < 2**62:
            order = np.argsort(pw * sessions.num_rows + rank[ps], kind="stable")
        else:
            order = np.lexsort((rank[ps], pw))
        ps_o = pa.array(ps[order])
        cand_users = _one(sessions.column("user_id")).take(ps_o)
        cand_sids = s_ids.take(ps_o)
        cand_pw = pw[order]
    else:
        cand_users = cand_sids = pa.array([], pa.string())
        cand_pw = np.zeros(0, np.int64)
    cand_sid_list = _list_array(cand_pw, n, cand_sids)
    cand_user_list = _list_array(cand_pw, n, cand_users)

    def pick(col: str, typ: pa.DataType | None = None) -> pa.Array:
        if sessions.num_rows == 0:
            return pa.nulls(n, typ or pa.string())
        return _masked_take(sessions.column(col), chosen)

    # claimed ids that are not among the candidates: do they exist anywhere?
    claim_known_elsewhere = np.zeros(n, dtype=bool)
    unresolved = claims.is_valid().to_numpy(zero_copy_only=False) & in_fleet & (n_cm == 0) if n else \
        np.zeros(0, bool)
    if unresolved.any():
        ids = sorted(pc.unique(claims.filter(pa.array(unresolved))).to_pylist())
        known = set(ids) & set(s_ids.to_pylist()) if known_session is None else known_session(ids)
        if known:
            hit = pc.fill_null(pc.is_in(claims, pa.array(sorted(known), pa.string())), False)
            claim_known_elsewhere = unresolved & hit.to_numpy(zero_copy_only=False)

    # the logon depends only on the chosen session: match once per distinct session
    logon_id = pa.nulls(n, pa.string())
    logon_ts = pa.nulls(n, TS)
    logon_ip = pa.nulls(n, pa.string())
    if logons.num_rows and sessions.num_rows and (chosen >= 0).any():
        is_chosen = np.zeros(sessions.num_rows, dtype=bool)
        is_chosen[chosen[chosen >= 0]] = True  # distinct chosen sessions, in order, without a sort
        chosen_sessions = np.nonzero(is_chosen)[0]
        cs = pa.array(chosen_sessions)
        lid, lts, lip = match_logons(_one(sessions.column("user_id")).take(cs),
                                     _one(sessions.column("session_start_time")).take(cs),
                                     logons, config)
        slot = np.cumsum(is_chosen) - 1  # session row -> position among the chosen
        pos = np.where(chosen >= 0, slot[np.maximum(chosen, 0)], -1)
        logon_id = _masked_take(lid, pos)
        logon_ts = _masked_take(lts, pos)
        logon_ip = _masked_take(lip, pos)

    user_col = pick("user_id")
    start_col = pick("session_start_time", TS)

    activity = pa.table({
        "event_id": writes.column("event_id"),
        "event_time": writes.column("event_time"),
        "event_name": writes.column("event_name"),
        "bucket": writes.column("bucket"),
        "key": writes.column("key"),
        "source_ip": writes.column("source_ip"),
        "vpc_endpoint_id": writes.column("vpc_endpoint_id"),
        "principal_arn": writes.column("principal_arn"),
        "role_arn": writes.column("role_arn"),
        "claimed_session_id": claims,
        "status": status_arr,
        "match": match_arr,
        "user_id": user_col,
        "session_id": pick("session_id"),
        "session_source": pick("session_source"),
        "session_start_time": start_col,
        "session_end_time": pick("session_end_time", TS),
        "candidate_user_ids": cand_user_list,
        "candidate_session_ids": cand_sid_list,
        "fleet_name": pick("fleet_name"),
        "stack_name": pick("stack_name"),
        "instance_id": pick("instance_id"),
        "logon_event_id": logon_id,
        "logon_time": logon_ts,
        "logon_source_ip": logon_ip,
        "error_code": writes.column("error_code"),
        "computed_at": pa.array(np.full(n, now_ms, dtype=np.int64)).cast(TS),
    })
    decidable = final | live_fresh(w_ms) if live_fresh is not None and n else final
    return AttributionResult(conform(activity, ATTRIBUTED_ACTIVITY), claim_known_elsewhere, final, decidable)


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
    rows = sorted(zip(lg.column("user_name").to_pylist(), _ms(lg.column("event_time")).tolist(),
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
