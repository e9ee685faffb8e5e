"""Hostile analyst input and hostile object names.

- Analyst values (``who``, ``timeline``, ``alerts --rule``) are query parameters, never SQL text:
  injection strings find nothing (or exactly the row whose value IS that string) and change nothing.
- ``auditcorr query`` runs one read-only statement over the lake's tables: no DDL/DML, no file or
  network access, no settings, no extensions.
- Object names and keys never choose where anything is written: nothing lands outside the lake.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from auditcorr.lake import Lake, LakePathError
from auditcorr_cli.main import main
from tests.factories import T0, put, report_csv, report_name, saml_logon, session_row, sid
from tests.fixtures.bad import make_corpus as corpus
from tests.hardening.util import new_pipe, quarantined, snapshot

IP = "10.40.0.17"
INJECTIONS = [
    "x' OR 1=1 --",
    "x' OR '1'='1",
    "'; DROP TABLE s3_writes; --",
    "research-data' UNION SELECT * FROM s3_writes --",
    "\" OR \"\"=\"",
    "x\\' OR 1=1 --",
    "$$ OR 1=1 $$",
    "%",
    "_",
    "*",
    "?",
    "research-data\x00",
    "' || (SELECT getenv('HOME')) || '",
    "'); COPY s3_writes TO '/tmp/auditcorr-pwned.csv'; --",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small lake: alice's session and writes, one alert, one key that IS an injection string."""
    root = tmp_path_factory.mktemp("sec")
    pipe = new_pipe(root / "lake")
    recs = [saml_logon(T0 - timedelta(minutes=2), "alice@example.com", event_id="logon-1"),
            put(T0 + timedelta(minutes=5), IP, key="data/report.csv", event_id="w-1"),
            put(T0 + timedelta(minutes=6), IP, key="x' OR '1'='1", event_id="w-2"),
            put(T0 + timedelta(minutes=7), "203.0.113.9", key="data/out.csv", event_id="w-3")]
    pipe.ingest_object("ct/1.json.gz", corpus.ct(recs))
    pipe.ingest_object(report_name("2026-03-02"),
                       report_csv([session_row(sid(1), "alice@example.com", IP, T0, T0 + timedelta(hours=1))]))
    return root / "lake", snapshot(pipe.lake)


def cli(*args: str):
    res = CliRunner().invoke(main, list(args))
    return res


def json_out(res) -> list[dict]:
    assert res.exit_code == 0, res.output
    return orjson.loads(res.output)


def test_the_world_answers_the_honest_questions(world):
    lake, _ = world
    assert [r["event_id"] for r in json_out(cli("who", "--lake", str(lake), "--format", "json",
                                                "--bucket", "research-data", "--key", "data/report.csv"))] == ["w-1"]
    rows = json_out(cli("timeline", "--lake", str(lake), "--format", "json", "--user", "alice@example.com",
                        "--since", "2026-03-01", "--until", "2026-03-03"))
    assert {r["kind"] for r in rows} >= {"logon", "session_start", "write"}
    alerts = json_out(cli("alerts", "--lake", str(lake), "--format", "json"))
    assert [a["rule"] for a in alerts] == ["credentials_outside_fleet"]


SQL_LOOKING_KEY = "x' OR '1'='1"  # a key in the world: who must find exactly its write
#: a few through the whole CLI (each run builds an engine); all of them through the analyst API below
CLI_INJECTIONS = ["x' OR 1=1 --", SQL_LOOKING_KEY, "'; DROP TABLE s3_writes; --",
                  "' || (SELECT getenv('HOME')) || '"]


@pytest.mark.parametrize("evil", CLI_INJECTIONS)
def test_cli_who_timeline_alerts_take_input_as_values(world, evil):
    lake, before = world
    assert json_out(cli("who", "--lake", str(lake), "--format", "json", "--bucket", evil,
                        "--key", "data/report.csv")) == []
    found = json_out(cli("who", "--lake", str(lake), "--format", "json", "--bucket", "research-data", "--key", evil))
    assert [r["event_id"] for r in found] == (["w-2"] if evil == SQL_LOOKING_KEY else [])
    res = cli("who", "--lake", str(lake), "--bucket", evil, "--key", evil)  # the table format too
    assert res.exit_code == 0 and "no write of" in res.output
    assert json_out(cli("timeline", "--lake", str(lake), "--format", "json", "--user", evil,
                        "--since", "2026-03-01", "--until", "2026-03-03")) == []
    assert json_out(cli("alerts", "--lake", str(lake), "--format", "json", "--status", "all", "--rule", evil)) == []
    assert snapshot(Lake.open(str(lake))) == before


def test_a_key_that_looks_like_sql_is_found_exactly(world):
    lake, _ = world
    rows = json_out(cli("who", "--lake", str(lake), "--format", "json", "--bucket", "research-data",
                        "--key", SQL_LOOKING_KEY))
    assert [r["event_id"] for r in rows] == ["w-2"]


def test_every_injection_string_is_a_value_in_every_analyst_query(world):
    from datetime import UTC, datetime

    from auditcorr_cli.query import analyst
    from auditcorr_cli.query.engine import LocalEngine

    lake, before = world
    eng = LocalEngine(Lake.open(str(lake)))
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)
    assert analyst.who(eng.query, "research-data", "data/report.csv").num_rows == 1  # the honest question
    assert analyst.timeline(eng.query, "alice@example.com", since, until).num_rows >= 3
    assert analyst.alerts(eng.query, "open", "credentials_outside_fleet").num_rows == 1
    for evil in INJECTIONS:
        assert analyst.who(eng.query, evil, "data/report.csv").num_rows == 0, evil
        assert analyst.who(eng.query, "research-data", evil).num_rows == (evil == SQL_LOOKING_KEY), evil
        assert analyst.timeline(eng.query, evil, since, until).num_rows == 0, evil
        assert analyst.alerts(eng.query, None, evil).num_rows == 0, evil
        assert analyst.alerts(eng.query, evil, None).num_rows == 0, evil
    eng.close()
    assert snapshot(Lake.open(str(lake))) == before


@pytest.mark.parametrize("evil", ["2026-03-01' OR 1=1 --", "2026-03-01T00:00:00Z'; DROP TABLE logons; --",
                                  "now()", "1=1"])
def test_timeline_rejects_times_that_are_not_times(world, evil):
    lake, before = world
    for opt in ("--since", "--until"):
        res = cli("timeline", "--lake", str(lake), "--user", "alice@example.com", opt, evil)
        assert res.exit_code == 2 and "Invalid value" in res.output  # a usage error, nothing ran
    assert snapshot(Lake.open(str(lake))) == before


# -- auditcorr query: one read-only statement, nothing else ---------------------------------------

REFUSED = [
    "DROP TABLE s3_writes",
    "DELETE FROM s3_writes",
    "INSERT INTO s3_writes (event_id) VALUES ('x')",
    "UPDATE s3_writes SET key = 'x'",
    "CREATE TABLE t AS SELECT 1",
    "CREATE VIEW v AS SELECT 1",
    "ALTER TABLE s3_writes RENAME TO t",
    "COPY s3_writes TO '{out}/copy.csv'",
    "EXPORT DATABASE '{out}/export'",
    "ATTACH '{out}/x.db' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA database_list",
    "CALL pragma_version()",
    "SELECT 1; DROP TABLE s3_writes",
    "SELECT 'a' || $$; DROP TABLE s3_writes$$",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM READ_CSV_AUTO('{secret}')",
    "SELECT * FROM \"read_csv\"('{secret}')",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM read_json_auto('{secret}')",
    "SELECT * FROM read_parquet('{lake}/s3_writes/*/*.parquet')",
    "SELECT * FROM parquet_metadata('{lake}')",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM \"{secret}\"",
    "FROM '{secret}'",
    "SELECT * FROM s3_writes, LATERAL read_csv('{secret}')",
    "SELECT * FROM s3_writes WHERE EXISTS (SELECT 1 FROM '{secret}')",
    "SELECT 1 UNION ALL SELECT count(*) FROM '{secret}'",
    "SELECT * FROM s3_writes POSITIONAL JOIN '{secret}'",
    "SELECT * FROM glob('{out}/*')",
    "SELECT getenv('HOME')",
    "SELECT current_setting('threads')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM sql_auto_complete('SEL')",  # would download an extension if allowed
    "SELECT * FROM 'https://example.com/x.csv'",
    "SELECT * FROM main.s3_writes",
    "SELECT * FROM information_schema.tables",
]


@pytest.mark.parametrize("template", REFUSED)
def test_query_refuses_ddl_dml_files_and_settings(world, tmp_path, template):
    lake, before = world
    secret = tmp_path / "secret.csv"
    secret.write_text("password,hunter2\n")
    out = tmp_path / "out"
    out.mkdir()
    sql = template.format(secret=secret, out=out, lake=lake)
    res = cli("query", "--lake", str(lake), "--format", "json", sql)
    assert res.exit_code != 0, f"ran: {sql}\n{res.output}"
    assert isinstance(res.exception, SystemExit), res.exception  # a clean refusal, not a crash
    assert "hunter2" not in res.output
    assert list(out.iterdir()) == []
    assert snapshot(Lake.open(str(lake))) == before


def test_query_still_answers_read_only_sql(world):
    lake, _ = world
    rows = json_out(cli("query", "--lake", str(lake), "--format", "json",
                        "SELECT count(*) AS n FROM s3_writes WHERE key <> 'x'' OR ''1''=''1'"))
    assert rows == [{"n": 2}]


def test_engine_cannot_reach_files_even_with_translated_sql(world, tmp_path):
    # defence in depth below the translator: the DuckDB connection itself refuses file access
    import duckdb

    from auditcorr_cli.query.engine import LocalEngine

    lake, _ = world
    secret = tmp_path / "secret.csv"
    secret.write_text("password,hunter2\n")
    eng = LocalEngine(Lake.open(str(lake)))
    for sql in (f"SELECT * FROM read_csv('{secret}')", "SET enable_external_access = true",
                f"COPY (SELECT 1) TO '{tmp_path}/x.csv'"):
        with pytest.raises(duckdb.Error):
            eng.execute(sql)
    assert eng.execute("SELECT count(*) AS n FROM s3_writes").to_pylist() == [{"n": 3}]
    assert not (tmp_path / "x.csv").exists()


# -- nothing escapes the lake ----------------------------------------------------------------------

def all_files(root: Path) -> set[Path]:
    return {Path(r) / f for r, _, fs in os.walk(root) for f in fs}


HOSTILE_NAMES = [
    "../../outside/passwd",
    "../" * 12 + "etc/passwd",
    "{outside}/absolute.json.gz",
    "/etc/passwd",
    "..\\..\\outside\\windows.json.gz",
    "C:\\Windows\\System32\\drivers\\etc\\hosts",
    "a\x00b/../../outside/nul.json",
    "\x00",
    "",
    ".",
    "..",
    "/",
    "x/..",
    ".hidden",
    "-rf",
    "name\nwith\nnewlines.json",
    "%2e%2e%2f%2e%2e%2foutside%2fencoded.json",
    "quarantine/../../outside/q.json",
    "_state/ingested/x.json",
    "AWSLogs/" + "a" * 5000 + ".json.gz",
    "ünïcödé/名前/\U0001f600.json",
    "sessions/schedule=DAILY/year=2026/month=03/day=02/../../../../outside/daily-session-report-2026-03-02.csv",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_object_names_never_write_outside_the_lake(tmp_path, name):
    name = name.format(outside=tmp_path / "outside")
    lake_dir = tmp_path / "lake"
    pipe = new_pipe(lake_dir)
    before = all_files(tmp_path)
    # an unreadable body (quarantined under the name), a readable one and a report body
    for body in (b"\x00garbage", corpus.ct([corpus.good(1)]),
                 report_csv([session_row(sid(1), "a@example.com", IP, T0, T0 + timedelta(hours=1))])):
        out = pipe.ingest_object(name, body)
        assert out.reconciles
    new = all_files(tmp_path) - before
    assert new, "expected lake files"
    for path in new:
        assert lake_dir.resolve() in path.resolve().parents, f"escaped the lake: {path}"
    assert not (tmp_path / "outside").exists()
    for q in quarantined(pipe.lake).values():
        copy = q["copy"]
        assert copy.parent.parent == lake_dir / "quarantine"
        assert "\n" not in copy.name and "\x00" not in copy.name and not copy.name.startswith(".")
        assert q["source"] == name  # the real name is kept as data, in the note


def test_hostile_keys_in_records_are_only_data(tmp_path):
    lake_dir = tmp_path / "lake"
    pipe = new_pipe(lake_dir)
    keys = ["../../outside/k", "/abs/k", "a\x00b", "..", "C:\\k", "%2e%2e/k"]
    recs = [put(T0, IP, key=k, event_id=f"k-{i}", bucket="../outside") for i, k in enumerate(keys)]
    out = pipe.ingest_object("ct.json.gz", corpus.ct(recs))
    assert out.written == len(keys)
    assert sorted(r["key"] for r in pipe.lake.read("s3_writes").to_pylist()) == sorted(keys)
    assert not (tmp_path / "outside").exists()
    for path in all_files(tmp_path):
        assert lake_dir.resolve() in path.resolve().parents


@pytest.mark.parametrize(("table", "dt", "name"), [
    ("../outside", "2026-03-02", "x"), ("s3_writes", "../../x", "x"), ("s3_writes", "2026-03-02", "../x"),
    ("s3_writes", "2026-03-02", "a/b"), ("s3_writes", "2026-03-02", ".hidden"), ("s3_writes", "2026-03-02", "a\x00"),
    ("s3_writes", "2026-03-02\n", "x"), ("s3_writes", "2026-03-02", "x\n"), ("s3_writes", "٢٠٢٦-03-02", "x"),
])
def test_lake_refuses_names_that_would_escape(tmp_path, table, dt, name):
    from auditcorr.schemas import S3_WRITES

    lake = Lake.open(str(tmp_path / "lake"))
    with pytest.raises(LakePathError):
        lake.write_file(table, dt, name, S3_WRITES.empty_table())
    with pytest.raises(LakePathError):
        lake.state_path("ingested", name if name != "x" else "../x")
    assert all_files(tmp_path) == set()


def test_cli_ingest_of_files_with_hostile_names(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in ("a..json", "-rf.json", "name\nwith newline.json", "名前.json.gz", " space .json"):
        (inbox / n).write_bytes(b"not json at all")
    res = cli("ingest", "--lake", str(tmp_path / "lake"), str(inbox))
    assert res.exit_code == 1, res.output  # every input quarantined: exit code 1
    q = quarantined(Lake.open(str(tmp_path / "lake")))
    assert len(q) == 5
    for path in all_files(tmp_path):
        assert path.parent == inbox or (tmp_path / "lake").resolve() in path.resolve().parents
