"""On AWS: digest objects arrive on the CloudTrail queue, their signature is their S3 user metadata
(moto S3), and CloudTrail's public keys come from ``ListPublicKeys`` (botocore Stubber: moto has no
CloudTrail key API), cached in the lake."""

from __future__ import annotations

import logging
from datetime import timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from auditcorr.config import Config
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr_aws.cloudtrail_keys import key_fetcher
from auditcorr_aws.envelopes import ObjectRef
from auditcorr_aws.ingest import Ingestor, accept_bucket
from tests.conftest import FakeClock
from tests.integrity.trail import T0, TrailSpec, build_trail, rel

pytestmark = pytest.mark.aws
BUCKET = "ct-bucket"


@pytest.fixture
def aws_env(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield


def _stubbed_cloudtrail(signer, calls: list):
    client = boto3.client("cloudtrail", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_response("list_public_keys", {"PublicKeyList": [
        {"Value": signer.pkcs1_der(), "Fingerprint": signer.fingerprint,
         "ValidityStartTime": T0 - timedelta(days=30), "ValidityEndTime": T0 + timedelta(days=30)}]},
        {"StartTime": ANY, "EndTime": ANY})
    stub.activate()

    def make(region: str):
        calls.append(region)
        return client

    return make, stub


def test_digests_from_s3_are_validated_with_metadata_and_listpublickeys(aws_env, tmp_path, signer):
    trail = build_trail(TrailSpec(hours=3, bucket=BUCKET), signer)
    victim = trail.log_keys[1]
    trail.objects[victim] = trail.objects[victim][:-8] + b"\x00" * 8  # a corrupted CRC: not as delivered
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key, body in trail.objects.items():
        meta = trail.metadata.get(key, {}).get("Metadata", {})
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=meta)
    calls: list[str] = []
    make, stub = _stubbed_cloudtrail(signer, calls)
    lake = Lake.open(str(tmp_path / "lake"))
    pipe = Pipeline(lake, Config(), clock=FakeClock(T0 + timedelta(hours=5)), key_fetcher=key_fetcher(make))
    ing = Ingestor(s3, pipe, accept_bucket(BUCKET), logging.getLogger("test"))
    for key in [*trail.log_keys, *trail.digest_keys]:
        ing.ingest(ObjectRef(BUCKET, key))
    stub.assert_no_pending_responses()
    assert calls == ["eu-west-1"]  # asked once, for the digests' region; then cached
    assert lake.get_bytes(lake.state_path("integrity", "keys", f"{signer.fingerprint}.der")) == signer.pkcs1_der()
    rows = {r["rel_key"]: r for r in lake.read("log_file_integrity").to_pylist()}
    digests = [r for r in rows.values() if r["file_kind"] == "digest"]
    assert {r["signature_status"] for r in digests} == {"valid"}
    assert rows[rel(victim)]["status"] == "modified"
    assert {r["status"] for k, r in rows.items() if r["file_kind"] == "log" and k != rel(victim)} == {"verified"}
    alerts = lake.read("alerts").to_pylist()
    assert {(a["rule"], a["bucket"], a["key"]) for a in alerts} == {("log_file_modified", BUCKET, victim)}
    # a new pipeline (another Lambda container) reads the cached key: no ListPublicKeys call
    fresh = Pipeline(lake, Config(), key_fetcher=lambda *a: pytest.fail("asked again"))
    assert fresh.integrity is not None and fresh.integrity.keys.get(signer.fingerprint) is not None


def test_a_moved_digest_is_caught_by_the_bucket_it_was_read_from(aws_env, tmp_path, signer):
    trail = build_trail(TrailSpec(hours=2, bucket=BUCKET), signer)
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="elsewhere", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key, body in trail.objects.items():
        s3.put_object(Bucket="elsewhere", Key=key, Body=body, Metadata=trail.metadata.get(key, {}).get("Metadata", {}))
    make, _ = _stubbed_cloudtrail(signer, [])
    lake = Lake.open(str(tmp_path / "lake"))
    pipe = Pipeline(lake, Config(), clock=FakeClock(T0 + timedelta(hours=5)), key_fetcher=key_fetcher(make))
    ing = Ingestor(s3, pipe, accept_bucket(None), logging.getLogger("test"))
    for key in trail.digest_keys:
        ing.ingest(ObjectRef("elsewhere", key))
    rows = [r for r in lake.read("log_file_integrity").to_pylist() if r["file_kind"] == "digest"]
    assert {r["signature_status"] for r in rows} == {"moved"}
    assert {a["rule"] for a in lake.read("alerts").to_pylist()} == {"digest_signature_invalid"}


def test_a_refused_listpublickeys_leaves_digests_unverifiable_not_failed(aws_env, tmp_path, signer):
    client = boto3.client("cloudtrail", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_client_error("list_public_keys", service_error_code="AccessDeniedException", http_status_code=403)
    stub.activate()
    fetch = key_fetcher(lambda region: client)
    assert fetch("eu-west-1", T0, T0 + timedelta(hours=1)) == {"PublicKeyList": []}
    stub.assert_no_pending_responses()
