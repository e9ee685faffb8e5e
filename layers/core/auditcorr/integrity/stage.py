"""The integrity stage of the pipeline: what is kept of every log file and digest, and validation
when digests (or late log files) arrive, in any order.

Kept in the lake's state (small, addressed by the file's key, so no listing of big tables):

- ``_state/integrity/logs/<account>/<region>/<day>/<log file name>.json``: the SHA-256 of the log
  file's uncompressed content and the gzip outcome, computed while the parser inflates it (no second
  inflate); or, for a file a digest lists that has not arrived yet, the digest that lists it
  (``listed_by``), so the file's arrival re-runs that digest's validation (a log file after its
  digest is not missing);
- ``_state/integrity/digests/<account>/<region>/<day>/<digest file name>``: the digest as delivered,
  and ``<name>.meta.json`` (where it was read from, its S3 user metadata: the signature);
- ``_state/integrity/keys/<fingerprint>.der``: CloudTrail public keys fetched from ``ListPublicKeys``
  (cached: keys are looked up by fingerprint once);
- ``_state/integrity/scope/<account>_<region>.json``: the end of the first digest seen (a digest
  missing after it is a gap; before it, history this lake never had).

A validation runs around one digest: the digests ending within ``CONTEXT`` (3 h) of it (plus the
digest each one names as its predecessor, fetched by key) and the log files delivered in that span;
rows are written for those digests and the log files they list (or that lie after the earliest of
them), and only where something changed (``log_file_integrity``); the signals become alerts, merged
like every alert; a log file found modified marks the writes read from it at once
(``attributed_activity.log_integrity``), every other status reaches them at the day's re-attribution.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from ..config import Config
from ..counts import FileOutcome, IngestSummary
from ..lake import Lake, LakePathError
from ..schemas import LOG_FILE_INTEGRITY, TS, conform
from ..timeparse import dt_column
from . import alerts as integrity_alerts
from .gzipstream import CORRUPT, TRAILING_DATA, TRUNCATED, GzipHash
from .inputs import DigestMetadata, DigestSeen, KeyRing, LogFileSeen, digest_seen, metadata_from_head_object
from .keys import LogKey, parse_digest_key, parse_log_key, relative_key
from .validate import MODIFIED, NOT_YET_COVERED, UNVERIFIABLE, DigestRow, IntegrityReport, LogRow, validate

log = logging.getLogger("auditcorr")

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
#: a validation reads the digests ending within this much of the one that arrived (plus the
#: predecessor each names) and the log files of that span: a digest arriving out of order by more
#: than this does not re-check the digests after it
CONTEXT = timedelta(hours=3)
_DIGEST_NAME_TIME = re.compile(r"_(\d{8}T\d{6}Z)(?:_backfill)?\.json\.gz\Z", re.ASCII)
_LOG_NAME_TIME = re.compile(r"_(\d{8}T\d{4}Z)_[A-Za-z0-9]+\.json\.gz\.json\Z", re.ASCII)
#: how far a log file's name time may lie before the window of the digest that lists it
SLACK = timedelta(minutes=15)
_NOT_AS_DELIVERED = (TRAILING_DATA, TRUNCATED, CORRUPT)
_COMPARED = ("object_key", "digest_key", "expected_sha256", "actual_sha256", "status", "reason",
             "signature_status", "trust_source", "chain_status", "chain_reason", "missing_before")

#: ``(region, start, end) -> list-public-keys output`` (the AWS adapter's ``ListPublicKeys`` for the keys
#: used in that window); None locally
KeyFetcher = Callable[[str, datetime, datetime], Mapping[str, object]]
#: ``(alerts raised, subjects in scope, rules, dts, name, now, summary, closed_reason)``: the alert merge
AlertSink = Callable[..., None]


def _day(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def _days(lo: datetime, hi: datetime) -> list[str]:
    first, last = lo.astimezone(UTC).date(), hi.astimezone(UTC).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _name_time(pattern: re.Pattern[str], name: str) -> datetime | None:
    m = pattern.search(name)
    if not m:
        return None
    text = m.group(1)
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ" if len(text) == 16 else "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def digest_status(row: DigestRow) -> tuple[str, str | None]:
    """One word for a digest row: verified, invalid or unverifiable (and why)."""
    if row.signature_status in ("no_key", "no_metadata", "unsupported_algorithm") and row.trust_source is None:
        return UNVERIFIABLE, f"signature_{row.signature_status}"
    if row.trust_source is None:
        return "invalid", f"signature_{row.signature_status}"
    if row.chain_status == "broken_link":
        return "invalid", f"chain_{row.chain_reason}"
    if row.chain_status == "gap_before":
        return "verified", "gap_before"
    return "verified", None if row.signature_status == "valid" else f"signature_{row.signature_status}"


class IntegrityStage:
    def __init__(self, lake: Lake, config: Config, clock: Callable[[], int], merge_alerts: AlertSink,
                 update_activity: Callable[[dict[str, str], list[str], str, int], None],
                 compact: Callable[[str, str], object],
                 key_fetcher: KeyFetcher | None = None, local_keys: KeyRing | None = None) -> None:
        self.lake = lake
        self.config = config
        self.clock = clock
        self.merge_alerts = merge_alerts
        self.update_activity = update_activity
        self.compact = compact
        self.key_fetcher = key_fetcher
        self._local_keys = local_keys
        self._keys: KeyRing | None = None
        self._fetched: set[str] = set()
        self._firsts: dict[tuple[str, str], datetime | None] = {}

    # -- state paths ------------------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return self.lake.state_path("integrity", *parts)

    def _log_path(self, k: LogKey) -> str:
        return self._path("logs", k.account, k.region, _day(k.time), posixpath.basename(k.rel) + ".json")

    def _digest_path(self, account: str, region: str, end: datetime, name: str) -> str:
        return self._path("digests", account, region, _day(end), name)

    def _list(self, directory: str) -> list[str]:
        sel = pafs.FileSelector(directory, recursive=False, allow_not_found=True)
        return sorted(i.path for i in self.lake.fs.get_file_info(sel) if i.type == pafs.FileType.File)

    # -- keys -------------------------------------------------------------------------------------
    @property
    def keys(self) -> KeyRing:
        if self._keys is None:
            ring = KeyRing()
            if self._local_keys is not None:
                for fp in self._local_keys:
                    key = self._local_keys.get(fp)
                    if key is not None:
                        ring.add(key)
            for path in self._list(self._path("keys")):
                name = posixpath.basename(path)
                data = self.lake.get_bytes(path)
                if data is not None and name.endswith(".der"):
                    ring.add_bytes(name, data, expected_fingerprint=name[:-4])
            self._keys = ring
        return self._keys

    def _ensure_key(self, fingerprint: str, region: str, start: datetime, end: datetime) -> None:
        """Ask ``ListPublicKeys`` (once per fingerprint and process) when a digest names a key not yet
        known; cache the keys it returns in the lake."""
        if self.key_fetcher is None or self.keys.get(fingerprint) is not None or fingerprint in self._fetched:
            return
        self._fetched.add(fingerprint)
        doc = self.key_fetcher(region, start, end)
        fresh = KeyRing()
        fresh.add_list_public_keys(doc)
        items = doc.get("PublicKeyList") or []
        for item in items if isinstance(items, list) else []:
            fp = item.get("Fingerprint") if isinstance(item, Mapping) else None
            value = item.get("Value") if isinstance(item, Mapping) else None
            if isinstance(fp, str) and isinstance(value, bytes) and fresh.get(fp) is not None:
                self.lake.put_bytes(self._path("keys", f"{fp.lower()}.der"), value)
        self._keys = None  # reload with the cached keys

    # -- a log file -------------------------------------------------------------------------------
    def log_file(self, source: str, log_hash: GzipHash | None, name: str,
                 summary: IngestSummary | None = None) -> str:
        """Keep the log file's hash; returns its status for the writes read from it (re-validating
        its digest first when one already listed it)."""
        k = parse_log_key(source)
        outcome = log_hash.outcome if log_hash is not None else CORRUPT
        if k is None:
            return UNVERIFIABLE
        try:
            path = self._log_path(k)
        except LakePathError:  # a name longer than the lake accepts: CloudTrail writes none
            return UNVERIFIABLE
        before = self.lake.get_json(path)
        listed_by = before.get("listed_by") if isinstance(before, dict) else None
        state: dict[str, object] = {"key": source, "outcome": outcome,
                                    "sha256": log_hash.sha256 if log_hash is not None else None}
        if listed_by:
            state["listed_by"] = listed_by
        self.lake.put_json(path, state)
        if isinstance(listed_by, str):
            d = parse_digest_key(listed_by)
            if d is not None:
                status = self.revalidate(d.account, d.region, d.end_time, name, summary).get(k.rel)
                if status is not None:
                    return status[0]
        return MODIFIED if outcome in _NOT_AS_DELIVERED else NOT_YET_COVERED

    # -- a digest ---------------------------------------------------------------------------------
    def digest(self, source: str, data: bytes, metadata: Mapping[str, object] | None, bucket: str | None,
               name: str, summary: IngestSummary | None = None) -> FileOutcome:
        out = FileOutcome(source=source, kind="digest")
        k = parse_digest_key(source)
        if k is None:
            out.note = "digest file with a name CloudTrail does not write: not validated"
            return out
        meta = metadata_from_head_object(metadata) if metadata is not None else None
        try:
            base = self._digest_path(k.account, k.region, k.end_time, posixpath.basename(k.rel))
        except LakePathError:
            out.note = "digest file with a name longer than CloudTrail writes: not validated"
            return out
        self.lake.put_bytes(base, data)
        self.lake.put_json(base + ".meta.json", {"key": source, "bucket": bucket,
                                                 "metadata": _meta_doc(meta)})
        seen = digest_seen(source, data, meta, bucket=bucket)
        if seen.parsed is not None:
            d = seen.parsed.digest
            self._ensure_key(d.public_key_fingerprint, k.region, d.digest_start_time, d.digest_end_time)
        self._note_first(k.account, k.region, k.end_time)
        status, reason = self.revalidate(k.account, k.region, k.end_time, name, summary).get(k.rel, ("?", None))
        out.note = f"digest: {status}" + (f" ({reason})" if reason else "")
        return out

    def _note_first(self, account: str, region: str, end: datetime) -> None:
        first = self._first(account, region)
        if first is None or end < first:
            self.lake.put_json(self._path("scope", f"{account}_{region}.json"), {"first_end_ms": _ms(end)})
            self._firsts[(account, region)] = end

    def _first(self, account: str, region: str) -> datetime | None:
        """The end of the first digest of (account, region) this lake holds (remembered per process:
        it only ever moves earlier, and only here)."""
        if (account, region) not in self._firsts:
            doc = self.lake.get_json(self._path("scope", f"{account}_{region}.json"))
            first = doc.get("first_end_ms") if isinstance(doc, dict) else None
            self._firsts[(account, region)] = datetime.fromtimestamp(first / 1000, UTC) \
                if isinstance(first, int) else None
        return self._firsts[(account, region)]

    # -- loading state ----------------------------------------------------------------------------
    def _load_digest(self, path: str) -> DigestSeen | None:
        data = self.lake.get_bytes(path)
        doc = self.lake.get_json(path + ".meta.json")
        if data is None or not isinstance(doc, dict):
            return None
        meta = doc.get("metadata")
        metadata = metadata_from_head_object(meta) if isinstance(meta, dict) else None
        bucket = doc.get("bucket") if isinstance(doc.get("bucket"), str) else None
        return digest_seen(str(doc.get("key")), data, metadata, bucket=bucket)

    def stored_digest(self, rel_or_key: str) -> tuple[bytes, dict] | None:
        """(bytes as delivered, meta document) of a stored digest (the evidence bundle reads it)."""
        k = parse_digest_key(rel_or_key)
        if k is None or len(posixpath.basename(k.rel)) > 190:
            return None
        base = self._digest_path(k.account, k.region, k.end_time, posixpath.basename(k.rel))
        data, doc = self.lake.get_bytes(base), self.lake.get_json(base + ".meta.json")
        return (data, doc) if data is not None and isinstance(doc, dict) else None

    def _digests_between(self, account: str, region: str, lo: datetime, hi: datetime) -> list[DigestSeen]:
        """The stored digests of (account, region) ending in [lo, hi] (by the time in their names)."""
        out = []
        for day in _days(lo, hi):
            for path in self._list(self._path("digests", account, region, day)):
                when = _name_time(_DIGEST_NAME_TIME, posixpath.basename(path))
                if when is None or not lo <= when <= hi:
                    continue  # (the .meta.json notes do not match)
                seen = self._load_digest(path)
                if seen is not None:
                    out.append(seen)
        return out

    def _logs_between(self, account: str, region: str, lo: datetime, hi: datetime) -> list[LogFileSeen]:
        """The log files of (account, region) seen, delivered in [lo, hi] (the time in their names)."""
        seen = []
        for day in _days(lo, hi):
            for path in self._list(self._path("logs", account, region, day)):
                when = _name_time(_LOG_NAME_TIME, posixpath.basename(path))
                if when is None or not lo <= when <= hi:
                    continue
                raw = self.lake.get_bytes(path)
                try:
                    doc = orjson.loads(raw) if raw is not None else None
                except orjson.JSONDecodeError:
                    continue
                if isinstance(doc, dict) and isinstance(doc.get("key"), str):  # not just a "listed_by" note
                    seen.append(LogFileSeen(doc["key"], doc.get("sha256"), str(doc.get("outcome"))))
        return seen

    # -- validation ---------------------------------------------------------------------------------
    def revalidate(self, account: str, region: str, end: datetime, name: str,
                   summary: IngestSummary | None = None) -> dict[str, tuple[str, str | None]]:
        """Validate around the digest ending at ``end``; write what changed; returns the (status, reason)
        of the log files and digests in focus, by key from ``AWSLogs/`` on."""
        digests = self._digests_between(account, region, end - CONTEXT, end + CONTEXT)
        focus = {relative_key(d.key) for d in digests}
        loaded = set(focus)
        for d in list(digests):  # the predecessor each names, when stored under an older day
            prev = d.parsed.digest.previous_s3_object if d.parsed else None
            path = self._stored_path(prev) if prev and relative_key(prev) not in loaded else None
            seen = self._load_digest(path) if path else None
            if seen is not None and prev:
                digests.append(seen)
                loaded.add(relative_key(prev))
        logs = self._logs_between(account, region, end - CONTEXT - 2 * HOUR, end + CONTEXT + HOUR)
        now = self.clock()
        report = validate(digests, logs, self.keys, window_start=self._first(account, region),
                          as_of=datetime.fromtimestamp(now / 1000, UTC), delivery_slack=SLACK)
        seen_rels = {k.rel for k in (parse_log_key(x.key) for x in logs) if k is not None}
        return self._write(report, focus, seen_rels, name, now, summary)

    def _stored_path(self, key: str) -> str | None:
        k = parse_digest_key(key)
        if k is None or len(posixpath.basename(k.rel)) > 190:
            return None
        return self._digest_path(k.account, k.region, k.end_time, posixpath.basename(k.rel))

    def _write(self, report: IntegrityReport, focus: set[str], seen_rels: set[str], name: str, now: int,
               summary: IngestSummary | None) -> dict[str, tuple[str, str | None]]:
        digest_rows = [r for r in report.digests if r.rel_key in focus]
        starts = [r.digest_start for r in digest_rows if r.digest_start is not None]
        earliest = min(starts) - SLACK if starts else None
        focus_digest_keys = {r.digest_key for r in digest_rows}
        log_rows = [r for r in report.logs
                    if r.digest_key in focus_digest_keys
                    or (r.digest_key is None and earliest is not None and r.log_time is not None
                        and r.log_time >= earliest)]
        self._mark_listed([r for r in log_rows if r.digest_key is not None and r.rel_key not in seen_rels])
        checked = pa.scalar(now, pa.int64()).cast(TS)
        table = _rows_table(log_rows, digest_rows, checked)
        changed, before = self._changed(table)
        if changed.num_rows:
            self.lake.write_partitioned("log_file_integrity", name, changed, dt_column(changed.column("file_time")))
        # alerts: every subject in focus is in scope (a problem no longer found is closed)
        # (from the table: a file without a time in its name is dated by the check, never dropped)
        subjects = {r["rel_key"]: integrity_alerts.Subject(r["object_key"], r["file_time"], r["digest_key"])
                    for r in table.select(["rel_key", "object_key", "file_time", "digest_key"]).to_pylist()}
        raised = integrity_alerts.alert_rows(report.signals, subjects, self.config)
        # an alert is only ever open on a file whose latest row says something is wrong: when none
        # did and nothing is raised, there is nothing to merge (the usual digest: a read saved)
        if subjects and (raised.num_rows or any(_alarming(b) for b in before.values())):
            times = pa.array([s.file_time for s in subjects.values()], TS)
            self.merge_alerts(raised, list(subjects), list(integrity_alerts.INTEGRITY_RULES), dt_column(times),
                              name, now, summary, closed_reason=integrity_alerts.CLOSED_REASON)
        # the writes read from a log file found modified (or no longer modified) get a new version at
        # once; every other change (not_yet_covered -> verified, the usual one) reaches
        # attributed_activity.log_integrity at the day's next re-attribution (the sessions report):
        # a new version of every write for every digest would double the table's writes
        # (log_file_integrity_latest, joined on log_file, is always current)
        urgent = [r for r in changed.select(["object_key", "rel_key", "file_kind", "status", "file_time"]).to_pylist()
                  if r["file_kind"] == "log" and MODIFIED in (r["status"], before.get(r["rel_key"], {}).get("status"))]
        if urgent:
            by_source = {r["object_key"]: r["status"] for r in urgent}
            days = sorted({_day(r["file_time"] - d) for r in urgent for d in (timedelta(0), DAY)})
            self.update_activity(by_source, days, name, now)
        for dt in pc.unique(dt_column(changed.column("file_time"))).to_pylist() if changed.num_rows else []:
            self.compact("log_file_integrity", dt)
        return {r["rel_key"]: (r["status"], r["reason"])
                for r in table.select(["rel_key", "status", "reason"]).to_pylist()}

    def _mark_listed(self, unseen: list[LogRow]) -> None:
        """A log file a digest lists that has not arrived: note who lists it, so its arrival re-validates."""
        for r in unseen:
            k = parse_log_key(r.object_key)
            if k is None or r.digest_key is None or len(posixpath.basename(k.rel)) > 190:
                continue
            path = self._log_path(k)
            if self.lake.get_json(path) is None:
                self.lake.put_json(path, {"listed_by": r.digest_key})

    def _changed(self, table: pa.Table) -> tuple[pa.Table, dict[str, dict[str, object]]]:
        """The rows that differ from the latest ones already in the lake, and the earlier statuses."""
        if table.num_rows == 0:
            return table, {}
        dts = pc.unique(dt_column(table.column("file_time"))).to_pylist()
        prev = self.lake.read("log_file_integrity", [d for d in dts if d],
                              filter=pc.field("rel_key").isin(table.column("rel_key")))
        if prev.num_rows == 0:
            return table, {}
        old = {r["rel_key"]: (tuple(r[c] for c in _COMPARED), r["checked_at"])
               for r in prev.select(["rel_key", "checked_at", *_COMPARED]).to_pylist()}
        keep, at = [], []
        for r in table.select(["rel_key", "checked_at", *_COMPARED]).to_pylist():
            before = old.get(r["rel_key"])
            keep.append(before is None or before[0] != tuple(r[c] for c in _COMPARED))
            # a new version is always later than the one it replaces (the clock may not have moved)
            at.append(r["checked_at"] if before is None or before[1] < r["checked_at"]
                      else before[1] + timedelta(milliseconds=1))
        table = table.set_column(table.schema.get_field_index("checked_at"), "checked_at", pa.array(at, TS))
        return table.filter(pa.array(keep, pa.bool_())), {k: dict(zip(_COMPARED, v[0], strict=True))
                                                          for k, v in old.items()}

    def statuses(self, sources: list[str], days: list[str]) -> dict[str, str]:
        """The current status of these log files (by the object name they were ingested under), from
        ``log_file_integrity`` (partitions ``days``); files without a row are absent."""
        have = set(self.lake.partitions("log_file_integrity"))
        days = [d for d in days if d in have]
        if not sources or not days:
            return {}
        t = self.lake.read("log_file_integrity", days, columns=["object_key", "file_kind", "status"],
                           filter=pc.field("object_key").isin(pa.array(sources, pa.string())))
        return {r["object_key"]: r["status"] for r in t.to_pylist() if r["file_kind"] == "log"}


def _alarming(row: Mapping[str, object]) -> bool:
    """A ``log_file_integrity`` row an integrity alert may be open on."""
    return (row.get("status") in (MODIFIED, "missing", "invalid")
            or row.get("chain_status") in ("gap_before", "broken_link")
            or row.get("signature_status") not in (None, "valid", "no_key", "no_metadata", "unsupported_algorithm"))


def _meta_doc(meta: DigestMetadata | None) -> dict[str, str] | None:
    if meta is None:
        return None
    doc = {"signature": meta.signature, "signature-algorithm": meta.signature_algorithm,
           "backfill-generation-timestamp": meta.backfill_generation_timestamp}
    return {k: v for k, v in doc.items() if v is not None}


def _rows_table(logs: list[LogRow], digests: list[DigestRow], checked: pa.Scalar) -> pa.Table:
    rows: list[dict[str, object]] = []
    for r in logs:
        rows.append({"object_key": r.object_key, "rel_key": r.rel_key, "file_kind": "log", "account": r.account,
                     "region": r.region, "org_id": r.org_id, "file_time": r.log_time, "digest_key": r.digest_key,
                     "expected_sha256": r.expected_sha256, "actual_sha256": r.actual_sha256, "status": r.status,
                     "reason": r.reason})
    for d in digests:
        status, reason = digest_status(d)
        k = parse_digest_key(d.digest_key)
        rows.append({"object_key": d.digest_key, "rel_key": d.rel_key, "file_kind": "digest", "account": d.account,
                     "region": d.region, "org_id": d.org_id,
                     "file_time": k.end_time if k is not None else d.digest_end,
                     "actual_sha256": d.sha256, "status": status, "reason": reason, "trail": d.trail,
                     "home_region": d.home_region, "backfill": d.backfill, "digest_start": d.digest_start,
                     "fingerprint": d.fingerprint, "signature_status": d.signature_status,
                     "trust_source": d.trust_source, "chain_status": d.chain_status, "chain_reason": d.chain_reason,
                     "missing_before": d.missing_before, "previous_key": d.previous_key, "log_count": d.log_count})
    schema = LOG_FILE_INTEGRITY.remove_metadata()
    t = pa.Table.from_pylist(rows, schema=schema.remove(schema.get_field_index("checked_at")))
    t = t.append_column("checked_at", pa.array([checked.as_py()] * t.num_rows, TS))
    # a row without a time (an unreadable digest name) goes to the day of the check
    t = t.set_column(t.schema.get_field_index("file_time"), "file_time",
                     pc.fill_null(t.column("file_time"), checked))
    return conform(t, LOG_FILE_INTEGRITY)


def update_activity(lake: Lake, read_where_in: Callable[[str, list[str], str, pa.Array], pa.Table],
                    by_source: Mapping[str, str], days: list[str], name: str, now: int) -> list[str]:
    """New versions of the ``attributed_activity`` rows of the writes read from these log files, with
    their new ``log_integrity`` (only rows whose value changes).  Returns the partitions written."""
    have = set(lake.partitions("s3_writes"))
    sources = pa.array(sorted(by_source), pa.string())
    writes = lake.read("s3_writes", [d for d in days if d in have], columns=["event_id", "source_object", "dt"],
                       filter=pc.field("source_object").isin(sources))
    if writes.num_rows == 0:
        return []
    status_of = dict(by_source)
    new_of = {e: status_of[s] for e, s in zip(writes.column("event_id").to_pylist(),
                                              writes.column("source_object").to_pylist(), strict=True)}
    act = read_where_in("attributed_activity", sorted(set(writes.column("dt").to_pylist())), "event_id",
                        pa.array(sorted(new_of), pa.string()))
    if act.num_rows == 0:
        return []
    act = act.drop_columns(["dt"]) if "dt" in act.column_names else act
    new = pa.array([new_of.get(e) for e in act.column("event_id").to_pylist()], pa.string())
    differs = pc.invert(pc.fill_null(pc.equal(act.column("log_integrity"), new), False))
    act = act.filter(differs)
    if act.num_rows == 0:
        return []
    new = new.filter(differs)
    stamp = pa.scalar(now, pa.int64()).cast(TS)
    old_at = act.column("computed_at")
    later = pc.fill_null(pc.greater(stamp, old_at), True)
    at = pc.if_else(later, stamp, pc.add(old_at, pa.scalar(1, pa.duration("ms"))))
    act = act.set_column(act.schema.get_field_index("log_integrity"), "log_integrity", new)
    act = act.set_column(act.schema.get_field_index("computed_at"), "computed_at", at)
    dts = dt_column(act.column("event_time"))
    lake.write_partitioned("attributed_activity", name, act, dts)
    return [d for d in pc.unique(dts).to_pylist() if d]
