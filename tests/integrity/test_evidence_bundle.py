"""Evidence bundles: a round trip through the CLI (ingest a signed trail and a sessions report, write
the bundle, verify it offline), and a tampered bundle caught in every part."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from auditcorr.evidence import bundle as evb
from auditcorr.integrity import KeyRing
from auditcorr_cli.main import main
from tests.factories import put, report_csv, report_name, saml_logon, session_row
from tests.integrity.trail import T0, Signer, TrailSpec, build_trail, cloudtrail_signing_string

FLEET_IP = "10.40.1.15"
USER = "alice@example.org"
SESSION = "5f0c2b8e-4a9d-4c1e-9b7a-2d3e4f5a6b7c"
LOGON_ID = "logon-0000-1111"


def _body(at, j: int) -> bytes:
    recs = [put(at - timedelta(minutes=4), FLEET_IP, key=f"obj/{at:%H%M}-{j}.csv",
                event_id=hashlib.sha256(f"{at}{j}".encode()).hexdigest()[:32])]
    if at == T0 + timedelta(minutes=5) and j == 0:  # the user's logon, in the first log file
        recs.insert(0, saml_logon(T0 - timedelta(minutes=30), USER, event_id=LOGON_ID))
    return orjson.dumps({"Records": recs})


@pytest.fixture(scope="module")
def built(tmp_path_factory, signer: Signer):
    tmp = tmp_path_factory.mktemp("evidence")
    trail = build_trail(TrailSpec(hours=3, logs_per_hour=2), signer, log_body=_body)
    root = trail.write(tmp / "bucket")
    report = root / report_name("2026-11-30")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_bytes(report_csv([session_row(SESSION, USER, FLEET_IP, T0 - timedelta(minutes=20),
                                               T0 + timedelta(hours=5))]))
    keys = tmp / "keys"
    signer.write_key(keys)
    config = tmp / "c.toml"
    config.write_text(f'[integrity]\npublic_keys_dir = "{keys}"\n')
    lake = str(tmp / "lake")
    runner = CliRunner()
    logs = [str(root / k) for k in trail.log_keys]
    digests = [str(root / k) for k in trail.digest_keys]
    res = runner.invoke(main, ["ingest", "--lake", lake, "--config", str(config), *logs, *digests, str(report)])
    assert res.exit_code == 0, res.output
    key = orjson.loads(trail.contents[trail.log_keys[2]])["Records"][0]["requestParameters"]["key"]
    out = tmp / "bundle.json"
    res = runner.invoke(main, ["evidence", "--lake", lake, "--config", str(config), "--bucket", "research-data",
                               "--key", key, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return {"tmp": tmp, "trail": trail, "root": root, "keys": keys, "bundle": out, "lake": lake, "config": config,
            "key": key}


def _verify(path: Path, *extra: str):
    return CliRunner().invoke(main, ["evidence", "verify", str(path), *extra])


def test_round_trip_holds_offline(built):
    doc = orjson.loads(built["bundle"].read_bytes())
    assert [w["attribution"]["user_id"] for w in doc["writes"]] == [USER]
    w = doc["writes"][0]
    assert w["attribution"]["session_id"] == SESSION and w["attribution"]["log_integrity"] == "verified"
    assert w["write_record"]["requestParameters"]["key"] == built["key"]
    assert w["logon_record"]["eventID"] == LOGON_ID
    # the log files exactly as stored
    stored = {lf["rel_key"]: base64.b64decode(lf["content_gzip_b64"]) for lf in doc["log_files"]}
    trail = built["trail"]
    assert stored == {k: trail.objects[k] for k in stored} and len(stored) == 2
    assert doc["sessions"][0]["line"] and SESSION in doc["sessions"][0]["line"]
    assert len(doc["digests"]) >= 2 and len(doc["public_keys"]) == 1
    res = _verify(built["bundle"])
    assert res.exit_code == 0, res.output
    assert "bundle holds" in res.output and "FAIL" not in res.output
    assert "compare the fingerprint" in res.output  # no independent keys given: said so
    res = _verify(built["bundle"], "--public-keys-dir", str(built["keys"]))
    assert res.exit_code == 0 and "matches the independently obtained key" in res.output


def _rehash(doc: dict) -> dict:
    """A careful forger recomputes the bundle's own hashes after an edit."""
    doc["part_sha256"] = {p: evb.sha256_hex(evb.canonical(doc[p])) for p in evb.PARTS}
    doc["bundle_sha256"] = evb.sha256_hex(evb.canonical({k: v for k, v in doc.items() if k != "bundle_sha256"}))
    return doc


def _regzip_log(doc: dict, old: bytes, new: bytes) -> None:
    for lf in doc["log_files"]:
        data = gzip.decompress(base64.b64decode(lf["content_gzip_b64"]))
        if old in data:
            lf["content_gzip_b64"] = base64.b64encode(gzip.compress(data.replace(old, new), mtime=0)).decode()


def _tamper_digest_content(doc: dict) -> None:
    d = doc["digests"][0]
    body = orjson.loads(gzip.decompress(base64.b64decode(d["content_gzip_b64"])))
    body["logFiles"] = body["logFiles"][:1]
    d["content_gzip_b64"] = base64.b64encode(gzip.compress(orjson.dumps(body), mtime=0)).decode()


def _tamper_signature(doc: dict) -> None:
    meta = doc["digests"][0]["head_object"]["Metadata"]
    meta["signature"] = ("0" if meta["signature"][0] != "0" else "1") + meta["signature"][1:]


def _swap_key(doc: dict) -> None:
    other = Signer()
    doc["public_keys"][0]["der_b64"] = base64.b64encode(other.pkcs1_der()).decode()


TAMPERING = {
    "tool version (not re-hashed)": (lambda d: d["tool"].update(version="9.9.9"), False),
    "bundle hash": (lambda d: d.update(bundle_sha256="0" * 64), False),
    "subject": (lambda d: d["subject"].update(key="other/object.csv"), True),
    "attribution user": (lambda d: d["writes"][0]["attribution"].update(user_id="mallory@example.org"), True),
    "attribution address": (lambda d: d["writes"][0]["attribution"].update(source_ip="10.40.9.9"), True),
    "copied write record": (lambda d: d["writes"][0]["write_record"].update(sourceIPAddress="10.40.9.9"), True),
    "copied logon record": (lambda d: d["writes"][0]["logon_record"].update(eventTime="2020-01-01T00:00:00Z"), True),
    "log file content": (lambda d: _regzip_log(d, FLEET_IP.encode(), b"10.40.9.99"), True),
    "session line": (lambda d: d["sessions"][0].update(line=d["sessions"][0]["line"].replace(USER, "mallory")), True),
    "session user": (lambda d: d["sessions"][0].update(user_id="mallory@example.org"), True),
    "digest content": (_tamper_digest_content, True),
    "digest signature": (_tamper_signature, True),
    "public key": (_swap_key, True),
}


@pytest.mark.parametrize("what", sorted(TAMPERING))
def test_tampering_with_any_part_is_caught(built, tmp_path, what):
    edit, rehash = TAMPERING[what]
    doc = copy.deepcopy(orjson.loads(built["bundle"].read_bytes()))
    edit(doc)
    if rehash:
        _rehash(doc)
    ok, lines = evb.summary(evb.verify(doc))
    assert not ok, "\n".join(lines)
    path = tmp_path / "t.json"
    path.write_bytes(evb.dumps(doc))
    res = _verify(path)
    assert res.exit_code == 1 and "bundle does NOT hold" in res.output and "FAIL" in res.output


def test_a_forger_with_his_own_key_is_caught_by_independent_keys(built, signer):
    """Digest re-signed with another key and the bundle's key swapped to it: only the bundle's own keys
    vouch for it -- independently obtained keys catch it."""
    doc = orjson.loads(built["bundle"].read_bytes())
    forger = Signer()
    d = doc["digests"][0]
    content = gzip.decompress(base64.b64decode(d["content_gzip_b64"]))
    body = orjson.loads(content)
    body["digestPublicKeyFingerprint"] = forger.fingerprint
    content = orjson.dumps(body)
    d["content_gzip_b64"] = base64.b64encode(gzip.compress(content, mtime=0)).decode()
    d["head_object"]["Metadata"]["signature"] = forger.sign(cloudtrail_signing_string(body, content))
    doc["public_keys"].append({"fingerprint": forger.fingerprint,
                               "der_b64": base64.b64encode(forger.pkcs1_der()).decode()})
    _rehash(doc)
    ring = KeyRing()
    assert ring.add_bytes("trusted", signer.pkcs1_der(), expected_fingerprint=signer.fingerprint)
    ok, lines = evb.summary(evb.verify(doc, ring))
    assert not ok and any("not among the independently obtained keys" in x for x in lines)


def test_a_log_file_gone_since_ingest_is_reported_not_passed(built, tmp_path):
    src = built["root"] / built["trail"].log_keys[2]
    saved = src.read_bytes()
    src.unlink()
    try:
        out = tmp_path / "b.json"
        res = CliRunner().invoke(main, ["evidence", "--lake", built["lake"], "--config", str(built["config"]),
                                        "--bucket", "research-data", "--key", built["key"], "--out", str(out)])
        assert res.exit_code == 0 and "log file not available" in res.output
        doc = orjson.loads(out.read_bytes())
        gone = [lf for lf in doc["log_files"] if lf["content_gzip_b64"] is None]
        assert len(gone) == 1 and "not found" in gone[0]["unavailable"]
        res = _verify(out)
        assert "n/a  write" in res.output and "log file not in the bundle" in res.output
    finally:
        src.write_bytes(saved)
