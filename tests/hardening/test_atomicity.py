"""A run that dies mid-way leaves nothing a query would read as final, and a re-run heals it.

The crash is injected at every k-th lake write (the process "dies" while writing a temp file, or
just before a write), or by SIGKILL of a real ``auditcorr ingest`` process.  After the crash every
visible table file is a complete Parquet file (temp files are hidden: their names start with ``.``);
re-running the same inputs gives exactly the tables of a clean run, with no duplicate rows for SQL.
"""

from __future__ import annotations

import os
import posixpath
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from auditcorr.config import Config
from auditcorr.lake import Lake
from tests.factories import T0, ct_name, put, report_csv, report_name, saml_logon, session_row, sid
from tests.fixtures.bad import make_corpus as corpus
from tests.hardening.util import NOW_MS, assert_no_half_written_files, new_pipe, snapshot

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
CONFIG = Config(compact_threshold=1)  # compact often: compaction must be crash-safe too
ROOT = Path(__file__).resolve().parents[2]


def deliveries() -> list[tuple[str, bytes]]:
    """Two days of activity in arrival order: logs before reports, a duplicate delivery, a late report."""
    a, b, c = "10.40.0.17", "10.40.0.18", "10.40.0.19"
    d2 = T0 + timedelta(days=1)
    return [
        (ct_name(1), corpus.ct([saml_logon(T0 - 2 * MIN, "alice@example.com", event_id="l-1"),
                                put(T0 + 5 * MIN, a, event_id="w-1"), put(T0 + 6 * MIN, b, event_id="w-2")])),
        (ct_name(2), corpus.ct([put(T0 + 50 * MIN, a, event_id="w-3"), put(T0 + 3 * H, c, event_id="w-4"),
                                put(T0 + 7 * MIN, "203.0.113.9", event_id="w-5")])),
        (ct_name(3), corpus.ct([put(T0 + 6 * MIN, b, event_id="w-2"),  # a duplicate delivery
                                put(d2 + 10 * MIN, a, event_id="w-6")])),
        (report_name("2026-03-02"), report_csv([
            session_row(sid(1), "alice@example.com", a, T0, T0 + H),
            session_row(sid(2), "bob@example.com", b, T0, T0 + H)])),
        (ct_name(4, "2026/03/03"), corpus.ct([put(d2 + 20 * MIN, b, event_id="w-7")])),
        (report_name("2026-03-03"), report_csv([session_row(sid(3), "carol@example.com", a, d2, d2 + H)])),
    ]


def run_all(pipe) -> None:
    for name, data in deliveries():
        out = pipe.ingest_object(name, data)
        assert out.error is None and out.reconciles


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    pipe = new_pipe(tmp_path_factory.mktemp("clean") / "lake", CONFIG)
    calls = 0
    real = pipe.lake.put_bytes

    def counting(path, data):
        nonlocal calls
        calls += 1
        real(path, data)

    pipe.lake.put_bytes = counting  # type: ignore[method-assign]
    run_all(pipe)
    return snapshot(pipe.lake), calls


class Crash(Exception):
    pass


def crashing_lake(lake: Lake, at: int, torn: bool) -> None:
    """Make the ``at``-th write die: before anything is written, or after half a temp file."""
    real = lake.put_bytes
    calls = 0

    def put_bytes(path, data):
        nonlocal calls
        calls += 1
        if calls == at:
            if torn:
                parent = posixpath.dirname(path)
                lake.fs.create_dir(parent, recursive=True)
                with lake.fs.open_output_stream(posixpath.join(parent, ".tmp-crashed")) as out:
                    out.write(data[: len(data) // 2])
            raise Crash(f"died at write {at}: {path}")
        real(path, data)

    lake.put_bytes = put_bytes  # type: ignore[method-assign]


def test_clean_run_writes_enough_to_crash_in_interesting_places(clean):
    _, calls = clean
    assert calls >= 20


def test_crash_at_any_write_then_rerun_equals_a_clean_run(tmp_path, clean):
    expected, calls = clean
    # ~10 crash points spread over the run (a sweep over every write passed when this was written),
    # alternately dying before a write and in the middle of writing a temp file
    for i, at in enumerate(sorted({1, calls, *range(2, calls, max(1, calls // 8))})):
        torn = bool(i % 2)
        lake_dir = tmp_path / f"lake-{at}"
        pipe = new_pipe(lake_dir, CONFIG)
        crashing_lake(pipe.lake, at, torn)
        with pytest.raises(Crash):
            run_all(pipe)
        assert_no_half_written_files(lake_dir)
        # the retry: a fresh process over the same lake, the same inputs again
        again = new_pipe(lake_dir, CONFIG)
        run_all(again)
        assert_no_half_written_files(lake_dir)
        assert snapshot(again.lake) == expected, f"crash at write {at} of {calls} (torn={torn}): another lake"
        for table in ("s3_writes", "logons", "sessions"):
            # no duplicate rows for a reader that does not de-duplicate (DuckDB/Athena over the files)
            raw = again.lake.read(table, latest=False).num_rows
            assert raw == again.lake.read(table).num_rows, (table, at)


def files_under(root: Path) -> list[str]:
    return [f for _, _, fs in os.walk(root) for f in fs]


def test_sigkill_of_a_real_ingest_then_rerun_equals_a_clean_run(tmp_path, clean):
    expected, _ = clean
    inbox = tmp_path / "inbox"
    for i, (name, data) in enumerate(deliveries()):
        p = inbox / f"{i:02d}" / name  # keep the names (report days), process in this order
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    lake_dir = tmp_path / "lake"
    script = (
        "import sys; from auditcorr_cli.main import run_ingest; from tests.hardening.util import new_pipe;"
        "from tests.hardening.test_atomicity import CONFIG;"
        f"run_ingest(new_pipe({str(lake_dir)!r}, CONFIG, {NOW_MS}), [{str(inbox)!r}])"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "layers" / "core"), str(ROOT)]))
    killed = 0
    for extra in (0.0, 0.3):
        seen = len(files_under(lake_dir))
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=str(ROOT))
        deadline = time.monotonic() + 60
        while len(files_under(lake_dir)) <= seen and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until this run has written something: kill it mid-ingest
        time.sleep(extra)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        assert_no_half_written_files(lake_dir)
    assert killed >= 1
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=str(ROOT), timeout=120)
    assert done.returncode == 0
    assert_no_half_written_files(lake_dir)
    # the inputs were read from other paths than in the clean run: compare without source names
    got = snapshot(Lake.open(str(lake_dir)), drop=("source_object", "log_file"))
    assert got == expected


def test_retry_after_a_crash_between_compaction_and_attribution_still_attributes(tmp_path):
    # regression: s3_writes used to be compacted before the object's attribution; a retry then found
    # its own rows in the compacted file, took them for duplicates and never attributed them: the
    # credential-replay alert below was silently lost
    first = corpus.ct([put(T0, "10.40.0.17", event_id="w-1")])
    second = corpus.ct([put(T0 + MIN, "203.0.113.9", event_id="w-replay")])
    lake_dir = tmp_path / "lake"
    pipe = new_pipe(lake_dir, CONFIG)
    pipe.ingest_object(ct_name(1), first)
    real = pipe.lake.put_bytes

    def die_before_attribution(path, data):
        if "/attributed_activity/" in path:
            raise Crash(path)
        real(path, data)

    pipe.lake.put_bytes = die_before_attribution  # type: ignore[method-assign]
    with pytest.raises(Crash):
        pipe.ingest_object(ct_name(2), second)
    retry = new_pipe(lake_dir, CONFIG)
    out = retry.ingest_object(ct_name(2), second)
    assert out.written == 1 and out.duplicates == 0
    assert {r["event_id"]: r["status"] for r in retry.lake.read("attributed_activity").to_pylist()} == {
        "w-1": "unattributed", "w-replay": "external"}
    assert {(r["event_id"], r["rule"]) for r in retry.lake.read("alerts").to_pylist()} >= {
        ("w-replay", "credentials_outside_fleet")}
