"""Keeping an OCSF export current, a few days at a time (docs/adr/0009-ocsf-export-schedule.md).

- :func:`changed_days`: the days whose export may differ because a lake file they read was written
  since a point in time (the files' modification times; every day with files the first time). New
  writes, a late report's recomputation (pending -> attributed, ``previous_*``), a closed alert, a
  compaction: each writes a file into the day it concerns, so each is found without being told.
- :class:`ExportState`: what a scheduled exporter keeps between runs -- when it last looked, the
  days found changed and not exported yet (newest first), and what it wrote where (a digest per file).
- :class:`WriteOnlyOutput`: an output that may only PUT, as Security Lake's provider roles (their
  permissions boundary, ``AmazonSecurityLakePermissionsBoundary``, allows no ``s3:DeleteObject``, and
  the role's own policy promises no read or listing): it compares and lists against the digests it
  remembers and retires a file by overwriting it with a zero-row file of the class.

Pure: the lake's filesystem and the clock's reading arrive as parameters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pyarrow.fs as pafs

from ..lake import Lake
from ..schemas import PARTITION_COLUMN
from .export import Output

#: the lake tables the export reads, and how far (days before, after) a change in one of their
#: partitions reaches into the exported days: an alert of a session rule takes its account and region
#: from the session, read two days either side of the alert's day (``export.read_alerts``)
READS: dict[str, tuple[int, int]] = {
    "attributed_activity": (0, 0),
    "s3_writes": (0, 0),
    "logons": (0, 0),
    "alerts": (0, 0),
    "sessions": (-2, 2),
}
STATE_VERSION = 1
_DT = re.compile(rf"/{PARTITION_COLUMN}=(\d{{4}}-\d{{2}}-\d{{2}})/")


def changed_days(lake: Lake, since_ms: int | None) -> set[str]:
    """Days (``YYYY-MM-DD``) whose export may change because a file they read was modified at or
    after ``since_ms`` (``None``: every day the lake holds files for)."""
    out: set[str] = set()
    for table, (before, after) in READS.items():
        sel = pafs.FileSelector(lake.table_dir(table), recursive=True, allow_not_found=True)
        for info in lake.fs.get_file_info(sel):
            if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
                continue
            mtime_ns = info.mtime_ns
            if since_ms is not None and mtime_ns is not None and mtime_ns // 1_000_000 < since_ms:
                continue
            m = _DT.search(info.path)
            if m is None:
                continue
            day = date.fromisoformat(m.group(1))
            out.update((day + timedelta(days=k)).isoformat() for k in range(before, after + 1))
    return out


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ExportState:
    """Kept between runs (JSON in the lake's ``_state/``)."""

    #: the start of the last run's look at the lake (epoch ms); None: never looked
    scanned_ms: int | None = None
    #: days found changed and not exported yet, newest first
    todo: list[str] = field(default_factory=list)
    #: per output root (``bucket/ext/<source>``): path -> sha256 of the bytes written there
    written: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Any) -> ExportState:
        """The state as stored (None, or an unknown version: start afresh -- every day is exported
        again, and unchanged bytes are compared against nothing, so they are written again)."""
        if not isinstance(obj, dict) or obj.get("version") != STATE_VERSION:
            return cls()
        scanned = obj.get("scanned_ms")
        return cls(scanned_ms=int(scanned) if isinstance(scanned, int) else None,
                   todo=[str(d) for d in obj.get("todo", []) if isinstance(d, str)],
                   written={str(k): {str(p): str(h) for p, h in v.items()}
                            for k, v in (obj.get("written") or {}).items() if isinstance(v, dict)})

    def to_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "scanned_ms": self.scanned_ms, "todo": self.todo,
                "written": self.written}

    def plan(self, lake: Lake, now_ms: int, overlap_ms: int) -> list[str]:
        """Look at the lake: the days to export now (newest first), remembered in ``todo``.

        ``overlap_ms`` looks back before the previous look: a file whose upload began before it
        (S3 dates an object by the start of its upload) but was not listed yet, and clock skew
        between this clock and the store's, are caught by the next look."""
        since = None if self.scanned_ms is None else self.scanned_ms - overlap_ms
        days = changed_days(lake, since) | set(self.todo)
        self.todo = sorted(days, reverse=True)
        self.scanned_ms = now_ms
        return list(self.todo)

    def done(self, day: str) -> None:
        self.todo = [d for d in self.todo if d != day]


@dataclass
class WriteOnlyOutput(Output):
    """An :class:`Output` that never reads, lists or deletes: ``manifest`` (path -> sha256 of what
    this output wrote there, kept by the caller between runs) stands in for all three."""

    manifest: dict[str, str] = field(default_factory=dict)

    def same(self, path: str, data: bytes) -> bool:
        return self.manifest.get(path) == _digest(data)

    def put(self, path: str, data: bytes) -> None:
        super().put(path, data)
        self.manifest[path] = _digest(data)

    def listing(self, prefix: str) -> list[str]:
        root = prefix.rstrip("/") + "/"
        return sorted(p for p in self.manifest if p.startswith(root))

    def retire(self, path: str, empty: bytes) -> bool:
        if self.same(path, empty):
            return False
        self.put(path, empty)
        return True
