"""The deployment's wiring end to end in moto: CloudTrail bucket -> S3 notification -> SQS ->
ingest_cloudtrail -> lake (pyarrow writes) -> EventBridge rule of template.yaml -> SQS ->
publish_alerts -> SNS and Security Hub. Notifications are moto's own, not hand-written."""

from __future__ import annotations

import json

from tests.integration import aws
from tests.integration import scenario as sc
from tests.integration import template as tplmod


def queue(sqs, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_cloudtrail_files_to_alerts_in_sns_and_security_hub(deployment, handler):
    sqs, s3, events = deployment.client("sqs"), deployment.client("s3"), deployment.client("events")
    ct_url, ct_arn = queue(sqs, "cloudtrail-queue")
    alerts_url, alerts_arn = queue(sqs, "alerts-queue")
    s3.put_bucket_notification_configuration(Bucket=aws.CLOUDTRAIL_BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": ct_arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_bucket_notification_configuration(Bucket=aws.LAKE_BUCKET, NotificationConfiguration={
        "EventBridgeConfiguration": {}})
    rule = deployment.resolver(deployment.tpl["Resources"]["AlertFileCreatedRule"]["Properties"]["EventPattern"])
    events.put_rule(Name="alert-files", EventPattern=json.dumps(rule))
    events.put_targets(Rule="alert-files", Targets=[{"Id": "q", "Arn": alerts_arn}])

    for key, body in sc.cloudtrail_files().items():
        s3.put_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=key, Body=body)
    _, ingest = handler("IngestCloudTrailFunction")
    assert ingest(aws.sqs_event_from_queue(ct_url), aws.FakeContext()) == {"batchItemFailures": []}

    alert_event = aws.sqs_event_from_queue(alerts_url)
    keys = [json.loads(r["body"])["detail"]["object"]["key"] for r in alert_event["Records"]]
    assert keys and all(k.startswith("lake/findings/dt=") and k.endswith(".parquet") for k in keys)
    _, publish = handler("PublishAlertsFunction")
    assert publish(alert_event, aws.FakeContext()) == {"batchItemFailures": []}
    assert publish(alert_event, aws.FakeContext()) == {"batchItemFailures": []}  # re-delivered

    expected = deployment.lake().read("findings", latest=False)
    pairs = sc.announced(expected)
    sent = [json.loads(m["Message"]) for m in deployment.sns_messages()]
    assert sorted((m["finding_id"], m["announcement"]) for m in sent) == sorted(pairs)
    assert "credentials_outside_fleet" in {m["rule"] for m in sent}
    assert {f["Id"] for f in deployment.findings()} == sc.mirrored(expected)


def test_the_template_rules_match_what_they_should(deployment):
    """EventBridge patterns of template.yaml, checked with moto's pattern matcher (moto does not
    serve TestEventPattern, so its matcher is called directly)."""
    from moto.events.models import EventPattern, EventPatternParser

    res = deployment.tpl["Resources"]
    resolve = tplmod.Resolver(deployment.tpl, deployment.params, deployment.refs)

    def matches(rule: str, bucket: str, key: str, kind: str = "Object Created") -> bool:
        event = sc.payload("publish_alerts/eventbridge-alert-file-direct.json")
        event["detail-type"] = kind
        event["detail"]["bucket"]["name"] = bucket
        event["detail"]["object"]["key"] = key
        raw = json.dumps(resolve(res[rule]["Properties"]["EventPattern"]))
        return EventPattern(raw, EventPatternParser(raw).parse()).matches_event(event)

    lake = aws.LAKE_BUCKET
    assert matches("AlertFileCreatedRule", lake, "lake/findings/dt=2026-03-02/part-abc.parquet")
    assert not matches("AlertFileCreatedRule", lake, "lake/alerts/dt=2026-03-02/part-abc.parquet")  # signals
    assert not matches("AlertFileCreatedRule", lake, "lake/findings/dt=2026-03-02/")
    assert not matches("AlertFileCreatedRule", lake, "lake/attributed_activity/dt=2026-03-02/part-abc.parquet")
    assert not matches("AlertFileCreatedRule", "other", "lake/findings/dt=2026-03-02/part-abc.parquet")
    assert not matches("AlertFileCreatedRule", lake, "lake/findings/dt=2026-03-02/p.parquet", "Object Deleted")
    ct = aws.CLOUDTRAIL_BUCKET
    assert matches("CloudTrailObjectCreatedRule", ct, sc.KEY_S3)
    assert matches("CloudTrailObjectCreatedRule", ct, sc.KEY_S3.replace("AWSLogs/", "AWSLogs/o-abc123/"))
    # digests are validated (issue 14): they reach the CloudTrail queue too; Insight files do not
    assert matches("CloudTrailObjectCreatedRule", ct, sc.KEY_S3.replace("/CloudTrail/", "/CloudTrail-Digest/"))
    assert not matches("CloudTrailObjectCreatedRule", ct, sc.KEY_S3.replace("/CloudTrail/", "/CloudTrail-Insight/"))
    assert not matches("CloudTrailObjectCreatedRule", ct, "elsewhere/" + sc.KEY_S3.split("AWSLogs/", 1)[1])
    apps = aws.APPSTREAM_BUCKET
    assert matches("UsageReportCreatedRule", apps, sc.SESSIONS_KEY)
    assert matches("UsageReportCreatedRule", apps, sc.APPS_KEY)
    assert not matches("UsageReportCreatedRule", apps, "other/x.csv")
    assert matches("UsageReportCreatedRule", aws.APPSTREAM_BUCKET_2, sc.SESSIONS_KEY)  # every listed bucket
    assert not matches("UsageReportCreatedRule", "appstream-logs-us-east-1-999988887777-zzzzzzzz", sc.SESSIONS_KEY)
