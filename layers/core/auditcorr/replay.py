"""Replay a configuration over the lake's history without changing it: what would the findings be?

:func:`replay` runs, in memory, exactly what applying ``config`` to the lake does
(:func:`apply`: re-attribute every write day in range and re-run the logon cross-check of every
session in range, through the :class:`~auditcorr.pipeline.Pipeline`): the same attribution, rules,
suppressions and grouping, the same signal life cycle (``rules.reconcile``) and finding life cycle
(``findings.aggregate`` then ``findings.merge``) over the lake's current rows; nothing is written.
The result lists the findings that would open, close or change, with counts per rule.

Day-granular: ``since``/``until`` select the write days (``s3_writes`` partitions) and the sessions
starting on those days.  One day at a time: memory is one day of writes plus the signals.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import findings, logon_check, rules
from .attribution import DAY_MS
from .attribution.inputs import AttributionInputs
from .config import Config
from .lake import Lake
from .schemas import ALERTS, FINDINGS, conform
from .timeparse import day_string


@dataclass
class ReplayResult:
    #: every finding's state in range after the change (FINDINGS rows: the current latest row, or
    #: the row the change would append)
    after: pa.Table
    #: the rows the change would append (FINDINGS), one per finding that opens, closes or changes
    changed: pa.Table
    #: per changed finding: ``open`` (new or re-opened), ``close`` (closed or suppressed after being
    #: open), ``suppress`` (suppressed without having been open) or ``change``
    change: list[str] = field(default_factory=list)
    #: per rule, per change kind, how many findings
    per_rule: dict[str, Counter[str]] = field(default_factory=dict)
    #: per rule: signals that would open / close
    signals: dict[str, Counter[str]] = field(default_factory=dict)
    days: list[str] = field(default_factory=list)
    writes: int = 0
    sessions: int = 0


def _days_in(lake: Lake, table: str, since_ms: int | None, until_ms: int | None) -> list[str]:
    lo = day_string(since_ms // DAY_MS) if since_ms is not None else None
    hi = day_string(until_ms // DAY_MS) if until_ms is not None else None
    return [d for d in lake.partitions(table) if (lo is None or d >= lo) and (hi is None or d <= hi)]


def _drop_dt(t: pa.Table) -> pa.Table:
    return t.drop_columns(["dt"]) if "dt" in t.column_names else t


def sessions_in_range(lake: Lake, since_ms: int | None, until_ms: int | None,
                      config: Config) -> pa.Table:
    """Reported sessions starting in range (a report's partition is the day the session ENDS)."""
    back = None if since_ms is None else since_ms
    ahead = None if until_ms is None else until_ms + int(config.max_session_hours * 3_600_000) + DAY_MS
    s = _drop_dt(lake.read("sessions", _days_in(lake, "sessions", back, ahead)))
    if s.num_rows == 0:
        return s
    start = s.column("session_start_time").cast(pa.int64())
    keep = pc.is_valid(start)
    if since_ms is not None:
        keep = pc.and_(keep, pc.greater_equal(start, since_ms // DAY_MS * DAY_MS))
    if until_ms is not None:
        keep = pc.and_(keep, pc.less(start, (until_ms // DAY_MS + 1) * DAY_MS))
    return s.filter(pc.fill_null(keep, False))


def replay(lake: Lake, config: Config, now_ms: int, since_ms: int | None = None,
           until_ms: int | None = None, progress: Callable[[str], None] | None = None) -> ReplayResult:
    """What applying ``config`` to ``lake`` (as of ``now_ms``) would change in the findings; reads only."""
    inputs = AttributionInputs(lake, config, lambda: now_ms)
    days = _days_in(lake, "s3_writes", since_ms, until_ms)
    prev_alerts = _drop_dt(lake.read("alerts", _days_in(lake, "alerts", since_ms, until_ms)))
    state = conform(prev_alerts, ALERTS)  # the signals' latest rows, updated as the pipeline would
    n_writes = 0
    signal_changes: dict[str, Counter[str]] = {}

    def merge(raised: pa.Table, scope: pa.Array | list[str], rules_in_scope: list[str]) -> None:
        nonlocal state
        raised = findings.assign(conform(raised, ALERTS), config)
        changed = rules.reconcile(state, raised, scope, now_ms, rules_in_scope=rules_in_scope)
        if changed.num_rows == 0:
            return
        for r, s in zip(changed.column("rule").to_pylist(), changed.column("status").to_pylist(), strict=True):
            signal_changes.setdefault(r, Counter())[s] += 1
        keep = pc.invert(pc.is_in(state.column("alert_id"), value_set=changed.column("alert_id")))
        state = pa.concat_tables([state.filter(keep), changed])

    for dt in days:
        writes = _drop_dt(lake.read("s3_writes", [dt]))
        if writes.num_rows == 0:
            continue
        n_writes += writes.num_rows
        # the same attribution and the same signals as the pipeline (organisation rules included)
        merge(*rules.attribution_signals(inputs.attribute(writes, now_ms), config))
        if progress is not None:
            progress(dt)

    sessions = sessions_in_range(lake, since_ms, until_ms, config)
    logon_rules = [r for r in logon_check.RULES if config.rule_enabled(r)]
    if sessions.num_rows and logon_rules:
        starts = sessions.column("session_start_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        sdays = sorted({int(d) for d in np.unique(starts // DAY_MS)})
        back = math.ceil(config.logon_window_hours / 24) + 1
        logons = _drop_dt(lake.read("logons", {day_string(d + k) for d in sdays for k in range(-back, 2)}))
        raised = conform(logon_check.evaluate(sessions, logons, config, now_ms), rules.ALERT_IN)
        merge(raised, sessions.column("session_id").combine_chunks(), logon_rules)

    # the findings: every one in range, recomputed from its signals, merged with its current row
    prev_findings = _drop_dt(lake.read("findings", _days_in(lake, "findings", since_ms, until_ms)))
    state_f = findings.aggregate(state, config)
    changed = findings.merge(prev_findings, state_f, now_ms)
    prev = conform(prev_findings, FINDINGS)
    keep = pc.invert(pc.is_in(prev.column("finding_id"), value_set=changed.column("finding_id")))
    after = pa.concat_tables([prev.filter(keep), changed])
    kinds = []
    per_rule: dict[str, Counter[str]] = {}
    for r, s, p in zip(changed.column("rule").to_pylist(), changed.column("status").to_pylist(),
                       changed.column("previous_status").to_pylist(), strict=True):
        kind = ("open" if s == rules.OPEN and p != rules.OPEN else
                "close" if s != rules.OPEN and p == rules.OPEN else
                "suppress" if s == findings.SUPPRESSED and p != findings.SUPPRESSED else "change")
        kinds.append(kind)
        per_rule.setdefault(r, Counter())[kind] += 1
    return ReplayResult(after=after, changed=changed, change=kinds, per_rule=per_rule, signals=signal_changes,
                        days=days, writes=n_writes, sessions=sessions.num_rows)


def apply(pipe: object, since_ms: int | None = None, until_ms: int | None = None) -> None:
    """Apply ``pipe.config`` to ``pipe.lake`` for real (what :func:`replay` predicts): re-attribute
    every write day in range, then re-run the logon cross-check of the sessions in range."""
    from .pipeline import Pipeline

    assert isinstance(pipe, Pipeline)
    pipe.reattribute(_days_in(pipe.lake, "s3_writes", since_ms, until_ms), "replay-apply")
    sessions = sessions_in_range(pipe.lake, since_ms, until_ms, pipe.config)
    if sessions.num_rows:
        pipe.check_logons(sessions, "replay-apply-logons")
