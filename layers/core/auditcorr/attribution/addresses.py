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


def ip_codes(values: pa.Array | pa.ChunkedArray,
              cidrs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray]:
    """(is_valid_ip, in_fleet, distinct normalised IPs, per row index into them or -1), computed
    once per distinct value.  Canonical dotted quads (nearly all of CloudTrail's) are checked
    without a Python object each; anything else goes through ``ipaddress``."""
    nets = _networks(cidrs)
    enc = pc.dictionary_encode(one_array(values))
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
    valid, fleet, norm, code = ip_codes(values, cidrs)
    return valid, fleet, norm.take(pa.array(code, mask=code < 0))
