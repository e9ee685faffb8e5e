"""Compaction: each partition's small files merged in tiers by size, crash-safe (a marker written
first and removed last), into files sorted by the table's lookup keys."""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from ..config import Config
from ..lake import COMPACTED_WRITE_OPTIONS, SORT_KEYS, Lake, latest_indices


@dataclass
class StageTimes:
    """Seconds spent per stage (``parse``, ``write``, ``attribute``, ``compact``...), for benchmarks."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, t0: float, minus: float = 0.0) -> float:
        """Add the time since ``t0`` to ``stage``, less ``minus`` (the time of a stage within it)."""
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - t0 - minus
        return now


class Compactor:
    def __init__(self, lake: Lake, config: Config, times: StageTimes) -> None:
        self.lake = lake
        self.config = config
        self.times = times

    def maybe_compact(self, table: str, dt: str, force: bool = False) -> str | None:
        """Compact the partition in tiers by size (see ``plan_compaction``): each merge rewrites a
        bounded set of files, so a day's compactions rewrite each row O(log(day)) times, not once per
        compaction.  ``force``: merge every file of the partition into one.  Returns the last file
        written (None: nothing to do)."""
        t0 = time.perf_counter()
        try:
            written = None
            for _ in range(COMPACT_MAX_MERGES):
                files = [f for f in self._settle(table, dt) if f.path not in self.lake.damaged]
                if force:
                    pick = files if len(files) >= 2 else None
                else:
                    pick = plan_compaction([PartFile(f.path, f.size or 0) for f in files],
                                           self.config.compact_threshold, fanout=COMPACT_FANOUT,
                                           unit=COMPACT_UNIT_BYTES,
                                           max_bytes=int(self.config.compact_max_mb * (1 << 20)))
                if not pick:
                    break
                chosen = {f.path for f in pick}
                written = self._merge(table, dt, [f for f in files if f.path in chosen])
                if force:
                    break
            return written
        finally:
            self.times.add("compact", t0)

    def compact(self, table: str, dt: str, files: list[str]) -> str:
        """Merge exactly ``files`` (of partition ``dt``) into one compacted file; returns its path."""
        infos = self.lake.fs.get_file_info(list(files))
        return self._merge(table, dt, infos)

    def _settle(self, table: str, dt: str) -> list[pafs.FileInfo]:
        """The partition's files, after finishing the deletions of any compaction that wrote its
        output and died before deleting all of its inputs (its ``_compacting-*.json`` marker)."""
        files, notes = self.lake.listing(table, dt)
        present = {posixpath.basename(f.path): f for f in files}
        for note_info in notes:
            if not posixpath.basename(note_info.path).startswith(_MARKER):
                continue
            note = self.lake.get_json(note_info.path)
            if isinstance(note, dict) and note.get("output") in present:
                doomed = []
                for item in note.get("inputs") or []:
                    if not (isinstance(item, list) and len(item) == 3):
                        continue
                    name, size, mtime = item
                    f = present.get(name)
                    # delete an input only if it is still the file that was merged: a retry may
                    # have rewritten it since (then it is merged again later; readers de-duplicate)
                    if f is not None and name != note["output"] and f.size == size and f.mtime_ns == mtime:
                        doomed.append(f.path)
                        del present[name]
                self.lake.delete(doomed)
            # no output: the compaction died before writing it and its inputs are all still there
            self.lake.delete([note_info.path])
        return sorted(present.values(), key=lambda f: f.path)

    def _merge(self, table: str, dt: str, files: list[pafs.FileInfo]) -> str:
        # a damaged or foreign file is never merged, so never deleted: it stays for `auditcorr lake
        # check` (its footer is read here, beside a merge that reads the whole file)
        for f in files:
            if f.path not in self.lake.damaged and (reason := self.lake.file_problem(table, f.path)):
                self.lake.damaged[f.path] = reason
        files = [f for f in files if f.path not in self.lake.damaged]
        if not files:
            return ""
        paths = [f.path for f in files]
        name = compact_name(paths)
        # the marker is written first and removed last: a retry after a death between writing the
        # output and deleting the inputs deletes them (see _settle) instead of merging them again
        marker = f"{self.lake.part_dir(table, dt)}/{_MARKER}{name}.json"

        def note(inputs: list[pafs.FileInfo]) -> None:
            self.lake.put_json(marker, {"output": f"{name}.parquet", "inputs": [
                [posixpath.basename(f.path), f.size, f.mtime_ns] for f in inputs]})

        note(files)
        data = self.lake.read(table, files=paths, latest=False).drop_columns(["dt"])
        if any(p in self.lake.damaged for p in paths):  # found by this read: keep them out of the marker
            files = [f for f in files if f.path not in self.lake.damaged]
            paths = [f.path for f in files]
            note(files)
        path = self.lake.write_file(table, dt, name, data, options=COMPACTED_WRITE_OPTIONS,
                                    rows=compacted_order(data, table))
        self.lake.delete([f for f in paths if f != path])
        self.lake.delete([marker])
        return path


#: compacted files are sorted by the table's lookup keys (row-group statistics prune lookups)
COMPACT_SORT_KEYS: dict[str, tuple[str, ...]] = SORT_KEYS

#: Size-tiered compaction (as in an LSM tree), per partition.  Tier 0: files under COMPACT_UNIT_BYTES,
#: merged once more than ``config.compact_threshold`` of them pile up.  Tier t >= 1: files of
#: [UNIT * FANOUT**(t-1), UNIT * FANOUT**t) bytes, merged once FANOUT of them are there into a file of
#: a higher tier.  A merge reads at most ``config.compact_max_mb`` of Parquet (its memory: s3_writes
#: decodes to ~25x its zstd Parquet size, and reading peaks at about twice that), so files about that
#: large are final.  A row is rewritten about log_FANOUT(max / UNIT) + 1 times in all (twice with the
#: defaults); compacting a day's whole partition each time rewrote it once per compaction of its day.
COMPACT_UNIT_BYTES = 1 << 20
COMPACT_FANOUT = 4
COMPACT_MAX_BYTES = 8 << 20  # the default of ``config.compact_max_mb``
COMPACT_MAX_MERGES = 8  # merges per ``maybe_compact`` call (a cascade up the tiers)
_MARKER = "_compacting-"


@dataclass(frozen=True)
class PartFile:
    path: str
    size: int


def compaction_tier(size: int, unit: int = COMPACT_UNIT_BYTES, fanout: int = COMPACT_FANOUT) -> int:
    tier, bound = 0, unit
    while size >= bound:
        tier += 1
        bound *= fanout
    return tier


def plan_compaction(files: list[PartFile], threshold: int, fanout: int = COMPACT_FANOUT,
                    unit: int = COMPACT_UNIT_BYTES, max_bytes: int = COMPACT_MAX_BYTES) -> list[PartFile] | None:
    """The files the next merge of a partition rewrites (None: none is due).

    The lowest tier that is due (tier 0: more than ``threshold`` files; higher tiers: ``fanout``
    files), its smallest files first, as many as fit in ``max_bytes`` (at most
    ``max(threshold + 1, fanout)`` files), if that is at least two.  Deterministic in the names and
    sizes, so a retry plans the same merges."""
    tiers: dict[int, list[PartFile]] = {}
    for f in files:
        tiers.setdefault(compaction_tier(f.size, unit, fanout), []).append(f)
    most = max(threshold + 1, fanout, 2)
    for tier in sorted(tiers):
        group = sorted(tiers[tier], key=lambda f: (f.size, f.path))
        if len(group) < (max(threshold, 1) + 1 if tier == 0 else max(fanout, 2)):
            continue
        pick: list[PartFile] = []
        total = 0
        for f in group[:most]:
            if pick and total + f.size > max_bytes:
                break
            pick.append(f)
            total += f.size
        if len(pick) >= 2:
            return sorted(pick, key=lambda f: f.path)
    return None


def compact_name(paths: list[str]) -> str:
    """``compact-<hash of the input names>``: a retry of the same merge writes the same file."""
    from hashlib import blake2b

    return "compact-" + blake2b("\n".join(posixpath.basename(f) for f in paths).encode(),
                                digest_size=12).hexdigest()


def compacted_order(t: pa.Table, table: str) -> np.ndarray:
    """The rows of a compacted file, in order: those ``keep_latest(t)`` keeps, sorted by
    ``COMPACT_SORT_KEYS`` (stably: exactly ``keep_latest(t).sort_by(keys)``).  Sorts key columns only."""
    idx = latest_indices(t, table)
    keys = COMPACT_SORT_KEYS.get(table)
    if keys:
        sub = t.select(list(keys))
        if idx is not None:
            sub = sub.take(pa.array(idx))
        order = pc.sort_indices(sub, sort_keys=[(k, "ascending") for k in keys]).to_numpy()
        idx = order if idx is None else idx[order]
    return np.arange(t.num_rows, dtype=np.int64) if idx is None else idx
