"""A lake written by the previous release (schema v1, ``tests/fixtures/lake_v1``: made by commit
ba67188's own code, see make_lake_v1.py) still reads, queries and attributes with this version,
and ``auditcorr lake migrate`` splits its unscoped sessions reports."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from auditcorr.config import Config
from auditcorr.counts import IngestSummary
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr.schemas import schema_version
from auditcorr_cli.main import main
from tests import factories as f
from tests.fixtures.lake_v1 import make_lake_v1 as v1

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lake_v1" / "lake"
NOW_MS = 1_772_841_600_000  # 2026-03-07: well after every day of the fixture
LEGACY = "sessions/dt=2026-03-02/report.parquet"


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "lake"
    shutil.copytree(FIXTURE, dest)
    return dest


def activity(lake: Lake) -> dict[str, dict]:
    return {r["event_id"]: r for r in lake.read("attributed_activity").to_pylist()}


def cli(*args: str) -> str:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_the_fixture_is_a_v1_lake(lake_dir):
    versions = {schema_version(pq.read_schema(p)) for p in lake_dir.rglob("*.parquet")}
    assert versions == {1}
    assert (lake_dir / LEGACY).exists()
    assert "account_id" not in pq.read_schema(next((lake_dir / "s3_writes").rglob("*.parquet"))).names
    assert not (lake_dir / "_state" / "reports").exists()


def test_v1_files_read_and_query_as_they_are(lake_dir):
    lake = Lake.open(str(lake_dir))
    act = activity(lake)
    assert len(act) == 5 and all(r["account_id"] is None and r["region"] is None for r in act.values())
    assert (act[v1.EV["alice_put"]]["user_id"], act[v1.EV["bob_put"]]["user_id"]) == ("alice", "bob")
    assert lake.read("s3_writes").num_rows == 5 and lake.read("logons").num_rows == 3
    # the views (the local engine's *_latest views over the same files)
    rows = orjson.loads(cli("query", "--lake", str(lake_dir), "--format", "json",
                            "SELECT status, count(*) AS n FROM attributed_activity_latest GROUP BY 1 ORDER BY 1"))
    assert {r["status"]: r["n"] for r in rows} == {"attributed": 3, "external": 1, "pending": 1}
    out = cli("who", "--lake", str(lake_dir), "--bucket", "research-data", "--key", "exports/a1.csv",
              "--format", "json")
    assert "alice" in out and v1.S1 in out
    alerts = orjson.loads(cli("alerts", "--lake", str(lake_dir), "--format", "json"))
    assert [a["rule"] for a in alerts] == ["credentials_outside_fleet"]


def test_v1_lake_reattributes_and_takes_the_next_report(lake_dir):
    lake = Lake.open(str(lake_dir))
    before = activity(lake)
    pipe = Pipeline(lake, Config(), clock=lambda: NOW_MS)
    summary = IngestSummary()
    ids_before = {a["alert_id"] for a in lake.read("alerts").to_pylist()}
    pipe.reattribute(["2026-03-02", "2026-03-03"], "recompute-upgrade", summary)
    after = activity(lake)
    for eid in (v1.EV["alice_put"], v1.EV["bob_put"], v1.EV["alice_window"]):
        assert (after[eid]["status"], after[eid]["session_id"]) == (before[eid]["status"], before[eid]["session_id"])
        assert (after[eid]["account_id"], after[eid]["region"]) == (f.ACCOUNT, "us-east-1")
    assert after[v1.EV["carol_day2"]]["status"] == "pending"  # its report is not in yet
    # no new alert: the v1 alert is written again only to carry its finding (schema v2's finding_id)
    latest = {a["alert_id"]: a for a in lake.read("alerts").to_pylist()}
    assert set(latest) == ids_before and all(a["finding_id"] for a in latest.values())
    opened_by_upgrade = summary.alerts_opened
    # the day-2 report arrives after the upgrade: carol's write is attributed, no alert on it
    name, body = v1.day2_report()
    out = pipe.ingest_object(name, body, summary=summary)
    assert out.error is None
    carol = activity(lake)[v1.EV["carol_day2"]]
    assert (carol["status"], carol["user_id"]) == ("attributed", "carol")
    assert summary.alerts_opened == opened_by_upgrade  # nothing opened by the new report
    alerts = {(a["rule"], a["status"]) for a in lake.read("alerts").to_pylist()}
    assert alerts == {("credentials_outside_fleet", "open")}


def test_a_corrected_report_for_a_v1_day_replaces_it(lake_dir):
    lake = Lake.open(str(lake_dir))
    pipe = Pipeline(lake, Config(), clock=lambda: NOW_MS)
    m = timedelta(minutes=1)
    # the day's report delivered again, corrected: bob's session is gone
    body = f.report_csv([f.session_row(v1.S1, "alice", v1.ALICE_IP, f.T0 - 10 * m, f.T0 + 150 * m)])
    assert pipe.ingest_object(f.report_name("2026-03-02").replace("f00d", "f00e"), body).error is None
    assert [r["user_id"] for r in lake.read("sessions", ["2026-03-02"]).to_pylist()] == ["alice"]
    assert not (lake_dir / LEGACY).exists()
    act = activity(lake)
    assert act[v1.EV["bob_put"]]["session_id"] is None
    assert act[v1.EV["bob_put"]]["previous_session_id"] == v1.S2  # the change is recorded, not silent


def test_lake_migrate_splits_reports_and_is_safe_to_repeat(lake_dir):
    files_before = sorted(p.relative_to(lake_dir) for p in lake_dir.rglob("*") if p.is_file())
    out = cli("lake", "migrate", "--lake", str(lake_dir), "--dry-run")
    assert "v1 sessions reports to split by account and region: 1 day(s)" in out
    assert sorted(p.relative_to(lake_dir) for p in lake_dir.rglob("*") if p.is_file()) == files_before

    out = cli("lake", "migrate", "--lake", str(lake_dir), "--reattribute")
    assert f"sessions 2026-03-02: split into {f.ACCOUNT}|us-east-1" in out
    assert "alerts opened" in out and "closed 0" in out
    assert not (lake_dir / LEGACY).exists()
    assert (lake_dir / "sessions" / "dt=2026-03-02" / f"report-{f.ACCOUNT}_us-east-1.parquet").exists()
    assert (lake_dir / "_state" / "reports" / f"{f.ACCOUNT}_us-east-1" / "2026-03-02").exists()
    lake = Lake.open(str(lake_dir))
    assert {r["user_id"] for r in lake.read("sessions").to_pylist()} == {"alice", "bob"}
    assert {r["account_id"] for r in activity(lake).values()} == {f.ACCOUNT}

    again = cli("lake", "migrate", "--lake", str(lake_dir))
    assert "to split by account and region: 0 day(s)" in again and "with v1 activity (account_id/region " \
        "empty until re-attributed): 0" in again
