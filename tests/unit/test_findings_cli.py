"""``auditcorr findings`` and ``auditcorr alerts --suppressed`` answer without SQL, from the lake."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from auditcorr.config import Config, Suppression
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr_cli.main import main
from tests import factories as f
from tests.integration import scenario as sc

NOW_MS = int((sc.T0 + timedelta(days=5)).timestamp() * 1000)


def _lake(root) -> Lake:
    cfg = Config(suppressions=(Suppression("credentials_outside_fleet", "pentest", source="203.0.113.9",
                                           name="pentest"),))
    lake = Lake.open(str(root))
    pipe = Pipeline(lake, cfg, clock=lambda: NOW_MS)
    for key, body in sc.cloudtrail_files().items():
        pipe.ingest_object(f"s3://{sc.CLOUDTRAIL_BUCKET}/{key}", body)
    burst = [f.put(sc.T0 + timedelta(minutes=2 * i), sc.BOB_IP, key=f"b/{i}", session_name=sc.S1,
                   event_id=f"88888888-0000-4000-8000-{i:012d}") for i in range(12)]
    pipe.ingest_object(f"s3://{sc.CLOUDTRAIL_BUCKET}/{f.ct_name(400)}", f.trail(burst))
    pipe.ingest_object(f"s3://{sc.APPSTREAM_BUCKET}/{sc.SESSIONS_KEY}", sc.sessions_report())
    return lake


def cli(*args: str) -> list[dict]:
    r = CliRunner().invoke(main, [*args, "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_findings_and_suppressed_signals_on_request(tmp_path):
    root = tmp_path / "lake"
    lake = _lake(root)
    opened = cli("findings", "--lake", str(root))
    latest = lake.read("findings").to_pylist()
    assert sorted(r["finding_id"] for r in opened) == sorted(r["finding_id"] for r in latest if r["status"] == "open")
    mismatch = [r for r in opened if r["rule"] == "session_id_mismatch"]
    assert len(mismatch) == 1 and mismatch[0]["event_count"] == 13  # the scenario's disguised write + 12
    assert cli("findings", "--lake", str(root), "--rule", "unattributed_activity") == \
        [r for r in opened if r["rule"] == "unattributed_activity"]
    # the suppressed credential replay: no open finding, shown on request
    assert not [r for r in opened if r["rule"] == "credentials_outside_fleet"]
    (supp,) = cli("findings", "--lake", str(root), "--status", "suppressed")
    assert supp["rule"] == "credentials_outside_fleet" and supp["suppressed_count"] == 1
    assert "suppressed" not in {r["status"] for r in cli("findings", "--lake", str(root), "--status", "all")}
    assert "suppressed" in {r["status"] for r in cli("findings", "--lake", str(root), "--status", "all",
                                                     "--suppressed")}
    signals = cli("alerts", "--lake", str(root))
    assert sc.EV["replay"] not in {r["event_id"] for r in signals}
    shown = cli("alerts", "--lake", str(root), "--suppressed")
    replay = next(r for r in shown if r["event_id"] == sc.EV["replay"])
    assert replay["suppressed_by"] == "pentest" and replay["finding_id"] == supp["finding_id"]
