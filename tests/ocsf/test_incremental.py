"""Keeping the export current: the days a lake change reaches (from the files' modification times),
the state a scheduled exporter keeps, and an output that may only PUT (Security Lake's provider roles)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow.parquet as pq

from auditcorr.lake import Lake
from auditcorr.ocsf.export import AUTHENTICATION, DATASTORE, Output, export_ocsf
from auditcorr.ocsf.incremental import ExportState, WriteOnlyOutput, changed_days
from tests.ocsf import scenario as sc


def _age_every_file(root: Path, seconds: float) -> None:
    """Backdate the lake's files (as if written ``seconds`` ago)."""
    old = time.time() - seconds
    for p in root.rglob("*.parquet"):
        os.utime(p, (old, old))


def test_the_first_look_finds_every_day_and_sessions_reach_two_days_either_side(scenario_lake):
    days = changed_days(Lake.open(str(scenario_lake)), None)
    # writes, logons and alerts on 03-02 and 03-03; sessions reports of 03-02 and 03-03 reach 02-28 .. 03-05
    assert days == {"2026-02-28", "2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"}


def test_only_days_whose_files_changed_since_are_found(scenario_lake):
    lake = Lake.open(str(scenario_lake))
    _age_every_file(scenario_lake, 3600)
    since = int((time.time() - 60) * 1000)
    assert changed_days(lake, since) == set()
    sc.deliver_late_report(scenario_lake)  # re-attributes the pending write of 03-03; a sessions report of 03-04
    days = changed_days(lake, since)
    assert "2026-03-03" in days  # the recomputed day
    assert days == {"2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"}


def test_the_state_remembers_unexported_days_newest_first_and_round_trips(scenario_lake):
    lake = Lake.open(str(scenario_lake))
    state = ExportState()
    now = int(time.time() * 1000)
    todo = state.plan(lake, now_ms=now, overlap_ms=0)
    assert todo == sorted(todo, reverse=True) and todo[0] == "2026-03-05" and state.scanned_ms == now
    state.done("2026-03-05")
    again = ExportState.from_json(state.to_json())
    assert again == state and "2026-03-05" not in again.todo
    # a later look with nothing changed keeps what is left
    _age_every_file(scenario_lake, 3600)
    assert again.plan(lake, now_ms=now + 1, overlap_ms=0) == state.todo
    assert again.scanned_ms == now + 1
    # an unknown state (another version, garbage) starts afresh rather than failing
    assert ExportState.from_json({"version": 99, "todo": ["x"]}) == ExportState()
    assert ExportState.from_json(None) == ExportState()


def test_a_write_only_output_never_rewrites_unchanged_files_and_retires_by_emptying(scenario_lake, tmp_path):
    lake = Lake.open(str(scenario_lake))
    manifest: dict[str, str] = {}
    out = WriteOnlyOutput(Output.open(str(tmp_path / "sl")).fs, str(tmp_path / "sl"), manifest=manifest)
    first = export_ocsf(lake, out)
    written = {p for r in first.sources.values() for p in r.written}
    assert written == set(manifest) and written
    stamps = {p: os.stat(p).st_mtime_ns for p in written}

    again = export_ocsf(lake, out)
    assert not any(r.written for r in again.sources.values())
    assert {p: os.stat(p).st_mtime_ns for p in written} == stamps  # not touched, compared by digest

    # a file of an exported day that the export no longer produces: overwritten with zero rows, never
    # deleted (the role may not delete); a second export leaves it alone
    [logon_file] = [p for p in written if f"/ext/{AUTHENTICATION}/" in p]
    stale = logon_file.replace("-0000.parquet", "-0001.parquet")
    out.put(stale, Path(logon_file).read_bytes())
    third = export_ocsf(lake, out)
    assert third.sources[AUTHENTICATION].deleted == [stale]
    assert Path(stale).exists() and pq.read_table(stale).num_rows == 0
    assert pq.read_schema(stale).names == pq.read_schema(logon_file).names
    assert export_ocsf(lake, out).sources[AUTHENTICATION].deleted == []
    assert any(f"/ext/{DATASTORE}/" in p for p in manifest)
