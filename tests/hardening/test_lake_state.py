"""Round two, the lake's own state (issue 11, sections 4 and 5): two local runs at once, and table
files that are empty, truncated, foreign or damaged inside a partition."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from auditcorr.lake import DAMAGED_DIR, Lake
from auditcorr_cli.lakelock import LakeBusy, lake_lock
from auditcorr_cli.main import main
from tests.factories import T0, ct_name, put, report_csv, report_name, saml_logon, session_row, sid
from tests.fixtures.bad import make_corpus as corpus
from tests.hardening.util import activity_view, alerts_view, snapshot

ROOT = Path(__file__).resolve().parents[2]
MIN = timedelta(minutes=1)
H = timedelta(hours=1)
FLEET = ["10.40.0.17", "10.40.0.18", "10.40.0.19"]
USERS = ["alice@example.com", "bob@example.com", "carol@example.com"]


def world_day(day: int, files: int) -> list[tuple[str, bytes]]:
    """One day: ``files`` CloudTrail objects of fleet writes (one of them from outside the fleet) and
    the day's sessions report."""
    start = T0 + timedelta(days=day)
    folder = f"{start:%Y/%m/%d}"
    out = []
    for n in range(files):
        recs = [put(start + (n * 7 + k) * MIN, FLEET[(n + k) % 3], key=f"d{day}/f{n}/{k}.csv",
                    event_id=f"w-{day}-{n}-{k}") for k in range(5)]
        if n == 0:
            recs += [saml_logon(start - 2 * MIN, u, event_id=f"l-{day}-{i}") for i, u in enumerate(USERS)]
            recs.append(put(start + 3 * MIN, "203.0.113.9", event_id=f"w-{day}-outside"))
        out.append((ct_name(day * 100 + n, folder), corpus.ct(recs)))
    rows = [session_row(sid(day * 10 + i), USERS[i], FLEET[i], start, start + 6 * H) for i in range(3)]
    out.append((report_name(f"{start:%Y-%m-%d}"), report_csv(rows)))
    return out


def write_inputs(root: Path, items: list[tuple[str, bytes]]) -> Path:
    for name, data in items:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def cli(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "cli"), str(ROOT / "layers/core"),
                                                       str(ROOT / "sim")]))
    return subprocess.Popen([sys.executable, "-m", "auditcorr_cli.main", *args], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode() + err.decode()


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("concurrent")
    a = write_inputs(root / "a", world_day(0, 8))
    b = write_inputs(root / "b", world_day(1, 8))
    cfg = root / "auditcorr.toml"
    cfg.write_text("[lake]\ncompact_threshold = 2\n")  # compact after nearly every file: the race of the issue
    return a, b, cfg


# -- section 4: two runs on one lake ------------------------------------------------------------------
def test_two_ingests_at_once_equal_a_sequential_run(tmp_path, two_sets):
    a, b, cfg = two_sets
    seq = tmp_path / "seq"
    for folder in (a, b):
        rc, out = finish(cli("ingest", "--lake", str(seq), "--config", str(cfg), str(folder)))
        assert rc == 0, out
    both = tmp_path / "both"
    procs = [cli("ingest", "--lake", str(both), "--config", str(cfg), str(folder)) for folder in (a, b)]
    results = [finish(p) for p in procs]
    for rc, out in results:
        assert rc == 0 and "Traceback" not in out, out
    lake_seq, lake_both = Lake.open(str(seq)), Lake.open(str(both))
    assert activity_view(lake_both, ("logon_event_id",)) == activity_view(lake_seq, ("logon_event_id",))
    assert len(activity_view(lake_seq)) == 2 * (8 * 5 + 1)
    assert alerts_view(lake_both, open_only=True) == alerts_view(lake_seq, open_only=True)
    for table in ("s3_writes", "logons", "sessions"):
        assert snapshot(lake_both)[table] == snapshot(lake_seq)[table], table
    # the latest views through the query engine, as an analyst sees them
    for sql in ("SELECT event_id, status, session_id, user_id, logon_event_id FROM attributed_activity_latest"
                " ORDER BY event_id",
                "SELECT alert_id, rule, status FROM alerts_latest WHERE status = 'open' ORDER BY alert_id"):
        q = [CliRunner().invoke(main, ["query", "--lake", str(p), "--format", "csv", sql]) for p in (seq, both)]
        assert q[0].exit_code == 0 and q[0].stdout.count("\n") > 2, q[0].output
        assert q[1].stdout == q[0].stdout


def test_a_run_waits_for_the_lock_then_gives_up_naming_the_holder(tmp_path, two_sets):
    a, _b, cfg = two_sets
    lake = tmp_path / "lake"
    with lake_lock(str(lake), "test holder"):
        t0 = time.monotonic()
        rc, out = finish(cli("ingest", "--lake", str(lake), "--wait", "1", str(a)))
        assert rc == 4, out
        assert time.monotonic() - t0 >= 1
        assert f"pid {os.getpid()}" in out and "test holder" in out and "Traceback" not in out
        with pytest.raises(LakeBusy):
            with lake_lock(str(lake), "second", wait_seconds=0):
                pass
    assert not Lake.open(str(lake)).files("s3_writes")  # nothing ran under the other run's lock
    rc, out = finish(cli("ingest", "--lake", str(lake), "--wait", "0", str(a)))
    assert rc == 0, out  # released with the block


def test_the_lock_of_a_killed_run_is_never_stale(tmp_path, two_sets):
    a, _b, _cfg = two_sets
    lake = tmp_path / "lake"
    holder = cli("ingest", "--lake", str(lake), "--wait", "0", str(a))
    deadline = time.monotonic() + 60
    while not (lake / "_lock").exists() or not (lake / "_lock").read_bytes():
        assert time.monotonic() < deadline and holder.poll() is None
        time.sleep(0.05)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (lake / "_lock").exists()  # the file stays behind, the lock does not
    with lake_lock(str(lake), "after the kill", wait_seconds=0):
        pass
    rc, out = finish(cli("ingest", "--lake", str(lake), "--wait", "0", str(a)))
    assert rc == 0, out


def test_a_read_that_listed_its_files_lists_again_when_one_vanishes(tmp_path):
    lake = Lake.open(str(tmp_path / "lake"))
    t = pa.table({"event_id": ["a", "b"]})
    from auditcorr.schemas import TABLES, conform

    rows = conform(t, TABLES["logons"])
    lake.write_file("logons", "2026-03-02", "part-1", rows)
    gone = lake.write_file("logons", "2026-03-02", "part-2", rows)
    real_files = lake.files
    calls = []

    def stale_then_fresh(table, dt=None):
        listed = real_files(table, dt)
        calls.append(listed)
        if len(calls) == 1:  # a compaction deletes part-2 between the listing and the read
            os.remove(gone)
        return listed

    lake.files = stale_then_fresh  # type: ignore[method-assign]
    assert sorted(lake.read("logons", ["2026-03-02"]).column("event_id").to_pylist()) == ["a", "b"]
    assert len(calls) == 2 and gone in calls[0] and gone not in calls[1]
    with pytest.raises(FileNotFoundError):  # an explicit list is the caller's: it is told
        lake.read("logons", files=calls[0])


# -- section 5: damaged files inside a partition ----------------------------------------------------------
def damage(lake_dir: Path) -> dict[str, Path]:
    """Four kinds of bad file, in four tables' partitions."""
    part = {t: sorted((lake_dir / t).glob("dt=*"))[0] for t in ("s3_writes", "alerts", "attributed_activity",
                                                                 "logons", "sessions")}
    good = sorted(part["attributed_activity"].glob("*.parquet"))[0]
    bad = {
        "empty": part["s3_writes"] / "empty.parquet",
        "foreign": part["alerts"] / "notes.parquet",
        "truncated": part["attributed_activity"] / "part-truncated.parquet",
        "other_table": part["logons"] / "part-other.parquet",
        "bad_pages": part["sessions"] / "part-pages.parquet",
    }
    bad["empty"].write_bytes(b"")
    bad["foreign"].write_bytes(b"not parquet at all\n" * 10)
    bad["truncated"].write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    pq.write_table(pa.table({"x": [1, 2, 3]}), bad["other_table"])
    # a real Parquet file of the sessions table whose data pages are overwritten (the footer is intact)
    src = sorted(part["sessions"].glob("*.parquet"))[0]
    raw = bytearray(src.read_bytes())
    footer = int.from_bytes(raw[-8:-4], "little")
    for i in range(4, len(raw) - footer - 8):
        raw[i] = 0xFF
    bad["bad_pages"].write_bytes(bytes(raw))
    return bad


@pytest.fixture(scope="module")
def healthy(tmp_path_factory, two_sets) -> Path:
    a, b, _cfg = two_sets
    lake = tmp_path_factory.mktemp("healthy") / "lake"
    for folder in (a, b):
        rc, out = finish(cli("ingest", "--lake", str(lake), str(folder)))
        assert rc == 0, out
    return lake


def analyst_commands(lake: Path) -> list[list[str]]:
    return [["query", "--lake", str(lake), "SELECT count(*) AS n FROM s3_writes"],
            ["query", "--lake", str(lake), "SELECT count(*) AS n FROM alerts_latest"],
            ["query", "--lake", str(lake), "SELECT count(*) AS n FROM attributed_activity_latest"],
            ["query", "--lake", str(lake), "SELECT count(*) AS n, count(DISTINCT session_id) AS d FROM sessions"],
            ["who", "--lake", str(lake), "--bucket", "research-data-111122223333", "--key", "d1/f3/2.csv"],
            ["alerts", "--lake", str(lake), "--status", "all", "--format", "json"],
            ["timeline", "--lake", str(lake), "--user", "bob@example.com", "--since", "2026-02-01",
             "--until", "2026-04-01", "--format", "json"]]


def test_damaged_files_are_named_and_skipped_by_every_command(tmp_path, healthy):
    lake = tmp_path / "lake"
    shutil.copytree(healthy, lake)
    before = [CliRunner().invoke(main, args) for args in analyst_commands(lake)]
    for r in before:
        assert r.exit_code == 0, r.output
    bad = damage(lake)
    runner = CliRunner()
    for args, was in zip(analyst_commands(lake), before, strict=True):
        r = runner.invoke(main, args)
        assert r.exit_code == 0 and r.exception is None, (args, r.output)
        assert r.stdout == was.stdout, args  # the damaged files held nothing readable: the same answers
        named = [p for p in bad.values() if str(p) in r.stderr]
        assert named, (args, r.stderr)  # the user is told which file was skipped
        assert "Traceback" not in r.output
    # the pipeline's reads skip them too: an ingest on the damaged lake works, says so, exits 1
    extra = write_inputs(tmp_path / "more", world_day(2, 2))
    r = runner.invoke(main, ["ingest", "--lake", str(lake), str(extra)])
    assert r.exit_code == 1 and "damaged lake file" in r.stderr, r.output
    assert [k for k, p in bad.items() if not p.exists()] == []  # never merged away by a compaction


def test_lake_check_lists_and_moves_aside_exactly_the_damaged_files(tmp_path, healthy):
    lake = tmp_path / "lake"
    shutil.copytree(healthy, lake)
    clean = CliRunner().invoke(main, ["lake", "check", "--lake", str(lake)])
    assert clean.exit_code == 0 and "0 damaged" in clean.output
    bad = damage(lake)
    r = CliRunner().invoke(main, ["lake", "check", "--lake", str(lake)])
    assert r.exit_code == 1
    listed = {line.split(": ", 1)[0] for line in r.stdout.splitlines() if line.startswith("/")}
    assert listed == {str(p) for p in bad.values()}
    assert "empty file" in r.stdout and "no column" in r.stdout and "data pages" in r.stdout
    moved = CliRunner().invoke(main, ["lake", "check", "--lake", str(lake), "--move-aside"])
    assert moved.exit_code == 0, moved.output
    for p in bad.values():
        assert not p.exists()
        aside = lake / DAMAGED_DIR / p.relative_to(lake)
        assert aside.exists() and (aside.parent / (aside.name + ".reason.json")).exists()
    again = CliRunner().invoke(main, ["lake", "check", "--lake", str(lake)])
    assert again.exit_code == 0 and "0 damaged" in again.output
    for args in analyst_commands(lake):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0 and "damaged" not in r.stderr, r.output
