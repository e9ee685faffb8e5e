"""Scenarios over generated, CloudTrail-signed trails: what each tampering looks like in the rows and
signals of ``validate``."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import zlib
from datetime import timedelta

import pytest

from auditcorr.integrity import signal_id, validate
from auditcorr.integrity.tables import DIGEST_SCHEMA, LOG_SCHEMA, SIGNAL_SCHEMA
from auditcorr.integrity.validate import CHAIN_STATUSES, LOG_STATUSES, SIGNATURE_STATUSES
from tests.integrity.conftest import ring_of
from tests.integrity.trail import HOUR, T0, TrailSpec, build_trail, continue_from, rel


def run(trail, ring, **kwargs):
    digests, logs = trail.inputs(with_metadata=kwargs.pop("with_metadata", True))
    return validate(digests, logs, ring, **kwargs)


def logs_by_status(report):
    out: dict[str, set[str]] = {}
    for row in report.logs:
        out.setdefault(row.status, set()).add(row.rel_key)
    return out


def log_row(report, key):
    (row,) = [r for r in report.logs if r.rel_key == rel(key)]
    return row


def digest_row(report, key):
    (row,) = [r for r in report.digests if r.rel_key == rel(key)]
    return row


def rules(report):
    return sorted(s.rule for s in report.signals)


@pytest.fixture
def trail(signer):
    return build_trail(TrailSpec(hours=5), signer)


def test_clean_trail_has_no_signals_and_every_log_verified(trail, ring):
    report = run(trail, ring)
    assert report.signals == []
    assert logs_by_status(report) == {"verified": {rel(k) for k in trail.log_keys}}
    assert [r.signature_status for r in report.digests] == ["valid"] * 5
    assert [r.chain_status for r in report.digests] == ["chain_start"] + ["ok"] * 4
    assert all(r.trusted and r.trust_source == "signature" for r in report.digests)
    for row in report.logs:
        assert row.expected_sha256 == row.actual_sha256 == hashlib.sha256(trail.contents[row.object_key]).hexdigest()


def test_modified_log_file(trail, ring):
    key = trail.log_keys[3]
    trail.objects[key] = gzip.compress(trail.contents[key].replace(b"PutObject", b"GetObject"))
    report = run(trail, ring)
    row = log_row(report, key)
    assert (row.status, row.reason) == ("modified", "hash_mismatch")
    assert row.expected_sha256 == hashlib.sha256(trail.contents[key]).hexdigest() != row.actual_sha256
    (signal,) = report.signals
    assert (signal.rule, signal.subject) == ("log_file_modified", rel(key))
    assert signal.id == hashlib.sha256(f"log_file_modified\n{rel(key)}".encode()).hexdigest()
    assert len(logs_by_status(report)["verified"]) == len(trail.log_keys) - 1


def test_deleted_log_file(trail, ring):
    key = trail.log_keys[0]
    trail.delete(key)
    report = run(trail, ring)
    row = log_row(report, key)
    assert (row.status, row.actual_sha256, row.object_key) == ("missing", None, key)
    assert row.digest_key == trail.digest_keys[0]
    assert rules(report) == ["log_file_missing"]


def test_log_file_arriving_after_its_digest_is_missing_only_until_it_arrives(trail, ring):
    key = trail.log_keys[-1]
    body = trail.objects[key]
    trail.delete(key)
    before = run(trail, ring)
    assert log_row(before, key).status == "missing"
    trail.objects[key] = body
    after = run(trail, ring)
    assert log_row(after, key).status == "verified"
    assert after.signals == []


def test_gzip_with_a_trailing_member_is_modified_though_its_first_member_matches(trail, ring):
    key = trail.log_keys[2]
    trail.objects[key] += gzip.compress(b'{"Records": [{"eventName": "DeleteBucket"}]}')
    report = run(trail, ring)
    row = log_row(report, key)
    assert (row.status, row.reason, row.actual_sha256) == ("modified", "gzip_trailing_data", None)
    # a validator that stops after the first member (the AWS CLI does) would find the listed hash
    first_member = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(trail.objects[key])
    assert hashlib.sha256(first_member).hexdigest() == row.expected_sha256
    assert rules(report) == ["log_file_modified"]


@pytest.mark.parametrize("deleted", [[2], [1, 2], [1, 2, 3]])
def test_deleted_digests_leave_a_gap_of_that_many(trail, ring, deleted):
    for i in deleted:
        trail.delete(trail.digest_keys[i])
    report = run(trail, ring)
    after = digest_row(report, trail.digest_keys[deleted[-1] + 1])
    assert (after.chain_status, after.chain_reason, after.missing_before) == (
        "gap_before",
        "previous_digest_missing",
        len(deleted),
    )
    orphaned = {rel(k) for i in deleted for k in trail.logs_by_digest[trail.digest_keys[i]]}
    statuses = logs_by_status(report)
    assert statuses["unverifiable"] == orphaned
    assert {r.reason for r in report.logs if r.status == "unverifiable"} == {"digest_missing"}
    (signal,) = report.signals
    assert signal.rule == "digest_chain_gap" and signal.reason == f"{len(deleted)}_missing"
    assert signal.subject == f"{rel(trail.digest_keys[deleted[-1] + 1])}\n{rel(trail.digest_keys[deleted[-1]])}"


def test_wrong_signature_on_the_newest_digest(trail, ring):
    newest = trail.digest_keys[-1]
    trail.metadata[newest]["Metadata"]["signature"] = trail.signatures[trail.digest_keys[0]]
    report = run(trail, ring)
    row = digest_row(report, newest)
    assert (row.signature_status, row.trusted) == ("invalid", False)
    for key in trail.logs_by_digest[newest]:
        assert (log_row(report, key).status, log_row(report, key).reason) == ("unverifiable", "digest_invalid")
    (signal,) = report.signals
    assert (signal.rule, signal.subject, signal.reason) == ("digest_signature_invalid", rel(newest), "invalid")


def test_wrong_metadata_signature_mid_chain_is_signalled_but_the_successor_copy_verifies(trail, ring):
    middle = trail.digest_keys[2]
    sig = bytearray(bytes.fromhex(trail.signatures[middle]))
    sig[10] ^= 0x40
    trail.metadata[middle]["Metadata"]["signature"] = sig.hex()
    report = run(trail, ring)
    row = digest_row(report, middle)
    assert (row.signature_status, row.trust_source) == ("valid_from_successor", "successor_signature")
    assert {log_row(report, k).status for k in trail.logs_by_digest[middle]} == {"verified"}
    (signal,) = report.signals
    assert (signal.rule, signal.reason) == ("digest_signature_invalid", "metadata_signature_invalid")
    assert digest_row(report, trail.digest_keys[3]).chain_status == "ok"


def test_fingerprint_not_found(trail, other_signer):
    report = run(trail, ring_of(other_signer))
    assert {r.signature_status for r in report.digests} == {"no_key"}
    assert {(r.status, r.reason) for r in report.logs} == {("unverifiable", "digest_no_key")}
    assert report.signals == []  # a configuration problem, not evidence of tampering


@pytest.mark.parametrize("position", [-1, 2])
def test_key_mismatch_digest_signed_by_another_key_than_its_fingerprint_names(signer, other_signer, ring, position):
    index = position % 5
    trail = build_trail(
        TrailSpec(hours=5),
        signer,
        signers={index: other_signer},
        previous_overrides={index: {"digestPublicKeyFingerprint": signer.fingerprint}},
    )
    report = run(trail, ring)
    bad = trail.digest_keys[index]
    row = digest_row(report, bad)
    assert row.signature_status == "invalid"
    assert rules(report) == ["digest_signature_invalid"]
    logs = {log_row(report, k).status for k in trail.logs_by_digest[bad]}
    if index == 4:  # nothing later vouches for it
        assert logs == {"unverifiable"}
        assert not row.trusted
    else:  # the next, validly signed digest names its exact content hash (ADR 0007)
        assert logs == {"verified"}
        assert row.trust_source == "successor_hash"


def test_key_rotation_with_only_the_newer_key_known_trusts_older_digests_through_the_chain(signer, other_signer, ring):
    trail = build_trail(TrailSpec(hours=4), signer, signers={0: other_signer, 1: other_signer})
    report = run(trail, ring)
    assert [r.signature_status for r in report.digests] == ["no_key", "no_key", "valid", "valid"]
    assert [r.trust_source for r in report.digests] == ["successor_hash", "successor_hash", "signature", "signature"]
    assert logs_by_status(report) == {"verified": {rel(k) for k in trail.log_keys}}
    assert log_row(report, trail.log_keys[0]).reason == "trusted_by_successor_hash"
    assert report.signals == []


def test_broken_links_a_wrong_previous_hash_and_a_predecessor_that_is_not_the_digest_before(signer, ring):
    trail = build_trail(TrailSpec(hours=4), signer, previous_overrides={1: {"previousDigestHashValue": "0" * 64}})
    report = run(trail, ring)
    row = digest_row(report, trail.digest_keys[1])
    assert (row.chain_status, row.chain_reason) == ("broken_link", "previous_hash_mismatch")
    assert rules(report) == ["digest_chain_broken"]
    # now point digest 2 at digest 0 while digest 1 exists
    zero = trail.digest_keys[0]
    overrides = {
        2: {
            "previousDigestS3Object": zero,
            "previousDigestHashValue": hashlib.sha256(trail.contents[zero]).hexdigest(),
            "previousDigestSignature": trail.signatures[zero],
        }
    }
    forked = build_trail(TrailSpec(hours=4), signer, previous_overrides=overrides)
    report = run(forked, ring)
    row = digest_row(report, forked.digest_keys[2])
    assert (row.chain_status, row.chain_reason) == ("broken_link", "previous_is_not_the_digest_before")
    assert rules(report) == ["digest_chain_broken"]
    assert {r.signature_status for r in report.digests} == {"valid"}


def test_edited_digest_breaks_its_signature_and_the_successor_link(trail, ring):
    target = trail.digest_keys[1]
    doc = json.loads(trail.contents[target])
    dropped = doc["logFiles"].pop(0)["s3Object"]
    trail.objects[target] = gzip.compress(json.dumps(doc).encode())
    report = run(trail, ring)
    assert digest_row(report, target).signature_status == "invalid"
    assert not digest_row(report, target).trusted
    successor = digest_row(report, trail.digest_keys[2])
    assert (successor.chain_status, successor.chain_reason) == ("broken_link", "previous_hash_mismatch")
    assert (log_row(report, dropped).status, log_row(report, dropped).reason) == ("unverifiable", "not_in_any_digest")
    kept = trail.logs_by_digest[target][1]
    assert (log_row(report, kept).status, log_row(report, kept).reason) == ("unverifiable", "digest_invalid")
    assert rules(report) == ["digest_chain_broken", "digest_signature_invalid"]


def test_digest_copied_to_another_location_is_moved(trail, ring):
    source, target = trail.digest_keys[1], trail.digest_keys[3]
    trail.objects[target] = trail.objects[source]
    trail.metadata[target] = trail.metadata[source]
    report = run(trail, ring)
    assert digest_row(report, target).signature_status == "moved"
    assert ("digest_signature_invalid", rel(target), "moved") in {(s.rule, s.subject, s.reason) for s in report.signals}
    assert {log_row(report, k).status for k in trail.logs_by_digest[target]} != {"verified"}


def test_chain_restart_after_logging_was_off_is_not_an_alarm(signer, ring):
    before = build_trail(TrailSpec(hours=3), signer)
    after = build_trail(TrailSpec(hours=3, start=T0 + 6 * HOUR, seed=8), signer)  # previous fields null
    trail = before.merge(after)
    report = run(trail, ring)
    assert [r.chain_status for r in report.digests] == ["chain_start", "ok", "ok", "chain_start", "ok", "ok"]
    assert report.signals == []
    assert logs_by_status(report) == {"verified": {rel(k) for k in trail.log_keys}}


def test_continued_chain_across_builds(signer, ring):
    first = build_trail(TrailSpec(hours=2), signer)
    second = build_trail(TrailSpec(hours=2, start=T0 + 2 * HOUR, seed=9), signer, previous=continue_from(first))
    report = run(first.merge(second), ring)
    assert [r.chain_status for r in report.digests] == ["chain_start", "ok", "ok", "ok"]
    assert report.signals == []


def test_organisation_multi_region_trail_with_a_prefix(signer, ring):
    spec = dict(org_id="o-a1b2c3d4e5", prefix="org-logs/", trail="org_trail", home_region="us-east-1")
    home = build_trail(TrailSpec(region="us-east-1", **spec), signer)
    other = build_trail(TrailSpec(region="ap-southeast-2", seed=3, **spec), signer)
    trail = home.merge(other)
    report = run(trail, ring)
    assert report.signals == []
    assert logs_by_status(report) == {"verified": {rel(k) for k in trail.log_keys}}
    assert {(r.org_id, r.region, r.home_region, r.trail) for r in report.digests} == {
        ("o-a1b2c3d4e5", "us-east-1", "us-east-1", "org_trail"),
        ("o-a1b2c3d4e5", "ap-southeast-2", "us-east-1", "org_trail"),
    }
    assert {r.org_id for r in report.logs} == {"o-a1b2c3d4e5"}
    # a deletion in one region is a gap in that region's chain only
    trail.delete(other.digest_keys[1])
    report = run(trail, ring)
    (signal,) = report.signals
    assert (signal.rule, signal.region) == ("digest_chain_gap", "ap-southeast-2")


def test_log_newer_than_the_newest_digest_is_not_yet_covered_until_overdue(trail, ring):
    newest_end = T0 + 5 * HOUR
    late = (
        f"AWSLogs/111122223333/CloudTrail/eu-west-1/{newest_end:%Y/%m/%d}/"
        f"111122223333_CloudTrail_eu-west-1_{newest_end + timedelta(minutes=10):%Y%m%dT%H%MZ}_LATEFILE00000001.json.gz"
    )
    trail.add_log(late, b'{"Records": []}')
    assert log_row(run(trail, ring), late).status == "not_yet_covered"
    report = run(trail, ring, as_of=newest_end + 5 * HOUR)
    assert (log_row(report, late).status, log_row(report, late).reason) == ("unverifiable", "digest_overdue")
    assert report.signals == []


def test_log_inside_covered_time_that_no_digest_lists(trail, ring):
    stray = (
        "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/30/"
        f"111122223333_CloudTrail_eu-west-1_{T0 + 2 * HOUR:%Y%m%dT%H%MZ}_FORGED0000000001.json.gz"
    )
    trail.add_log(stray, b'{"Records": [{"eventName": "PutObject"}]}')
    row = log_row(run(trail, ring), stray)
    assert (row.status, row.reason, row.digest_key) == ("unverifiable", "not_in_any_digest", None)


def test_without_metadata_sidecars_the_chain_carries_every_signature_but_the_newest(trail, ring):
    report = run(trail, ring, with_metadata=False)
    assert [r.signature_status for r in report.digests] == ["valid_from_successor"] * 4 + ["no_metadata"]
    newest_logs = {rel(k) for k in trail.logs_by_digest[trail.digest_keys[-1]]}
    assert logs_by_status(report) == {
        "verified": {rel(k) for k in trail.log_keys} - newest_logs,
        "unverifiable": newest_logs,
    }
    assert report.signals == []


def test_window_start_decides_whether_a_missing_first_digest_is_a_gap(trail, ring):
    trail.delete(trail.digest_keys[0])
    quiet = run(trail, ring)
    first = digest_row(quiet, trail.digest_keys[1])
    assert (first.chain_status, first.chain_reason) == ("ok", "previous_before_window")
    assert quiet.signals == []
    loud = run(trail, ring, window_start=T0)
    assert digest_row(loud, trail.digest_keys[1]).chain_status == "gap_before"
    assert rules(loud) == ["digest_chain_gap"]


def test_backfill_digests_form_their_own_chain_and_cover_late_logs(signer, ring):
    regular = build_trail(TrailSpec(hours=3), signer)
    backfill = build_trail(TrailSpec(hours=1, start=T0 + 1 * HOUR, backfill=True, seed=11), signer)
    trail = regular.merge(backfill)
    report = run(trail, ring)
    assert report.signals == []
    row = digest_row(report, backfill.digest_keys[0])
    assert (row.backfill, row.chain_status) == (True, "chain_start")
    assert logs_by_status(report) == {"verified": {rel(k) for k in trail.log_keys}}


def test_unparseable_digest_is_reported_not_raised(trail, ring):
    target = trail.digest_keys[2]
    trail.objects[target] = b"\x1f\x8b not really gzip"
    report = run(trail, ring)
    row = digest_row(report, target)
    assert (row.signature_status, row.chain_status) == ("invalid_format", "unknown")
    assert ("digest_signature_invalid", "gzip_corrupt") in {(s.rule, s.reason) for s in report.signals}
    successor = digest_row(report, trail.digest_keys[3])
    assert (successor.chain_status, successor.chain_reason) == ("broken_link", "previous_digest_unreadable")


def test_tables_follow_the_schemas_and_vocabularies(trail, ring):
    trail.delete(trail.log_keys[1])
    trail.delete(trail.digest_keys[3])
    report = run(trail, ring)
    logs, digests, signals = report.log_table(), report.digest_table(), report.signal_table()
    assert logs.schema == LOG_SCHEMA and digests.schema == DIGEST_SCHEMA and signals.schema == SIGNAL_SCHEMA
    assert (logs.num_rows, digests.num_rows, signals.num_rows) == (len(trail.log_keys), 4, 2)
    assert set(logs.column("status").to_pylist()) <= set(LOG_STATUSES)
    assert set(digests.column("signature_status").to_pylist()) <= set(SIGNATURE_STATUSES)
    assert set(digests.column("chain_status").to_pylist()) <= set(CHAIN_STATUSES)
    assert signals.column("id").to_pylist() == [signal_id(s.rule, s.subject) for s in report.signals]


def test_result_does_not_depend_on_input_order(trail, ring):
    trail.delete(trail.log_keys[4])
    trail.delete(trail.digest_keys[2])
    digests, logs = trail.inputs()
    expected = validate(digests, logs, ring)
    rng = random.Random(5)
    for _ in range(3):
        rng.shuffle(digests)
        rng.shuffle(logs)
        assert validate(digests, logs, ring) == expected


def test_backfill_digest_naming_a_regular_digest_links_across_chains(signer, ring):
    regular = build_trail(TrailSpec(hours=3), signer)
    backfill = build_trail(
        TrailSpec(hours=1, start=T0 + 2 * HOUR, backfill=True, seed=12), signer, previous=continue_from(regular)
    )
    report = run(regular.merge(backfill), ring)
    row = digest_row(report, backfill.digest_keys[0])
    assert (row.chain_status, row.chain_reason) == ("ok", "previous_in_other_chain")
    assert report.signals == []
