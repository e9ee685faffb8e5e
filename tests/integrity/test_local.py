"""The local loader: a synced copy of the bucket, head-object sidecars and a key directory."""

from __future__ import annotations

import base64
import json

import pytest

from auditcorr.integrity import validate
from auditcorr.integrity.local import load_key_directory, load_tree, read_metadata_sidecar
from tests.integrity.trail import TrailSpec, build_trail, rel


@pytest.fixture
def copy(tmp_path, signer):
    trail = build_trail(TrailSpec(hours=3, prefix="trail-prefix/", org_id="o-zz99yy88xx"), signer)
    root = trail.write(tmp_path / "bucket")
    return trail, root


@pytest.mark.parametrize("form", ["der", "pem-pkcs1", "pem-spki"])
def test_loaded_copy_validates_clean(copy, signer, tmp_path, form):
    trail, root = copy
    signer.write_key(tmp_path / "keys", form)
    tree = load_tree(root)
    ring = load_key_directory(tmp_path / "keys")
    assert (len(tree.digests), len(tree.logs), tree.skipped) == (3, 6, [])
    assert all(d.metadata is not None and d.metadata.signature_algorithm == "SHA256withRSA" for d in tree.digests)
    report = validate(tree.digests, tree.logs, ring)
    assert report.signals == []
    assert {r.status for r in report.logs} == {"verified"}
    assert {r.object_key for r in report.logs} == set(trail.log_keys)  # keys relative to the copy's root


def test_key_file_named_by_the_fingerprint_but_holding_another_key_is_rejected(copy, signer, other_signer, tmp_path):
    _, root = copy
    other_signer.write_key(tmp_path / "keys", name=f"{signer.fingerprint}.der")
    (tmp_path / "keys" / "notes.pem").write_text("hello")
    ring = load_key_directory(tmp_path / "keys")
    assert sorted(ring.rejected) == [
        (f"{signer.fingerprint}.der", "fingerprint_mismatch"),
        ("notes.pem", "name_is_not_a_fingerprint"),
    ]
    tree = load_tree(root)
    report = validate(tree.digests, tree.logs, ring)
    assert {r.signature_status for r in report.digests} == {"no_key"}


def test_saved_list_public_keys_output_is_a_key_source(copy, signer, tmp_path):
    _, root = copy
    keys = tmp_path / "keys"
    keys.mkdir()
    listing = {
        "PublicKeyList": [
            {
                "Value": base64.b64encode(signer.pkcs1_der()).decode(),
                "ValidityStartTime": "2026-11-01T00:00:00+00:00",
                "ValidityEndTime": "2026-12-31T00:00:00+00:00",
                "Fingerprint": signer.fingerprint,
            }
        ]
    }
    (keys / "eu-west-1.json").write_text(json.dumps(listing))
    tree = load_tree(root)
    report = validate(tree.digests, tree.logs, load_key_directory(keys))
    assert {r.signature_status for r in report.digests} == {"valid"}


def test_missing_and_unreadable_sidecars(copy, signer, tmp_path):
    trail, root = copy
    signer.write_key(tmp_path / "keys")
    middle, newest = (root / k for k in trail.digest_keys[1:])
    middle.with_name(middle.name + ".metadata.json").unlink()
    newest.with_name(newest.name + ".metadata.json").write_text("{not json")
    (root / "trail-prefix" / "README.txt.json.gz").write_bytes(b"x")
    tree = load_tree(root)
    assert sorted(reason for _, reason in tree.skipped) == ["metadata_sidecar_not_json", "not_a_cloudtrail_key"]
    report = validate(tree.digests, tree.logs, load_key_directory(tmp_path / "keys"))
    statuses = {r.rel_key: r.signature_status for r in report.digests}
    assert statuses[rel(trail.digest_keys[1])] == "valid_from_successor"
    assert statuses[rel(trail.digest_keys[2])] == "no_metadata"
    assert report.signals == []


def test_sidecar_accepts_head_object_output_or_the_bare_metadata(tmp_path):
    full = tmp_path / "a.metadata.json"
    full.write_text(
        json.dumps({"ContentLength": 5, "Metadata": {"Signature": "ab", "signature-algorithm": "SHA256withRSA"}})
    )
    bare = tmp_path / "b.metadata.json"
    bare.write_text(json.dumps({"signature": "cd", "signature-algorithm": "SHA256withRSA"}))
    assert read_metadata_sidecar(full).signature == "ab"
    assert read_metadata_sidecar(bare).signature == "cd"
    assert read_metadata_sidecar(tmp_path / "absent.metadata.json") is None


def test_log_files_are_hashed_with_the_inflate_cap(copy, signer, tmp_path):
    _, root = copy
    signer.write_key(tmp_path / "keys")
    tree = load_tree(root, max_log_bytes=10)
    assert {log.outcome for log in tree.logs} == {"too_large"}
    report = validate(tree.digests, tree.logs, load_key_directory(tmp_path / "keys"))
    assert {(r.status, r.reason) for r in report.logs} == {("unverifiable", "inflate_limit")}
