from __future__ import annotations

import pyarrow as pa
import pytest

from auditcorr.lake import Lake, LakePathError, keep_latest
from auditcorr.schemas import ALERTS, TS


def alert_rows(*rows):
    base = {f.name: None for f in ALERTS}
    out = []
    for aid, status, upd in rows:
        r = dict(base, alert_id=aid, status=status, rule="r", event_id="e")
        r["updated_at"] = upd
        r["event_time"] = 0
        out.append(r)
    t = pa.Table.from_pylist(out, schema=ALERTS.remove_metadata().set(
        ALERTS.get_field_index("updated_at"), pa.field("updated_at", pa.int64())).set(
        ALERTS.get_field_index("event_time"), pa.field("event_time", pa.int64())))
    return t.set_column(t.schema.get_field_index("updated_at"), "updated_at", t.column("updated_at").cast(TS)) \
        .set_column(t.schema.get_field_index("event_time"), "event_time", t.column("event_time").cast(TS))


def test_write_is_atomic_and_readers_skip_hidden_files(tmp_path):
    lake = Lake.open(str(tmp_path))
    t = alert_rows(("a", "open", 1))
    lake.write_file("alerts", "2026-03-02", "part-x", t)
    (tmp_path / "alerts" / "dt=2026-03-02" / ".tmp-half-written").write_bytes(b"PAR1garbage")
    assert [p.rsplit("/", 1)[1] for p in lake.files("alerts")] == ["part-x.parquet"]
    got = lake.read("alerts")
    assert got.column("dt").to_pylist() == ["2026-03-02"]


def test_keep_latest_prefers_newest_version():
    t = alert_rows(("a", "open", 1), ("a", "closed", 2), ("b", "open", 1))
    got = {r["alert_id"]: r["status"] for r in keep_latest(t, "alerts").to_pylist()}
    assert got == {"a": "closed", "b": "open"}


@pytest.mark.parametrize(("table", "dt", "name"), [
    ("alerts", "../../etc", "x"), ("alerts", "2026-03-02", "../x"), ("nope", "2026-03-02", "x"),
    ("alerts", "2026-03-02", "/abs"), ("alerts", "2026-03-02", "a\x00b"),
])
def test_names_cannot_escape_the_lake(tmp_path, table, dt, name):
    lake = Lake.open(str(tmp_path))
    with pytest.raises(LakePathError):
        lake.write_file(table, dt, name, alert_rows(("a", "open", 1)))


def test_compaction_merges_files_and_keeps_latest(tmp_path, clock):
    from auditcorr.config import Config
    from auditcorr.pipeline import Pipeline

    lake = Lake.open(str(tmp_path))
    pipe = Pipeline(lake, Config(compact_threshold=2), clock=clock)
    for i, (aid, status, upd) in enumerate([("a", "open", 1), ("a", "closed", 2), ("b", "open", 3)]):
        lake.write_file("alerts", "2026-03-02", f"part-{i}", alert_rows((aid, status, upd)))
    assert len(lake.files("alerts", "2026-03-02")) == 3
    pipe.maybe_compact("alerts", "2026-03-02")
    files = lake.files("alerts", "2026-03-02")
    assert len(files) == 1 and "compact-" in files[0]
    assert {r["alert_id"]: r["status"] for r in lake.read("alerts").to_pylist()} == {"a": "closed", "b": "open"}
