"""Candidate pairs: every (write, session) on the same address within the tolerant window, and a
fast pairwise string equality (is the claimed id the candidate's id?)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow import epoch_ms, one_array


def candidate_pairs(w_ip: pa.Array, w_ms: np.ndarray, w_mask: np.ndarray,
                    sessions: pa.Table, tol_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (write index, session index, strict) with same IP and time within the tolerant window.

    Sorted interval join: sessions ordered by (ip, start); each write finds the last session of its
    IP starting at or before ``t + tol`` and walks back while an earlier session could still
    cover ``t`` (bounded by the longest session in the data).
    """
    if sessions.num_rows == 0 or not w_mask.any():
        return NO_PAIRS
    enc = pc.dictionary_encode(one_array(w_ip).cast(pa.string()))
    w_code = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return candidate_pairs_coded(enc.dictionary, w_code, w_ms, w_mask, sessions, tol_ms)


NO_PAIRS = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, bool))


def candidate_pairs_coded(ips: pa.Array, w_code: np.ndarray, w_ms: np.ndarray, w_mask: np.ndarray,
                     sessions: pa.Table, tol_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`candidate_pairs` with the writes' IPs given as codes into ``ips`` (distinct values;
    -1: none).  Sessions on an IP no write has cannot match and are left out."""
    empty = NO_PAIRS
    if sessions.num_rows == 0 or not w_mask.any():
        return empty
    s_ip = one_array(sessions.column("eni_private_ip_address")).cast(pa.string())
    s_code = pc.index_in(s_ip, value_set=ips).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    s_start = epoch_ms(sessions.column("session_start_time"))
    s_end = epoch_ms(sessions.column("session_end_time"))
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
