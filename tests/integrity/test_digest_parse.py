"""Digest parsing, on the sample digest of the AWS CloudTrail User Guide ("CloudTrail digest file
structure"), and the signed string (checked against the generator's independent version)."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime

import pytest

from auditcorr.integrity import DigestFormatError, parse_digest, signing_string
from tests.integrity.trail import cloudtrail_signing_string

# The field names and shapes of the AWS guide's sample digest (values abridged).
AWS_SAMPLE = {
    "awsAccountId": "111122223333",
    "digestStartTime": "2015-08-17T14:01:31Z",
    "digestEndTime": "2015-08-17T15:01:31Z",
    "digestS3Bucket": "amzn-s3-demo-bucket",
    "digestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/"
    "111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz",
    "digestPublicKeyFingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
    "digestSignatureAlgorithm": "SHA256withRSA",
    "newestEventTime": "2015-08-17T14:52:27Z",
    "oldestEventTime": "2015-08-17T14:42:27Z",
    "previousDigestS3Bucket": "amzn-s3-demo-bucket",
    "previousDigestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/"
    "111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T140131Z.json.gz",
    "previousDigestHashValue": "97fb791cf91ffc440d274f8190dbdd9aa09c34432aba82739df18b6d3c13df2d",
    "previousDigestHashAlgorithm": "SHA-256",
    "previousDigestSignature": "50887ccffad4c002b97caa37cc9dc626e3c680207d41d27fa5835458e066e0d3",
    "logFiles": [
        {
            "s3Bucket": "amzn-s3-demo-bucket",
            "s3Object": "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/"
            "111122223333_CloudTrail_us-east-2_20150817T1445Z_9nYN7gp2eWAJHIfT.json.gz",
            "hashValue": "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6",
            "hashAlgorithm": "SHA-256",
            "newestEventTime": "2015-08-17T14:52:27Z",
            "oldestEventTime": "2015-08-17T14:42:27Z",
        }
    ],
}


def body_of(doc: dict) -> tuple[bytes, bytes]:
    content = json.dumps(doc).encode()
    return content, gzip.compress(content)


def test_aws_sample_digest_parses_with_every_field():
    content, body = body_of(AWS_SAMPLE)
    parsed = parse_digest(body)
    d = parsed.digest
    assert parsed.sha256 == hashlib.sha256(content).hexdigest()
    assert d.aws_account_id == "111122223333"
    assert d.digest_start_time == datetime(2015, 8, 17, 14, 1, 31, tzinfo=UTC)
    assert d.digest_end_time == datetime(2015, 8, 17, 15, 1, 31, tzinfo=UTC)
    assert d.digest_s3_object.endswith("_us-east-2_20150817T150131Z.json.gz")
    assert d.public_key_fingerprint == "31e8b5433410dfb61a9dc45cc65b22ff"
    assert d.previous_s3_object.endswith("_20150817T140131Z.json.gz")
    assert d.previous_hash_algorithm == "SHA-256"
    assert not d.starts_chain
    (entry,) = d.log_files
    assert entry.hash_value == AWS_SAMPLE["logFiles"][0]["hashValue"]
    assert entry.newest_event_time == "2015-08-17T14:52:27Z"


def test_first_and_empty_digests():
    doc = dict(AWS_SAMPLE, logFiles=[], newestEventTime=None, oldestEventTime=None)
    for field in ("previousDigestS3Bucket", "previousDigestS3Object", "previousDigestHashValue"):
        doc[field] = None
    doc["previousDigestHashAlgorithm"] = None
    doc["previousDigestSignature"] = None
    d = parse_digest(body_of(doc)[1]).digest
    assert d.starts_chain
    assert d.log_files == ()
    content = json.dumps(doc).encode()
    expected = cloudtrail_signing_string(doc, content)
    assert signing_string(d, hashlib.sha256(content).hexdigest()) == expected
    assert expected.endswith(b"\nnull")


def test_signing_string_matches_the_documented_layout():
    content, body = body_of(AWS_SAMPLE)
    parsed = parse_digest(body)
    text = signing_string(parsed.digest, parsed.sha256)
    assert text == cloudtrail_signing_string(AWS_SAMPLE, content)
    lines = text.decode().split("\n")
    assert lines == [
        "2015-08-17T15:01:31Z",
        "amzn-s3-demo-bucket/" + AWS_SAMPLE["digestS3Object"],
        hashlib.sha256(content).hexdigest(),
        AWS_SAMPLE["previousDigestSignature"],
    ]


@pytest.mark.parametrize(
    ("mutate", "kind"),
    [
        (lambda d: d.pop("digestEndTime"), "missing_digestEndTime"),
        (lambda d: d.pop("digestS3Object"), "missing_digestS3Object"),
        (lambda d: d.pop("digestPublicKeyFingerprint"), "missing_digestPublicKeyFingerprint"),
        (lambda d: d.pop("previousDigestSignature"), "missing_previousDigestSignature"),
        (lambda d: d.update(digestStartTime="yesterday"), "bad_digestStartTime"),
        (lambda d: d.update(logFiles={"a": 1}), "bad_logFiles"),
        (lambda d: d["logFiles"][0].pop("hashValue"), "missing_hashValue"),
        (lambda d: d.update(previousDigestSignature=5), "bad_previousDigestSignature"),
    ],
)
def test_malformed_digests_raise_a_named_error(mutate, kind):
    doc = json.loads(json.dumps(AWS_SAMPLE))
    mutate(doc)
    with pytest.raises(DigestFormatError) as info:
        parse_digest(body_of(doc)[1])
    assert info.value.kind == kind


def test_non_json_and_non_gzip_bodies():
    with pytest.raises(DigestFormatError, match="not_json"):
        parse_digest(gzip.compress(b"{nope"))
    with pytest.raises(DigestFormatError, match="gzip_corrupt"):
        parse_digest(b"{}")
    with pytest.raises(DigestFormatError, match="gzip_trailing_data"):
        parse_digest(body_of(AWS_SAMPLE)[1] + gzip.compress(b"{}"))
    with pytest.raises(DigestFormatError, match="gzip_too_large"):
        parse_digest(body_of(AWS_SAMPLE)[1], max_inflated_bytes=100)
