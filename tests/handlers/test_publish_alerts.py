"""publish_alerts through its template handler, against moto: findings, not signals -- SNS once when a
finding opens, throttled updates, once when it closes; Security Hub findings by ``finding_id``;
compactions and signal files skipped, retries harmless; a burst of 500 disguised writes is one finding."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow as pa
import pytest

from auditcorr.config import Config
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr.schemas import FINDINGS
from tests import factories as f
from tests.integration import aws
from tests.integration import scenario as sc

FN = "PublishAlertsFunction"
PAYLOAD = "publish_alerts/eventbridge-alert-file-via-sqs.json"


@pytest.fixture
def alerts(tmp_path) -> pa.Table:
    return sc.alert_changes(tmp_path / "local")


def sent(deployment) -> list[dict]:
    return [json.loads(m["Message"]) for m in deployment.sns_messages()]


def event_for(name: str, dt: str = "2026-03-02", t: str = "2026-03-02T08:52:00Z") -> dict:
    body = sc.payload("publish_alerts/eventbridge-alert-file-direct.json")
    body["detail"]["object"]["key"] = f"{aws.LAKE_PREFIX}/findings/dt={dt}/{name}.parquet"
    body["time"] = t
    return aws.sqs_event([body])


def synthetic_findings(n: int, status: str = "open", previous: str | None = None) -> pa.Table:
    """``n`` findings of one version each (first versions when ``previous`` is None)."""
    t = sc.T0
    rows = [{"finding_id": f"f{i:031d}", "rule": "credentials_outside_fleet", "severity": "CRITICAL",
             "status": status, "status_reason": None, "group_key": f"source_ip=203.0.113.{i % 250}",
             "principal_arn": "arn:aws:sts::111122223333:assumed-role/AppStreamFleetRole/x",
             "source_ip": f"203.0.113.{i % 250}", "window_start": t, "window_end": t + timedelta(hours=1),
             "first_event_time": t, "last_event_time": t + timedelta(minutes=i % 60), "event_count": 1 + i % 7,
             "suppressed_count": 0, "sample_event_ids": [f"ev-{i}"], "title": "t", "description": "d",
             "previous_status": previous, "status_since": t + timedelta(days=1),
             "created_at": t + timedelta(days=1), "updated_at": t + timedelta(days=1)} for i in range(n)]
    return pa.Table.from_pylist(rows, schema=FINDINGS)


def test_sns_and_security_hub_get_each_announcement_once_across_retries(deployment, handler, alerts):
    sc.stage_alert_file(deployment.lake(), alerts)
    _, h = handler(FN)
    event = sc.payload(PAYLOAD)

    assert h(event, aws.FakeContext()) == {"batchItemFailures": []}
    assert h(event, aws.FakeContext()) == {"batchItemFailures": []}  # SQS re-delivers
    _, cold = handler(FN)
    assert cold(event, aws.FakeContext()) == {"batchItemFailures": []}  # in a new container too

    messages = sent(deployment)
    want = sc.announced(alerts)
    assert "open" in {k for _, k in want}  # the world opens findings (closing ones: the synthetic tests below)
    assert sorted((m["finding_id"], m["announcement"]) for m in messages) == sorted(want)
    hub = deployment.findings()
    assert sorted(x["Id"] for x in hub) == sorted({fid for fid, _ in want})
    latest = {r["finding_id"]: r for r in sorted(alerts.to_pylist(), key=lambda r: r["updated_at"])}
    for x in hub:
        expect = latest[x["Id"]]
        assert x["RecordState"] == ("ACTIVE" if expect["status"] == "open" else "ARCHIVED")
        assert x["Severity"]["Label"] == expect["severity"]
        assert x["ProductFields"]["auditcorr/event_count"] == str(expect["event_count"])


def test_finding_is_asff(deployment, handler, alerts):
    sc.stage_alert_file(deployment.lake(), alerts)
    _, h = handler(FN)
    h(sc.payload(PAYLOAD), aws.FakeContext())
    replay = next(x for x in deployment.findings() if x["GeneratorId"] == "auditcorr/credentials_outside_fleet")
    row = next(r for r in alerts.to_pylist() if r["finding_id"] == replay["Id"])
    assert replay["SchemaVersion"] == "2018-10-08"
    assert replay["ProductArn"] == f"arn:aws:securityhub:{aws.REGION}:{aws.ACCOUNT}:product/{aws.ACCOUNT}/default"
    assert replay["AwsAccountId"] == aws.ACCOUNT
    assert replay["Types"] and all(t.count("/") >= 1 for t in replay["Types"])
    assert replay["CreatedAt"].endswith("Z") and replay["UpdatedAt"] >= replay["CreatedAt"]
    assert replay["FirstObservedAt"].startswith("2026-03-02T08:40") and replay["LastObservedAt"] >= \
        replay["FirstObservedAt"]
    assert replay["ProductFields"]["auditcorr/event_count"] == "1"
    assert {"Type": "Other", "Id": f"cloudtrail-event/{sc.EV['replay']}"}.items() <= \
        next(r for r in replay["Resources"] if r["Id"].startswith("cloudtrail-event/")).items()
    assert replay["ProductFields"]["auditcorr/sample_event_ids"] == sc.EV["replay"]
    assert replay["ProductFields"]["auditcorr/group_key"] == row["group_key"]
    assert replay["Network"]["SourceIpV4"] == sc.OUTSIDE_IP
    assert replay["Title"] and replay["Description"]


def test_a_sns_failure_midway_is_retried_without_resending(deployment, handler):
    sc.stage_alert_file(deployment.lake(), synthetic_findings(5))
    module, h = handler(FN)
    sns = module.publisher().sns
    calls = {"n": 0}

    def fail_third(**_):
        calls["n"] += 1
        if calls["n"] == 3:
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "Publish")

    sns.meta.events.register("before-call.sns.Publish", fail_third)
    event = sc.payload(PAYLOAD)
    first = h(event, aws.FakeContext())
    assert first["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert len(sent(deployment)) == 2

    retry = {"Records": [event["Records"][0]]}
    assert h(retry, aws.FakeContext()) == {"batchItemFailures": []}
    assert len(sent(deployment)) == 3  # the two already sent are not sent again
    assert len(deployment.findings()) == 5


def test_findings_go_in_calls_of_at_most_100(deployment, handler, capsys):
    sc.stage_alert_file(deployment.lake(), synthetic_findings(230))
    module, h = handler(FN)
    sizes: list[int] = []
    module.publisher().hub.client.meta.events.register(
        "provide-client-params.securityhub.BatchImportFindings",
        lambda params, **_: sizes.append(len(params["Findings"])))
    assert h(sc.payload(PAYLOAD), aws.FakeContext()) == {"batchItemFailures": []}
    assert sizes == [100, 100, 30]
    assert len(deployment.findings()) == 230
    metrics = aws.emf_metrics(capsys.readouterr().out)
    assert metrics["findings_imported"] == 230 and metrics["messages_sent"] == 230


def test_security_hub_off_means_sns_only(deployment, handler):
    sc.stage_alert_file(deployment.lake(), synthetic_findings(3))
    module, h = handler(FN, AUDITCORR_SECURITY_HUB="false")
    assert h(sc.payload(PAYLOAD), aws.FakeContext()) == {"batchItemFailures": []}
    assert module.publisher().hub is None
    assert len(sent(deployment)) == 3
    assert deployment.findings() == []


def test_compactions_markers_signals_and_other_tables_are_skipped(deployment, handler, alerts, capsys, tmp_path):
    lake = deployment.lake()
    sc.stage_alert_file(lake, alerts, name="compact-9f8e7d6c5b4a39281706f5e4")
    lake.write_file("alerts", "2026-03-02", "part-signals", sc.alert_changes(tmp_path / "signals", table="alerts"))
    _, h = handler(FN)
    marker = sc.payload("publish_alerts/eventbridge-alert-file-direct.json")
    marker["detail"]["object"]["key"] = f"{aws.LAKE_PREFIX}/findings/dt=2026-03-02/"
    other = json.loads(json.dumps(marker))
    other["detail"]["object"]["key"] = f"{aws.LAKE_PREFIX}/attributed_activity/dt=2026-03-02/part-x.parquet"
    signals = json.loads(json.dumps(marker))
    signals["detail"]["object"]["key"] = f"{aws.LAKE_PREFIX}/alerts/dt=2026-03-02/part-signals.parquet"
    event = aws.sqs_event([event_for("compact-9f8e7d6c5b4a39281706f5e4")["Records"][0]["body"], marker, other,
                           signals])
    assert h(event, aws.FakeContext()) == {"batchItemFailures": []}
    assert sent(deployment) == []
    assert aws.emf_metrics(capsys.readouterr().out)["finding_files_skipped"] == 4


def test_a_file_compacted_away_before_it_is_read_is_published_from_the_partition(deployment, handler):
    """The pipeline can compact a partition right after appending: the announced file is gone, its
    rows are in a compact-* file. Rows updated in the window before the notification are published;
    the idempotency table keeps anything sent earlier from going out again."""
    lake = deployment.lake()
    old = synthetic_findings(2)
    new = synthetic_findings(4).slice(2)  # two more findings, computed later
    new = new.set_column(new.schema.get_field_index("updated_at"), "updated_at",
                         pa.array([sc.T0 + timedelta(days=3)] * 2, FINDINGS.field("updated_at").type))
    lake.write_file("findings", "2026-03-02", "compact-0001", pa.concat_tables([old, new]))
    _, h = handler(FN)
    notified = (sc.T0 + timedelta(days=3, minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert h(event_for("part-gone", t=notified), aws.FakeContext()) == {"batchItemFailures": []}
    assert {m["sample_event_ids"][0] for m in sent(deployment)} == {"ev-2", "ev-3"}



def test_a_burst_of_500_disguised_writes_is_one_finding_one_open_message_and_few_updates(deployment, handler,
                                                                                          tmp_path):
    """bob's instance writes 500 objects in 50 minutes claiming alice's session, delivered as 50
    CloudTrail files a minute apart: 500 signals, one finding, one SNS message when it opens, at most
    one update per 15 minutes of pipeline clock, and Security Hub holds one finding counting 500."""
    clock = {"now": int((sc.T0 + timedelta(minutes=20)).timestamp() * 1000)}
    local = Lake.open(str(tmp_path / "local"))
    # the logon cross-check is off: this lake holds no logons, and its verdicts on the two sessions are
    # not what this test counts
    pipe = Pipeline(local, Config(compact_threshold=10_000, disabled_rules=("session_without_logon",
                                                                             "logon_user_mismatch")),
                    clock=lambda: clock["now"])
    pipe.ingest_object(f"s3://{aws.APPSTREAM_BUCKET}/{sc.SESSIONS_KEY}", sc.sessions_report())
    remote = deployment.lake()
    _, h = handler(FN)
    seen: set[str] = set()
    for i in range(50):
        records = [f.put(sc.T0 + timedelta(minutes=5 + i, seconds=j * 5), sc.BOB_IP, key=f"exports/burst-{i}-{j}.csv",
                         session_name=sc.S1, event_id=f"33333333-0000-4000-8000-{i * 10 + j:012d}")
                   for j in range(10)]
        pipe.ingest_object(f"s3://{aws.CLOUDTRAIL_BUCKET}/{f.ct_name(100 + i)}", f.trail(records))
        for path in local.files("findings", "2026-03-02"):  # deliver each new findings file as EventBridge would
            name = path.rsplit("/", 1)[1].removesuffix(".parquet")
            if name in seen:
                continue
            seen.add(name)
            sc.stage_alert_file(remote, local.read("findings", files=[path], latest=False).drop_columns(["dt"]), name)
            assert h(event_for(name), aws.FakeContext()) == {"batchItemFailures": []}
        clock["now"] += 60_000

    signals = local.read("alerts")
    assert signals.num_rows == 500 and set(signals.column("rule").to_pylist()) == {"session_id_mismatch"}
    latest = local.read("findings")
    assert latest.num_rows == 1 and latest.column("event_count").to_pylist() == [500]
    assert latest.column("status").to_pylist() == ["open"]
    assert len(seen) == 50  # the finding changed with every file ...
    kinds = [m["announcement"] for m in sent(deployment)]
    assert kinds.count("open") == 1 and kinds[0] == "open"  # ... but opened once
    assert 1 <= kinds.count("update") <= 50 // 15 + 1 and set(kinds) == {"open", "update"}
    (hub,) = deployment.findings()
    assert hub["Id"] == latest.column("finding_id")[0].as_py() and hub["RecordState"] == "ACTIVE"
    assert hub["ProductFields"]["auditcorr/event_count"] == "500" and hub["Description"].startswith("500 signal(s)")
    assert hub["FirstObservedAt"].startswith("2026-03-02T08:05:00")
