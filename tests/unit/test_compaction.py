"""Tiered compaction: each merge rewrites a bounded set of files, a day's partition reads back
exactly as after one full compaction, compacted files keep their layout, and a compaction that dies
between writing its output and deleting its inputs is finished by the next one."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditcorr.config import Config
from auditcorr.lake import COMPACTED_WRITE_OPTIONS, Lake, keep_latest
from auditcorr.pipeline import COMPACT_SORT_KEYS, PartFile, Pipeline, compacted_order, compaction_tier, plan_compaction
from auditcorr.pipeline import compaction as pl
from auditcorr.schemas import ALERTS, ROW_KEYS, S3_WRITES, TABLES, conform
from tests.factories import ct_name, put, trail

DT = "2026-03-02"
DAY = datetime(2026, 3, 2, tzinfo=UTC)
KIB = 1024


# -- the plan -------------------------------------------------------------------------------------
def test_tiers_by_size():
    unit, fanout = 1000, 4
    assert [compaction_tier(s, unit, fanout) for s in (0, 999, 1000, 3999, 4000, 15_999, 16_000)] == \
        [0, 0, 1, 1, 2, 2, 3]


def files_of(sizes: list[int]) -> list[PartFile]:
    return [PartFile(f"/l/t/dt={DT}/part-{i:03d}.parquet", s) for i, s in enumerate(sizes)]


def test_small_files_merge_once_more_than_the_threshold_pile_up():
    kw: dict[str, Any] = {"fanout": 4, "unit": 1000, "max_bytes": 100_000}
    assert plan_compaction(files_of([100] * 16), 16, **kw) is None
    pick = plan_compaction(files_of([100] * 17), 16, **kw)
    assert pick is not None and len(pick) == 17
    # big files alone never make the small ones due
    assert plan_compaction(files_of([100] * 10 + [50_000] * 3), 16, **kw) is None


def test_a_merge_rewrites_a_bounded_set_of_files_within_the_byte_budget():
    rng = random.Random(3)
    kw: dict[str, Any] = {"fanout": 4, "unit": 1000, "max_bytes": 20_000}
    for _ in range(300):
        files = files_of([int(rng.lognormvariate(7, 1.5)) for _ in range(rng.randint(0, 80))])
        threshold = rng.randint(1, 20)
        pick = plan_compaction(files, threshold, **kw)
        if pick is None:
            continue
        assert 2 <= len(pick) <= max(threshold + 1, 4)
        assert sum(f.size for f in pick) <= 20_000
        assert len({compaction_tier(f.size, 1000, 4) for f in pick}) == 1  # one tier at a time
        # the same files in another order: the same plan (a retry plans the same merge)
        assert plan_compaction(rng.sample(files, len(files)), threshold, **kw) == pick


def test_files_as_large_as_the_budget_are_final():
    kw: dict[str, Any] = {"fanout": 4, "unit": 1000, "max_bytes": 10_000}
    assert plan_compaction(files_of([10_000] * 8), 2, **kw) is None
    assert plan_compaction(files_of([6_000] * 8), 2, **kw) is None  # no two fit
    pick = plan_compaction(files_of([6_000, 4_000, 5_000, 4_500, 3_000]), 2, **kw)  # tier 2: 4 of 4
    assert pick is not None and sorted(f.size for f in pick) == [4_000, 4_500]  # smallest first, <= budget


# -- a partition compacted as ingest does it ----------------------------------------------------------
def s3_rows(rng: random.Random, ids: list[str]) -> pa.Table:
    rows = []
    for eid in ids:
        n = int(eid.split("-")[1])
        rows.append({"event_id": eid, "event_time": DAY + timedelta(seconds=n % 80_000),
                     "event_name": "PutObject", "bucket": f"b{n % 3}", "key": f"k/{n % 50}",
                     "request_parameters": "x" * (n % 97)})  # a re-delivery is the same record
    return conform(pa.Table.from_pylist(rows), S3_WRITES)


def alert_rows(rng: random.Random, n: int, version: int) -> pa.Table:
    rows = []
    for _ in range(n):
        e = rng.randrange(400)
        rows.append({f.name: None for f in ALERTS} | {
            "alert_id": f"a{e:04d}", "rule": "unattributed_activity", "status": rng.choice(["open", "closed"]),
            "event_id": f"e-{e}", "event_time": DAY + timedelta(seconds=e),
            "description": "d" * rng.randrange(200),
            # every version of an alert has its own updated_at (reconcile guarantees it)
            "updated_at": DAY + timedelta(hours=1, milliseconds=version * 1000 + e)})
    return pa.Table.from_pylist(rows, schema=ALERTS)


def delivery(table: str, rng: random.Random, i: int) -> pa.Table:
    if table == "alerts":
        return alert_rows(rng, rng.randint(20, 120), i)
    # CloudTrail re-delivers some events: a tenth of each file repeats earlier ids
    fresh = [f"ev-{i * 1000 + k}" for k in range(rng.randint(30, 200))]
    again = [f"ev-{rng.randrange(max(1, i)) * 1000 + k}" for k in range(len(fresh) // 10)] if i else []
    return s3_rows(rng, fresh + again)


@pytest.fixture
def small_tiers(monkeypatch):
    """Tiers small enough for test data (a delivery is 6-8 KiB): tier 0 below 12 KiB, tier 1 below
    36 KiB, budget 64 KiB."""
    monkeypatch.setattr(pl, "COMPACT_UNIT_BYTES", 12 * KIB)
    monkeypatch.setattr(pl, "COMPACT_FANOUT", 3)
    return Config(compact_threshold=4, compact_max_mb=64 / 1024)


def merges_of(pipe: Pipeline, monkeypatch) -> list[tuple[int, int]]:
    """(files, bytes) of every merge the pipeline does from now on."""
    seen: list[tuple[int, int]] = []
    real = pipe.compactor._merge

    def merge(table, dt, files):
        seen.append((len(files), sum(f.size for f in files)))
        return real(table, dt, files)

    monkeypatch.setattr(pipe.compactor, "_merge", merge)
    return seen


@pytest.mark.parametrize("table", ["s3_writes", "alerts"])
def test_tiered_compaction_is_bounded_and_reads_back_as_one_full_compaction(tmp_path, monkeypatch, small_tiers,
                                                                             table):
    rng = random.Random(11)
    tiered = Pipeline(Lake.open(str(tmp_path / "tiered")), small_tiers, clock=lambda: 0)
    plain = Lake.open(str(tmp_path / "plain"))  # the same files, never compacted
    merges = merges_of(tiered, monkeypatch)
    most_files = 0
    for i in range(120):
        part = delivery(table, rng, i)
        for lake in (tiered.lake, plain):
            lake.write_file(table, DT, f"part-{i:03d}", part)
        tiered.maybe_compact(table, DT)
        most_files = max(most_files, len(tiered.lake.files(table, DT)))
        # readers see the same rows at every step
        if i % 17 == 0:
            assert_same_latest(tiered.lake, plain, table)
    assert_same_latest(tiered.lake, plain, table)

    budget = int(small_tiers.compact_max_mb * (1 << 20))
    assert len(merges) >= 25, merges
    if table == "s3_writes":  # (alerts: 400 ids, their versions compact into one small file)
        assert any(n == pl.COMPACT_FANOUT for n, _ in merges)  # tier 1 merges too
    assert all(2 <= n <= small_tiers.compact_threshold + 1 and size <= budget for n, size in merges), merges
    rewritten = sum(size for _, size in merges)
    written = sum(f.stat().st_size for f in (tmp_path / "plain").rglob("*.parquet"))
    # each byte rewritten about twice (once per tier), not once per compaction of the day (~12 times)
    assert rewritten < 2 * written
    assert most_files <= 12

    # every compacted file: sorted by the lookup keys, one row per key, small row groups, zstd
    for path in tiered.lake.files(table, DT):
        if "/compact-" in path:
            assert_compacted_layout(path, table)

    # and the whole partition forced into one file is exactly one full compaction of the originals
    full = Pipeline(plain, small_tiers, clock=lambda: 0)
    one = pq.read_table(full.compact(table, DT, plain.files(table, DT)))
    forced = tiered.maybe_compact(table, DT, force=True)
    if forced is None:  # already a single file
        (forced,) = tiered.lake.files(table, DT)
    assert pq.read_table(forced).to_pylist() == one.to_pylist()


def assert_same_latest(a: Lake, b: Lake, table: str) -> None:
    keys = [(k, "ascending") for k in ROW_KEYS[table]]
    ta, tb = a.read(table).sort_by(keys), b.read(table).sort_by(keys)
    assert ta.num_rows == tb.num_rows and ta.equals(tb)


def assert_compacted_layout(path: str, table: str) -> None:
    meta = pq.ParquetFile(path).metadata
    assert all(meta.row_group(i).num_rows <= COMPACTED_WRITE_OPTIONS["row_group_size"]
               for i in range(meta.num_row_groups))
    col = meta.row_group(0).column(0)
    assert col.compression == "ZSTD" and col.statistics is not None
    t = pq.read_table(path)
    assert t.equals(t.take(compacted_order(t, table)))  # sorted, and nothing to drop
    assert keep_latest(t, table).num_rows == t.num_rows
    keys = [(k, "ascending") for k in COMPACT_SORT_KEYS[table]]
    assert t.equals(t.sort_by(keys))


def test_compacted_order_is_keep_latest_then_a_stable_sort():
    rng = random.Random(5)
    for table in ("s3_writes", "alerts"):
        t = pa.concat_tables([delivery(table, rng, i) for i in range(6)])
        want = keep_latest(t, table).sort_by([(k, "ascending") for k in COMPACT_SORT_KEYS[table]])
        assert t.take(compacted_order(t, table)).equals(want)


def test_compacted_files_use_their_own_writer_options(tmp_path):
    lake = Lake.open(str(tmp_path))
    rng = random.Random(1)
    for i in range(3):
        lake.write_file("s3_writes", DT, f"part-{i}", s3_rows(rng, [f"ev-{i * 20_000 + k}" for k in range(20_000)]))
    assert pq.ParquetFile(lake.files("s3_writes", DT)[0]).metadata.num_row_groups == 1  # ingest files: 128 Ki
    pipe = Pipeline(lake, Config(), clock=lambda: 0)
    path = pipe.compact("s3_writes", DT, lake.files("s3_writes", DT))
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 60_000 and meta.num_row_groups == 4  # 16 Ki rows a row group


# -- crash safety ------------------------------------------------------------------------------------
class Crash(Exception):
    pass


def test_a_compaction_that_died_before_deleting_its_inputs_is_finished_by_the_next(tmp_path, monkeypatch,
                                                                                  small_tiers):
    rng = random.Random(2)
    parts = [delivery("s3_writes", rng, i) for i in range(5)]  # 5 small files > threshold 4
    clean = Pipeline(Lake.open(str(tmp_path / "clean")), small_tiers, clock=lambda: 0)
    for i, p in enumerate(parts):
        clean.lake.write_file("s3_writes", DT, f"part-{i}", p)
    assert clean.maybe_compact("s3_writes", DT) is not None

    lake = Lake.open(str(tmp_path / "crashed"))
    pipe = Pipeline(lake, small_tiers, clock=lambda: 0)
    for i, p in enumerate(parts):
        lake.write_file("s3_writes", DT, f"part-{i}", p)
    real = lake.delete

    def die_after_two(paths):
        paths = list(paths)
        if any("/part-" in p for p in paths):
            real(paths[:2])
            raise Crash("died while deleting the merged files")
        real(paths)

    monkeypatch.setattr(lake, "delete", die_after_two)
    with pytest.raises(Crash):
        pipe.maybe_compact("s3_writes", DT)
    monkeypatch.undo()
    part_dir = Path(lake.part_dir("s3_writes", DT))
    assert len(list(part_dir.glob("_compacting-*.json"))) == 1
    # nothing is lost and readers that keep the latest row see no duplicate meanwhile ...
    assert_same_latest(lake, clean.lake, "s3_writes")
    assert lake.read("s3_writes", latest=False).num_rows > lake.read("s3_writes").num_rows
    # ... and the next compaction of the partition (a retry) deletes what the dead one merged
    Pipeline(lake, small_tiers, clock=lambda: 0).maybe_compact("s3_writes", DT)
    assert not list(part_dir.glob("_compacting-*.json"))
    assert [Path(p).name for p in lake.files("s3_writes", DT)] == \
        [Path(p).name for p in clean.lake.files("s3_writes", DT)]
    assert lake.read("s3_writes", latest=False).num_rows == lake.read("s3_writes").num_rows
    assert_same_latest(lake, clean.lake, "s3_writes")


def test_an_input_rewritten_after_the_crash_is_kept(tmp_path, monkeypatch, small_tiers):
    rng = random.Random(4)
    lake = Lake.open(str(tmp_path))
    pipe = Pipeline(lake, small_tiers, clock=lambda: 0)
    for i in range(5):
        lake.write_file("alerts", DT, f"part-{i}", alert_rows(rng, 30, i))
    monkeypatch.setattr(lake, "delete", lambda paths: (_ for _ in ()).throw(Crash("died")))
    with pytest.raises(Crash):
        pipe.maybe_compact("alerts", DT)
    monkeypatch.undo()
    # a retry of the input that wrote part-3 writes newer versions under the same name
    newer = alert_rows(rng, 30, 99)
    lake.write_file("alerts", DT, "part-3", newer)
    Pipeline(lake, small_tiers, clock=lambda: 0).maybe_compact("alerts", DT)
    latest = {r["alert_id"]: r["updated_at"] for r in lake.read("alerts").to_pylist()}
    for r in newer.to_pylist():
        assert latest[r["alert_id"]] >= r["updated_at"]


def test_a_compaction_that_died_before_its_output_leaves_the_inputs(tmp_path, monkeypatch, small_tiers):
    rng = random.Random(6)
    lake = Lake.open(str(tmp_path))
    pipe = Pipeline(lake, small_tiers, clock=lambda: 0)
    for i in range(5):
        lake.write_file("alerts", DT, f"part-{i}", alert_rows(rng, 30, i))
    before = lake.read("alerts")
    real = lake.put_bytes

    def die_on_parquet(path, data):
        if path.endswith(".parquet"):
            raise Crash(path)
        real(path, data)

    monkeypatch.setattr(lake, "put_bytes", die_on_parquet)
    with pytest.raises(Crash):
        pipe.maybe_compact("alerts", DT)
    monkeypatch.undo()
    assert len(lake.files("alerts", DT)) == 5 and lake.read("alerts").equals(before)
    assert Pipeline(lake, small_tiers, clock=lambda: 0).maybe_compact("alerts", DT) is not None
    assert len(lake.files("alerts", DT)) == 1 and lake.read("alerts").equals(before)
    assert not list(Path(lake.part_dir("alerts", DT)).glob("_*"))


# -- the pipeline ------------------------------------------------------------------------------------
def test_ingest_times_compaction_and_deduplicates_across_compacted_files_and_runs(tmp_path):
    lake_dir = tmp_path / "lake"
    cfg = Config(compact_threshold=2)
    t = datetime(2026, 3, 2, 9, tzinfo=UTC)
    recs = [put(t + timedelta(seconds=k), "10.40.0.17", event_id=f"w-{k}") for k in range(12)]
    pipe = Pipeline(Lake.open(str(lake_dir)), cfg, clock=lambda: 0)
    for n in range(4):  # 4 files of 3 records: the first three end up compacted
        out = pipe.ingest_object(ct_name(n), trail(recs[3 * n:3 * n + 3]))
        assert out.written == 3 and out.duplicates == 0
    names = sorted(Path(f).name.split("-")[0] for f in pipe.lake.files("s3_writes", DT))
    assert names == ["compact", "part"]
    assert pipe.times.seconds.get("compact", 0) > 0
    # the same events again (one in the compacted file, one in a part file), in this process (the
    # compacted file's ids are cached) and in a new one
    for n, p in enumerate((pipe, Pipeline(Lake.open(str(lake_dir)), cfg, clock=lambda: 0))):
        out = p.ingest_object(ct_name(20 + n), trail([recs[0], recs[10], put(t, "10.40.0.17", event_id=f"new-{n}")]))
        assert (out.written, out.duplicates) == (1, 2), out.as_dict()
    assert pipe.lake.read("s3_writes", latest=False).num_rows == 14


def test_cached_event_ids_follow_a_rewritten_compacted_file(tmp_path):
    lake = Lake.open(str(tmp_path))
    pipe = Pipeline(lake, Config(), clock=lambda: 0)
    rng = random.Random(9)
    path = lake.write_file("s3_writes", DT, "compact-0123", s3_rows(rng, ["ev-1", "ev-2"]))
    ids = lambda: sorted(i for c in pipe.columns.event_ids("s3_writes", DT, "-") for i in c.to_pylist())  # noqa: E731
    assert ids() == ["ev-1", "ev-2"]
    assert ids() == ["ev-1", "ev-2"] and pipe.columns.cache.currsize > 0
    lake.write_file("s3_writes", DT, "compact-0123", s3_rows(rng, ["ev-1"]))
    os.utime(path, ns=(1, 1))  # whatever the clock's resolution: another modification time
    assert ids() == ["ev-1"]


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_table_compacts_to_its_latest_rows(tmp_path, table):
    rng = random.Random(table)
    schema = TABLES[table]
    lake = Lake.open(str(tmp_path))
    pipe = Pipeline(lake, Config(compact_threshold=1), clock=lambda: 0)
    for i in range(3):
        rows = []
        for _ in range(40):
            row: dict[str, Any] = {}
            for f in schema:
                if pa.types.is_string(f.type):
                    row[f.name] = rng.choice(["a", "b", "c", "d", None]) if f.name not in ROW_KEYS[table] \
                        else rng.choice(["k1", "k2", "k3", "k4", "k5", "k6"])
                elif pa.types.is_timestamp(f.type):
                    row[f.name] = DAY + timedelta(minutes=rng.randrange(5))
                elif pa.types.is_integer(f.type):
                    row[f.name] = rng.randrange(3)
            rows.append(row)
        lake.write_file(table, DT, f"part-{i}", conform(pa.Table.from_pylist(rows), schema))
    before = lake.read(table)
    assert pipe.maybe_compact(table, DT) is not None
    assert len(lake.files(table, DT)) == 1
    keys = [(k, "ascending") for k in ROW_KEYS[table]]
    assert lake.read(table).sort_by(keys).equals(before.sort_by(keys))
