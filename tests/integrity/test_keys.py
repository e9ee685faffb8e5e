"""S3 key shapes of CloudTrail log and digest files (matched from AWSLogs/ on)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditcorr.integrity.keys import parse_digest_key, parse_log_key, relative_key

LOG = (
    "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/30/"
    "111122223333_CloudTrail_eu-west-1_20261130T1005Z_AbC123dEf456GhI7.json.gz"
)
DIGEST = (
    "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/30/"
    "111122223333_CloudTrail-Digest_eu-west-1_audit-trail_eu-west-1_20261130T110131Z.json.gz"
)


@pytest.mark.parametrize("prefix", ["", "trail-prefix/", "a/b/c/", "/local/copy/"])
def test_log_key_with_any_prefix(prefix):
    key = parse_log_key(prefix + LOG)
    assert key is not None
    assert (key.prefix, key.rel, key.account, key.region, key.org_id) == (
        prefix,
        LOG,
        "111122223333",
        "eu-west-1",
        None,
    )
    assert key.time == datetime(2026, 11, 30, 10, 5, tzinfo=UTC)


def test_organisation_trail_keys():
    org_log = LOG.replace("AWSLogs/", "AWSLogs/o-a1b2c3d4e5/")
    key = parse_log_key("p/" + org_log)
    assert key is not None and key.org_id == "o-a1b2c3d4e5" and key.rel == org_log
    org_digest = DIGEST.replace("AWSLogs/", "AWSLogs/o-a1b2c3d4e5/")
    dkey = parse_digest_key(org_digest)
    assert dkey is not None and dkey.org_id == "o-a1b2c3d4e5" and dkey.account == "111122223333"


def test_multi_region_digest_carries_the_home_region_and_trail_names_may_hold_underscores():
    key = (
        "AWSLogs/111122223333/CloudTrail-Digest/ap-southeast-2/2026/11/30/"
        "111122223333_CloudTrail-Digest_ap-southeast-2_org_trail_v2_us-east-1_20261130T110131Z.json.gz"
    )
    d = parse_digest_key(key)
    assert d is not None
    assert (d.region, d.trail, d.home_region, d.backfill) == ("ap-southeast-2", "org_trail_v2", "us-east-1", False)
    assert d.end_time == datetime(2026, 11, 30, 11, 1, 31, tzinfo=UTC)


def test_backfill_digest_is_its_own_chain():
    backfill = parse_digest_key(DIGEST.replace(".json.gz", "_backfill.json.gz"))
    regular = parse_digest_key(DIGEST)
    assert backfill is not None and regular is not None
    assert backfill.backfill and not regular.backfill
    assert backfill.chain != regular.chain
    assert backfill.end_time == regular.end_time


@pytest.mark.parametrize(
    "key",
    [
        LOG.replace("111122223333_CloudTrail", "999999999999_CloudTrail"),  # account mismatch
        LOG.replace(".json.gz", ".json"),
        LOG.replace("/CloudTrail/", "/CloudTrail-Insight/"),
        "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/30/notes.txt",
        DIGEST,  # a digest is not a log
    ],
)
def test_non_log_keys(key):
    assert parse_log_key(key) is None


def test_relative_key():
    assert relative_key("x/y/" + LOG) == LOG
    assert relative_key(LOG) == LOG
    assert relative_key("no-awslogs/here") == "no-awslogs/here"
