"""Whatever is done to the bucket, validate returns one row per digest and per log file, and no
exception: bad input is reported, never raised."""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditcorr.integrity import validate
from auditcorr.integrity.validate import CHAIN_STATUSES, LOG_STATUSES, SIGNATURE_STATUSES
from tests.integrity.conftest import ring_of
from tests.integrity.trail import Signer, TrailSpec, build_trail, rel

FIELDS = [
    "digestStartTime",
    "digestEndTime",
    "digestS3Bucket",
    "digestS3Object",
    "digestPublicKeyFingerprint",
    "digestSignatureAlgorithm",
    "previousDigestS3Object",
    "previousDigestHashValue",
    "previousDigestHashAlgorithm",
    "previousDigestSignature",
    "logFiles",
]
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    st.sampled_from(["2026-11-30T12:01:31Z", "2026-11-30T12:01:31+05:00", "AWSLogs/x", "0" * 64]),
    st.lists(st.integers(), max_size=2),
)


@cache
def base():
    signer = Signer()
    return build_trail(TrailSpec(hours=4), signer), ring_of(signer)


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("field"), st.integers(0, 3), st.sampled_from(FIELDS), JSON_VALUES),
        st.tuples(st.just("delete_digest"), st.integers(0, 3)),
        st.tuples(st.just("delete_log"), st.integers(0, 7)),
        st.tuples(st.just("append_log"), st.integers(0, 7), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("drop_metadata"), st.integers(0, 3)),
        st.tuples(st.just("garble_digest"), st.integers(0, 3), st.binary(max_size=20)),
    ),
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS)
def test_validate_never_raises_and_accounts_for_every_file(actions):
    original, ring = base()
    trail = copy.deepcopy(original)
    for action in actions:
        kind, index = action[0], action[1]
        digest_key = trail.digest_keys[index % len(trail.digest_keys)]
        log_key = original.log_keys[index % len(original.log_keys)]
        if kind == "field" and digest_key in trail.objects:
            doc = json.loads(trail.contents[digest_key])
            doc[action[2]] = action[3]
            trail.contents[digest_key] = json.dumps(doc).encode()
            trail.objects[digest_key] = gzip.compress(trail.contents[digest_key])
        elif kind == "delete_digest" and digest_key in trail.objects:
            trail.delete(digest_key)
        elif kind == "delete_log" and log_key in trail.objects:
            trail.delete(log_key)
        elif kind == "append_log" and log_key in trail.objects:
            trail.objects[log_key] += action[2]
        elif kind == "drop_metadata":
            trail.metadata.pop(digest_key, None)
        elif kind == "garble_digest" and digest_key in trail.objects:
            trail.objects[digest_key] = action[2]
    digests, logs = trail.inputs()
    report = validate(digests, logs, ring)
    assert sorted(r.digest_key for r in report.digests) == sorted(d.key for d in digests)
    seen_logs = {rel(log.key) for log in logs}
    assert seen_logs <= {r.rel_key for r in report.logs}
    assert len({r.rel_key for r in report.logs}) == len(report.logs)
    assert {r.status for r in report.logs} <= set(LOG_STATUSES)
    assert {r.signature_status for r in report.digests} <= set(SIGNATURE_STATUSES)
    assert {r.chain_status for r in report.digests} <= set(CHAIN_STATUSES)
    assert len({s.id for s in report.signals}) == len(report.signals)
    report.log_table(), report.digest_table(), report.signal_table()
    if not actions:
        assert report.signals == []
