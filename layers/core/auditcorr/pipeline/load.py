"""Loading: what an input object is, whether it was ingested already, de-duplication of events
across files and runs, and quarantine of objects that cannot be read."""

from __future__ import annotations

import posixpath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from ..attribution.scope import Scopes
from ..conflicts import content_columns, row_hashes
from ..counts import FileOutcome
from ..ingest.cloudtrail import is_digest, is_insight
from ..ingest.usage import report_kind
from ..lake import Lake, byte_budget_cache, cache_put
from ..timeparse import dt_column

#: memory for the event ids of compacted files kept between CloudTrail files (the duplicate check,
#: the alert merge)
EVENT_ID_CACHE_BYTES = 64 << 20


def classify(source: str) -> str:
    """``cloudtrail``, ``digest``, ``digest_metadata``, ``insight``, ``sessions_report``, ``applications_report`` or
    ``usage_report`` (a CSV whose kind its header decides), from the object's name."""
    p = source.replace("\\", "/")
    if p.endswith(".metadata.json") and is_digest(p.removesuffix(".metadata.json")):
        return "digest_metadata"  # a digest's saved head-object output: read with the digest
    if is_digest(p):
        return "digest"
    if is_insight(p):
        return "insight"
    kind = report_kind(p)
    if kind:
        return kind
    low = p.lower()
    if low.endswith((".csv", ".csv.gz")):
        return "usage_report"  # decided by header
    return "cloudtrail"


class Manifests:
    """One small JSON note per input ingested (``_state/ingested/<input id>.json``): a retry or a
    second delivery of the same object and content is answered from it."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def _path(self, iid: str) -> str:
        return self.lake.state_path("ingested", f"{iid}.json")

    def already(self, source: str, kind: str, iid: str) -> FileOutcome | None:
        done = self.lake.get_json(self._path(iid))
        if not isinstance(done, dict):
            return None
        n = int(done.get("records_in", 0))
        return FileOutcome(source=source, kind=str(done.get("kind", kind)), records_in=n, duplicates=n,
                           note="already ingested (same object and content)")

    def record(self, iid: str, out: FileOutcome) -> None:
        self.lake.put_json(self._path(iid), out.as_dict() | {"input_id": iid})


def quarantine(lake: Lake, source: str, data: bytes, iid: str, reason: str, at_ms: int) -> str:
    """Keep an unreadable object under ``quarantine/<input id>/`` with its reason; returns its path."""
    name = posixpath.basename(source.replace("\\", "/")) or "object"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:120].lstrip("._") or "object"
    path = posixpath.join(lake.base, "quarantine", iid, safe)
    lake.put_bytes(path, data)
    lake.put_json(path + ".reason.json", {"source": source, "reason": reason, "input_id": iid, "at_ms": at_ms})
    return path


class FileColumns:
    """One column of one table file.  Those of compacted files (written once, named after their
    inputs) are kept across calls, keyed by path, size and modification time, up to
    ``EVENT_ID_CACHE_BYTES``: the next CloudTrail file's checks do not read them again."""

    def __init__(self, lake: Lake, budget: int = EVENT_ID_CACHE_BYTES) -> None:
        self.lake = lake
        self.cache = byte_budget_cache(budget)

    def column(self, table: str, f: pafs.FileInfo, column: str) -> pa.ChunkedArray:
        cacheable = posixpath.basename(f.path).startswith("compact-") and f.mtime_ns is not None
        key = (f.path, f.size, f.mtime_ns, column)
        col = self.cache.get(key) if cacheable else None
        if col is None:
            col = self.lake.read(table, columns=[column], latest=False, files=[f.path]).column(column)
            if cacheable:
                cache_put(self.cache, key, col)
        return col

    def event_ids(self, table: str, dt: str, own: str) -> list[pa.ChunkedArray]:
        """The ``event_id`` columns of the partition's files other than ``own``."""
        return [ids for _, ids in self.event_ids_by_file(table, dt, own)]

    def event_ids_by_file(self, table: str, dt: str, own: str) -> list[tuple[str, pa.ChunkedArray]]:
        """``event_ids`` with each file's path."""
        files, _ = self.lake.listing(table, dt)
        return [(f.path, self.column(table, f, "event_id")) for f in files if f.path != own]


def load_events(lake: Lake, columns: FileColumns, table: str, rows: pa.Table, name: str,
                out: FileOutcome) -> pa.Table:
    """Write the events no other file of their partition holds as ``<table>/dt=*/<name>.parquet``;
    count the others as duplicates.  Returns the rows written."""
    if rows.num_rows == 0:
        return rows
    dts = dt_column(rows.column("event_time"))
    keep = np.ones(rows.num_rows, dtype=bool)
    holders: list[str] = []  # the files that hold one of the ids already
    for dt in pc.unique(dts).to_pylist():
        own = f"{lake.part_dir(table, dt)}/{name}.parquet"
        in_dt = pc.equal(dts, dt)
        ids = pc.unique(rows.column("event_id").filter(in_dt))
        # which of these ids another file of the partition holds: each file's ids are looked up
        # in the (small) set of the new ids -- hashing the day's ids into a set for every new
        # file made the check quadratic in the day
        found = []
        for path, e in columns.event_ids_by_file(table, dt, own):
            hit = e.filter(pc.is_in(e, value_set=ids))
            if len(hit):
                found.append(hit)
                holders.append(path)
        if not found:
            continue
        found_ids = pa.chunked_array([c for e in found for c in e.chunks], pa.string())
        mask = pc.and_(in_dt, pc.is_in(rows.column("event_id"), value_set=found_ids))
        keep &= ~pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    dup = int((~keep).sum())
    out.duplicates += dup
    if dup:
        note_conflicts(lake, table, rows.filter(pa.array(~keep)), holders, out)
        rows = rows.filter(pa.array(keep))
        dts = dts.filter(pa.array(keep))
    lake.write_partitioned(table, name, rows, dts)
    out.written += rows.num_rows
    return rows


def note_conflicts(lake: Lake, table: str, dups: pa.Table, holders: list[str], out: FileOutcome) -> None:
    """Compare the duplicate rows with the copies the lake keeps (only these ids are hashed); a copy
    that differs from every kept copy of its id is an ``event_id_conflicts`` row."""
    ids = dups.column("event_id")
    kept = lake.read(table, files=holders, latest=False, filter=pc.field("event_id").isin(ids))
    # a re-delivery is the usual case: compare column by column against the first kept copy, and
    # hash only the rows that differ from it (no Python per row for identical copies)
    pos = pc.index_in(ids, value_set=kept.column("event_id"))
    same = pc.is_valid(pos)
    for name in content_columns(dups.column_names):
        new, old = dups.column(name), kept.column(name).take(pos)
        equal = pc.or_kleene(pc.equal(new, old), pc.and_(pc.is_null(new), pc.is_null(old)))
        same = pc.and_(same, pc.fill_null(equal, False))
    differ = pc.invert(same)
    if not pc.any(differ).as_py():
        return
    dups = dups.filter(differ)
    ids = dups.column("event_id")
    kept = kept.filter(pc.is_in(kept.column("event_id"), value_set=ids))
    by_id: dict[str, list[tuple[str, str]]] = {}
    for eid, src, h in zip(kept.column("event_id").to_pylist(), kept.column("source_object").to_pylist(),
                           row_hashes(kept), strict=True):
        by_id.setdefault(eid, []).append((src, h))
    for eid, h in zip(ids.to_pylist(), row_hashes(dups), strict=True):
        copies = sorted(by_id.get(eid, []))
        if copies and all(h != kh for _, kh in copies):
            out.conflicts.append((table, eid, copies[0][0], copies[0][1], out.source, h, "row"))


def with_scope(table: str, rows: pa.Table, scopes: Scopes) -> tuple[pa.Table, pa.Array]:
    """``rows`` with their ``account_id`` and ``region`` filled (writes: the scope rule of
    ``attribution.scope``; logons: the account and region they were logged in), and each row's scope
    key (``<account>|<region>``, for the data clocks)."""
    if rows.num_rows == 0:
        return rows, pa.array([], pa.string())
    if table in ("s3_writes", "credential_uses"):  # a call's address: the write scope rule
        account = scopes.write_accounts(rows)
    else:
        account = rows.column("recipient_account_id").combine_chunks()
    region = rows.column("aws_region").combine_chunks()
    for name, col in (("account_id", account), ("region", region)):
        rows = rows.set_column(rows.schema.get_field_index(name), name, col)
    keys, code, _ = scopes.keys(account, region)
    return rows, keys.take(pa.array(code))
