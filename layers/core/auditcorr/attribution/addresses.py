"""Source addresses: which are valid IPs, which lie in the fleet's subnets, their normal form."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow import one_array


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


#: a dotted quad exactly as ``str(ipaddress.ip_address(...))`` prints it (no spaces, no leading zeros)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_V4 = rf"^(?:{_OCTET}\.){{3}}{_OCTET}$"


def normalise_ips(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(distinct normalised addresses, per row the index of its address or -1 when it is not one).

    Normal form: ``str(ipaddress.ip_address(...))``, with an IPv4-mapped IPv6 address
    (``::ffff:10.40.0.5``) as its IPv4 address.  Anything that is not a valid address (a service
    name, ``AWS Internal``, a comma list, garbage) is -1: never matched to anything.  Canonical dotted
    quads (nearly all of CloudTrail's) need no Python object each; the rest go through ``ipaddress``,
    once per distinct value."""
    enc = pc.dictionary_encode(one_array(values))
    dictionary = enc.dictionary
    k = len(dictionary)
    code = np.full(k + 1, -1, dtype=np.int64)
    canon = pc.fill_null(pc.match_substring_regex(dictionary, _CANONICAL_V4), False).to_numpy(
        zero_copy_only=False) if k else np.zeros(0, bool)
    canon_idx = np.nonzero(canon)[0]
    canon_text = dictionary.filter(pa.array(canon)) if k else pa.array([], pa.string())
    code[canon_idx] = np.arange(len(canon_idx))
    other = np.nonzero(~canon)[0]
    if len(other):
        norm_of = {t: i for i, t in enumerate(canon_text.to_pylist())}
        norm_text = list(norm_of)
        for i, text in zip(other.tolist(), dictionary.take(pa.array(other)).to_pylist(), strict=True):
            try:
                ip = ipaddress.ip_address(text.strip())
            except (ValueError, AttributeError):
                continue
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            key = str(ip)
            c = norm_of.get(key)
            if c is None:
                c = norm_of[key] = len(norm_text)
                norm_text.append(key)
            code[i] = c
        norm_arr = pa.array(norm_text, type=pa.string())
    else:
        norm_arr = canon_text.cast(pa.string())
    idx = enc.indices.fill_null(k).to_numpy(zero_copy_only=False)
    return norm_arr, code[idx]


def in_networks(addresses: pa.Array, cidrs: tuple[str, ...]) -> np.ndarray:
    """Per normalised address: does it lie in one of ``cidrs``?  Dotted quads by integer masks."""
    nets = _networks(cidrs)
    k = len(addresses)
    out = np.zeros(k, dtype=bool)
    if k == 0 or not nets:
        return out
    v4 = pc.fill_null(pc.match_substring_regex(addresses, _CANONICAL_V4), False).to_numpy(zero_copy_only=False)
    v4_idx = np.nonzero(v4)[0]
    if len(v4_idx):
        octets = pc.list_flatten(pc.split_pattern(addresses.filter(pa.array(v4)), ".")).cast(pa.int64()).to_numpy()
        o = octets.reshape(-1, 4)
        as_int = (o[:, 0] << 24) | (o[:, 1] << 16) | (o[:, 2] << 8) | o[:, 3]
        hit = np.zeros(len(v4_idx), dtype=bool)
        for net in nets:
            if net.version == 4:
                hit |= (as_int & int(net.netmask)) == int(net.network_address)
        out[v4_idx] = hit
    for i in np.nonzero(~v4)[0].tolist():
        ip = ipaddress.ip_address(addresses[i].as_py())
        out[i] = any(ip in n for n in nets if n.version == ip.version)
    return out


def ip_codes(values: pa.Array | pa.ChunkedArray,
             cidrs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray]:
    """(is_valid_ip, in ``cidrs``, distinct normalised IPs, per row index into them or -1)."""
    norm, code = normalise_ips(values)
    member = np.append(in_networks(norm, cidrs), False)  # code -1 -> the appended False
    return code >= 0, member[code], norm, code


def classify_ips(values: pa.Array, cidrs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Return (is_valid_ip, in_fleet, normalised_ip) for a string column, via its distinct values."""
    valid, fleet, norm, code = ip_codes(values, cidrs)
    return valid, fleet, norm.take(pa.array(code, mask=code < 0))


def through_credentials(service: np.ndarray, in_fleet: np.ndarray, access_keys: pa.Array | pa.ChunkedArray,
                        scope_code: np.ndarray, event_ms: np.ndarray, window_ms: int) -> np.ndarray:
    """Per write: for a write a service made with the principal's credentials (``service``: it names
    ``invokedBy`` and its source is no address), the row of the write nearest in time (within
    ``window_ms``) signed with the SAME access key in the same scope from a fleet address; -1 for
    every other write and where there is none.

    A temporary access key belongs to one credential set, handed to one instance: where CloudTrail
    shows it used from a fleet address, that address is where the call the service carried out came
    from (an Athena query started in the session writes its results with the session's credentials).
    Ties in time go to the earlier row."""
    n = len(service)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or not service.any():
        return out
    keys = one_array(access_keys)
    wanted = pc.unique(keys.filter(pa.array(service)).drop_null())
    if len(wanted) == 0:
        return out
    anchor = in_fleet & pc.fill_null(pc.is_in(keys, wanted), False).to_numpy(zero_copy_only=False) & (scope_code >= 0)
    rows = np.nonzero(anchor)[0]
    if len(rows) == 0:
        return out
    by_key: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    key_text = keys.take(pa.array(rows)).to_pylist()
    order = np.lexsort((rows, event_ms[rows]))
    grouped: dict[tuple[int, str], list[int]] = {}
    for i in order.tolist():
        grouped.setdefault((int(scope_code[rows[i]]), key_text[i]), []).append(int(rows[i]))
    for k, members in grouped.items():
        idx = np.array(members, dtype=np.int64)
        by_key[k] = (event_ms[idx], idx)
    for w, key in zip(np.nonzero(service)[0].tolist(), keys.take(pa.array(np.nonzero(service)[0])).to_pylist(),
                      strict=True):
        found = by_key.get((int(scope_code[w]), key)) if key is not None and scope_code[w] >= 0 else None
        if found is None:
            continue
        times, idx = found
        t = event_ms[w]
        j = int(np.searchsorted(times, t))
        best = -1
        best_gap = window_ms + 1
        for c in (j - 1, j):
            if 0 <= c < len(times):
                gap = abs(int(times[c]) - int(t))
                if gap < best_gap:
                    best, best_gap = int(idx[c]), gap
        if best >= 0:
            out[w] = best
    return out
