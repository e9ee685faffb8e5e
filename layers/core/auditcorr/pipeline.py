"""Ingest stages: extract (read + parse) -> load (lake files) -> attribute -> alert.

The pipeline is I/O-agnostic: it receives object bytes and names, a :class:`Lake` and a clock.
The CLI feeds it local files; the Lambda handlers feed it S3 objects.
"""

from __future__ import annotations

import logging
import math
import posixpath
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from . import rules
from .attribution import DAY_MS, PENDING, SESSION_COLS, Coverage, attribute
from .config import Config
from .counts import FileOutcome, IngestSummary
from .ingest.cloudtrail import UnreadableObject, is_digest, is_insight, parse_cloudtrail
from .ingest.usage import parse_usage_report, report_kind
from .lake import COMPACTED_WRITE_OPTIONS, SORT_KEYS, Lake, input_id, keep_latest, latest_indices
from .schemas import ALERTS, ATTRIBUTED_ACTIVITY, LIVE_POLLS, TABLES, TS, conform
from .timeparse import dt_column

log = logging.getLogger("auditcorr")

Clock = Callable[[], int]  # epoch milliseconds


def wall_clock() -> int:
    return int(time.time() * 1000)


def _day(dt: str) -> int:
    return int(np.datetime64(dt, "D").astype(np.int64))


def _dt(day: int) -> str:
    return str(np.datetime64(day, "D"))


@dataclass
class LiveOutcome:
    observations: int
    polled: int
    failed: int
    alerts_opened: int = 0


@dataclass
class StageTimes:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, t0: float, minus: float = 0.0) -> float:
        """Add the time since ``t0`` to ``stage``, less ``minus`` (the time of a stage within it)."""
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - t0 - minus
        return now


def classify(source: str) -> str:
    p = source.replace("\\", "/")
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


#: memory for the event ids of compacted files kept between CloudTrail files (the duplicate check,
#: the alert merge)
EVENT_ID_CACHE_BYTES = 64 << 20


class _LruCache:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[tuple[str, int | None, int | None, str], pa.ChunkedArray] = OrderedDict()

    def get(self, key: tuple[str, int | None, int | None, str]) -> pa.ChunkedArray | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple[str, int | None, int | None, str], value: pa.ChunkedArray) -> None:
        if value.nbytes > self.budget or key in self._items:
            return
        self._items[key] = value
        self.used += value.nbytes
        while self.used > self.budget:
            _, old = self._items.popitem(last=False)
            self.used -= old.nbytes


class Pipeline:
    def __init__(self, lake: Lake, config: Config, clock: Clock = wall_clock) -> None:
        self.lake = lake
        self.config = config
        self.clock = clock
        self.times = StageTimes()
        self._ids_cache = _LruCache(EVENT_ID_CACHE_BYTES)

    # -- entry points --------------------------------------------------------------------------
    def ingest_object(self, source: str, data: bytes, etag: str | None = None,
                      summary: IngestSummary | None = None) -> FileOutcome:
        """Ingest one object; never raises for bad input (the outcome says what happened)."""
        kind = classify(source)
        if kind in ("digest", "insight"):
            out = FileOutcome(source=source, kind=kind, note=f"{kind} file: not an event log, skipped")
            return out
        iid = input_id(source, data, etag)
        manifest = self.lake.state_path("ingested", f"{iid}.json")
        done = self.lake.get_json(manifest)
        if isinstance(done, dict):
            n = int(done.get("records_in", 0))
            return FileOutcome(source=source, kind=str(done.get("kind", kind)), records_in=n, duplicates=n,
                               note="already ingested (same object and content)")
        try:
            if kind == "cloudtrail":
                out = self._ingest_cloudtrail(source, data, iid, summary)
            else:
                out = self._ingest_report(source, data, iid, None if kind == "usage_report" else kind, summary)
        except UnreadableObject as exc:
            out = FileOutcome(source=source, kind=kind if kind != "usage_report" else "sessions_report",
                              error=str(exc))
            self.quarantine(source, data, iid, str(exc))
            log.warning("input rejected", extra={"input_id": iid, "reason": str(exc)})
            return out
        self.lake.put_json(manifest, out.as_dict() | {"input_id": iid})
        return out

    def quarantine(self, source: str, data: bytes, iid: str, reason: str) -> str:
        name = posixpath.basename(source.replace("\\", "/")) or "object"
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:120].lstrip("._") or "object"
        path = posixpath.join(self.lake.base, "quarantine", iid, safe)
        self.lake._put_bytes(path, data)
        self.lake.put_json(path + ".reason.json", {"source": source, "reason": reason, "input_id": iid,
                                                   "at_ms": self.clock()})
        return path

    # -- CloudTrail -----------------------------------------------------------------------------
    def _ingest_cloudtrail(self, source: str, data: bytes, iid: str,
                           summary: IngestSummary | None) -> FileOutcome:
        t0 = time.perf_counter()
        parsed = parse_cloudtrail(data, source, self.config)
        t0 = self.times.add("parse", t0)
        out = parsed.outcome
        name = f"part-{iid}"
        new_writes = self._load_events("s3_writes", parsed.writes, name, out)
        new_logons = self._load_events("logons", parsed.logons, name, out)
        t0 = self.times.add("write", t0)
        compacting = self.times.seconds.get("compact", 0.0)
        if new_writes.num_rows:
            self._attribute_and_alert(new_writes, name, summary, scope_events=None)
        if new_logons.num_rows:  # logons later than the report of the sessions they open
            self.recheck_logons(new_logons, f"logoncheck-{iid}", summary)
        # the compactions of attributed_activity and alerts run in there: they count as "compact"
        self.times.add("attribute", t0, minus=self.times.seconds.get("compact", 0.0) - compacting)
        # compact only once this object's outputs all exist: until then a retry after a crash must
        # find its own rows under its own file name, or it would take them for duplicates and never
        # attribute them (tests/hardening/test_atomicity.py)
        for table, rows in (("s3_writes", new_writes), ("logons", new_logons)):
            for dt in pc.unique(dt_column(rows.column("event_time"))).to_pylist() if rows.num_rows else []:
                self.maybe_compact(table, dt)
        return out

    def _load_events(self, table: str, rows: pa.Table, name: str, out: FileOutcome) -> pa.Table:
        if rows.num_rows == 0:
            return rows
        dts = dt_column(rows.column("event_time"))
        keep = np.ones(rows.num_rows, dtype=bool)
        for dt in pc.unique(dts).to_pylist():
            own = f"{self.lake.part_dir(table, dt)}/{name}.parquet"
            in_dt = pc.equal(dts, dt)
            ids = pc.unique(rows.column("event_id").filter(in_dt))
            # which of these ids another file of the partition holds: each file's ids are looked up
            # in the (small) set of the new ids -- hashing the day's ids into a set for every new
            # file made the check quadratic in the day
            found = [e.filter(pc.is_in(e, value_set=ids)) for e in self._event_ids(table, dt, own)]
            if not found:
                continue
            found_ids = pa.chunked_array([c for e in found for c in e.chunks], pa.string())
            mask = pc.and_(in_dt, pc.is_in(rows.column("event_id"), value_set=found_ids))
            keep &= ~pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        dup = int((~keep).sum())
        out.duplicates += dup
        if dup:
            rows = rows.filter(pa.array(keep))
            dts = dts.filter(pa.array(keep))
        self.lake.write_partitioned(table, name, rows, dts)
        out.written += rows.num_rows
        return rows

    def _event_ids(self, table: str, dt: str, own: str) -> list[pa.ChunkedArray]:
        """The ``event_id`` columns of the partition's files other than ``own``."""
        files, _ = self.lake.listing(table, dt)
        return [self._file_column(table, f, "event_id") for f in files if f.path != own]

    def _file_column(self, table: str, f: pafs.FileInfo, column: str) -> pa.ChunkedArray:
        """One column of one table file.  Those of compacted files (written once, named after their
        inputs) are kept across calls, keyed by path, size and modification time, up to
        ``EVENT_ID_CACHE_BYTES``: the next CloudTrail file's checks do not read them again."""
        cacheable = posixpath.basename(f.path).startswith("compact-") and f.mtime_ns is not None
        key = (f.path, f.size, f.mtime_ns, column)
        col = self._ids_cache.get(key) if cacheable else None
        if col is None:
            col = self.lake.read(table, columns=[column], latest=False, files=[f.path]).column(column)
            if cacheable:
                self._ids_cache.put(key, col)
        return col

    def _read_where_in(self, table: str, dts: Iterable[str], column: str, values: pa.Array) -> pa.Table:
        """``lake.read(table, dts, filter=pc.field(column).isin(values))`` (the same rows, in the same
        order, latest per key), reading every column only of the row groups that hold a match: the
        dataset filter decodes every column of every row group first, and a day's alerts are read
        for every CloudTrail file."""
        full = TABLES[table].append(pa.field("dt", pa.string()))
        parts = []
        for dt in sorted(set(dts)):
            for f in self.lake.listing(table, dt)[0]:
                hit = pc.is_in(self._file_column(table, f, column), value_set=values)
                pos = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
                if not len(pos):
                    continue
                with self.lake.fs.open_input_file(f.path) as fh:
                    pf = pq.ParquetFile(fh)
                    starts = np.cumsum([0] + [pf.metadata.row_group(i).num_rows
                                              for i in range(pf.metadata.num_row_groups)])
                    groups = np.unique(np.searchsorted(starts, pos, side="right") - 1).tolist()
                    t = pf.read_row_groups(groups) if 2 * len(groups) <= pf.metadata.num_row_groups else pf.read()
                t = t.filter(pc.is_in(t.column(column), value_set=values))
                t = conform(t.append_column("dt", pa.array([dt] * t.num_rows, pa.string())), full)
                parts.append(t)
        if not parts:
            return full.empty_table()
        return keep_latest(pa.concat_tables(parts) if len(parts) > 1 else parts[0], table)

    # -- reports --------------------------------------------------------------------------------
    def _ingest_report(self, source: str, data: bytes, iid: str, kind: str | None,
                       summary: IngestSummary | None) -> FileOutcome:
        rep = parse_usage_report(data, source, kind)
        out = rep.outcome
        if rep.report_date is None:
            if rep.table.num_rows == 0:
                out.note = "no rows and no report date in the name: nothing to replace"
                return out
            raise UnreadableObject("cannot tell the report's day (name or year/month/day columns)")
        table = "sessions" if rep.kind == "sessions_report" else "applications"
        if rep.table.num_rows == 0 and self.lake.read(table, [rep.report_date], columns=["session_id"],
                                                      latest=False).num_rows:
            # AppStream writes no report for a day without sessions: an empty re-delivery of a day we
            # hold rows for is a truncated or broken copy, not a correction -- keep the day
            out.note = f"empty report for {rep.report_date} ignored: the day keeps its earlier delivery"
            return out
        # one file per report day: a report delivered again replaces its day; sessions sorted by user
        # (with the Bloom filter, a user's sessions are a row-group lookup for ``timeline``)
        data = rep.table.sort_by([(k, "ascending") for k in SORT_KEYS["sessions"]]) \
            if table == "sessions" else rep.table
        self.lake.write_file(table, rep.report_date, "report", data)
        if table == "sessions":
            self.reattribute(self.days_affected_by_report(rep.table, rep.report_date), f"recompute-{iid}",
                             summary)
            self.check_logons(rep.table, f"logons-{iid}", summary)
        return out

    def check_logons(self, sessions: pa.Table, name: str, summary: IngestSummary | None = None) -> None:
        """Logon cross-check of these sessions: ``session_without_logon``, ``logon_user_mismatch``."""
        from . import logon_check

        rules_here = [r for r in logon_check.RULES if self.config.rule_enabled(r)]
        if sessions.num_rows == 0 or not rules_here:
            return
        now = self.clock()
        starts = sessions.column("session_start_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        days = sorted({int(d) for d in np.unique(starts // DAY_MS)})
        back = math.ceil(self.config.logon_window_hours / 24) + 1
        logons = self.lake.read("logons", {_dt(d + k) for d in days for k in range(-back, 2)})
        logons = logons.drop_columns(["dt"]) if "dt" in logons.column_names else logons
        raised = logon_check.evaluate(sessions, logons, self.config, now)
        raised = conform(raised, rules.ALERT_IN)
        self._merge_alerts(raised, sessions.column("session_id").to_pylist(), rules_here,
                           dt_column(sessions.column("session_start_time")), name, now, summary)

    def recheck_logons(self, logons: pa.Table, name: str, summary: IngestSummary | None = None) -> None:
        """Re-run the logon cross-check for the reported sessions these logons could concern (starting
        in [first logon - tolerance, last logon + logon window]): a CloudTrail file that arrives after
        the sessions report (late, retried) must give the answer the other order gives."""
        t = logons.column("event_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        lo = int(t.min()) - self.config.tolerance_seconds * 1000
        hi = int(t.max()) + int(self.config.logon_window_hours * 3_600_000)
        last = (hi + int(self.config.max_session_hours * 3_600_000)) // DAY_MS + 1  # reports: by end day
        have = set(self.lake.partitions("sessions"))
        dts = [d for d in (_dt(x) for x in range(lo // DAY_MS, last + 1)) if d in have]
        if not dts:
            return
        sessions = self.lake.read("sessions", dts)
        start = sessions.column("session_start_time").cast(pa.int64())
        sessions = sessions.filter(pc.and_(pc.greater_equal(start, lo), pc.less_equal(start, hi)))
        if sessions.num_rows == 0:
            return
        self.check_logons(sessions.drop_columns(["dt"]), name, summary)
        # their users' writes in those sessions carry the matching logon: recompute them (in the
        # usual order -- logons minutes after the calls, reports a day later -- nothing is reported
        # yet here and this costs nothing)
        users = pa.array(sorted({u for u in logons.column("user_name").to_pylist() if u}), pa.string())
        mine = sessions.filter(pc.is_in(sessions.column("user_id"), value_set=users))
        if mine.num_rows:
            tol = self.config.tolerance_seconds * 1000
            first = int(pc.min(mine.column("session_start_time")).cast(pa.int64()).as_py()) - tol
            end = int(pc.max(mine.column("session_end_time")).cast(pa.int64()).as_py()) + tol
            have = set(self.lake.partitions("s3_writes"))
            self.reattribute([d for d in (_dt(x) for x in range(first // DAY_MS, end // DAY_MS + 1)) if d in have],
                             name.replace("logoncheck-", "relogon-", 1), summary)

    def _merge_alerts(self, raised: pa.Table, scope: list[str] | pa.ChunkedArray | pa.Array,
                      rules_in_scope: list[str], dts: pa.Array, name: str, now: int,
                      summary: IngestSummary | None, whole_days: bool = False) -> None:
        # only the previous versions of the alerts on these events matter (alert_id = H(rule, event),
        # so every version of a raised alert carries its event_id): reading the whole day's alerts
        # for every file made a day quadratic. ``whole_days``: the scope is every event of the days.
        ids = None if whole_days else pc.unique(pa.concat_arrays([
            _one_chunk(scope if isinstance(scope, pa.Array | pa.ChunkedArray) else pa.array(scope, pa.string())),
            _one_chunk(raised.column("event_id"))]))
        days = pc.unique(dts).to_pylist()
        prev = self.lake.read("alerts", days) if ids is None else self._read_where_in("alerts", days, "event_id", ids)
        prev = prev.drop_columns(["dt"]) if "dt" in prev.column_names else prev
        changed = rules.reconcile(prev, raised, scope, now, rules_in_scope=rules_in_scope)
        if changed.num_rows:
            self.lake.write_partitioned("alerts", name, changed, dt_column(changed.column("event_time")))
            if summary is not None:
                summary.alerts_opened += int(pc.sum(pc.equal(changed.column("status"), rules.OPEN)).as_py() or 0)
                summary.alerts_closed += int(pc.sum(pc.equal(changed.column("status"), rules.CLOSED)).as_py() or 0)
        for dt in pc.unique(dts).to_pylist():
            self.maybe_compact("alerts", dt)

    def days_affected_by_report(self, sessions: pa.Table, report_date: str) -> list[str]:
        tol = self.config.tolerance_seconds * 1000
        rd = _day(report_date)
        lookback = math.ceil(self.config.max_session_hours / 24) + 2
        lo = rd - lookback
        if sessions.num_rows:
            first = int(pc.min(sessions.column("session_start_time")).cast(pa.int64()).as_py())
            lo = min(lo, (first - tol) // DAY_MS)
        have = set(self.lake.partitions("s3_writes"))
        return [d for d in (_dt(x) for x in range(lo, rd + 2)) if d in have]

    # -- attribution ----------------------------------------------------------------------------
    def reattribute(self, dts: Iterable[str], name: str, summary: IngestSummary | None = None) -> None:
        """Recompute attribution and alerts for whole partitions (late data, coverage changes)."""
        for dt in sorted(set(dts)):
            old_files = self.lake.files("attributed_activity", dt)
            writes = self.lake.read("s3_writes", [dt])
            if writes.num_rows == 0:
                continue
            # old_files may include this run's own file, left by an attempt that died after writing it:
            # it is read for previous_* (history survives the retry) and overwritten, never deleted
            self._attribute_and_alert(writes.drop_columns(["dt"]), name, summary, scope_events="all",
                                      replace_files=old_files)
            if summary is not None:
                summary.recomputed_days.append(dt)

    def session_window(self, days: list[int]) -> tuple[pa.Table, pa.Array]:
        """Sessions that could explain writes on ``days``: reports of day-1 .. day+max duration,
        plus live observations of sessions no report knows yet (the report is authoritative)."""
        ahead = math.ceil(self.config.max_session_hours / 24) + 1
        dts = {_dt(d + k) for d in days for k in range(-1, ahead + 1)}
        sessions = self.lake.read("sessions", dts, columns=list(SESSION_COLS))
        source = pa.array(["report"] * sessions.num_rows, pa.string())
        live_dts = {_dt(d + k) for d in days for k in range(-1, 2)}
        observed = self.lake.read("live_sessions", live_dts)
        if observed.num_rows:
            from . import live

            polls = self.lake.read("live_polls", live_dts)
            win = live.observed_windows(observed, polls, self.clock(), self.config.live_freshness_seconds * 1000)
            reported = self.lake.read("sessions", columns=["session_id"], latest=False,
                                      filter=pc.field("session_id").isin(win.column("session_id")))
            win = win.filter(pc.invert(pc.is_in(win.column("session_id"), reported.column("session_id"))))
            if win.num_rows:
                win = win.select(list(SESSION_COLS)).cast(sessions.schema)
                sessions = pa.concat_tables([sessions, win])
                source = pa.concat_arrays([source, pa.array(["live"] * win.num_rows, pa.string())])
        return sessions, source

    def live_fresh(self, days: list[int]) -> Callable[[np.ndarray], np.ndarray]:
        """For which event times was the live AppStream view complete enough (every stack/fleet in
        scope polled without error within the freshness on both sides) to call a claim unknown?"""
        from . import live

        polls = self.lake.read("live_polls", {_dt(d + k) for d in days for k in range(-1, 2)})
        fresh = self.config.live_freshness_seconds * 1000
        now = self.clock()
        stacks = self.config.live_stacks or None

        def check(t: np.ndarray) -> np.ndarray:
            if polls.num_rows == 0:
                return np.zeros(len(t), dtype=bool)
            return live.live_fresh_mask(polls, stacks, t, now, fresh)

        return check

    # -- live AppStream observations ------------------------------------------------------------
    def ingest_live(self, sessions: list[dict], observed_at_ms: int, polled: list[tuple[str, str]],
                    errors: dict[tuple[str, str], str] | None = None) -> LiveOutcome:
        """Store one poll of the AppStream API (DescribeSessions results for the ``polled`` pairs).

        CloudTrail files land 5+ minutes after the calls, so writes are attributed against these
        observations as they are ingested; no recomputation is needed here.
        """
        from . import live

        snap = live.snapshot_table(sessions, observed_at_ms)
        dt = _dt(observed_at_ms // DAY_MS)
        name = f"snap-{observed_at_ms}"
        if snap.num_rows:
            self.lake.write_file("live_sessions", dt, name, snap)
        seen: dict[tuple[str, str], int] = {}
        for st, fl in zip(snap.column("stack_name").to_pylist(), snap.column("fleet_name").to_pylist(),
                          strict=True):
            seen[(st, fl)] = seen.get((st, fl), 0) + 1
        errors = errors or {}
        pairs = sorted(set(polled) | set(errors))
        polls = pa.table({
            "observed_at": pa.array([observed_at_ms] * len(pairs), pa.int64()).cast(TS),
            "stack_name": [p[0] for p in pairs],
            "fleet_name": [p[1] for p in pairs],
            "sessions_seen": pa.array([seen.get(p, 0) for p in pairs], pa.int64()),
            "error": pa.array([errors.get(p) for p in pairs], pa.string()),
        })
        if pairs:
            self.lake.write_file("live_polls", dt, name, conform(polls, LIVE_POLLS))
        for table in ("live_sessions", "live_polls"):
            self.maybe_compact(table, dt)
        return LiveOutcome(observations=snap.num_rows, polled=len(polled), failed=len(errors))

    def logon_window(self, days: list[int]) -> pa.Table:
        back = math.ceil((self.config.max_session_hours + self.config.logon_window_hours) / 24) + 2
        dts = {_dt(d + k) for d in days for k in range(-back, 2)}
        return self.lake.read("logons", dts)

    def coverage(self) -> Coverage:
        return Coverage.from_dates(self.lake.partitions("sessions"), self.clock(), self.config.report_grace_hours)

    def known_sessions(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` any sessions report or live observation knows."""
        found: set[str] = set()
        for table in ("sessions", "live_sessions"):
            t = self.lake.read(table, columns=["session_id"], latest=False, filter=pc.field("session_id").isin(ids))
            found.update(t.column("session_id").to_pylist())
        return found

    def _attribute_and_alert(self, writes: pa.Table, name: str, summary: IngestSummary | None,
                             scope_events: str | None, replace_files: list[str] | None = None) -> None:
        now = self.clock()
        days = sorted({int(d) for d in np.unique(
            writes.column("event_time").cast(pa.int64()).to_numpy(zero_copy_only=False) // DAY_MS)})
        sessions, source = self.session_window(days)
        logons = self.logon_window(days)
        res = attribute(writes, sessions, logons, self.config, self.coverage(), now,
                        known_session=self.known_sessions, session_source=source,
                        live_fresh=self.live_fresh(days))
        act = res.activity
        if replace_files:
            act = carry_previous(act, self.lake.read("attributed_activity", files=replace_files))
        dts = dt_column(act.column("event_time"))
        written = self.lake.write_partitioned("attributed_activity", name, act, dts)
        if replace_files:
            self.lake.delete([f for f in replace_files if f not in written])
        raised = rules.write_alerts(res, self.config)
        self._merge_alerts(raised, act.column("event_id"), list(rules.WRITE_RULES), dts, name, now, summary,
                           whole_days=scope_events == "all")
        for dt in pc.unique(dts).to_pylist():
            self.maybe_compact("attributed_activity", dt)

    def pending_days(self) -> list[str]:
        """Partitions that still hold pending writes (to re-check when time passes)."""
        t = self.lake.read("attributed_activity", filter=pc.field("status") == PENDING,
                           columns=["event_id", "status", "dt"])
        return sorted(set(t.column("dt").to_pylist()))

    # -- compaction -----------------------------------------------------------------------------
    def maybe_compact(self, table: str, dt: str, force: bool = False) -> str | None:
        """Compact the partition in tiers by size (see ``plan_compaction``): each merge rewrites a
        bounded set of files, so a day's compactions rewrite each row O(log(day)) times, not once per
        compaction.  ``force``: merge every file of the partition into one.  Returns the last file
        written (None: nothing to do)."""
        t0 = time.perf_counter()
        try:
            written = None
            for _ in range(COMPACT_MAX_MERGES):
                files = self._settle(table, dt)
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
        paths = [f.path for f in files]
        name = compact_name(paths)
        # the marker is written first and removed last: a retry after a death between writing the
        # output and deleting the inputs deletes them (see _settle) instead of merging them again
        marker = f"{self.lake.part_dir(table, dt)}/{_MARKER}{name}.json"
        self.lake.put_json(marker, {"output": f"{name}.parquet", "inputs": [
            [posixpath.basename(f.path), f.size, f.mtime_ns] for f in files]})
        data = self.lake.read(table, files=paths, latest=False).drop_columns(["dt"])
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


def _one_chunk(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    col = col.cast(pa.string())
    if isinstance(col, pa.Array):
        return col
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def carry_previous(act: pa.Table, old: pa.Table) -> pa.Table:
    """Fill ``previous_*`` where a recomputation changed an event's status, session or source."""
    if old.num_rows == 0 or act.num_rows == 0:
        return act
    idx = pc.index_in(act.column("event_id"), value_set=old.column("event_id"))
    has_old = pc.is_valid(idx)
    take = idx.fill_null(0)

    def old_col(name: str) -> pa.Array:
        col = old.column(name).combine_chunks().take(take)
        return pc.if_else(has_old, col, pa.scalar(None, col.type))

    o_status, o_sid, o_src = old_col("status"), old_col("session_id"), old_col("session_source")

    def differs(a: pa.Array, b: pa.Array) -> pa.Array:
        eq = pc.equal(a, b)
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        return pc.invert(pc.or_(pc.fill_null(eq, False), both_null))

    changed = pc.and_(has_old, pc.or_(pc.or_(differs(act.column("status"), o_status),
                                             differs(act.column("session_id"), o_sid)),
                                      differs(act.column("session_source"), o_src)))
    for col, new in (("previous_status", o_status), ("previous_session_id", o_sid),
                     ("previous_session_source", o_src)):
        carried = old_col(col)
        i = act.schema.get_field_index(col)
        act = act.set_column(i, col, pc.if_else(changed, new, carried))
    return act


def empty_activity() -> pa.Table:
    return ATTRIBUTED_ACTIVITY.empty_table()


def empty_alerts() -> pa.Table:
    return ALERTS.empty_table()


def latest_rows(t: pa.Table, table: str) -> pa.Table:
    return keep_latest(t, table)
