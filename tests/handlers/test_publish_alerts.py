"""publish_alerts through its template handler, against moto: SNS exactly once per alert and status,
Security Hub findings updated by id, compactions skipped, retries harmless."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow as pa
import pytest

from auditcorr.rules import alert_id
from auditcorr.schemas import ALERTS
from tests.integration import aws
from tests.integration import scenario as sc

FN = "PublishAlertsFunction"
PAYLOAD = "publish_alerts/eventbridge-alert-file-via-sqs.json"


@pytest.fixture
def alerts(tmp_path) -> pa.Table:
    return sc.alert_changes(tmp_path / "local")


def pairs(rows: pa.Table) -> set[tuple[str, str]]:
    return {(r["alert_id"], r["status"]) for r in rows.to_pylist()}


def sent(deployment) -> list[dict]:
    return [json.loads(m["Message"]) for m in deployment.sns_messages()]


def event_for(name: str, dt: str = "2026-03-02", t: str = "2026-03-02T08:52:00Z") -> dict:
    body = sc.payload("publish_alerts/eventbridge-alert-file-direct.json")
    body["detail"]["object"]["key"] = f"{aws.LAKE_PREFIX}/alerts/dt={dt}/{name}.parquet"
    body["time"] = t
    return aws.sqs_event([body])


def synthetic_alerts(n: int, status: str = "open") -> pa.Table:
    t = sc.T0
    rows = [{"alert_id": alert_id("credentials_outside_fleet", f"ev-{i}"), "rule": "credentials_outside_fleet",
             "severity": "CRITICAL", "status": status, "status_reason": None, "event_id": f"ev-{i}",
             "event_time": t, "source_ip": "203.0.113.9", "bucket": "research-data", "key": f"k/{i}",
             "principal_arn": "arn:aws:sts::111122223333:assumed-role/AppStreamFleetRole/x", "user_id": None,
             "session_id": None, "claimed_session_id": None, "title": "t", "description": "d",
             "detected_at": t + timedelta(days=1), "updated_at": t + timedelta(days=1)} for i in range(n)]
    return pa.Table.from_pylist(rows, schema=ALERTS)


def test_sns_and_security_hub_get_each_alert_once_across_retries(deployment, handler, alerts):
    sc.stage_alert_file(deployment.lake(), alerts)
    _, h = handler(FN)
    event = sc.payload(PAYLOAD)

    assert h(event, aws.FakeContext()) == {"batchItemFailures": []}
    assert h(event, aws.FakeContext()) == {"batchItemFailures": []}  # SQS re-delivers
    _, cold = handler(FN)
    assert cold(event, aws.FakeContext()) == {"batchItemFailures": []}  # in a new container too

    messages = sent(deployment)
    assert sorted((m["alert_id"], m["status"]) for m in messages) == sorted(pairs(alerts))
    findings = deployment.findings()
    assert sorted(f["Id"] for f in findings) == sorted({a for a, _ in pairs(alerts)})
    latest = {r["alert_id"]: r for r in sorted(alerts.to_pylist(), key=lambda r: r["updated_at"])}
    for f in findings:
        expect = latest[f["Id"]]
        assert f["RecordState"] == ("ARCHIVED" if expect["status"] == "closed" else "ACTIVE")
        assert f["Severity"]["Label"] == expect["severity"]


def test_finding_is_asff(deployment, handler, alerts):
    sc.stage_alert_file(deployment.lake(), alerts)
    _, h = handler(FN)
    h(sc.payload(PAYLOAD), aws.FakeContext())
    replay = next(f for f in deployment.findings() if f["GeneratorId"] == "auditcorr/credentials_outside_fleet")
    assert replay["SchemaVersion"] == "2018-10-08"
    assert replay["ProductArn"] == f"arn:aws:securityhub:{aws.REGION}:{aws.ACCOUNT}:product/{aws.ACCOUNT}/default"
    assert replay["AwsAccountId"] == aws.ACCOUNT
    assert replay["Types"] and all(t.count("/") >= 1 for t in replay["Types"])
    assert replay["CreatedAt"].endswith("Z") and replay["UpdatedAt"] >= replay["CreatedAt"]
    assert {"Type": "AwsS3Object", "Id": "arn:aws:s3:::research-data/exports/q2.csv"}.items() <= \
        replay["Resources"][0].items()
    assert replay["Network"]["SourceIpV4"] == sc.OUTSIDE_IP
    assert replay["Title"] and replay["Description"]


def test_a_sns_failure_midway_is_retried_without_resending(deployment, handler):
    sc.stage_alert_file(deployment.lake(), synthetic_alerts(5))
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
    sc.stage_alert_file(deployment.lake(), synthetic_alerts(230))
    module, h = handler(FN)
    sizes: list[int] = []
    module.publisher().hub.client.meta.events.register(
        "provide-client-params.securityhub.BatchImportFindings",
        lambda params, **_: sizes.append(len(params["Findings"])))
    assert h(sc.payload(PAYLOAD), aws.FakeContext()) == {"batchItemFailures": []}
    assert sizes == [100, 100, 30]
    assert len(deployment.findings()) == 230
    metrics = aws.emf_metrics(capsys.readouterr().out)
    assert metrics["findings_imported"] == 230 and metrics["alerts_published"] == 230


def test_security_hub_off_means_sns_only(deployment, handler):
    sc.stage_alert_file(deployment.lake(), synthetic_alerts(3))
    module, h = handler(FN, AUDITCORR_SECURITY_HUB="false")
    assert h(sc.payload(PAYLOAD), aws.FakeContext()) == {"batchItemFailures": []}
    assert module.publisher().hub is None
    assert len(sent(deployment)) == 3
    assert deployment.findings() == []


def test_compactions_markers_and_other_tables_are_skipped(deployment, handler, alerts, capsys):
    lake = deployment.lake()
    sc.stage_alert_file(lake, alerts, name="compact-9f8e7d6c5b4a39281706f5e4")
    _, h = handler(FN)
    marker = sc.payload("publish_alerts/eventbridge-alert-file-direct.json")
    marker["detail"]["object"]["key"] = f"{aws.LAKE_PREFIX}/alerts/dt=2026-03-02/"
    other = json.loads(json.dumps(marker))
    other["detail"]["object"]["key"] = f"{aws.LAKE_PREFIX}/attributed_activity/dt=2026-03-02/part-x.parquet"
    event = aws.sqs_event([event_for("compact-9f8e7d6c5b4a39281706f5e4")["Records"][0]["body"], marker, other])
    assert h(event, aws.FakeContext()) == {"batchItemFailures": []}
    assert sent(deployment) == []
    assert aws.emf_metrics(capsys.readouterr().out)["alert_files_skipped"] == 3


def test_a_file_compacted_away_before_it_is_read_is_published_from_the_partition(deployment, handler):
    """The pipeline can compact a partition right after appending: the announced file is gone, its
    rows are in a compact-* file. Rows updated in the window before the notification are published;
    the idempotency table keeps anything sent earlier from going out again."""
    lake = deployment.lake()
    old = synthetic_alerts(2)
    new = synthetic_alerts(4).slice(2)  # two more alerts, computed later
    new = new.set_column(new.schema.get_field_index("updated_at"), "updated_at",
                         pa.array([sc.T0 + timedelta(days=3)] * 2, ALERTS.field("updated_at").type))
    lake.write_file("alerts", "2026-03-02", "compact-0001", pa.concat_tables([old, new]))
    _, h = handler(FN)
    notified = (sc.T0 + timedelta(days=3, minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert h(event_for("part-gone", t=notified), aws.FakeContext()) == {"batchItemFailures": []}
    assert {m["event_id"] for m in sent(deployment)} == {"ev-2", "ev-3"}
