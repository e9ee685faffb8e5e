"""Round two, section 6: exit codes, and no command ends in a traceback on any argument, input or
lake state (README, "Command line")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditcorr_cli.main import EXIT_INTERNAL, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, main
from tests.factories import T0, ct_name, put
from tests.fixtures.bad import make_corpus as corpus
from tests.hardening.test_lake_state import damage, world_day, write_inputs

#: each example runs a whole command (a query engine over the lake): a few per run, more to hunt
N = int(os.environ.get("AUDITCORR_PROPERTY_EXAMPLES", "15"))
SETTINGS = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: argv text: anything a shell can pass (no surrogates; NUL cannot be in argv either)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
TIMES = st.one_of(
    TEXT,
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes().map(lambda d: d.isoformat() + "+14:00"),
    st.sampled_from(["0001-01-01", "9999-12-31", "0000-00-00", "9999-12-31T23:59:59-23:59",
                     "0001-01-01T00:00:00+23:59", "2026-02-30", "1970-01-01", "-1", "now", ""]),
)
SQL = st.one_of(
    TEXT,
    st.sampled_from(["SELECT 1/0", "SELECT CAST('x' AS integer)", "SELECT * FROM nowhere", "SELECT",
                     "SELECT date '9999-12-31' + interval '1' day", "SELECT from_unixtime(1e300)",
                     "SELECT * FROM s3_writes LIMIT -1", "SELECT repeat('x', 10)",
                     "SELECT 1; SELECT 2", "WITH a AS (SELECT 1) SELECT * FROM a, a",
                     "SELECT approx_percentile(1, 2)", "SELECT * FROM alerts_latest WHERE dt = 7"]),
)


def ok(r: Result, allowed: set[int]) -> None:
    """An allowed exit code, a message rather than a traceback, and no internal error."""
    assert r.exit_code in allowed, (r.exit_code, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("exit")
    inputs = write_inputs(root / "in", world_day(0, 2))
    r = CliRunner().invoke(main, ["ingest", "--lake", str(root / "lake"), str(inputs)])
    ok(r, {EXIT_OK})
    return root / "lake"


@given(user=TEXT, since=st.none() | TIMES, until=st.none() | TIMES, fmt=st.sampled_from(["table", "csv", "json"]))
@SETTINGS
def test_timeline_any_arguments(lake, user, since, until, fmt):
    args = ["timeline", "--lake", str(lake), "--user", user, "--format", fmt]
    args += ["--since", since] if since is not None else []
    args += ["--until", until] if until is not None else []
    ok(CliRunner().invoke(main, args), {EXIT_OK, EXIT_USAGE})


@given(bucket=TEXT, key=TEXT, status=st.sampled_from(["open", "closed", "all"]) | TEXT, rule=st.none() | TEXT)
@SETTINGS
def test_who_and_alerts_any_arguments(lake, bucket, key, status, rule):
    ok(CliRunner().invoke(main, ["who", "--lake", str(lake), "--bucket", bucket, "--key", key]), {EXIT_OK})
    args = ["alerts", "--lake", str(lake), "--status", status] + (["--rule", rule] if rule is not None else [])
    ok(CliRunner().invoke(main, args), {EXIT_OK, EXIT_USAGE})


@given(sql=SQL)
@SETTINGS
def test_query_any_sql(lake, sql):
    ok(CliRunner().invoke(main, ["query", "--lake", str(lake), sql]), {EXIT_OK, EXIT_USAGE})


@given(body=st.binary(max_size=300), suffix=st.sampled_from([".json", ".json.gz", ".csv", ".csv.gz", ""]),
       config=st.none() | TEXT)
@SETTINGS
def test_ingest_any_bytes_and_config(tmp_path_factory, body, suffix, config):
    root = tmp_path_factory.mktemp("any")
    f = root / f"in{suffix}"
    f.write_bytes(body)
    args = ["ingest", "--lake", str(root / "lake"), str(f)]
    if config is not None:
        (root / "c.toml").write_text(config)
        args[1:1] = ["--config", str(root / "c.toml")]
    r = CliRunner().invoke(main, args)
    ok(r, {EXIT_OK, EXIT_REFUSED, EXIT_USAGE})
    shutil.rmtree(root)


def test_ingest_exit_code_says_whether_everything_went_in(tmp_path):
    good = tmp_path / "good"
    write_inputs(good, world_day(0, 1))
    r = CliRunner().invoke(main, ["ingest", "--lake", str(tmp_path / "a"), str(good)])
    ok(r, {EXIT_OK})
    again = CliRunner().invoke(main, ["ingest", "--lake", str(tmp_path / "a"), str(good)])
    ok(again, {EXIT_OK})  # already ingested: nothing refused
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    r = CliRunner().invoke(main, ["ingest", "--lake", str(tmp_path / "b"), str(good), str(broken)])
    ok(r, {EXIT_REFUSED})
    assert "quarantine" in r.output or "rejected" in r.output
    one_bad = tmp_path / ct_name(9)
    one_bad.parent.mkdir(parents=True, exist_ok=True)
    rec = put(T0, "10.40.0.17", event_id="w-bad")
    rec["eventTime"] = "2026-03-02 10:00:00"  # no zone: that record is rejected, the file is in
    one_bad.write_bytes(corpus.ct([put(T0, "10.40.0.17", event_id="w-good"), rec]))
    r = CliRunner().invoke(main, ["ingest", "--lake", str(tmp_path / "c"), str(one_bad)])
    ok(r, {EXIT_REFUSED})


def test_usage_and_configuration_errors_exit_2(tmp_path, lake):
    cases = [
        ["ingest", "--lake", str(lake), str(tmp_path / "missing")],
        ["timeline", "--lake", str(lake), "--user", "u", "--since", "yesterday"],
        ["query", "--lake", str(lake), "DROP TABLE s3_writes"],
        ["query", "--lake", str(lake), "SELECT * FROM nowhere"],
        ["lake", "check", "--lake", "/proc/self/status"],  # a file, not a folder
        ["alerts", "--lake", str(lake), "--format", "xml"],
        ["nonsense"],
    ]
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[lake]\ncompact_threshold = 'many'\n")
    cases.append(["reattribute", "--lake", str(lake), "--config", str(cfg)])
    for args in cases:
        ok(CliRunner().invoke(main, args), {EXIT_USAGE})


def test_an_internal_error_is_one_line_exit_3_and_v_shows_the_traceback(lake, monkeypatch):
    from auditcorr_cli.query import analyst

    def broken(*_a, **_k):
        raise KeyError("a bug")

    monkeypatch.setattr(analyst, "alerts", broken)
    r = CliRunner().invoke(main, ["alerts", "--lake", str(lake)])
    assert r.exit_code == EXIT_INTERNAL and "internal error (KeyError" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["-v", "alerts", "--lake", str(lake)])
    assert r.exit_code == EXIT_INTERNAL and "Traceback" in r.output


def test_every_command_on_a_damaged_lake_names_the_file_never_a_traceback(tmp_path, lake):
    bad_lake = tmp_path / "lake"
    shutil.copytree(lake, bad_lake)
    bad = damage(bad_lake)
    commands = [
        (["query", "--lake", str(bad_lake), "SELECT count(*) FROM logons"], {EXIT_OK}),
        (["who", "--lake", str(bad_lake), "--bucket", "b", "--key", "k"], {EXIT_OK}),
        (["alerts", "--lake", str(bad_lake)], {EXIT_OK}),
        (["timeline", "--lake", str(bad_lake), "--user", "alice@example.com", "--since", "2026-01-01"], {EXIT_OK}),
        (["reattribute", "--lake", str(bad_lake)], {EXIT_OK}),
        (["export", "ocsf", "--lake", str(bad_lake), "--out", str(tmp_path / "ocsf")], {EXIT_OK, EXIT_REFUSED}),
        (["lake", "check", "--lake", str(bad_lake)], {EXIT_REFUSED}),
    ]
    for args, allowed in commands:
        r = CliRunner().invoke(main, args)
        ok(r, allowed)
    assert all(p.exists() for p in bad.values())
