"""Export the lake as OCSF in the Amazon Security Lake custom-source layout.

``DIR/ext/<source>/region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/<source>-<YYYYMMDD>-<part>.parquet``

- one OCSF class per source (``SOURCES``); records sorted by ``time`` (then by their uid) in each file;
- a day is always exported whole (``since``/``until`` are widened to UTC day boundaries), so a file
  never holds part of a day, and re-exporting a day rewrites exactly its files: the same data gives
  the same names and bytes (an unchanged file is not even rewritten), a late re-attribution gives
  corrected files, and a file the new export no longer produces is deleted (or, on an output that
  may not delete, such as a Security Lake provider role, overwritten with a zero-row file);
- files stay under ``MAX_FILE_BYTES`` (Security Lake's guidance: objects up to 256 MB; zstd; data
  pages of 1 MB), split into numbered parts beyond that;
- ``out`` is a local folder or ``s3://bucket/prefix`` (pyarrow's filesystem, as ``lake.py``).

Pure core: the lake and the output filesystem arrive as parameters; no AWS SDK.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..lake import Lake, resolve_uri
from .build import arr
from .catalog import Catalog
from .mapping import Mapped, Mapper
from .validate import Validator

DATASTORE = "auditcorr-datastore"
AUTHENTICATION = "auditcorr-auth"
FINDING = "auditcorr-finding"
SOURCES = (DATASTORE, AUTHENTICATION, FINDING)
#: Security Lake custom-source guidance: objects up to 256 MB.  Files are split on the in-memory
#: (uncompressed Arrow) size, which is larger than the zstd Parquet it becomes, so parts stay below.
MAX_FILE_BYTES = 256 * 1024 * 1024
WRITE_OPTIONS = {"compression": "zstd", "data_page_size": 1024 * 1024, "write_statistics": True}
_ACCOUNT_IN_ARN = r"^arn:[^:]*:(?:iam|sts)::(?P<account>\d{12}):"
_DAY_MS = 86_400_000


@dataclass
class SourceResult:
    records: int = 0
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # retired: deleted, or emptied where deleting is not allowed
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass
class ExportResult:
    out: str
    sources: dict[str, SourceResult]

    def line(self) -> str:
        """One line: where, and how many records per source (class)."""
        counts = ", ".join(f"{name} {r.records}" for name, r in self.sources.items())
        return f"OCSF 1.6.0 export (Security Lake custom-source layout) -> {self.out}/ext: {counts} records"

    def lines(self) -> list[str]:
        out = [f"OCSF export to {self.out}"]
        for name, r in self.sources.items():
            out.append(f"  {name}: {r.records} records; files written {len(r.written)}, "
                       f"unchanged {len(r.unchanged)}, deleted {len(r.deleted)}; rejected {sum(r.rejected.values())}")
            for reason, n in sorted(r.rejected.items(), key=lambda kv: (-kv[1], kv[0])):
                out.append(f"    {n:>8}  {reason}")
        return out


@dataclass(frozen=True)
class Window:
    """Whole UTC days ``[start, end)`` as epoch ms (None: unbounded)."""

    start_ms: int | None
    end_ms: int | None

    @classmethod
    def of(cls, since: datetime | None, until: datetime | None) -> Window:
        def floor(d: datetime) -> int:
            d = d.astimezone(UTC)
            return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)

        start = floor(since) if since else None
        end = None
        if until:
            end = floor(until)
            if until.astimezone(UTC) != datetime.fromtimestamp(end / 1000, UTC):
                end += _DAY_MS  # the day holding ``until`` is exported whole
        if start is not None and end is not None and end <= start:
            raise ValueError("--until must be after --since")
        return cls(start, end)

    def lake_days(self, lake: Lake, table: str, pad_days: int = 0) -> list[str] | None:
        if self.start_ms is None and self.end_ms is None:
            return None
        first = _day(self.start_ms) - timedelta(days=pad_days) if self.start_ms is not None else None
        last = _day(self.end_ms - 1) + timedelta(days=pad_days) if self.end_ms is not None else None
        return [d for d in lake.partitions(table)
                if (first is None or d >= first.isoformat()) and (last is None or d <= last.isoformat())]

    def contains_day(self, day: str) -> bool:
        ms = int(datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC).timestamp() * 1000)
        return (self.start_ms is None or ms >= self.start_ms) and (self.end_ms is None or ms < self.end_ms)

    def mask(self, time_ms: pa.Array) -> pa.Array:
        m = pc.is_valid(time_ms)
        if self.start_ms is not None:
            m = pc.and_(m, pc.greater_equal(time_ms, self.start_ms))
        if self.end_ms is not None:
            m = pc.and_(m, pc.less(time_ms, self.end_ms))
        return arr(pc.fill_null(m, False))


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


# -- reading the lake: latest rows plus the account and region each belongs to --------------------
def _account_from_arns(*cols: pa.Array) -> pa.Array:
    parts = [arr(pc.struct_field(pc.extract_regex(c, _ACCOUNT_IN_ARN), "account")) for c in cols]
    return arr(pc.coalesce(*parts))


def _fill(col: pa.Array, fallback: str | None) -> pa.Array:
    return arr(pc.coalesce(col, pa.scalar(fallback, pa.string()))) if fallback else arr(col)


def _left_join(t: pa.Table, other: pa.Table, key: str, right_key: str | None = None) -> pa.Table:
    """``t`` with ``other``'s columns by key (first match), keeping ``t``'s rows and order."""
    right_key = right_key or key
    idx = pc.index_in(t.column(key), value_set=arr(other.column(right_key)))
    got = other.take(idx)
    for name in other.column_names:
        if name != right_key:
            t = t.append_column(name, got.column(name))
    return t


def read_activity(lake: Lake, window: Window, fallback_account: str | None, fallback_region: str | None) -> pa.Table:
    days = window.lake_days(lake, "attributed_activity")
    act = lake.read("attributed_activity", days)
    writes = lake.read("s3_writes", days, columns=["event_id", "principal_account_id", "aws_region",
                                                   "access_key_id", "user_agent", "recipient_account_id"])
    t = _left_join(act, writes, "event_id")
    # the write's scope (schema v2); rows of an earlier lake: the signer's account, the bucket's region
    account = pc.coalesce(t.column("account_id"), t.column("principal_account_id"),
                          _account_from_arns(arr(t.column("role_arn")), arr(t.column("principal_arn"))))
    t = _put(t, "account_id", _fill(arr(account), fallback_account))
    t = _put(t, "region", _fill(arr(pc.coalesce(t.column("region"), t.column("aws_region"))), fallback_region))
    return t.append_column("bucket_region", arr(t.column("aws_region")))


def _put(t: pa.Table, name: str, col: pa.Array) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), name, col)


def read_logons(lake: Lake, window: Window, fallback_account: str | None, fallback_region: str | None) -> pa.Table:
    t = lake.read("logons", window.lake_days(lake, "logons"))
    t = _put(t, "account_id", _fill(arr(pc.coalesce(t.column("account_id"), t.column("recipient_account_id"))),
                                    fallback_account))
    return _put(t, "region", _fill(arr(pc.coalesce(t.column("region"), t.column("aws_region"))), fallback_region))


def read_alerts(lake: Lake, window: Window, fallback_account: str | None, fallback_region: str | None) -> pa.Table:
    t = lake.read("alerts", window.lake_days(lake, "alerts"))
    writes = lake.read("s3_writes", window.lake_days(lake, "s3_writes"),
                       columns=["event_id", "principal_account_id", "aws_region"])
    # session rules name the session as their subject (event_id = session id); a session is in the
    # report of the day it ENDS, so look a couple of days past the window
    sessions = lake.read("sessions", window.lake_days(lake, "sessions", pad_days=2),
                         columns=["session_id", "aws_account_id", "region"])
    sessions = sessions.rename_columns(["session_id", "session_account_id", "session_region"])
    t = _left_join(t, writes, "event_id")
    t = _left_join(t, sessions, "event_id", "session_id")
    account = pc.coalesce(t.column("account_id"), t.column("principal_account_id"), t.column("session_account_id"),
                          _account_from_arns(arr(t.column("principal_arn"))))
    region = pc.coalesce(t.column("region"), t.column("aws_region"), t.column("session_region"))
    t = _put(t, "account_id", _fill(arr(account), fallback_account))
    return _put(t, "region", _fill(arr(region), fallback_region))


# -- writing ----------------------------------------------------------------------------------------
@dataclass
class Output:
    fs: pafs.FileSystem
    base: str

    @classmethod
    def open(cls, uri: str, filesystem: pafs.FileSystem | None = None) -> Output:
        return cls(*resolve_uri(uri, filesystem))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def read(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(path, compression=None) as f:
                return bytes(f.read())
        except (FileNotFoundError, OSError):
            return None

    def put(self, path: str, data: bytes) -> None:
        parent = posixpath.dirname(path)
        if self.is_local:  # atomically visible, as in the lake
            self.fs.create_dir(parent, recursive=True)
            tmp = posixpath.join(parent, f".tmp-{uuid.uuid4().hex}")
            with self.fs.open_output_stream(tmp, compression=None) as out:
                out.write(data)
            self.fs.move(tmp, path)
        else:  # a PUT is atomic; no directory marker objects in the Security Lake bucket
            with self.fs.open_output_stream(path, compression=None) as out:
                out.write(data)

    def listing(self, prefix: str) -> list[str]:
        sel = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
        return sorted(i.path for i in self.fs.get_file_info(sel) if i.type == pafs.FileType.File)

    def same(self, path: str, data: bytes) -> bool:
        """Whether ``path`` already holds exactly ``data`` (then it is not rewritten)."""
        return self.read(path) == data

    def retire(self, path: str, empty: bytes) -> bool:
        """Take away a file the export no longer produces (``empty``: a zero-row file of the class, for
        outputs that cannot delete); True when something changed."""
        self.fs.delete_file(path)
        return True


_PART = re.compile(r"/region=(?P<region>[^/]+)/accountId=(?P<account>[^/]+)/eventDay=(?P<day>\d{8})/"
                   r"(?P<source>[a-z-]+)-(?P=day)-\d{4}\.parquet\Z")
_INDEX = re.compile(r"\[\d+\]")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


def _uid_column(events: pa.Table) -> pa.Array:
    meta = events.column("metadata").combine_chunks()
    uid = arr(pc.struct_field(meta, "uid")) if "uid" in [f.name for f in meta.type] else None
    if "finding_info" in events.column_names:
        uid = arr(pc.struct_field(events.column("finding_info").combine_chunks(), "uid"))
    return uid if uid is not None else pa.nulls(events.num_rows, pa.string())


def partition_keys(events: pa.Table) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(region, account, eventDay) per record, from the record itself."""
    cloud = events.column("cloud").combine_chunks()
    region = arr(pc.struct_field(cloud, "region"))
    account = arr(pc.struct_field(pc.struct_field(cloud, "account"), "uid"))
    ts = arr(events.column("time")).cast(pa.timestamp("ms", tz="UTC"))
    day = arr(pc.strftime(ts, format="%Y%m%d"))
    return region, account, day


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=max(table.num_rows, 1), **WRITE_OPTIONS)  # type: ignore[arg-type]
    return bytes(sink.getvalue().to_pybytes())


def write_source(out: Output, source: str, events: pa.Table, window: Window,
                 max_file_bytes: int = MAX_FILE_BYTES) -> SourceResult:
    """Write one class's events as the source's day files; delete files of exported days it no longer has."""
    res = SourceResult(records=events.num_rows)
    root = f"{out.base}/ext/{source}"
    region, account, day = partition_keys(events)
    uid = _uid_column(events)
    time = arr(events.column("time"))
    keep: set[str] = set()
    if events.num_rows:
        groups = pa.table({"region": region, "account": account, "day": day, "time": time, "uid": uid,
                           "row": pa.array(np.arange(events.num_rows))})
        groups = groups.sort_by([("region", "ascending"), ("account", "ascending"), ("day", "ascending"),
                                 ("time", "ascending"), ("uid", "ascending"), ("row", "ascending")])
        keys = list(zip(groups.column("region").to_pylist(), groups.column("account").to_pylist(),
                        groups.column("day").to_pylist(), strict=True))
        rows = groups.column("row").to_numpy()
        start = 0
        for i in range(1, len(keys) + 1):
            if i < len(keys) and keys[i] == keys[start]:
                continue
            r, a, d = keys[start]
            if not (_SAFE.match(r or "") and _SAFE.match(a or "")):
                res.rejected[f"unsafe partition value (region {r!r}, account {a!r})"] += i - start
                start = i
                continue
            part = events.take(pa.array(rows[start:i]))
            pieces = max(1, -(-part.nbytes // max_file_bytes))
            step = -(-part.num_rows // pieces)
            for p in range(pieces):
                chunk = part.slice(p * step, step)
                path = f"{root}/region={r}/accountId={a}/eventDay={d}/{source}-{d}-{p:04d}.parquet"
                data = parquet_bytes(chunk)
                keep.add(path)
                if out.same(path, data):
                    res.unchanged.append(path)
                else:
                    out.put(path, data)
                    res.written.append(path)
            start = i
    empty: bytes | None = None
    for path in out.listing(root):
        m = _PART.search(path)
        if m and m["source"] == source and path not in keep and window.contains_day(m["day"]):
            empty = empty if empty is not None else parquet_bytes(events.schema.empty_table())
            if out.retire(path, empty):
                res.deleted.append(path)
    return res


def _validated(mapped: Mapped, validator: Validator | None) -> Mapped:
    """Drop records that fail validation (counted by the first violation's kind and path)."""
    if validator is None or mapped.events.num_rows == 0:
        return mapped
    ok = np.ones(mapped.events.num_rows, dtype=bool)
    for i, rec in enumerate(mapped.events.to_pylist()):
        problems = validator.validate(prune(rec))
        if problems:
            ok[i] = False
            v = problems[0]
            at = _INDEX.sub("[]", v.path)
            mapped.rejected[f"schema: {v.kind} at {at}"] += 1
    if not ok.all():
        mapped.events = mapped.events.filter(pa.array(ok))
    return mapped


def prune(value: object) -> object:
    """A record as OCSF JSON: nulls (absent attributes) left out."""
    if isinstance(value, dict):
        return {k: prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def export_ocsf(lake: Lake, out: Output, since: datetime | None = None, until: datetime | None = None, *,
                fallback_account: str | None = None, fallback_region: str | None = None,
                validate: bool = True, catalog: Catalog | None = None,
                max_file_bytes: int = MAX_FILE_BYTES, outputs: dict[str, Output] | None = None) -> ExportResult:
    """Map the lake's latest rows to OCSF and write the three custom sources under ``out``.

    ``outputs``: a different output per source (Security Lake gives each custom source its own
    provider role, so a deployment writes each source through a filesystem assuming that role,
    e.g. ``pyarrow.fs.S3FileSystem(role_arn=..., external_id=...)``); sources not named use ``out``."""
    window = Window.of(since, until)
    catalog = catalog or Catalog.default()
    mapper = Mapper(catalog)
    validator = Validator(catalog) if validate else None
    plan: list[tuple[str, Callable[..., pa.Table], Callable[[pa.Table], Mapped]]] = [
        (DATASTORE, read_activity, mapper.datastore_activity),
        (AUTHENTICATION, read_logons, mapper.authentication),
        (FINDING, read_alerts, mapper.detection_finding),
    ]
    results: dict[str, SourceResult] = {}
    for source, read, to_ocsf in plan:
        mapped = to_ocsf(read(lake, window, fallback_account, fallback_region))
        mapped.events = mapped.events.filter(window.mask(arr(mapped.events.column("time"))))
        mapped = _validated(mapped, validator)
        res = write_source((outputs or {}).get(source, out), source, mapped.events, window, max_file_bytes)
        res.rejected.update(mapped.rejected)
        results[source] = res
    return ExportResult(out=out.base if out.is_local else f"s3://{out.base}", sources=results)
