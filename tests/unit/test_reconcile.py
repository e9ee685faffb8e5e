"""``rules.reconcile`` (columnar) gives exactly the rows of the per-row reference it replaced, and
the pipeline's alert merge, which reads only the previous alerts of the events in scope and of the
raised alerts, gives exactly what a merge over the whole day's alerts gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from auditcorr import findings, rules
from auditcorr.config import Config
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr.schemas import ALERTS
from auditcorr.timeparse import dt_column


def reference_reconcile(previous: pa.Table, raised: pa.Table, scope_event_ids: Any, now_ms: int,
                        rules_in_scope: Any = None) -> pa.Table:
    """The per-row implementation ``reconcile`` had before it became columnar (verbatim)."""
    now = pa.scalar(now_ms, pa.int64()).cast(rules.TS)
    prev: dict[str, dict[str, Any]] = {r["alert_id"]: r for r in previous.to_pylist()}
    scope = set(scope_event_ids)
    rules_ = set(rules_in_scope) if rules_in_scope is not None else None
    changed: list[dict[str, Any]] = []
    raised_ids = set()
    for r in raised.to_pylist():
        raised_ids.add(r["alert_id"])
        old = prev.get(r["alert_id"])
        if old is None:
            r["detected_at"] = now.as_py()
            r["updated_at"] = now.as_py()
            changed.append(r)
        elif old["status"] != rules.OPEN or old["description"] != r["description"]:
            r["detected_at"] = old["detected_at"]
            r["updated_at"] = _after(now.as_py(), old["updated_at"])
            r["status_reason"] = "re-opened: raised again on recomputation" if old["status"] != rules.OPEN else None
            changed.append(r)
    for aid, old in prev.items():
        if old["status"] != rules.OPEN or aid in raised_ids or old["event_id"] not in scope:
            continue
        if rules_ is not None and old["rule"] not in rules_:
            continue
        closed = dict(old)
        closed["status"] = rules.CLOSED
        closed["status_reason"] = "no longer raised after recomputation with newer data (e.g. a sessions report)"
        closed["updated_at"] = _after(now.as_py(), old["updated_at"])
        changed.append(closed)
    if not changed:
        return ALERTS.empty_table()
    return pa.Table.from_pylist(changed, schema=ALERTS)


def _after(now: Any, previous: Any) -> Any:
    return now if previous is None or now > previous else previous + timedelta(milliseconds=1)


NOW_MS = 1_772_460_000_000  # 2026-03-02T14:00Z
NOW = datetime.fromtimestamp(NOW_MS / 1000, UTC)
RULES = list(rules.WRITE_RULES) + ["session_without_logon"]
CFG = Config()


def _alert(rng: random.Random, event: int, rule: str, with_versions: bool) -> dict[str, Any]:
    row = {f.name: None for f in ALERTS}
    row |= {
        "alert_id": rules.alert_id(rule, f"ev-{event}"), "rule": rule, "severity": "HIGH",
        "status": rng.choice([rules.OPEN, rules.OPEN, rules.CLOSED, None]),
        "status_reason": rng.choice([None, "why"]),
        "event_id": f"ev-{event}", "event_time": NOW - timedelta(hours=1, seconds=event),
        "source_ip": "10.40.0.1", "bucket": "b", "key": f"k{event}", "title": "t",
        "description": rng.choice(["d1", "d2", None]),
    }
    if with_versions:
        upd = rng.choice([None, NOW - timedelta(minutes=5), NOW, NOW + timedelta(seconds=3)])
        row |= {"detected_at": NOW - timedelta(hours=1), "updated_at": upd}
    return row


def random_case(seed: int) -> tuple[pa.Table, pa.Table, list[str | None], list[str] | None]:
    rng = random.Random(seed)
    n_events = rng.randint(0, 40)
    prev_rows, raised_rows = [], []
    for e in range(n_events):
        for rule in rng.sample(RULES, rng.randint(0, 3)):
            if rng.random() < 0.7:
                prev_rows.append(_alert(rng, e, rule, True))
                if rng.random() < 0.15:  # the same alert twice (the last one given wins)
                    prev_rows.append(_alert(rng, e, rule, True))
            if rng.random() < 0.5:
                raised_rows.append(_alert(rng, e, rule, False) | {"status": rules.OPEN, "status_reason": None})
    rng.shuffle(prev_rows)
    scope: list[str | None] = [f"ev-{e}" for e in range(n_events) if rng.random() < 0.7]
    if rng.random() < 0.1:
        scope.append(None)
    in_scope = None if rng.random() < 0.3 else rng.sample(RULES, rng.randint(0, len(RULES)))
    return (pa.Table.from_pylist(prev_rows, schema=ALERTS), pa.Table.from_pylist(raised_rows, schema=ALERTS),
            scope, in_scope)


@pytest.mark.parametrize("seed", range(300))
def test_columnar_reconcile_equals_the_per_row_reference(seed):
    prev, raised, scope, in_scope = random_case(seed)
    want = reference_reconcile(prev, raised, scope, NOW_MS, in_scope)
    got = rules.reconcile(prev, raised, scope, NOW_MS, rules_in_scope=in_scope)
    assert got.schema == want.schema
    assert got.to_pylist() == want.to_pylist()
    # the scope may also come as an Arrow column (a re-attributed day: one id per write)
    got = rules.reconcile(prev, raised, pa.chunked_array([pa.array(scope, pa.string())]), NOW_MS,
                          rules_in_scope=in_scope)
    assert got.to_pylist() == want.to_pylist()


def test_reconcile_cases_cover_every_branch():
    kinds = {"new": 0, "reopened": 0, "redescribed": 0, "closed": 0}
    for seed in range(300):
        prev, raised, scope, in_scope = random_case(seed)
        for r in reference_reconcile(prev, raised, scope, NOW_MS, in_scope).to_pylist():
            if r["status"] == rules.CLOSED:
                kinds["closed"] += 1
            elif r["detected_at"] == NOW:
                kinds["new"] += 1
            elif r["status_reason"]:
                kinds["reopened"] += 1
            else:
                kinds["redescribed"] += 1
    assert all(v >= 20 for v in kinds.values()), kinds


def test_merge_reads_only_the_alerts_it_needs_and_equals_a_merge_over_the_whole_day(tmp_path, monkeypatch):
    dt = (NOW - timedelta(hours=1)).strftime("%Y-%m-%d")  # every event_time below is on this day
    lake = Lake.open(str(tmp_path / "lake"))
    pipe = Pipeline(lake, Config(compact_threshold=4), clock=lambda: NOW_MS)
    # history: several files of alert versions over 60 events, some compacted
    rng = random.Random(7)
    for f in range(7):
        rows = [_alert(rng, rng.randrange(60), rng.choice(RULES), True) for _ in range(30)]
        lake.write_file("alerts", dt, f"part-{f}", findings.assign(pa.Table.from_pylist(rows, schema=ALERTS), CFG))
        pipe.maybe_compact("alerts", dt)
    everything = lake.read("alerts", [dt]).drop_columns(["dt"])
    raised = pa.Table.from_pylist([_alert(rng, e, rule, False) | {"status": rules.OPEN, "status_reason": None}
                                   for e in range(20, 40) for rule in RULES[:2]], schema=ALERTS)
    raised = findings.assign(raised, CFG)  # as the merge does: the rows differ only where the reference says
    scope = [f"ev-{e}" for e in range(10, 30)]
    want = reference_reconcile(everything, rules.conform(raised, rules.ALERT_IN), scope, NOW_MS,
                               list(rules.WRITE_RULES))
    assert want.num_rows > 10

    seen: list[int] = []
    real_read = lake.read

    def read(table: str, *a: Any, **k: Any) -> pa.Table:
        t = real_read(table, *a, **k)
        if table == "alerts":
            seen.append(t.num_rows)
        return t

    monkeypatch.setattr(lake, "read", read)
    merger = Pipeline(lake, Config(compact_threshold=1000), clock=lambda: NOW_MS)  # keep part-new as is
    merger.alerts.merge(rules.conform(raised, rules.ALERT_IN), scope, list(rules.WRITE_RULES),
                         dt_column(raised.column("event_time")), "part-new", NOW_MS, None)
    monkeypatch.undo()
    assert seen and seen[0] < everything.num_rows  # not the whole day
    got = lake.read("alerts", files=[f"{lake.part_dir('alerts', dt)}/part-new.parquet"], latest=False)
    assert got.drop_columns(["dt"]).to_pylist() == want.to_pylist()


def test_reading_only_the_row_groups_with_a_match_equals_the_filtered_read(tmp_path, monkeypatch):
    from auditcorr.pipeline import compaction as pl

    # small row groups in compacted files, so that a lookup reads some of them and skips others
    monkeypatch.setattr(pl, "COMPACTED_WRITE_OPTIONS", {"compression": "zstd", "row_group_size": 40,
                                                        "write_statistics": True})
    lake = Lake.open(str(tmp_path / "lake"))
    pipe = Pipeline(lake, Config(compact_threshold=3), clock=lambda: NOW_MS)
    rng = random.Random(3)
    days = ["2026-03-01", "2026-03-02"]
    for f in range(9):
        for dt in days:
            rows = [_alert(rng, rng.randrange(300), rng.choice(RULES), True) for _ in range(60)]
            if f == 4:
                rows[0]["event_id"] = None
            lake.write_file("alerts", dt, f"part-{f}", findings.assign(pa.Table.from_pylist(rows, schema=ALERTS), CFG))
            pipe.maybe_compact("alerts", dt)
    assert any(pq.ParquetFile(p).metadata.num_row_groups > 2 for p in lake.files("alerts"))
    every = [f"ev-{e}" for e in range(300)]
    cases = [[], ["nope"], every[:1], every[100:110], rng.sample(every, 40), every, [None, "ev-3"]]
    for ids in cases:
        values = pa.array(ids, pa.string())
        for dts in (days[:1], days, ["2026-02-28"]):
            want = lake.read("alerts", dts, filter=pc.field("event_id").isin(values))
            got = pipe.alerts.read_where_in("alerts", dts, "event_id", values)
            assert got.schema == want.schema and got.equals(want), (ids, dts)
