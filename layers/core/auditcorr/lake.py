"""The lake: Hive-partitioned Parquet tables on any ``pyarrow.fs`` filesystem (local or S3).

Storage rules (docs/adr/0002-append-only-lake.md):
- files are immutable and named after what produced them (the input object's id), so a retry
  overwrites the same name instead of adding a copy;
- a file becomes visible atomically (local: temp name starting with ``.`` then rename; S3: a PUT is
  atomic) -- readers, Athena included, ignore names starting with ``.`` or ``_``;
- compaction rewrites some of a partition's files into one (in tiers by size, ``pipeline.py``) and
  only then deletes exactly the files it read;
- readers keep one row per key (the latest by the table's version column), so a moment where a
  compacted file and its inputs coexist never shows a duplicate.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cachetools
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .schemas import CATALOG, PARTITION_COLUMN, ROW_KEYS, ROW_VERSION, TABLES

log = logging.getLogger("auditcorr")

#: where ``auditcorr lake check --move-aside`` puts damaged table files (``_``: no reader lists it)
DAMAGED_DIR = "_damaged"

# \Z, not $: "$" also matches before a trailing newline ("2026-03-02\n" would pass)
_DT = re.compile(r"^\d{4}-\d{2}-\d{2}\Z", re.ASCII)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\Z", re.ASCII)

WRITE_OPTIONS = {"compression": "zstd", "row_group_size": 128 * 1024, "write_statistics": True}
#: Bloom filters per table (Parquet, per row group) and the order of compacted files: declared with each
#: table in ``schemas.CATALOG`` (``bloom_filters``, ``sort_keys``); these are the derived views
BLOOM_FILTERS: dict[str, tuple[str, ...]] = {n: t.bloom_filters for n, t in CATALOG.items() if t.bloom_filters}
SORT_KEYS: dict[str, tuple[str, ...]] = {n: t.sort_keys for n, t in CATALOG.items() if t.sort_keys}
BLOOM_FPP = 0.01
#: a read that listed its files itself lists them again this often when one vanished under it
_READ_ATTEMPTS = 3
#: compacted files (sorted by the table's lookup keys): smaller row groups, so a lookup's min/max
#: pruning keeps less of a day (docs/performance.md, finding 2)
COMPACTED_WRITE_OPTIONS = {"compression": "zstd", "row_group_size": 16 * 1024, "write_statistics": True}


def byte_budget_cache(budget: int) -> cachetools.LRUCache:
    """An LRU cache of Arrow tables or arrays holding at most ``budget`` bytes of them."""
    return cachetools.LRUCache(maxsize=max(budget, 1), getsizeof=lambda v: v.nbytes)


def cache_put(cache: cachetools.LRUCache, key: Any, value: Any) -> None:
    """Keep ``value`` unless it alone is larger than the whole budget."""
    if value.nbytes <= cache.maxsize:
        cache[key] = value


def resolve_uri(uri: str, filesystem: pafs.FileSystem | None = None) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path without a trailing slash) of ``/some/dir`` (made absolute), ``s3://bucket/prefix``,
    or any URI on an explicit ``filesystem``."""
    if filesystem is not None:
        path = uri.split("://", 1)[1] if "://" in uri else uri
        return filesystem, path.rstrip("/")
    if uri.startswith("s3://"):
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path.rstrip("/")
    import os

    return pafs.LocalFileSystem(), os.path.abspath(uri)


class LakePathError(ValueError):
    """A name would escape the lake or is not a valid partition/file name."""


def input_id(source: str, content: bytes | None = None, etag: str | None = None) -> str:
    """A stable id for an input object: its name plus its content (or ETag)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(source.encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    if etag:
        h.update(etag.strip('"').encode())
    elif content is not None:
        h.update(hashlib.blake2b(content, digest_size=16).digest())
    return h.hexdigest()


@dataclass
class Lake:
    fs: pafs.FileSystem
    base: str  # path inside fs, no trailing slash
    #: bytes of decoded files kept in memory across reads (0: off).  Files are immutable per
    #: (path, mtime, size), so a cached copy is exact; the local CLI turns it on (ingesting a folder
    #: re-reads the same small session/logon/poll files for every CloudTrail file).
    cache_bytes: int = 0
    _cache: cachetools.LRUCache = field(init=False, repr=False)
    #: table files a read found damaged (path -> reason) and skipped from then on (docs/reliability.md)
    damaged: dict[str, str] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._cache = byte_budget_cache(self.cache_bytes)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def open(cls, uri: str, filesystem: pafs.FileSystem | None = None) -> Lake:
        """``/some/dir`` or ``s3://bucket/prefix`` (optionally with an explicit filesystem)."""
        fs, path = resolve_uri(uri, filesystem)
        if not isinstance(fs, pafs.LocalFileSystem) or filesystem is not None:
            return cls(fs, path)
        import os

        os.makedirs(path, exist_ok=True)
        return cls(fs, path, cache_bytes=256 * 1024 * 1024)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    # -- paths --------------------------------------------------------------------------------
    def _check(self, table: str, dt: str | None = None, name: str | None = None) -> None:
        if table not in TABLES:
            raise LakePathError(f"unknown table {table!r}")
        if dt is not None and not _DT.match(dt):
            raise LakePathError(f"invalid partition value {dt!r}")
        if name is not None and (not _NAME.match(name) or ".." in name):
            raise LakePathError(f"invalid file name {name!r}")

    def table_dir(self, table: str) -> str:
        self._check(table)
        return f"{self.base}/{table}"

    def part_dir(self, table: str, dt: str) -> str:
        self._check(table, dt)
        return f"{self.base}/{table}/{PARTITION_COLUMN}={dt}"

    def state_path(self, *parts: str) -> str:
        for p in parts:
            if not _NAME.match(p) or ".." in p:
                raise LakePathError(f"invalid state name {p!r}")
        return posixpath.join(self.base, "_state", *parts)

    # -- low-level I/O ------------------------------------------------------------------------
    def put_bytes(self, path: str, data: bytes) -> None:
        """Write ``path`` (any object under the lake, e.g. a quarantined input), atomically."""
        parent = posixpath.dirname(path)
        self.fs.create_dir(parent, recursive=True)
        if self.is_local:
            tmp = posixpath.join(parent, f".tmp-{uuid.uuid4().hex}")
            with self.fs.open_output_stream(tmp, compression=None) as out:
                out.write(data)
            self.fs.move(tmp, path)
        else:
            with self.fs.open_output_stream(path, compression=None) as out:
                out.write(data)

    def get_bytes(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(path, compression=None) as f:
                return bytes(f.read())
        except (FileNotFoundError, OSError):
            return None

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def put_json(self, path: str, obj: object) -> None:
        self.put_bytes(path, orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))

    def get_json(self, path: str) -> object | None:
        raw = self.get_bytes(path)
        return orjson.loads(raw) if raw is not None else None

    # -- table files --------------------------------------------------------------------------
    def write_file(self, table: str, dt: str, name: str, data: pa.Table,
                   options: dict[str, Any] | None = None, rows: np.ndarray | None = None) -> str:
        """Write ``data`` (without dt) as ``<table>/dt=<dt>/<name>.parquet``, atomically.

        ``options``: Parquet writer options (default ``WRITE_OPTIONS``; compaction passes
        ``COMPACTED_WRITE_OPTIONS``).  ``rows``: write ``data.take(rows)``, gathered one row group
        at a time (a compaction does not hold a second, sorted copy of what it merges)."""
        self._check(table, dt, name)
        schema = TABLES[table]
        if data.schema.remove_metadata() != schema.remove_metadata():
            raise ValueError(f"{table}: data does not match the table schema")
        data = data.replace_schema_metadata(schema.metadata)
        sink = pa.BufferOutputStream()
        opts: dict[str, Any] = dict(options or WRITE_OPTIONS)
        blooms = BLOOM_FILTERS.get(table)
        if blooms and data.num_rows:
            ndv = min(data.num_rows, int(opts.get("row_group_size") or 128 * 1024))
            opts["bloom_filter_options"] = {c: {"ndv": ndv, "fpp": BLOOM_FPP} for c in blooms}
        if rows is None:
            pq.write_table(data, sink, **opts)
        else:
            group = int(opts.pop("row_group_size", None) or 128 * 1024)
            step = 4 * group  # four row groups a take: a take from many-chunk columns costs per call
            with pq.ParquetWriter(sink, data.schema, **opts) as writer:
                for i in range(0, len(rows), step):
                    writer.write_table(data.take(pa.array(rows[i:i + step])), row_group_size=group)
        path = f"{self.part_dir(table, dt)}/{name}.parquet"
        self.put_bytes(path, sink.getvalue().to_pybytes())
        return path

    def write_partitioned(self, table: str, name: str, data: pa.Table, dts: pa.Array) -> list[str]:
        """Split ``data`` by the ``dts`` column values and write one file per partition."""
        if data.num_rows == 0:
            return []
        paths = []
        dts = dts.combine_chunks() if isinstance(dts, pa.ChunkedArray) else dts
        for dt in pc.unique(dts).to_pylist():
            if dt is None:
                continue
            part = data.filter(pc.equal(dts, dt))
            paths.append(self.write_file(table, dt, name, part))
        return paths

    def files(self, table: str, dt: str | None = None) -> list[str]:
        base = self.part_dir(table, dt) if dt else self.table_dir(table)
        sel = pafs.FileSelector(base, recursive=dt is None, allow_not_found=True)
        out = []
        for info in self.fs.get_file_info(sel):
            name = posixpath.basename(info.path)
            if info.type == pafs.FileType.File and name.endswith(".parquet") and not name.startswith((".", "_")):
                out.append(info.path)
        return sorted(out)

    def listing(self, table: str, dt: str) -> tuple[list[pafs.FileInfo], list[pafs.FileInfo]]:
        """One listing of a partition: its table files (as ``files``, with size and mtime) and its
        hidden ``_*.json`` notes (compaction markers), each sorted by path."""
        sel = pafs.FileSelector(self.part_dir(table, dt), recursive=False, allow_not_found=True)
        data, notes = [], []
        for info in self.fs.get_file_info(sel):
            name = posixpath.basename(info.path)
            if info.type != pafs.FileType.File:
                continue
            if name.endswith(".parquet") and not name.startswith((".", "_")):
                data.append(info)
            elif name.startswith("_") and name.endswith(".json"):
                notes.append(info)
        return sorted(data, key=lambda i: i.path), sorted(notes, key=lambda i: i.path)

    def partitions(self, table: str) -> list[str]:
        sel = pafs.FileSelector(self.table_dir(table), recursive=False, allow_not_found=True)
        out = []
        for info in self.fs.get_file_info(sel):
            name = posixpath.basename(info.path)
            if info.type == pafs.FileType.Directory and name.startswith(f"{PARTITION_COLUMN}="):
                dt = name.split("=", 1)[1]
                if _DT.match(dt):
                    out.append(dt)
        return sorted(out)

    def delete(self, paths: Iterable[str]) -> None:
        """Delete table files (a file a read found damaged is kept: it is evidence, moved aside only
        by ``auditcorr lake check --move-aside``)."""
        for p in paths:
            if p in self.damaged:
                continue
            try:
                self.fs.delete_file(p)
            except FileNotFoundError:
                pass

    # -- reading ------------------------------------------------------------------------------
    def read(self, table: str, dts: Iterable[str] | None = None, columns: list[str] | None = None,
             filter: pc.Expression | None = None, latest: bool = True,
             files: list[str] | None = None) -> pa.Table:
        """Read a table (optionally some partitions), with ``dt``, keeping one row per key.

        A damaged file (not Parquet, truncated, empty, another table's, unreadable pages) is named
        in a warning, remembered in ``damaged`` and skipped: one bad file never fails every read.
        A file that vanishes while it is read (another run's compaction, which writes its output
        before deleting its inputs) makes a read that listed the files itself list them again; a
        read of an explicit ``files`` list raises ``FileNotFoundError`` as before."""
        listed = files is None
        wanted = sorted(set(dts)) if dts is not None else None
        for attempt in range(_READ_ATTEMPTS):
            if listed:
                files = self.files(table) if wanted is None else [f for dt in wanted for f in self.files(table, dt)]
            usable = [f for f in files or [] if f not in self.damaged]
            try:
                return self._read_files(table, usable, columns, filter, latest)
            except FileNotFoundError:
                if not listed or attempt == _READ_ATTEMPTS - 1:
                    raise
            except (pa.ArrowException, OSError):
                bad = {f: r for f in usable if (r := self.file_problem(table, f, deep=True))}
                if not bad:
                    raise
                for path, reason in bad.items():
                    log.warning("damaged lake file skipped: %s (%s)", path, reason)
                    self.damaged[path] = reason
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _read_files(self, table: str, files: list[str], columns: list[str] | None,
                    filter: pc.Expression | None, latest: bool) -> pa.Table:
        schema = TABLES[table]
        full_schema = schema.append(pa.field(PARTITION_COLUMN, pa.string()))
        if not files:
            t = full_schema.empty_table()
            return t.select(columns) if columns else t
        need: list[str] | None = None
        if columns is not None:
            version = ROW_VERSION[table]
            extra = (list(ROW_KEYS[table]) + ([version] if version else [])) if latest else []
            need = list(dict.fromkeys(list(columns) + extra))
        t = self._cached_read(table, files, full_schema, need, filter) if self.cache_bytes else None
        if t is None:
            part = ds.partitioning(pa.schema([pa.field(PARTITION_COLUMN, pa.string())]), flavor="hive")
            dataset = ds.dataset(files, schema=full_schema, filesystem=self.fs, format="parquet",
                                 partitioning=part, partition_base_dir=self.table_dir(table))
            t = dataset.to_table(columns=need, filter=filter)
        if latest:
            t = keep_latest(t, table)
        return t.select(columns) if columns else t


    def _cached_read(self, table: str, files: list[str], full_schema: pa.Schema, need: list[str] | None,
                     filter: pc.Expression | None) -> pa.Table | None:
        """Read through the per-file cache; None when the files are too big to cache."""
        infos = self.fs.get_file_info(files)
        if sum(i.size or 0 for i in infos) > self.cache_bytes // 4:
            return None
        cols = tuple(need) if need is not None else None
        parts = []
        for info in infos:
            key = (info.path, info.mtime_ns, info.size, cols)
            t = self._cache.get(key)
            if t is None:
                dt = posixpath.basename(posixpath.dirname(info.path)).split("=", 1)[1]
                t = pq.read_table(info.path, filesystem=self.fs, schema=full_schema.remove(
                    full_schema.get_field_index(PARTITION_COLUMN)), columns=[c for c in need if c != PARTITION_COLUMN]
                    if need is not None else None)
                if need is None or PARTITION_COLUMN in need:
                    t = t.append_column(PARTITION_COLUMN, pa.array([dt] * t.num_rows, pa.string()))
                if need is not None:
                    t = t.select(need)
                cache_put(self._cache, key, t)
            parts.append(t)
        out = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        return out.filter(filter) if filter is not None else out

    # -- damaged files --------------------------------------------------------------------------
    def file_problem(self, table: str, path: str, deep: bool = False) -> str | None:
        """Why ``path`` is not a usable file of ``table`` (a fixed text), or None.  The footer and
        the schema always (what opening the file costs); with ``deep``, every page is decoded too.
        A file that no longer exists is not damaged (a compaction removed it)."""
        try:
            pf = pq.ParquetFile(path, filesystem=self.fs)
            found = pf.schema_arrow
        except FileNotFoundError:
            return None
        except (pa.ArrowException, OSError):
            size = self.fs.get_file_info(path).size
            return "empty file" if size == 0 else "not a Parquet file (or truncated: no footer)"
        expected = TABLES[table]
        version = ROW_VERSION[table]
        for name in (*ROW_KEYS[table], *([version] if version else [])):
            if name not in found.names:
                return f"not a {table} file: no column {name}"
        for f in found:
            i = expected.get_field_index(f.name)
            if i >= 0 and f.type != expected.field(i).type:
                return f"not a {table} file: column {f.name} is {f.type}, the table's is {expected.field(i).type}"
        if deep:
            try:
                for i in range(pf.metadata.num_row_groups):
                    pf.read_row_group(i)
            except FileNotFoundError:
                return None
            except (pa.ArrowException, OSError):
                return "damaged data pages (the footer reads, the data does not)"
        return None

    def check(self, tables: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
        """Every damaged file of the lake's tables: (table, path, reason), decoding every page."""
        out = []
        for table in tables or TABLES:
            for path in self.files(table):
                reason = self.file_problem(table, path, deep=True)
                if reason:
                    out.append((table, path, reason))
        return out

    def move_aside(self, table: str, path: str, reason: str) -> str:
        """Move a damaged table file to ``<lake>/_damaged/<table>/dt=.../<name>`` with a
        ``.reason.json`` beside it; returns the new path."""
        rel = posixpath.relpath(path, self.table_dir(table))
        dest = posixpath.join(self.base, DAMAGED_DIR, table, rel)
        self.fs.create_dir(posixpath.dirname(dest), recursive=True)
        self.fs.move(path, dest)
        self.put_json(dest + ".reason.json", {"table": table, "path": path, "reason": reason})
        self.damaged.pop(path, None)
        return dest


def keep_latest(t: pa.Table, table: str) -> pa.Table:
    """One row per ``ROW_KEYS[table]``: the one with the greatest ``ROW_VERSION[table]``."""
    idx = latest_indices(t, table)
    return t if idx is None else t.take(pa.array(idx))


def latest_indices(t: pa.Table, table: str) -> np.ndarray | None:
    """The rows ``keep_latest`` keeps, in its order (by key), or None when it keeps ``t`` as it is
    (no key twice).  Sorts and compares the key columns only: the caller gathers the rows once."""
    if t.num_rows < 2:
        return None
    keys = list(ROW_KEYS[table])
    version = ROW_VERSION[table]
    sort = [(k, "ascending") for k in keys]
    if version:
        sort.append((version, "descending"))
    sort.append((PARTITION_COLUMN, "descending")) if PARTITION_COLUMN in t.column_names else None
    order = pc.sort_indices(t.select([k for k, _ in sort]), sort_keys=sort).to_numpy()
    s = t.select(keys).take(pa.array(order))
    first = np.ones(s.num_rows, dtype=bool)
    same = np.ones(s.num_rows - 1, dtype=bool)
    for k in keys:
        col = s.column(k)
        same &= pc.fill_null(pc.equal(col.slice(1), col.slice(0, s.num_rows - 1)), False).to_numpy(
            zero_copy_only=False)
    first[1:] = ~same
    if first.all():
        return None
    return order[first]
