"""The pipeline, top to bottom as the README's diagram: load -> attribute -> alert -> compact.

I/O-agnostic: it receives object bytes and names, a :class:`Lake` and a clock.  The CLI feeds it
local files; the Lambda handlers feed it S3 objects.  Each stage lives in a module of its own:

``load``            what an object is, manifests, de-duplication, quarantine
``attribution``     the join and what it reads (``auditcorr.attribution.inputs``)
``alert_merge``     raised alerts reconciled with the earlier versions
``reattribution``   which days a report changes; ``previous_*``
``live_ingest``     one poll of the AppStream API
``compaction``      tiered, crash-safe compaction
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import logon_check, rules
from ..attribution import DAY_MS, PENDING
from ..attribution.inputs import AttributionInputs
from ..attribution.scope import UNKNOWN, Scopes
from ..completeness import Completeness, account_clocks, newest_per_scope
from ..completeness import scope_name as scope_file
from ..config import Config
from ..conflicts import conflict_table
from ..counts import FileOutcome, IngestSummary
from ..ingest.cloudtrail import UnreadableObject, parse_cloudtrail
from ..ingest.inflate import DEFAULT_MAX_INFLATED
from ..ingest.usage import parse_usage_report
from ..integrity import hash_gzip_stream, metadata_from_head_object
from ..integrity.stage import IntegrityStage, KeyFetcher, update_activity
from ..lake import SORT_KEYS, Lake, input_id
from ..schemas import conform
from ..timeparse import day_number, day_string, dt_column
from .alert_merge import AlertMerge
from .compaction import Compactor, StageTimes
from .live_ingest import LiveOutcome, ingest_live
from .load import FileColumns, Manifests, classify, load_events, quarantine, with_scope
from .migration import migrate_legacy_reports
from .reattribution import carry_previous, days_affected_by_report

log = logging.getLogger("auditcorr")

Clock = Callable[[], int]  # epoch milliseconds


def wall_clock() -> int:
    return int(time.time() * 1000)


#: AppStream's usage-report bucket: ``appstream-logs-<region>-<account>-<random>``
_REPORT_BUCKET = re.compile(r"appstream-logs-([a-z]{2}(?:-[a-z]+)+-\d)-(\d{12})-")


def report_bucket_scope(source: str, scopes: Scopes) -> str | None:
    """The scope of a usage report from its bucket's name in ``source`` (an ``s3://`` URI or a local
    copy that kept the bucket name), or None."""
    m = _REPORT_BUCKET.search(source)
    if not m:
        return None
    return scopes.scope_key(m.group(2), m.group(1))[0]


class Pipeline:
    def __init__(self, lake: Lake, config: Config, clock: Clock = wall_clock,
                 key_fetcher: KeyFetcher | None = None) -> None:
        self.lake = lake
        self.config = config
        self.clock = clock
        self.times = StageTimes()
        self.columns = FileColumns(lake)
        self.manifests = Manifests(lake)
        self.compactor = Compactor(lake, config, self.times)
        self.alerts = AlertMerge(lake, self.columns, self.compactor, config)
        self.inputs = AttributionInputs(lake, config, clock)
        self.scopes = Scopes(config)
        #: most an object may inflate to (bytes): the configuration's, else the parsers' default
        self.max_inflated = int(config.max_inflated_mb * (1 << 20)) if config.max_inflated_mb else DEFAULT_MAX_INFLATED
        self.completeness = Completeness(lake)
        self.integrity = _integrity_stage(self, key_fetcher) if config.integrity_enabled else None

    # -- entry points --------------------------------------------------------------------------
    def ingest_object(self, source: str, data: bytes, etag: str | None = None,
                      summary: IngestSummary | None = None, metadata: Mapping[str, object] | None = None,
                      bucket: str | None = None) -> FileOutcome:
        """Ingest one object; never raises for bad input (the outcome says what happened).
        ``metadata``/``bucket``: a digest's S3 user metadata (its signature) and the bucket it was read from."""
        kind = classify(source)
        if kind == "insight" or kind == "digest_metadata" or (kind == "digest" and self.integrity is None):
            return FileOutcome(source=source, kind=kind, note=f"{kind} file: not an event log, skipped")
        # a digest delivered again with other metadata (a signature) is a new input
        signature = metadata_from_head_object(metadata).signature if metadata is not None else None
        iid = input_id(source + ("#" + signature if signature else ""), data, etag)
        done = self.manifests.already(source, kind, iid)
        if done is not None:
            return done
        try:
            if kind == "digest" and self.integrity is not None:
                out = self.integrity.digest(source, data, metadata, bucket, f"integrity-{iid}", summary)
            elif kind == "cloudtrail":
                out = self._ingest_cloudtrail(source, data, iid, summary)
            else:
                out = self._ingest_report(source, data, iid, None if kind == "usage_report" else kind, summary)
        except UnreadableObject as exc:
            if kind == "cloudtrail" and self.integrity is not None:  # a log file that cannot be read is kept too
                self.integrity.log_file(source, hash_gzip_stream([data], max_inflated_bytes=1 << 30),
                                        f"integrity-{iid}", summary)
            self.quarantine(source, data, iid, str(exc))
            log.warning("input rejected", extra={"input_id": iid, "reason": str(exc)})
            return FileOutcome(source=source, kind=kind if kind != "usage_report" else "sessions_report",
                               error=str(exc))
        self.manifests.record(iid, out)
        return out

    def quarantine(self, source: str, data: bytes, iid: str, reason: str) -> str:
        return quarantine(self.lake, source, data, iid, reason, self.clock())

    def ingest_live(self, sessions: list[dict], observed_at_ms: int, polled: list[tuple[str, str]],
                    errors: dict[tuple[str, str], str] | None = None, account_id: str | None = None,
                    region: str | None = None) -> LiveOutcome:
        """Store one poll of the AppStream API (see ``live_ingest``) of ``account_id`` in ``region``;
        the poll's time is that scope's data clock (live, data time is now)."""
        out = ingest_live(self.lake, self.compactor, sessions, observed_at_ms, polled, errors, account_id, region)
        if account_id:
            self.completeness.advance({self.scopes.scope_key(account_id, region)[0]: observed_at_ms})
        return out

    # -- CloudTrail: parse -> load -> attribute + alert -> (logon re-check) -> compact --------------
    def _ingest_cloudtrail(self, source: str, data: bytes, iid: str,
                           summary: IngestSummary | None) -> FileOutcome:
        t0 = time.perf_counter()
        # plausible event times are judged against the delivery time in the key (data time), not the clock
        parsed = parse_cloudtrail(data, source, self.config, max_inflated=self.max_inflated)
        t0 = self.times.add("parse", t0)
        out = parsed.outcome
        name = f"part-{iid}"
        integrity = self.integrity.log_file(source, parsed.log_hash, f"integrity-{iid}", summary) \
            if self.integrity is not None else None
        t0 = self.times.add("integrity", t0)
        writes, write_scopes = with_scope("s3_writes", parsed.writes, self.scopes)
        logons, logon_scopes = with_scope("logons", parsed.logons, self.scopes)
        uses, _ = with_scope("credential_uses", parsed.credential_uses, self.scopes)
        new_writes = load_events(self.lake, self.columns, "s3_writes", writes, name, out)
        new_logons = load_events(self.lake, self.columns, "logons", logons, name, out)
        new_uses = load_events(self.lake, self.columns, "credential_uses", uses, name, out)
        if out.conflicts:  # one id, two contents: kept first-wins, recorded for the auditor
            now = self.clock()
            self.lake.write_file("event_id_conflicts", day_string(now // DAY_MS), name,
                                 conflict_table(out.conflicts, now))
        # the scopes' data clocks: how far their CloudTrail has come (decisions wait on these, not on
        # the wall clock)
        newest = newest_per_scope(write_scopes, writes.column("event_time"))
        for scope, t in newest_per_scope(logon_scopes, logons.column("event_time")).items():
            newest[scope] = max(t, newest.get(scope, t))
        clocks_before = account_clocks(self.completeness.clocks())
        self.completeness.advance(newest)
        t0 = self.times.add("write", t0)
        compacting = self.times.seconds.get("compact", 0.0)
        if new_writes.num_rows:
            self._attribute_and_alert(new_writes, name, summary, whole_days=False, log_integrity=integrity)
        if new_logons.num_rows:  # logons later than the report of the sessions they open
            self.recheck_logons(new_logons, f"logoncheck-{iid}", summary)
        # sessions whose logon check waited for this much CloudTrail are decided now
        self.check_sessions_now_due(clocks_before, account_clocks(newest), f"logondue-{iid}", summary)
        # the compactions of attributed_activity and alerts run in there: they count as "compact"
        self.times.add("attribute", t0, minus=self.times.seconds.get("compact", 0.0) - compacting)
        # compact only once this object's outputs all exist: until then a retry after a crash must
        # find its own rows under its own file name, or it would take them for duplicates and never
        # attribute them (tests/hardening/test_atomicity.py)
        for table, rows in (("s3_writes", new_writes), ("logons", new_logons), ("credential_uses", new_uses)):
            for dt in pc.unique(dt_column(rows.column("event_time"))).to_pylist() if rows.num_rows else []:
                self.maybe_compact(table, dt)
        return out

    # -- usage reports: load -> re-attribute the days they explain -> logon cross-check ------------
    def _ingest_report(self, source: str, data: bytes, iid: str, kind: str | None,
                       summary: IngestSummary | None) -> FileOutcome:
        rep = parse_usage_report(data, source, kind, max_inflated=self.max_inflated)
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
        if table == "applications":
            self.lake.write_file(table, rep.report_date, "report", rep.table)
            return out
        if rep.table.num_rows == 0:
            # a report with no sessions: its scope only from the AppStream bucket's name, if the source has it
            scope = report_bucket_scope(source, self.scopes)
            if scope is None:
                out.note = f"empty report for {rep.report_date} with no account in its name: nothing to record"
                return out
            self.lake.write_file(table, rep.report_date, f"report-{scope_file(scope)}", rep.table)
            self.completeness.record_report(scope, rep.report_date)
            self.reattribute(self.days_affected_by_report(rep.table, rep.report_date), f"recompute-{iid}", summary)
            return out
        # a day written by v1 (one unscoped report.parquet) is split by scope first, so this report
        # replaces its own scope's rows only (pipeline/migration.py)
        migrate_legacy_reports(self.lake, self.scopes, self.completeness, [rep.report_date])
        # one file per report day and scope (account, region): a report delivered again replaces its
        # own; sessions sorted by user (with the Bloom filter, a user's sessions are a row-group lookup)
        for scope, part in self.report_scopes(rep.table, report_bucket_scope(source, self.scopes)):
            data = part.sort_by([(k, "ascending") for k in SORT_KEYS["sessions"]])
            known = not scope.startswith(UNKNOWN)
            self.lake.write_file(table, rep.report_date, f"report-{scope_file(scope) if known else 'unknown'}", data)
            if known:  # rows that name no account cover no scope (and match no write)
                self.completeness.record_report(scope, rep.report_date)
        self.reattribute(self.days_affected_by_report(rep.table, rep.report_date), f"recompute-{iid}", summary)
        self.check_logons(rep.table, f"logons-{iid}", summary)
        # sessions of the day before whose logon check had to wait for CloudTrail are decided now
        before = day_string(day_number(rep.report_date) - 1)
        earlier = self.lake.read("sessions", [before])
        if earlier.num_rows:
            self.check_logons(earlier.drop_columns(["dt"]), f"logons-{iid}-before", summary)
        return out

    def report_scopes(self, sessions: pa.Table, bucket_scope: str | None) -> list[tuple[str, pa.Table]]:
        """A report's rows per scope (a report is one account's and region's; split if it mixes).
        Rows that name no account or region take them from the report bucket's name, if known."""
        account = sessions.column("aws_account_id").combine_chunks()
        region = sessions.column("region").combine_chunks()
        if bucket_scope is not None:
            b_account, _, b_region = bucket_scope.partition("|")
            account = pc.coalesce(account, pa.scalar(b_account))
            region = pc.coalesce(region, pa.scalar(b_region))
            sessions = sessions.set_column(sessions.schema.get_field_index("aws_account_id"), "aws_account_id", account)
            sessions = sessions.set_column(sessions.schema.get_field_index("region"), "region", region)
        keys, code, _ = self.scopes.keys(account, region)
        return [(scope, sessions.filter(pa.array(code == i))) for i, scope in enumerate(keys.to_pylist())
                if (code == i).any()]

    def days_affected_by_report(self, sessions: pa.Table, report_date: str) -> list[str]:
        return days_affected_by_report(sessions, report_date, set(self.lake.partitions("s3_writes")), self.config)

    # -- attribution and write alerts -----------------------------------------------------------
    def reattribute(self, dts: Iterable[str], name: str, summary: IngestSummary | None = None) -> None:
        """Recompute attribution and alerts for whole partitions (late data, coverage changes)."""
        for dt in sorted(set(dts)):
            old_files = self.lake.files("attributed_activity", dt)
            writes = self.lake.read("s3_writes", [dt])
            if writes.num_rows == 0:
                continue
            # old_files may include this run's own file, left by an attempt that died after writing it:
            # it is read for previous_* (history survives the retry) and overwritten, never deleted
            self._attribute_and_alert(writes.drop_columns(["dt"]), name, summary, whole_days=True,
                                      replace_files=old_files)
            if summary is not None:
                summary.recomputed_days.append(dt)

    def _attribute_and_alert(self, writes: pa.Table, name: str, summary: IngestSummary | None,
                             whole_days: bool, replace_files: list[str] | None = None,
                             log_integrity: str | None = None) -> None:
        now = self.clock()
        res = self.inputs.attribute(writes, now)
        act = res.activity
        if replace_files:
            act = carry_previous(act, self.lake.read("attributed_activity", files=replace_files))
        act = self._with_log_integrity(act, writes, log_integrity, refresh=bool(replace_files))
        dts = dt_column(act.column("event_time"))
        written = self.lake.write_partitioned("attributed_activity", name, act, dts)
        if replace_files:
            self.lake.delete([f for f in replace_files if f not in written])
        raised, subjects, covered = rules.attribution_signals(res, self.config)
        self.alerts.merge(raised, subjects, covered, dts, name, now, summary, whole_days=whole_days)
        for dt in pc.unique(dts).to_pylist():
            self.maybe_compact("attributed_activity", dt)

    def _with_log_integrity(self, act: pa.Table, writes: pa.Table, status: str | None, refresh: bool) -> pa.Table:
        """``log_file`` and ``log_integrity`` of each write: ``status`` when all came from one log file
        just parsed; on a re-attribution the current status of each file (else what the row had)."""
        if self.integrity is None or act.num_rows == 0:
            return act
        pos = pc.index_in(act.column("event_id"), value_set=writes.column("event_id"))
        files = writes.column("source_object").combine_chunks().take(pos)
        act = act.set_column(act.schema.get_field_index("log_file"), "log_file", files)
        if status is not None:
            new = pa.array([status] * act.num_rows, pa.string())
        elif refresh:
            days = sorted({day_string(int(d) + k) for d in np.unique(act.column("event_time").cast(pa.int64())
                                                                .to_numpy(zero_copy_only=False) // DAY_MS)
                           for k in (0, 1)})
            current = self.integrity.statuses(pc.unique(files).drop_null().to_pylist(), days)
            new = pc.coalesce(pa.array([current.get(f) for f in files.to_pylist()], pa.string()),
                              act.column("log_integrity"))
        else:
            return act
        return act.set_column(act.schema.get_field_index("log_integrity"), "log_integrity", new)

    def pending_days(self) -> list[str]:
        """Partitions that still hold pending writes (to re-check when time passes)."""
        t = self.lake.read("attributed_activity", filter=pc.field("status") == PENDING,
                           columns=["event_id", "status", "dt"])
        return sorted(set(t.column("dt").to_pylist()))

    # -- logon cross-check ----------------------------------------------------------------------
    def check_logons(self, sessions: pa.Table, name: str, summary: IngestSummary | None = None) -> None:
        """Logon cross-check of these sessions: ``session_without_logon``, ``logon_user_mismatch``."""
        rules_here = [r for r in logon_check.RULES if self.config.rule_enabled(r)]
        if sessions.num_rows == 0 or not rules_here:
            return
        now = self.clock()
        starts = sessions.column("session_start_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        days = sorted({int(d) for d in np.unique(starts // DAY_MS)})
        back = math.ceil(self.config.logon_window_hours / 24) + 1
        logons = self.lake.read("logons", {day_string(d + k) for d in days for k in range(-back, 2)})
        logons = logons.drop_columns(["dt"]) if "dt" in logons.column_names else logons
        # decided once the session's account's CloudTrail has come far enough (its data clock)
        clocks = account_clocks(self.completeness.clocks())
        data_now = np.array([clocks.get(a, 0) for a in sessions.column("aws_account_id").to_pylist()]
                            if "aws_account_id" in sessions.column_names else [0] * sessions.num_rows, np.int64)
        raised = conform(logon_check.evaluate(sessions, logons, self.config, data_now), rules.ALERT_IN)
        self.alerts.merge(raised, sessions.column("session_id").to_pylist(), rules_here,
                          dt_column(sessions.column("session_start_time")), name, now, summary)

    def check_sessions_now_due(self, before: dict[str, int], newest: dict[str, int], name: str,
                               summary: IngestSummary | None = None) -> None:
        """The logon check of a reported session is decided once its account's CloudTrail has come
        ``logon_check.DEFAULT_CLOUDTRAIL_LAG_MS`` past its start (data time): check the sessions whose
        moment came with this file (in whichever order reports and CloudTrail arrive, the same ones)."""
        wait = self.config.tolerance_seconds * 1000 + logon_check.DEFAULT_CLOUDTRAIL_LAG_MS
        moved = {a: (before.get(a, 0), t) for a, t in newest.items() if t > before.get(a, 0)}
        if not moved or not any(self.config.rule_enabled(r) for r in logon_check.RULES):
            return
        have = set(self.lake.partitions("sessions"))
        if not have:
            return
        ahead = int(self.config.max_session_hours * 3_600_000)
        lo = min(old for old, _ in moved.values()) - wait
        hi = max(new for _, new in moved.values()) - wait
        first = max(lo // DAY_MS, day_number(min(have)))
        dts = [d for d in (day_string(x) for x in range(first, (hi + ahead) // DAY_MS + 1)) if d in have]
        if not dts:
            return
        sessions = self.lake.read("sessions", dts).drop_columns(["dt"])
        if sessions.num_rows == 0:
            return
        start = sessions.column("session_start_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        account = sessions.column("aws_account_id").to_pylist()
        due = np.array([a in moved and moved[a][0] - wait < s <= moved[a][1] - wait
                        for a, s in zip(account, start.tolist(), strict=True)], dtype=bool)
        if due.any():
            self.check_logons(sessions.filter(pa.array(due)), name, summary)

    def recheck_logons(self, logons: pa.Table, name: str, summary: IngestSummary | None = None) -> None:
        """Re-run the logon cross-check for the reported sessions these logons could concern (starting
        in [first logon - tolerance, last logon + logon window]): a CloudTrail file that arrives after
        the sessions report (late, retried) must give the answer the other order gives."""
        t = logons.column("event_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        lo = int(t.min()) - self.config.tolerance_seconds * 1000
        hi = int(t.max()) + int(self.config.logon_window_hours * 3_600_000)
        last = (hi + int(self.config.max_session_hours * 3_600_000)) // DAY_MS + 1  # reports: by end day
        have = set(self.lake.partitions("sessions"))
        dts = [d for d in (day_string(x) for x in range(lo // DAY_MS, last + 1)) if d in have]
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
            self.reattribute([d for d in (day_string(x) for x in range(first // DAY_MS, end // DAY_MS + 1))
                              if d in have], name.replace("logoncheck-", "relogon-", 1), summary)

    # -- compaction -----------------------------------------------------------------------------
    def maybe_compact(self, table: str, dt: str, force: bool = False) -> str | None:
        return self.compactor.maybe_compact(table, dt, force)

    def compact(self, table: str, dt: str, files: list[str]) -> str:
        return self.compactor.compact(table, dt, files)


def _integrity_stage(pipe: Pipeline, key_fetcher: KeyFetcher | None) -> IntegrityStage:
    """The integrity stage wired to this pipeline's alert merge, compaction and activity table."""
    local_keys = None
    if pipe.config.integrity_public_keys_dir:
        from pathlib import Path

        from ..integrity.local import load_key_directory

        local_keys = load_key_directory(Path(pipe.config.integrity_public_keys_dir))

    def update(by_source: dict[str, str], days: list[str], name: str, now: int) -> None:
        for dt in update_activity(pipe.lake, pipe.alerts.read_where_in, by_source, days, name, now):
            pipe.maybe_compact("attributed_activity", dt)

    return IntegrityStage(pipe.lake, pipe.config, pipe.clock, pipe.alerts.merge, update, pipe.maybe_compact,
                          key_fetcher=key_fetcher, local_keys=local_keys)
