"""A generated trail (log files + digests signed as CloudTrail signs) ingested THROUGH THE PIPELINE:
a clean trail raises no integrity alert; every tampering is detected; order does not matter."""

from __future__ import annotations

import gzip
import hashlib
from datetime import timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from auditcorr.config import Config
from auditcorr.integrity.alerts import CLOSED_REASON, INTEGRITY_RULES
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from tests.conftest import FakeClock
from tests.factories import put, report_csv, report_name, session_row
from tests.integrity.trail import T0, Signer, Trail, TrailSpec, build_trail, rel

FLEET_IP = "10.40.1.15"
SESSION = "5f0c2b8e-4a9d-4c1e-9b7a-2d3e4f5a6b7c"


def _writes(at, j: int) -> bytes:
    """Real-shaped S3 writes (so the writes are attributed and carry their log file's integrity)."""
    recs = [put(at - timedelta(minutes=4, seconds=k), FLEET_IP, key=f"obj/{at:%H%M}-{j}-{k}.csv",
                event_id=hashlib.sha256(f"{at}{j}{k}".encode()).hexdigest()[:32]) for k in range(2)]
    return orjson.dumps({"Records": recs})


def make_trail(signer: Signer, **kw) -> Trail:
    return build_trail(TrailSpec(hours=kw.pop("hours", 5), logs_per_hour=2), signer, log_body=_writes, **kw)


class World:
    def __init__(self, tmp: Path, signer: Signer, trail: Trail) -> None:
        keys = tmp / "keys"
        signer.write_key(keys)
        self.clock = FakeClock(T0 + timedelta(hours=8))
        self.lake = Lake.open(str(tmp / "lake"))
        self.pipe = Pipeline(self.lake, Config(integrity_public_keys_dir=str(keys)), clock=self.clock)
        self.trail = trail

    def ingest(self, keys: list[str]) -> None:
        for key in keys:
            meta = self.trail.metadata.get(key)
            out = self.pipe.ingest_object(key, self.trail.objects[key], metadata=meta)
            assert out.error is None, out

    def ingest_all(self, digests_first: bool = False) -> None:
        logs = [k for k in sorted(self.trail.objects) if "/CloudTrail-Digest/" not in k]
        digests = [k for k in self.trail.digest_keys if k in self.trail.objects]
        self.ingest(digests + logs if digests_first else logs + digests)

    def alerts(self, status: str = "open") -> dict[str, set[str]]:
        t = self.lake.read("alerts")
        t = t.filter(pc.is_in(t.column("rule"), value_set=pa.array(INTEGRITY_RULES)))
        out: dict[str, set[str]] = {}
        for r in t.to_pylist():
            if r["status"] == status:
                out.setdefault(r["rule"], set()).add(r["event_id"])
        return out

    def rows(self) -> dict[str, dict]:
        return {r["rel_key"]: r for r in self.lake.read("log_file_integrity").to_pylist()}

    def report(self) -> None:
        """The day's sessions report (one session holding the fleet address all day): re-attributes the day."""
        body = report_csv([session_row(SESSION, "alice", FLEET_IP, T0 - timedelta(hours=2), T0 + timedelta(hours=9))])
        out = self.pipe.ingest_object(report_name(f"{T0:%Y-%m-%d}"), body)
        assert out.error is None

    def activity(self) -> dict[str, tuple[str | None, str | None]]:
        """event key -> (the row's log_integrity, the current status of its log file)."""
        current = {r["object_key"]: r["status"] for r in self.rows().values()}
        return {r["key"]: (r["log_integrity"], current.get(r["log_file"]))
                for r in self.lake.read("attributed_activity").to_pylist()}


@pytest.fixture
def clean(signer) -> Trail:
    return make_trail(signer)


def test_clean_trail_gives_verified_rows_and_zero_integrity_alerts(tmp_path, signer, clean):
    w = World(tmp_path, signer, clean)
    w.ingest_all()
    rows = w.rows()
    logs = [r for r in rows.values() if r["file_kind"] == "log"]
    digests = [r for r in rows.values() if r["file_kind"] == "digest"]
    assert len(logs) == len(clean.log_keys) and {r["status"] for r in logs} == {"verified"}
    assert len(digests) == 5 and {r["status"] for r in digests} == {"verified"}
    assert {r["signature_status"] for r in digests} == {"valid"}
    assert all(r["actual_sha256"] == r["expected_sha256"] for r in logs)
    assert w.alerts() == {}
    # every write names its log file, whose current status is verified; the row's own column says
    # what was known when it was computed, and is refreshed by the day's re-attribution
    act = w.activity()
    assert len(act) == 2 * len(clean.log_keys)
    assert set(act.values()) == {("not_yet_covered", "verified")}
    w.report()
    assert set(w.activity().values()) == {("verified", "verified")}


def test_modified_log_file_is_detected(tmp_path, signer, clean):
    victim = clean.log_keys[3]
    clean.objects[victim] = gzip.compress(clean.contents[victim].replace(b"obj/", b"obx/"), mtime=0)
    w = World(tmp_path, signer, clean)
    w.ingest_all()
    assert w.alerts() == {"log_file_modified": {rel(victim)}}
    assert w.rows()[rel(victim)]["status"] == "modified"
    # the writes read from the modified file are marked at once; the others at the re-attribution
    by_prefix = {(k[:4], v) for k, v in w.activity().items()}
    assert by_prefix == {("obx/", ("modified", "modified")), ("obj/", ("not_yet_covered", "verified"))}
    w.report()
    assert {(k[:4], v) for k, v in w.activity().items()} == {("obx/", ("modified", "modified")),
                                                             ("obj/", ("verified", "verified"))}


def test_appended_gzip_member_is_modified_not_verified(tmp_path, signer, clean):
    victim = clean.log_keys[0]
    clean.objects[victim] += gzip.compress(b"\n", mtime=0)  # the parse still reads it
    w = World(tmp_path, signer, clean)
    w.ingest_all()
    assert w.alerts() == {"log_file_modified": {rel(victim)}}
    assert w.rows()[rel(victim)]["reason"] == "gzip_trailing_data"


def test_deleted_log_file_is_missing(tmp_path, signer, clean):
    victim = clean.log_keys[4]
    clean.delete(victim)
    w = World(tmp_path, signer, clean)
    w.ingest_all()
    assert w.alerts() == {"log_file_missing": {rel(victim)}}
    assert w.rows()[rel(victim)]["status"] == "missing"


@pytest.mark.parametrize("deleted", [[2], [1, 2]])
def test_deleted_digests_leave_a_gap(tmp_path, signer, clean, deleted):
    gone = [clean.digest_keys[i] for i in deleted]
    for key in gone:
        clean.delete(key)
    w = World(tmp_path, signer, clean)
    w.ingest_all()
    after = clean.digest_keys[max(deleted) + 1]
    assert w.alerts() == {"digest_chain_gap": {rel(after)}}
    row = w.rows()[rel(after)]
    assert row["chain_status"] == "gap_before" and row["missing_before"] == len(deleted)
    orphans = [k for d in gone for k in clean.logs_by_digest[d]]
    assert {w.rows()[rel(k)]["status"] for k in orphans} == {"unverifiable"}
    assert {w.rows()[rel(k)]["reason"] for k in orphans} == {"digest_missing"}


def test_wrong_signature_in_metadata(tmp_path, signer, clean):
    victim = clean.digest_keys[1]
    sig = clean.metadata[victim]["Metadata"]["signature"]
    clean.metadata[victim]["Metadata"]["signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    w = World(tmp_path, signer, clean)
    w.ingest_all()
    assert w.alerts() == {"digest_signature_invalid": {rel(victim)}}
    # its successor still vouches for its content: its log files stay verified (ADR 0007)
    assert {w.rows()[rel(k)]["status"] for k in clean.logs_by_digest[victim]} == {"verified"}


def test_digest_signed_with_the_wrong_key(tmp_path, signer, other_signer):
    # digest 2 names the trusted key's fingerprint but was signed with another key
    trail = make_trail(signer, signers={2: other_signer},
                       previous_overrides={2: {"digestPublicKeyFingerprint": signer.fingerprint}})
    w = World(tmp_path, signer, trail)
    w.ingest_all()
    victim = trail.digest_keys[2]
    assert w.alerts() == {"digest_signature_invalid": {rel(victim)}}
    assert w.rows()[rel(victim)]["signature_status"] == "invalid"


def test_broken_chain(tmp_path, signer):
    trail = make_trail(signer, previous_overrides={3: {"previousDigestHashValue": "ab" * 32}})
    w = World(tmp_path, signer, trail)
    w.ingest_all()
    victim = trail.digest_keys[3]
    assert w.alerts() == {"digest_chain_broken": {rel(victim)}}
    assert w.rows()[rel(victim)]["chain_reason"] == "previous_hash_mismatch"


def test_log_file_after_its_digest_is_not_missing(tmp_path, signer, clean):
    w = World(tmp_path, signer, clean)
    late = clean.log_keys[2]
    early = [k for k in sorted(clean.objects) if k != late]
    w.ingest([k for k in early if "/CloudTrail-Digest/" not in k] + [k for k in clean.digest_keys])
    assert w.alerts() == {"log_file_missing": {rel(late)}}
    w.clock.set(T0 + timedelta(hours=9))
    w.ingest([late])
    assert w.alerts() == {}
    closed = w.alerts("closed")
    assert closed == {"log_file_missing": {rel(late)}}
    reasons = {r["status_reason"] for r in w.lake.read("alerts").to_pylist() if r["status"] == "closed"}
    assert reasons == {CLOSED_REASON}
    assert w.rows()[rel(late)]["status"] == "verified"
    late_keys = {r["requestParameters"]["key"] for r in orjson.loads(clean.contents[late])["Records"]}
    assert {v for k, v in w.activity().items() if k in late_keys} == {("verified", "verified")}


def test_digests_before_log_files_give_the_same_result(tmp_path, signer, clean):
    a, b = World(tmp_path / "a", signer, clean), World(tmp_path / "b", signer, clean)
    a.ingest_all()
    b.ingest_all(digests_first=True)
    strip = lambda rows: {k: (r["status"], r["reason"]) for k, r in rows.items()}  # noqa: E731
    assert strip(a.rows()) == strip(b.rows())
    assert a.alerts() == b.alerts() == {}


def test_without_the_key_digests_are_unverifiable_and_raise_nothing(tmp_path, signer, other_signer, clean):
    w = World(tmp_path, other_signer, clean)  # the key directory holds another key
    w.ingest_all()
    digests = [r for r in w.rows().values() if r["file_kind"] == "digest"]
    assert {r["status"] for r in digests} == {"unverifiable"}
    assert {r["signature_status"] for r in digests} == {"no_key"}
    assert w.alerts() == {}


def test_cli_ingest_reads_sidecars_and_who_shows_the_evidence(tmp_path, signer, clean):
    from click.testing import CliRunner

    from auditcorr_cli.main import main

    victim = clean.log_keys[5]
    clean.objects[victim] = gzip.compress(clean.contents[victim].replace(b"obj/", b"obx/"), mtime=0)
    root = clean.write(tmp_path / "bucket")
    keys = tmp_path / "keys"
    signer.write_key(keys)
    (tmp_path / "c.toml").write_text(f'[integrity]\npublic_keys_dir = "{keys}"\n')
    lake = str(tmp_path / "lake")
    runner = CliRunner()
    res = runner.invoke(main, ["ingest", "--lake", lake, "--config", str(tmp_path / "c.toml"), str(root)])
    assert res.exit_code == 0, res.output
    rows = {r["rel_key"]: r for r in Lake.open(lake).read("log_file_integrity").to_pylist()}
    assert {r["signature_status"] for r in rows.values() if r["file_kind"] == "digest"} == {"valid"}
    good = clean.log_keys[0]
    key = orjson.loads(clean.contents[good])["Records"][0]["requestParameters"]["key"]
    out = runner.invoke(main, ["who", "--lake", lake, "--bucket", "research-data", "--key", key]).output
    digest = next(d for d, ks in clean.logs_by_digest.items() if good in ks)
    assert f"evidence: log file verified by digest {root / digest}" in out
    bad_key = orjson.loads(gzip.decompress(clean.objects[victim]))["Records"][0]["requestParameters"]["key"]
    out = runner.invoke(main, ["who", "--lake", lake, "--bucket", "research-data", "--key", bad_key]).output
    assert "evidence: log file MODIFIED (hash_mismatch)" in out


@pytest.mark.parametrize("body", [b"", b"not gzip", gzip.compress(b"[1, 2]", mtime=0),
                                  gzip.compress(b"{}", mtime=0)[:-3]])
def test_a_digest_that_cannot_be_read_is_kept_and_flagged_never_raises(tmp_path, signer, clean, body):
    w = World(tmp_path, signer, clean)
    key = clean.digest_keys[1]
    out = w.pipe.ingest_object(key, body, metadata=clean.metadata[key])
    assert out.error is None and out.note.startswith("digest: invalid")
    assert w.alerts() == {"digest_signature_invalid": {rel(key)}}
    assert w.lake.read("log_file_integrity").num_rows == 1


def test_names_longer_than_the_lake_accepts_never_raise(tmp_path, signer, clean):
    w = World(tmp_path, signer, clean)
    key = clean.digest_keys[0].replace("_audit-trail_", "_" + "t" * 240 + "_")
    out = w.pipe.ingest_object(key, clean.objects[clean.digest_keys[0]])
    assert out.error is None and "not validated" in (out.note or "")


def test_integrity_config_section():
    from auditcorr.config import ConfigError, from_mapping

    assert from_mapping({}).integrity_enabled is True and from_mapping({}).integrity_public_keys_dir is None
    cfg = from_mapping({"integrity": {"enabled": False, "public_keys_dir": "k"}})
    assert (cfg.integrity_enabled, cfg.integrity_public_keys_dir) == (False, "k")
    with pytest.raises(ConfigError, match="integrity.enabled"):
        from_mapping({"integrity": {"enabled": "yes"}})


def test_integrity_off_skips_digests_and_leaves_writes_without_status(tmp_path, signer, clean):
    lake = Lake.open(str(tmp_path / "lake"))
    pipe = Pipeline(lake, Config(integrity_enabled=False), clock=FakeClock(T0 + timedelta(hours=8)))
    for key in sorted(clean.objects):
        out = pipe.ingest_object(key, clean.objects[key], metadata=clean.metadata.get(key))
        assert out.error is None
    assert lake.read("log_file_integrity").num_rows == 0
    act = lake.read("attributed_activity")
    assert set(act.column("log_integrity").to_pylist()) == set(act.column("log_file").to_pylist()) == {None}
