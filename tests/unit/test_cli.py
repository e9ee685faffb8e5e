"""The command line over a real local lake (DuckDB, Parquet), end to end."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from click.testing import CliRunner

from auditcorr_cli.main import main
from tests.factories import T0, put, report_csv, saml_logon, session_row, sid, trail

IP = "10.40.0.17"


@pytest.fixture
def world(tmp_path):
    inputs = tmp_path / "in"
    (inputs / "ct").mkdir(parents=True)
    (inputs / "rep").mkdir()
    recs = [saml_logon(T0 - timedelta(minutes=2), "alice@example.com", event_id="logon-1"),
            put(T0 + timedelta(minutes=5), IP, key="exports/ok.csv", session_name=sid(1), event_id="w1"),
            put(T0 + timedelta(minutes=6), IP, key="exports/x y+z.csv", session_name=sid(2), event_id="w2"),
            put(T0 + timedelta(minutes=7), "203.0.113.77", key="replay", event_id="w3")]
    (inputs / "ct" / "a.json.gz").write_bytes(trail(recs))
    # carol's write, hours later: the account's CloudTrail has come far enough to judge the morning's
    # sessions' logons (the logon cross-check waits for the data, not the wall clock)
    (inputs / "ct" / "c.json.gz").write_bytes(trail([put(T0 + timedelta(hours=20, minutes=55), IP, key="late",
                                                         session_name=sid(3), event_id="w4")]))
    (inputs / "ct" / "b.json.gz").write_bytes(trail(recs[1:2]))  # a duplicate delivery
    (inputs / "ct" / "broken.json.gz").write_bytes(trail(recs)[:40])
    rep = inputs / "rep" / "daily-session-report-2026-03-02.csv"
    rep.write_bytes(report_csv([session_row(sid(1), "alice@example.com", IP, T0, T0 + timedelta(hours=1)),
                                session_row(sid(2), "bob@example.com", "10.40.0.18", T0, T0 + timedelta(hours=1))]))
    rep2 = inputs / "rep" / "daily-session-report-2026-03-03.csv"
    rep2.write_bytes(report_csv([session_row(sid(3), "carol@example.com", IP, T0 + timedelta(hours=20),
                                             T0 + timedelta(hours=21))]))
    lake = tmp_path / "lake"
    r = CliRunner().invoke(main, ["ingest", "--lake", str(lake), str(inputs / "ct"), str(inputs / "rep")])
    assert r.exit_code == 1, r.output  # exit code 1: broken.json.gz was quarantined
    return lake, r.output


def run(*args):
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def test_ingest_summary_counts_and_reasons(world):
    _, out = world
    assert "cloudtrail" in out and "sessions_report" in out
    assert "file rejected: corrupt or truncated gzip" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("cloudtrail"))
    files, bad, rin, written, dup, skipped, rejected = map(int, line.split()[1:])
    assert (files, bad, rin, written, dup) == (4, 1, 6, 5, 1)
    assert rin == written + dup + skipped + rejected


def test_query_json_is_one_array(world):
    lake, _ = world
    out = run("query", "--lake", str(lake), "--format", "json",
              "SELECT status, count(*) AS n FROM attributed_activity GROUP BY status ORDER BY status")
    assert orjson.loads(out) == [{"status": "attributed", "n": 3}, {"status": "external", "n": 1}]


def test_query_trino_semantics_and_refusals(world):
    lake, _ = world
    assert orjson.loads(run("query", "--lake", str(lake), "--format", "json", "SELECT 7 / 2 AS x")) == [{"x": 3}]
    r = CliRunner().invoke(main, ["query", "--lake", str(lake), "DROP TABLE s3_writes"])
    assert r.exit_code != 0
    r = CliRunner().invoke(main, ["query", "--lake", str(lake), "SELECT * FROM read_csv('/etc/passwd')"])
    assert r.exit_code != 0


def test_query_csv(world):
    lake, _ = world
    out = run("query", "--lake", str(lake), "--format", "csv",
              "SELECT key, user_id FROM attributed_activity WHERE status = 'attributed' ORDER BY key")
    assert out.splitlines() == ["key,user_id", "exports/ok.csv,alice@example.com",
                                "exports/x y+z.csv,alice@example.com", "late,carol@example.com"]


def test_who_shows_the_evidence_chain(world):
    lake, _ = world
    out = run("who", "--lake", str(lake), "--bucket", "research-data", "--key", "exports/x y+z.csv")
    assert "claims session " + sid(2) in out
    assert "-> session " + sid(1) in out
    assert "-> user alice@example.com" in out
    assert "-> logon logon-1" in out
    out = run("who", "--lake", str(lake), "--bucket", "research-data", "--key", "nope")
    assert "no write" in out


def test_alerts_and_timeline(world):
    lake, _ = world
    out = orjson.loads(run("alerts", "--lake", str(lake), "--format", "json"))
    # bob and carol never logged on in this world, and alice's logon came just before bob's session
    # started: the logon cross-check says so
    got = sorted((a["rule"], a["user_id"]) for a in out)
    assert ("credentials_outside_fleet", None) in got
    assert ("session_id_mismatch", "alice@example.com") in got
    assert ("logon_user_mismatch", "bob@example.com") in got
    assert ("session_without_logon", "carol@example.com") in got
    assert not any(u == "alice@example.com" and r != "session_id_mismatch" for r, u in got)
    tl = orjson.loads(run("timeline", "--lake", str(lake), "--user", "alice@example.com", "--since", "2026-03-01",
                          "--until", "2026-03-04", "--format", "json"))
    assert [e["kind"] for e in tl] == ["logon", "session_start", "write", "write", "alert", "session_end"]
    assert run("timeline", "--lake", str(lake), "--user", "alice@example.com", "--since", "2026-03-03",
               "--format", "json").strip() == "[]"


def test_bad_config_is_a_usage_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[attribution]\nfleet_cidrs = ['x']\n")
    r = CliRunner().invoke(main, ["ingest", "--config", str(cfg), "--lake", str(tmp_path / "l"), str(tmp_path)])
    assert r.exit_code == 2 and "fleet_cidrs" in r.output


def test_poll_a_simulated_appstream_api_then_attribute_live(tmp_path):
    """`auditcorr poll` stores live sessions; a write ingested before any report is attributed from
    them (session_source = live)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "daily-session-report-2026-03-02.csv").write_bytes(report_csv(
        [session_row(sid(1), "alice@example.com", IP, T0, T0 + timedelta(hours=2))]))
    lake = tmp_path / "lake"
    out = run("poll", "--lake", str(lake), "--fake-world", str(reports), "--at", "2026-03-02T08:30:00Z")
    assert "sessions_observed=1" in out and "stacks_failed=0" in out
    run("poll", "--lake", str(lake), "--fake-world", str(reports), "--at", "2026-03-02T08:45:00Z")
    ct = tmp_path / "ct.json.gz"
    ct.write_bytes(trail([put(T0 + timedelta(minutes=40), IP, key="live-k", event_id="w9")]))
    run("ingest", "--lake", str(lake), str(ct))
    rows = orjson.loads(run("query", "--lake", str(lake), "--format", "json",
                            "SELECT status, user_id, session_source FROM attributed_activity"))
    assert rows == [{"status": "attributed", "user_id": "alice@example.com", "session_source": "live"}]
