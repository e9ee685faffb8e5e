"""``auditcorr rules replay``: a configuration evaluated over the lake's history in memory equals the
same configuration applied to a copy of the lake (re-attribution and logon cross-check through the
pipeline), and the lake itself is not touched."""

from __future__ import annotations

import hashlib
import shutil
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from auditcorr import replay as rp
from auditcorr.config import Config, Suppression
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from tests import factories as f
from tests.integration import scenario as sc

NOW_MS = int((sc.T0 + timedelta(days=5)).timestamp() * 1000)
SPARE_IP = "10.40.1.99"  # a fleet address no session holds: unattributed_activity
#: the finding columns a replay predicts (the rest are clock stamps)
COMPARED = ["finding_id", "rule", "severity", "status", "status_reason", "group_key", "window_start",
            "first_event_time", "last_event_time", "event_count", "suppressed_count", "sample_event_ids",
            "description", "previous_status"]


def build(root: Path) -> Lake:
    """The scenario world, plus a burst of disguised writes over two hours and a few unattributed ones."""
    lake = Lake.open(str(root))
    pipe = Pipeline(lake, Config(), clock=lambda: NOW_MS)
    for key, body in sc.cloudtrail_files().items():
        pipe.ingest_object(f"s3://{sc.CLOUDTRAIL_BUCKET}/{key}", body)
    burst = [f.put(sc.T0 + timedelta(minutes=7 * i), sc.BOB_IP, key=f"exports/b-{i}.csv", session_name=sc.S1,
                   event_id=f"44444444-0000-4000-8000-{i:012d}") for i in range(20)]
    spare = [f.put(sc.T0 + timedelta(minutes=31 * i), SPARE_IP, key=f"tmp/u-{i}.csv",
                   event_id=f"55555555-0000-4000-8000-{i:012d}") for i in range(4)]
    # fleet credentials used through a service nobody claims (an organisation rule, issue 15)
    bypass = [f.put(sc.T0 + timedelta(minutes=45), "appstream.amazonaws.com", key="tmp/bypass.csv",
                    event_id="66666666-0000-4000-8000-000000000001")]
    pipe.ingest_object(f"s3://{sc.CLOUDTRAIL_BUCKET}/{f.ct_name(200)}", f.trail(burst + spare + bypass))
    pipe.ingest_object(f"s3://{sc.APPSTREAM_BUCKET}/{sc.SESSIONS_KEY}", sc.sessions_report())
    return lake


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def rows(t: pa.Table) -> list[dict]:
    t = t.drop_columns(["dt"]) if "dt" in t.column_names else t
    return sorted(t.select(COMPARED).to_pylist(), key=lambda r: r["finding_id"])


NEW_CONFIGS = {
    "dedup, severity, a suppression, a disabled rule": Config(
        dedup_minutes=30, dedup_minutes_by_rule={"session_id_mismatch": 1440},
        severity={**Config().severity, "unattributed_activity": "LOW"},
        suppressions=(Suppression(rule="credentials_outside_fleet", source="203.0.113.0/24",
                                  reason="the pentest's address"),),
        disabled_rules=("unknown_session_id",)),
    "an expired suppression and a wider tolerance": Config(
        tolerance_seconds=600,
        suppressions=(Suppression(rule="*", principal="*AppStreamFleetRole*", reason="migration",
                                  expires_ms=int((sc.T0 + timedelta(minutes=60)).timestamp() * 1000)),)),
    # the organisation's rules are replayed too, as the pipeline applies them
    "an organisation rule disabled": Config(disabled_rules=("fleet_credentials_via_service",)),
    "the same configuration": Config(),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("replay") / "lake"
    build(root)
    return root


@pytest.mark.parametrize("name", list(NEW_CONFIGS))
def test_replay_equals_applying_the_configuration_to_a_copy(world, tmp_path, name):
    config = NEW_CONFIGS[name]
    before = digest(world)
    got = rp.replay(Lake.open(str(world)), config, NOW_MS)
    assert digest(world) == before  # the lake is not touched

    copy = tmp_path / "copy"
    shutil.copytree(world, copy)
    rp.apply(Pipeline(Lake.open(str(copy)), config, clock=lambda: NOW_MS))
    want = Lake.open(str(copy)).read("findings")
    assert rows(got.after) == rows(want)
    if name == "the same configuration":
        assert got.changed.num_rows == 0 and got.per_rule == {}
    else:
        assert got.changed.num_rows > 0
        assert sum(sum(c.values()) for c in got.per_rule.values()) == got.changed.num_rows


def test_replay_reports_what_changes_per_rule(world):
    base = rp.replay(Lake.open(str(world)), Config(), NOW_MS)
    assert base.changed.num_rows == 0
    current = {r["finding_id"]: r for r in rows(Lake.open(str(world)).read("findings"))}
    mismatch = [r for r in current.values() if r["rule"] == "session_id_mismatch" and r["status"] == "open"]
    assert len(mismatch) >= 3  # 20 disguised writes over 2 h 20 min: hourly windows

    got = rp.replay(Lake.open(str(world)), NEW_CONFIGS["dedup, severity, a suppression, a disabled rule"], NOW_MS)
    kinds = got.per_rule
    # one finding per claimed session for the day: the hourly ones close, one opens with every signal
    assert kinds["session_id_mismatch"]["open"] == 1 and kinds["session_id_mismatch"]["close"] == len(mismatch)
    opened = [r for r, k in zip(got.changed.to_pylist(), got.change, strict=True)
              if k == "open" and r["rule"] == "session_id_mismatch"]
    assert opened[0]["event_count"] == sum(r["event_count"] for r in mismatch)
    # the replayed credentials are suppressed; the unknown session id rule is off: its findings close
    assert kinds["credentials_outside_fleet"]["close"] >= 1
    assert kinds.get("unknown_session_id", {}).get("close", 0) == sum(1 for r in current.values()
                                                        if r["rule"] == "unknown_session_id" and r["status"] == "open")
    creds = [(k, r) for r, k in zip(got.changed.to_pylist(), got.change, strict=True)
             if r["rule"] == "credentials_outside_fleet"]
    assert {k for k, _ in creds} == {"close", "suppress"}  # regrouped (30 min windows), and suppressed
    assert all(r["status"] == "suppressed" and r["suppressed_count"] == r["event_count"] >= 1
               for k, r in creds if k == "suppress")


def test_the_cli_prints_the_changes_and_leaves_the_lake_alone(world, tmp_path):
    from auditcorr_cli.main import main

    cfg = tmp_path / "new.toml"
    cfg.write_text('[alerts]\ndedup_minutes = 30\n[alerts.dedup_minutes_per_rule]\nsession_id_mismatch = 1440\n'
                   '[[suppress]]\nrule = "credentials_outside_fleet"\nsource = "203.0.113.0/24"\n'
                   'reason = "the pentest"\n')
    before = digest(world)
    now = (sc.T0 + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = CliRunner().invoke(main, ["rules", "replay", "--lake", str(world), "--config", str(cfg), "--now", now,
                                  "--since", "2026-03-01", "--until", "2026-03-03"])
    assert r.exit_code == 0, r.output
    assert digest(world) == before
    got = rp.replay(Lake.open(str(world)), Config(
        dedup_minutes=30, dedup_minutes_by_rule={"session_id_mismatch": 1440},
        suppressions=(Suppression(rule="credentials_outside_fleet", source="203.0.113.0/24", reason="x"),)),
        NOW_MS)
    for rule, counts in got.per_rule.items():
        line = next(x for x in r.output.splitlines() if x.split()[:1] == [rule])
        assert [int(v) for v in line.split()[1:5]] == [counts["open"], counts["close"], counts["change"],
                                                       counts["suppress"]]
    assert "would open" in r.output and "would close" in r.output
