"""The session id a write claims (``[claims]``): a claim to verify, never a fact."""

from __future__ import annotations

import re

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow import one_array
from ..config import Config


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
    raw = one_array(raw)
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
