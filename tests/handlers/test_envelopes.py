"""The envelope decoder, table-driven (pure: no AWS)."""

from __future__ import annotations

import json

import pytest

from auditcorr.config import ConfigError
from auditcorr_aws.envelopes import ObjectRef, UnrecognisedMessage, decode, is_sqs_batch
from auditcorr_aws.settings import Settings, config_from_env
from tests.integration import scenario as sc

S3 = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-03-02T08:36:00Z",
                   "s3": {"bucket": {"name": "b"}, "object": {"key": "a/with+space%3Dx.json.gz", "eTag": "e"}}}]}
EB = {"source": "aws.s3", "detail-type": "Object Created", "time": "2026-03-02T08:41:00Z",
      "detail": {"bucket": {"name": "b"}, "object": {"key": "k/y=1.csv", "etag": "e2", "version-id": "v1"}}}
CT = {"s3Bucket": "b", "s3ObjectKey": ["AWSLogs/1/CloudTrail/r/k1.json.gz", "AWSLogs/1/CloudTrail/r/k2.json.gz"]}


def sns(message: dict) -> dict:
    return {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:r:1:t", "Message": json.dumps(message)}


@pytest.mark.parametrize(("body", "refs"), [
    (S3, [ObjectRef("b", "a/with space=x.json.gz", "e", None, "2026-03-02T08:36:00Z", "s3")]),
    (json.dumps(S3), [ObjectRef("b", "a/with space=x.json.gz", "e", None, "2026-03-02T08:36:00Z", "s3")]),
    (sns(S3), [ObjectRef("b", "a/with space=x.json.gz", "e", None, "2026-03-02T08:36:00Z", "s3")]),
    (EB, [ObjectRef("b", "k/y=1.csv", "e2", "v1", "2026-03-02T08:41:00Z", "eventbridge")]),
    (json.dumps(CT), [ObjectRef("b", k, envelope="cloudtrail-sns") for k in CT["s3ObjectKey"]]),
    (sns(CT), [ObjectRef("b", k, envelope="cloudtrail-sns") for k in CT["s3ObjectKey"]]),
    ({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(CT)}}]},
     [ObjectRef("b", k, envelope="cloudtrail-sns") for k in CT["s3ObjectKey"]]),
])
def test_envelopes_decode_to_object_refs(body, refs):
    assert decode(body).refs == refs


@pytest.mark.parametrize(("body", "ignored"), [
    ({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}, ["s3:TestEvent"]),
    (sns({"Service": "Amazon S3", "Event": "s3:TestEvent"}), ["s3:TestEvent"]),
    (EB | {"detail-type": "Object Tags Added"}, ["eventbridge Object Tags Added"]),
    ({"Records": [S3["Records"][0] | {"eventName": "ObjectRemoved:Delete"}]}, ["s3 event ObjectRemoved:Delete"]),
])
def test_test_events_and_other_events_are_ignored(body, ignored):
    d = decode(body)
    assert d.refs == [] and d.ignored == ignored


@pytest.mark.parametrize("body", ["", "not json", "[1, 2]", {"hello": "world"}, {"s3Bucket": "b"},
                                  {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]},
                                  {"Records": [{"eventSource": "aws:dynamodb"}]},
                                  {"source": "aws.s3", "detail-type": "Object Created", "detail": {}}])
def test_unknown_shapes_raise(body):
    with pytest.raises(UnrecognisedMessage):
        decode(body)


def test_every_events_payload_decodes():
    for path in sc.events_paths():
        event = sc.payload(path)
        bodies = [r["body"] for r in event["Records"]] if is_sqs_batch(event) else [event]
        assert any(decode(b).refs for b in bodies), path


def test_settings_and_config_from_env():
    env = {"AUDITCORR_LAKE_URI": "s3://bkt/lake/", "AWS_REGION": "us-gov-west-1", "AUDITCORR_SECURITY_HUB": "true",
           "AUDITCORR_ROLES": "arn:aws:iam::1:role/A, arn:aws:iam::1:role/B", "AUDITCORR_TOLERANCE_SECONDS": "30",
           "AUDITCORR_DISABLED_RULES": ""}
    s = Settings.from_env(env)
    assert (s.lake_bucket, s.lake_prefix, s.partition, s.security_hub) == ("bkt", "lake", "aws-us-gov", True)
    cfg = config_from_env(env)
    assert cfg.roles == ("arn:aws:iam::1:role/A", "arn:aws:iam::1:role/B") and cfg.tolerance_seconds == 30
    assert cfg.disabled_rules == ()
    with pytest.raises(ConfigError):
        config_from_env({"AUDITCORR_TOLERANCE_SECONDS": "soon"})
    with pytest.raises(ConfigError):
        Settings.from_env({"AUDITCORR_LAKE_URI": "/local/path", "AWS_REGION": "us-east-1"})
    assert s.appstream_logs_buckets == ()  # not set: every bucket the rule lets through
    many = Settings.from_env(env | {"AUDITCORR_APPSTREAM_LOGS_BUCKETS":
                                    "appstream-logs-a-1-x, appstream-logs-b-2-y,,appstream-logs-a-1-x"})
    assert many.appstream_logs_buckets == ("appstream-logs-a-1-x", "appstream-logs-b-2-y")
    with pytest.raises(ConfigError, match="not S3 bucket names: Bad_Bucket"):
        Settings.from_env(env | {"AUDITCORR_APPSTREAM_LOGS_BUCKETS": "appstream-logs-a-1-x,Bad_Bucket"})
