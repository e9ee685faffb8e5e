"""ingest_cloudtrail through its template handler, against moto: envelopes, failure policy,
re-delivery, metrics and logs."""

from __future__ import annotations

import gzip
import json

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from tests import factories as f
from tests.integration import aws
from tests.integration import scenario as sc

FN = "IngestCloudTrailFunction"


def s3_body(key: str, bucket: str = aws.CLOUDTRAIL_BUCKET) -> dict:
    return json.loads(sc.payload("ingest_cloudtrail/s3-notification-via-sqs.json")["Records"][0]["body"]
                      .replace(sc.KEY_S3, key).replace(aws.CLOUDTRAIL_BUCKET, bucket))


def throttle_get_object(client, key: str) -> list[str]:
    """Make GetObject of ``key`` answer 503 SlowDown (every attempt, so the client's retries run out)."""
    seen: list[str] = []

    def hook(request, **_):
        if request.url.split("?")[0].endswith(key.split("/")[-1]):
            seen.append(request.url)
            body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                    b"<Message>Please reduce your request rate.</Message></Error>")
            return AWSResponse(request.url, 503, {}, _Raw(body))
        return None

    client.meta.events.register("before-send.s3.GetObject", hook)
    return seen


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_):
        yield self.body

    def read(self, *_):
        return self.body


def test_broken_object_is_quarantined_and_the_rest_of_the_batch_succeeds(deployment, handler, capsys):
    s3 = deployment.client("s3")
    sc.stage_sources(s3)
    broken = sc.ct_key("0900", "BrokenBrokenBrok")
    s3.put_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=broken, Body=gzip.compress(b"{\"Records\": [")[:-5])
    _, h = handler(FN)
    event = aws.sqs_event([s3_body(sc.KEY_S3), s3_body(broken), s3_body(sc.KEY_EB)])

    result = h(event, aws.FakeContext())

    assert result == {"batchItemFailures": []}  # retrying cannot make a corrupt file readable
    objects = deployment.lake_objects()
    quarantined = [k for k in objects if k.startswith(f"{aws.LAKE_PREFIX}/quarantine/")]
    assert len([k for k in quarantined if k.endswith(".reason.json")]) == 1
    reason_key = next(k for k in quarantined if k.endswith(".reason.json"))
    reason = json.loads(s3.get_object(Bucket=aws.LAKE_BUCKET, Key=reason_key)["Body"].read())
    assert reason["source"] == f"s3://{aws.CLOUDTRAIL_BUCKET}/{broken}"
    assert "gzip" in reason["reason"]
    # read back through the lake (pyarrow), as the core wrote it
    copy = deployment.lake().get_bytes(f"{aws.LAKE_BUCKET}/{reason_key[: -len('.reason.json')]}")
    assert copy == s3.get_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=broken)["Body"].read()
    writes = deployment.lake().read("s3_writes")
    assert set(writes.column("event_id").to_pylist()) == {sc.EV["alice_put"], sc.EV["bob_claims_alice"]}
    metrics = aws.emf_metrics(capsys.readouterr().out)
    assert metrics["files_quarantined"] == 1
    assert metrics["objects_ingested"] == 2


def test_throttled_get_object_fails_only_its_message_and_the_retry_succeeds(deployment, handler, capsys):
    s3 = deployment.client("s3")
    sc.stage_sources(s3)
    module, h = handler(FN)
    seen = throttle_get_object(module.ingestor().s3, sc.KEY_EB)
    event = aws.sqs_event([s3_body(sc.KEY_S3), s3_body(sc.KEY_EB), s3_body(sc.KEY_SNS1)])

    result = h(event, aws.FakeContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert len(seen) == 6  # the client retried first: 1 attempt + max_attempts (5) retries
    assert set(deployment.lake().read("s3_writes").column("event_id").to_pylist()) == {
        sc.EV["alice_put"], sc.EV["replay"]}
    assert not [k for k in deployment.lake_objects() if "/quarantine/" in k]

    module.ingestor().s3.meta.events.unregister("before-send.s3.GetObject", unique_id=None)
    fresh_module, fresh = handler(FN)  # a new container: throttling over
    retry = {"Records": [event["Records"][1]]}
    assert fresh(retry, aws.FakeContext()) == {"batchItemFailures": []}
    assert sc.EV["bob_claims_alice"] in deployment.lake().read("s3_writes").column("event_id").to_pylist()


def test_a_redelivered_notification_changes_nothing(deployment, handler, capsys):
    sc.stage_sources(deployment.client("s3"))
    _, h = handler(FN)
    event = sc.payload("ingest_cloudtrail/cloudtrail-sns-via-sqs.json")
    assert h(event, aws.FakeContext()) == {"batchItemFailures": []}
    before = deployment.lake_objects()
    capsys.readouterr()

    assert h(event, aws.FakeContext()) == {"batchItemFailures": []}
    _, cold = handler(FN)  # and through a new container
    assert cold(event, aws.FakeContext()) == {"batchItemFailures": []}

    assert deployment.lake_objects() == before
    metrics = aws.emf_metrics(capsys.readouterr().out)
    assert metrics["objects_already_ingested"] == 4
    assert metrics.get("written", 0) == 0


@pytest.mark.parametrize("path", ["ingest_cloudtrail/s3-notification-via-sqs.json",
                                  "ingest_cloudtrail/eventbridge-via-sqs.json"])
def test_test_events_and_other_s3_events_are_ignored_not_failed(path, deployment, handler, capsys):
    sc.stage_sources(deployment.client("s3"))
    _, h = handler(FN)
    assert h(sc.payload(path), aws.FakeContext()) == {"batchItemFailures": []}
    metrics = aws.emf_metrics(capsys.readouterr().out)
    assert metrics["messages_ignored"] == 1  # the s3:TestEvent / the "Object Tags Added" event
    assert metrics["objects_ingested"] == 1


def test_object_gone_before_it_is_read_is_not_retried(deployment, handler, capsys):
    _, h = handler(FN)
    result = h(aws.sqs_event([s3_body(sc.ct_key("0905", "GoneGoneGoneGone"))]), aws.FakeContext())
    assert result == {"batchItemFailures": []}
    assert aws.emf_metrics(capsys.readouterr().out)["objects_missing"] == 1


def test_unrecognised_message_goes_to_the_dead_letter_queue(deployment, handler):
    sc.stage_sources(deployment.client("s3"))
    _, h = handler(FN)
    event = aws.sqs_event(["not json at all", {"hello": "world"}, s3_body(sc.KEY_S3)])
    result = h(event, aws.FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"][:2]]}


def test_objects_of_other_buckets_are_ignored(deployment, handler, capsys):
    s3 = deployment.client("s3")
    s3.create_bucket(Bucket="someone-elses-bucket")
    s3.put_object(Bucket="someone-elses-bucket", Key=sc.KEY_S3, Body=sc.cloudtrail_files()[sc.KEY_S3])
    _, h = handler(FN)
    assert h(aws.sqs_event([s3_body(sc.KEY_S3, "someone-elses-bucket")]), aws.FakeContext()) == {
        "batchItemFailures": []}
    assert aws.emf_metrics(capsys.readouterr().out)["objects_ignored"] == 1
    assert deployment.lake().read("s3_writes").num_rows == 0


def test_logs_carry_ids_and_counts_never_record_content(deployment, handler, capsys):
    sc.stage_sources(deployment.client("s3"))
    _, h = handler(FN)
    event = sc.payload("ingest_cloudtrail/s3-notification-via-sqs.json")
    h(event, aws.FakeContext())
    out = capsys.readouterr()
    logs = [json.loads(line) for line in out.out.splitlines() if line.startswith("{") and '"level"' in line]
    ingested = [entry for entry in logs if entry["message"] == "object ingested"]
    assert ingested and ingested[0]["correlation_id"] == event["Records"][0]["messageId"]
    assert ingested[0]["records_in"] == 2 and ingested[0]["input_id"]
    text = out.out + out.err
    for personal in ("alice", sc.DATA_KEY_ALICE, sc.ALICE_IP, sc.S1):
        assert personal not in text


def test_s3_notifications_from_moto_through_sqs(deployment, handler):
    """The real envelope: a bucket notification to a queue (moto sends s3:TestEvent first), drained
    into an SQS Lambda event."""
    sqs = deployment.client("sqs")
    url = sqs.create_queue(QueueName="cloudtrail-queue")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3 = deployment.client("s3")
    s3.put_bucket_notification_configuration(Bucket=aws.CLOUDTRAIL_BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    odd_key = f"AWSLogs/{sc.ACCOUNT}/CloudTrail/us-east-1/2026/03/02/with space+plus=equals.json.gz"
    s3.put_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=odd_key, Body=f.trail([
        f.put(sc.T0, sc.ALICE_IP, session_name=sc.S1, event_id="33333333-0000-4000-8000-000000000001")]))
    event = aws.sqs_event_from_queue(url)
    assert any("s3:TestEvent" in r["body"] for r in event["Records"])
    _, h = handler(FN)

    assert h(event, aws.FakeContext()) == {"batchItemFailures": []}
    writes = deployment.lake().read("s3_writes").to_pylist()
    assert [w["source_object"] for w in writes] == [f"s3://{aws.CLOUDTRAIL_BUCKET}/{odd_key}"]


def test_clients_are_built_lazily_not_at_import(deployment, handler, monkeypatch):
    calls = []
    real = boto3.session.Session.client
    monkeypatch.setattr(boto3.session.Session, "client", lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    module, _ = handler(FN)
    assert calls == [] and module._ingestor is None
