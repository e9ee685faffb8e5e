"""Two different records under one ``eventID`` (issue 11, section 8).

"First wins" stays the rule; a later copy whose content differs from the kept one is counted and
recorded in ``event_id_conflicts`` with both copies' hashes.  Only the ids already found to be
duplicates are hashed, so the cost is in proportion to the duplicates, not to the records.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pyarrow as pa

from .counts import FileOutcome
from .schemas import EVENT_ID_CONFLICTS

#: columns a stored row's hash leaves out: where it was read from and what the pipeline derived
_NOT_CONTENT = frozenset({"source_object", "account_id", "region", "dt"})


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def record_hash(record: Any) -> str:
    """A record as canonical JSON (sorted keys): whitespace and key order do not count."""
    try:
        return _digest(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return _digest(repr(record).encode("utf-8", "surrogatepass"))


def raw_record_hash(raw: bytes) -> str:
    """``record_hash`` of a record's raw JSON span."""
    try:
        return record_hash(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return _digest(raw)


def content_columns(names: list[str]) -> list[str]:
    """The columns a stored row's content is made of (not where it came from, nor what was derived)."""
    return [c for c in names if c not in _NOT_CONTENT]


def row_hashes(rows: pa.Table) -> list[str]:
    """The hash of each stored row's content (``content_columns``)."""
    keep = content_columns(rows.column_names)
    return [_digest(orjson.dumps(r, option=orjson.OPT_SORT_KEYS, default=str)) for r in rows.select(keep).to_pylist()]


def note_in_object(out: FileOutcome, table: str, event_id: str, kept: str, other: str) -> None:
    """A copy in the same object as the kept one (hashes of whole records)."""
    out.conflicts.append((table, event_id, out.source, kept, out.source, other, "record"))


def conflict_table(conflicts: list[tuple[str, str, str, str, str, str, str]], now_ms: int) -> pa.Table:
    """The ``event_id_conflicts`` rows of ``conflicts``, detected at ``now_ms``."""
    cols = list(zip(*conflicts, strict=True)) if conflicts else [()] * 7
    table, event_id, kept_source, kept_hash, other_source, other_hash, hash_of = (list(c) for c in cols)
    return pa.table({
        "event_id": pa.array(event_id, pa.string()), "table_name": pa.array(table, pa.string()),
        "kept_source": pa.array(kept_source, pa.string()), "kept_hash": pa.array(kept_hash, pa.string()),
        "other_source": pa.array(other_source, pa.string()), "other_hash": pa.array(other_hash, pa.string()),
        "hash_of": pa.array(hash_of, pa.string()),
        "detected_at": pa.array([now_ms] * len(event_id), pa.int64()).cast(
            EVENT_ID_CONFLICTS.field("detected_at").type),
    }, schema=EVENT_ID_CONFLICTS)
