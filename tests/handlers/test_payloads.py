"""Every ``events/`` payload through the handler ``template.yaml`` names, against moto.

Given the sources a payload announces are in the (moto) buckets, when the payload is handed to the
function's handler, then the batch succeeds and the lake holds what the sources say.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.integration import aws
from tests.integration import scenario as sc
from tests.integration import template as tplmod

TPL = tplmod.load()
SPECS = tplmod.function_specs(TPL)
#: function logical id -> its events/ folder (the CodeUri folder name)
FOLDERS = {name: spec["dir"].name for name, spec in SPECS.items()}
EVENTS = aws.repo_path("events")


#: the functions whose payloads this module runs: all of them (AppStream, which moto lacks, is the
#: project's FakeAppStream in place of the poller's client)
RUN_HERE = set(SPECS)


def payloads(only: set[str] | None = None) -> list[tuple[str, str]]:
    """(function, path under events/) for events/<folder>/*.json and events/<folder>.json."""
    out = []
    for function, folder in sorted(FOLDERS.items()):
        if only is not None and function not in only:
            continue
        for path in sorted((EVENTS / folder).glob("*.json")):
            out.append((function, f"{folder}/{path.name}"))
        if (EVENTS / f"{folder}.json").is_file():
            out.append((function, f"{folder}.json"))
    return out


def test_every_function_has_payloads_for_sam_local_invoke():
    have = {f for f, _ in payloads()}
    assert have == set(SPECS), f"functions without events/<folder>/*.json: {set(SPECS) - have}"
    assert RUN_HERE <= set(SPECS)


def test_every_payload_folder_belongs_to_a_function_of_the_template():
    folders = {p.name for p in EVENTS.iterdir() if p.is_dir()}
    assert folders <= set(FOLDERS.values()), folders - set(FOLDERS.values())


@pytest.mark.parametrize(("function", "path"), payloads())
def test_sqs_payloads_are_consistent(function, path):
    event = sc.payload(path)
    for rec in event.get("Records", []):
        if rec.get("eventSource") == "aws:sqs":
            assert rec["md5OfBody"] == hashlib.md5(rec["body"].encode()).hexdigest()  # noqa: S324
            json.loads(rec["body"])


def _stage(deployment, tmp_path, path):
    s3 = deployment.client("s3")
    sc.stage_sources(s3)
    if path.startswith("publish_alerts/"):
        sc.stage_alert_file(deployment.lake(), sc.alert_changes(tmp_path / "local"))


def _fake_appstream(module) -> None:
    """The scenario's two sessions, live at the payload's time, behind the poller's client."""
    from datetime import datetime

    from auditcorr_sim.fake_appstream import FakeAppStream

    now = int(datetime.fromisoformat(sc.payload("poll_sessions.json")["time"].replace("Z", "+00:00")).timestamp()
              * 1000)
    t0 = int(sc.T0.timestamp() * 1000)
    fake = FakeAppStream([
        {"session_id": sc.S1, "user_id": "alice", "stack_name": "analytics", "fleet_name": "analytics-single",
         "start_ms": t0 - 600_000, "end_ms": t0 + 9_000_000, "eni_private_ip_address": sc.ALICE_IP},
        {"session_id": sc.S2, "user_id": "bob", "stack_name": "analytics", "fleet_name": "analytics-single",
         "start_ms": t0 - 300_000, "end_ms": t0 + 9_000_000, "eni_private_ip_address": sc.BOB_IP,
         "authentication_type": "API"}])
    fake.now_ms = now
    module.poller().client = fake
    module.poller().pipeline.clock = lambda: now


@pytest.mark.parametrize(("function", "path"), payloads(RUN_HERE))
def test_payload_runs_through_the_template_handler(function, path, deployment, handler, tmp_path, capsys):
    _stage(deployment, tmp_path, path)
    module, lambda_handler = handler(function)
    if function == "PollSessionsFunction":
        _fake_appstream(module)

    result = lambda_handler(sc.payload(path), aws.FakeContext())

    metrics = aws.emf_metrics(capsys.readouterr().out)
    lake = deployment.lake()
    if function == "PollSessionsFunction":  # a scheduled poll answers with its counts
        assert result["sessions_observed"] == 2 and result["stacks_failed"] == 0
        live = lake.read("live_sessions").to_pylist()
        assert {(r["session_id"], r["user_id"], r["eni_private_ip_address"]) for r in live} == {
            (sc.S1, "alice", sc.ALICE_IP), (sc.S2, "bob", sc.BOB_IP)}
        assert metrics["sessions_observed"] == 2
        return
    if function == "ExportOcsfFunction":  # a scheduled run answers with its counts (tests/handlers/test_export_ocsf.py)
        assert result["days_failed"] == 0 and result["days_left"] == 0
        assert metrics["days_exported"] == result["days_exported"]
        return
    assert result == {"batchItemFailures": []}
    if function == "IngestCloudTrailFunction":
        keys = {k for k in sc.WRITES_IN if k in json.dumps(sc.payload(path))}
        expected = {sc.EV[w] for k in keys for w in sc.WRITES_IN[k]}
        writes = lake.read("s3_writes")
        assert set(writes.column("event_id").to_pylist()) == expected
        assert set(writes.column("dt").to_pylist()) == {"2026-03-02"}
        assert metrics["objects_ingested"] == len(keys)
        assert metrics["written"] >= len(expected)
        act = lake.read("attributed_activity")
        assert set(act.column("event_id").to_pylist()) == expected
    elif function == "IngestUsageReportFunction":
        if "applications" in path:
            apps = lake.read("applications")
            assert sorted(apps.column("application_name").to_pylist()) == ["Excel", "Firefox", "RStudio"]
        else:
            sessions = lake.read("sessions").to_pylist()
            assert {(s["session_id"], s["user_id"], s["eni_private_ip_address"]) for s in sessions} == {
                (sc.S1, "alice", sc.ALICE_IP), (sc.S2, "bob", sc.BOB_IP)}
        assert metrics["objects_ingested"] == 1
    else:
        rows = sc.alert_changes(tmp_path / "again")
        pairs = sc.announced(rows)
        messages = deployment.sns_messages()
        assert len(messages) == len(pairs)
        assert {(json.loads(m["Message"])["finding_id"], json.loads(m["Message"])["announcement"])
                for m in messages} == pairs
        assert {f["Id"] for f in deployment.findings()} == sc.mirrored(rows)


def test_env_json_sets_every_variable_the_template_sets():
    """`sam local invoke --env-vars events/env.json` overrides only variables the template declares; a
    variable the template sets and env.json lacks would run locally with its deployed placeholder."""
    env = json.loads(EVENTS.joinpath("env.json").read_text())["Parameters"]
    declared = set(TPL["Globals"]["Function"]["Environment"]["Variables"])
    for spec in SPECS.values():
        declared |= set(spec["props"].get("Environment", {}).get("Variables", {}))
    assert declared - {"POWERTOOLS_SERVICE_NAME"} <= set(env), declared - set(env)
