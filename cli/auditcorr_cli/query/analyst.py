"""The analysts' daily questions, as Athena (Trino) SQL with ``?`` parameters.

The same SQL runs locally (DuckDB, translated) and on Athena (execution parameters); user input is
only ever a parameter value, never SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

Runner = Callable[[str, list[Any]], pa.Table]

WHO_WRITES_SQL = """
SELECT event_time, event_name, event_id, bucket, key, source_ip, vpc_endpoint_id, principal_arn, role_arn,
       source_object, dt
FROM s3_writes
WHERE bucket = ? AND key = ?
ORDER BY event_time, event_id
"""

#: {placeholders} is a list of ``?`` -- one per value; the values are always parameters
WHO_ATTRIBUTION_SQL = """
SELECT event_id, status, match, claimed_session_id, session_id, session_source, user_id,
       session_start_time, session_end_time, fleet_name, stack_name, instance_id,
       candidate_session_ids, candidate_user_ids, logon_event_id, logon_time, logon_source_ip, log_integrity
FROM attributed_activity_latest
WHERE dt IN ({dts}) AND event_id IN ({ids})
"""

#: the integrity of the log files the writes were read from ({objects}: one ``?`` per object)
WHO_INTEGRITY_SQL = """
SELECT object_key, status AS log_status, reason AS log_reason, digest_key AS log_digest_key,
       checked_at AS log_checked_at
FROM log_file_integrity_latest
WHERE file_kind = 'log' AND object_key IN ({objects})
"""

#: ``timeline`` reads a user's writes without numbering the whole table. Every version of an event
#: carries the event's own ``dt`` and ``source_ip`` (they come from its ``s3_writes`` row), so the
#: latest version of every event that names the user lies among the rows at the places -- (day,
#: address) pairs -- where some row names the user. Step 1 finds those places (compacted files carry
#: a Bloom filter on ``user_id``: only the row groups holding the user are read); step 2 reads just
#: the rows at those places (compacted files are sorted by ``source_ip``: min/max statistics keep a
#: few row groups a day), keeps each event's latest row and, of those, the ones naming the user.
#: Filtering ``attributed_activity_latest`` by user instead numbers every row of the table first.
TIMELINE_PLACES_SQL = """
SELECT DISTINCT dt, source_ip FROM attributed_activity
WHERE user_id = ? AND dt >= ? AND dt <= ? AND event_time >= ? AND event_time < ?
"""

#: one branch per day of step 2 ({ips}: one ``?`` per address); branches are joined with UNION ALL
TIMELINE_PLACE_SQL = "SELECT * FROM attributed_activity WHERE dt = ? AND source_ip IN ({ips})"

TIMELINE_WRITES_SQL = """
SELECT event_time AS at, 'write' AS kind, concat(event_name, ' (', status, ')') AS what, source_ip AS ip,
       session_id, concat('s3://', bucket, '/', key) AS object, event_id AS ref
FROM (
  SELECT *, row_number() OVER (PARTITION BY dt, event_id ORDER BY computed_at DESC) AS rn
  FROM ({places}) v
) w
WHERE rn = 1 AND user_id = ? AND event_time >= ? AND event_time < ?
"""

#: ``dt`` is the event's UTC date for logons and alerts too, so the window bounds the partitions
#: read; sessions (a small table, written sorted by user) are matched on the user alone.
TIMELINE_OTHER_SQL = """
SELECT * FROM (
  SELECT event_time AS at, 'logon' AS kind, event_name AS what, source_ip AS ip,
         CAST(NULL AS varchar) AS session_id, CAST(NULL AS varchar) AS object, event_id AS ref
  FROM logons WHERE user_name = ? AND dt >= ? AND dt <= ?
  UNION ALL
  SELECT session_start_time, 'session_start', concat(coalesce(stack_name, '-'), '/', coalesce(fleet_name, '-')),
         eni_private_ip_address, session_id, CAST(NULL AS varchar), session_id
  FROM sessions WHERE user_id = ?
  UNION ALL
  SELECT session_end_time, 'session_end', concat(coalesce(stack_name, '-'), '/', coalesce(fleet_name, '-')),
         eni_private_ip_address, session_id, CAST(NULL AS varchar), session_id
  FROM sessions WHERE user_id = ?
  UNION ALL
  SELECT event_time, 'alert', concat(rule, ' [', severity, ', ', status, ']'), source_ip, session_id,
         concat('s3://', bucket, '/', key), alert_id
  FROM alerts_latest WHERE user_id = ? AND dt >= ? AND dt <= ?
) t
WHERE at >= ? AND at < ?
"""

#: The same timeline as ONE statement (the ``user-timeline`` named query of the Athena console): the
#: places are a join instead of parameter lists. Named parameters (``positional`` turns them into
#: ``?`` and the order of values): the user, the first and last day (``yyyy-MM-dd``), then since and
#: until as timestamps. ``timeline()`` gives the same rows (tests/unit/test_analyst.py).
TIMELINE_SQL = """
WITH places AS (
  SELECT DISTINCT dt, source_ip FROM attributed_activity
  WHERE user_id = :user AND dt BETWEEN :first_day AND :last_day
),
versions AS (
  SELECT a.*, row_number() OVER (PARTITION BY a.dt, a.event_id ORDER BY a.computed_at DESC) AS rn
  FROM attributed_activity a JOIN places p ON a.dt = p.dt AND a.source_ip = p.source_ip
  WHERE a.dt BETWEEN :first_day AND :last_day
)
SELECT * FROM (
  SELECT event_time AS at, 'logon' AS kind, event_name AS what, source_ip AS ip,
         CAST(NULL AS varchar) AS session_id, CAST(NULL AS varchar) AS object, event_id AS ref
  FROM logons WHERE user_name = :user AND dt BETWEEN :first_day AND :last_day
  UNION ALL
  SELECT session_start_time, 'session_start', concat(coalesce(stack_name, '-'), '/', coalesce(fleet_name, '-')),
         eni_private_ip_address, session_id, CAST(NULL AS varchar), session_id
  FROM sessions WHERE user_id = :user
  UNION ALL
  SELECT session_end_time, 'session_end', concat(coalesce(stack_name, '-'), '/', coalesce(fleet_name, '-')),
         eni_private_ip_address, session_id, CAST(NULL AS varchar), session_id
  FROM sessions WHERE user_id = :user
  UNION ALL
  SELECT event_time, 'write', concat(event_name, ' (', status, ')'), source_ip, session_id,
         concat('s3://', bucket, '/', key), event_id
  FROM versions WHERE rn = 1 AND user_id = :user
  UNION ALL
  SELECT event_time, 'alert', concat(rule, ' [', severity, ', ', status, ']'), source_ip, session_id,
         concat('s3://', bucket, '/', key), alert_id
  FROM alerts_latest WHERE user_id = :user AND dt BETWEEN :first_day AND :last_day
) t
WHERE at >= :since AND at < :until
ORDER BY at, CASE kind WHEN 'logon' THEN 0 WHEN 'session_start' THEN 1 WHEN 'write' THEN 2
                       WHEN 'alert' THEN 3 ELSE 4 END, ref
"""

#: the order of a timeline: time, then logon < session start < write < alert < session end, then ref
TIMELINE_KINDS = ("logon", "session_start", "write", "alert", "session_end")
#: days per step-2 statement (bounds the statement's size; Athena's limit is 256 kB of SQL text)
TIMELINE_DAYS_PER_QUERY = 31

ALERTS_SQL = """
SELECT detected_at, severity, rule, status, user_id, session_id, claimed_session_id, source_ip,
       bucket, key, event_time, event_id, alert_id, title, description, status_reason, finding_id, suppressed_by
FROM alerts_latest
WHERE (? IS NULL OR status = ?) AND (? IS NULL OR rule = ?) AND (? OR suppressed_by IS NULL)
ORDER BY event_time, alert_id
"""

#: findings (latest state of each): status, rule, and whether suppressed ones are shown
FINDINGS_SQL = """
SELECT first_event_time, last_event_time, severity, rule, status, event_count, suppressed_count, group_key,
       account_id, finding_id, sample_event_ids, title, description, status_reason, created_at, updated_at
FROM findings_latest
WHERE (? IS NULL OR status = ?) AND (? IS NULL OR rule = ?) AND (? OR status <> 'suppressed' OR ? = 'suppressed')
ORDER BY first_event_time, finding_id
"""

STATUS_SQL = """
SELECT status, count(*) AS writes, count(DISTINCT user_id) AS users
FROM attributed_activity_latest GROUP BY status ORDER BY writes DESC, status
"""


def positional(sql: str) -> tuple[str, list[str]]:
    """``:name`` parameters as ``?`` (Athena takes positional execution parameters only), and the
    names in the order their values must be given."""
    names: list[str] = []

    def repl(m: re.Match[str]) -> str:
        names.append(m.group(1))
        return "?"

    return re.sub(r"(?<![:\w]):([a-z_]+)\b", repl, sql), names


def timeline_one_statement(run: Runner, user: str, since: datetime, until: datetime) -> pa.Table:
    """``timeline`` through the single statement ``TIMELINE_SQL`` (what the named query runs)."""
    values = {"user": user, "first_day": since.astimezone(UTC).date().isoformat(),
              "last_day": until.astimezone(UTC).date().isoformat(), "since": since, "until": until}
    sql, names = positional(TIMELINE_SQL)
    return run(sql, [values[n] for n in names])


def who(run: Runner, bucket: str, key: str) -> pa.Table:
    """Every write of ``s3://bucket/key`` with its attribution (two pruned lookups, not a join over
    the whole table: the writes by bucket/key, then their attribution by partition and event id)."""
    writes = run(WHO_WRITES_SQL, [bucket, key])
    if writes.num_rows == 0:
        return writes
    ids = writes.column("event_id").to_pylist()
    dts = sorted(set(writes.column("dt").to_pylist()))
    sql = WHO_ATTRIBUTION_SQL.format(dts=", ".join("?" * len(dts)), ids=", ".join("?" * len(ids)))
    att_t = run(sql, dts + ids)
    att = {r["event_id"]: r for r in att_t.to_pylist()}
    extra = [c for c in att_t.column_names if c != "event_id"]
    rows = []
    for w in writes.to_pylist():
        a = att.get(w["event_id"], {})
        rows.append(w | {k: a.get(k) for k in extra})
    objects = sorted({w["source_object"] for w in rows if w.get("source_object")})
    integ_t = run(WHO_INTEGRITY_SQL.format(objects=", ".join("?" * len(objects))), objects) if objects else None
    integ = {r["object_key"]: r for r in integ_t.to_pylist()} if integ_t is not None else {}
    integ_cols = [c for c in integ_t.column_names if c != "object_key"] if integ_t is not None else []
    for r in rows:
        i = integ.get(r.get("source_object"), {})
        r.update({c: i.get(c) for c in integ_cols})
    schema = pa.schema(list(writes.schema) + [att_t.schema.field(c) for c in extra]
                       + ([integ_t.schema.field(c) for c in integ_cols] if integ_t is not None else []))
    return pa.Table.from_pylist(rows, schema=schema)


def timeline(run: Runner, user: str, since: datetime, until: datetime) -> pa.Table:
    """Logons, sessions, writes and alerts of ``user`` in ``[since, until)``, in order."""
    lo, hi = since.astimezone(UTC).date().isoformat(), until.astimezone(UTC).date().isoformat()
    parts = [run(TIMELINE_OTHER_SQL, [user, lo, hi, user, user, user, lo, hi, since, until])]
    places: dict[str, list[str]] = {}
    for row in run(TIMELINE_PLACES_SQL, [user, lo, hi, since, until]).to_pylist():
        if row["dt"] is not None and row["source_ip"] is not None:
            places.setdefault(row["dt"], []).append(row["source_ip"])
    days = sorted(places)
    for i in range(0, len(days), TIMELINE_DAYS_PER_QUERY):
        branches, params = [], []
        for day in days[i: i + TIMELINE_DAYS_PER_QUERY]:
            ips = sorted(set(places[day]))
            branches.append(TIMELINE_PLACE_SQL.format(ips=", ".join("?" * len(ips))))
            params += [day, *ips]
        sql = TIMELINE_WRITES_SQL.format(places="\n  UNION ALL\n  ".join(branches))
        parts.append(run(sql, [*params, user, since, until]))
    out = pa.concat_tables([p.select(parts[0].column_names).cast(parts[0].schema) for p in parts])
    rank = pc.index_in(out.column("kind"), value_set=pa.array(TIMELINE_KINDS))
    order = pc.sort_indices(out.append_column("_rank", rank),
                            sort_keys=[("at", "ascending"), ("_rank", "ascending"), ("ref", "ascending")])
    return out.take(order)


def alerts(run: Runner, status: str | None = "open", rule: str | None = None, suppressed: bool = False) -> pa.Table:
    """The signals' latest state; suppressed ones only when asked."""
    return run(ALERTS_SQL, [status, status, rule, rule, suppressed])


def findings(run: Runner, status: str | None = "open", rule: str | None = None,
             suppressed: bool = False) -> pa.Table:
    """The findings' latest state; ``status`` None: every status (suppressed ones only when asked)."""
    return run(FINDINGS_SQL, [status, status, rule, rule, suppressed, status])


def status_summary(run: Runner) -> pa.Table:
    return run(STATUS_SQL, [])


def evidence_chain(rows: list[dict[str, Any]]) -> list[str]:
    """Human-readable evidence: write -> IP and time -> session -> user -> logon."""
    lines = []
    for r in rows:
        t = r["event_time"].strftime("%Y-%m-%dT%H:%M:%SZ") if r.get("event_time") else "?"
        lines.append(f"write    {r['event_name']} s3://{r['bucket']}/{r['key']}  event {r['event_id']}")
        lines.append(f"  from   {r['source_ip']} at {t} via {r.get('vpc_endpoint_id') or 'no VPC endpoint'}"
                     f" as {r['principal_arn']}")
        status = r.get("status")
        if status is None:
            lines.append("  status out of scope (principal is not an attributed role)")
            continue
        if status == "external" and r.get("match") == "nat":
            lines.append("  status external: the source is the fleet's NAT egress, which hides the instance;"
                         " attribution is impossible (route S3 through a VPC endpoint)")
            continue
        lines.append(f"  status {status}" + (f" (matched by {r['match']})" if r.get("match") else ""))
        if r.get("claimed_session_id"):
            lines.append(f"  claims session {r['claimed_session_id']}")
        if r.get("session_id"):
            s0 = r["session_start_time"].strftime("%Y-%m-%dT%H:%M:%SZ") if r.get("session_start_time") else "?"
            s1 = r["session_end_time"].strftime("%Y-%m-%dT%H:%M:%SZ") if r.get("session_end_time") else "?"
            lines.append(f"  -> session {r['session_id']} ({r.get('session_source') or 'report'}) "
                         f"{s0} .. {s1} on {r.get('stack_name')}/{r.get('fleet_name')} {r.get('instance_id') or ''}")
            lines.append(f"  -> user {r['user_id']}")
            if r.get("logon_event_id"):
                lt = r["logon_time"].strftime("%Y-%m-%dT%H:%M:%SZ") if r.get("logon_time") else "?"
                lines.append(f"  -> logon {r['logon_event_id']} at {lt} from {r.get('logon_source_ip')}")
            else:
                lines.append("  -> no logon of this user found before the session")
        elif r.get("candidate_session_ids"):
            pairs = ", ".join(f"{s} ({u})" for s, u in zip(r["candidate_session_ids"], r["candidate_user_ids"],
                                                           strict=False))
            lines.append(f"  -> candidates: {pairs}")
        lines.append(f"  evidence: {integrity_line(r)}")
    return lines


def integrity_line(r: dict[str, Any]) -> str:
    """What is known of the CloudTrail log file the write was read from."""
    status = r.get("log_status") or r.get("log_integrity")
    source = r.get("source_object") or "?"
    at = r["log_checked_at"].strftime("%Y-%m-%dT%H:%M:%SZ") if r.get("log_checked_at") else "?"
    reason = f" ({r['log_reason']})" if r.get("log_reason") else ""
    if status == "verified":
        return f"log file verified by digest {r.get('log_digest_key')} at {at}{reason}: {source}"
    if status in ("modified", "missing"):
        return f"log file {status.upper()}{reason} per digest {r.get('log_digest_key')} at {at}: {source}"
    if status == "unverifiable":
        return f"log file cannot be verified{reason} (checked {at}): {source}"
    if status == "not_yet_covered" or (status is None and r.get("source_object")):
        return f"log file not yet covered by a digest: {source}"
    return f"log file integrity unknown: {source}"
