"""Digest validation on the e2e day (issue 14): the day of ``benchmarks.e2e`` (100k writes) ingested
with and without its 24 hourly CloudTrail digests (signed with a test key, each listing the log files
delivered in its hour, chained), in delivery order, then the sessions report.

    python -m benchmarks.digests [--runs 3] [--workdir DIR]

Prints, per run, the seconds the 24 digests take as a share of the day (CloudTrail files + report).
Needs the dev extra (``cryptography`` signs the digests) and builds the world like ``benchmarks.e2e``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .data import scale_world, workdir

DAY0_MS = 1_772_409_600_000  # the scale world's first day
REGION, ACCOUNT = "us-east-1", "111122223333"


def _name_time(p: Path) -> datetime:
    return datetime.strptime(p.name.split("_")[3], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_digests(root: Path, files: list[Path], signer: Any) -> list[tuple[datetime, str, bytes, dict]]:
    """24 chained hourly digests listing ``files`` by their delivery hour, signed as CloudTrail signs."""
    from tests.integrity.trail import cloudtrail_signing_string

    start = datetime.fromtimestamp(DAY0_MS / 1000, UTC)
    base = files[0].relative_to(root).as_posix().split("/CloudTrail/")[0]
    out: list[tuple[datetime, str, bytes, dict]] = []
    prev: tuple[str, str, str] | None = None
    for h in range(24):
        s0, e0 = start + timedelta(hours=h), start + timedelta(hours=h + 1)
        key = (f"{base}/CloudTrail-Digest/{REGION}/{e0:%Y/%m/%d}/"
               f"{ACCOUNT}_CloudTrail-Digest_{REGION}_trail_{REGION}_{e0:%Y%m%dT%H%M%SZ}.json.gz")
        listed = [p for p in files if s0 <= _name_time(p) < e0]
        doc = {"awsAccountId": ACCOUNT, "digestStartTime": _iso(s0), "digestEndTime": _iso(e0),
               "digestS3Bucket": "trail-bucket", "digestS3Object": key,
               "digestPublicKeyFingerprint": signer.fingerprint, "digestSignatureAlgorithm": "SHA256withRSA",
               "previousDigestS3Bucket": "trail-bucket" if prev else None,
               "previousDigestS3Object": prev[0] if prev else None,
               "previousDigestHashValue": prev[1] if prev else None,
               "previousDigestHashAlgorithm": "SHA-256" if prev else None,
               "previousDigestSignature": prev[2] if prev else None,
               "logFiles": [{"s3Bucket": "trail-bucket", "s3Object": p.relative_to(root).as_posix(),
                             "hashValue": hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest(),
                             "hashAlgorithm": "SHA-256"} for p in listed]}
        content = json.dumps(doc).encode()
        signature = signer.sign(cloudtrail_signing_string(doc, content))
        meta = {"Metadata": {"signature": signature, "signature-algorithm": "SHA256withRSA"}}
        out.append((e0 + timedelta(minutes=10), key, gzip.compress(content, mtime=0), meta))
        prev = (key, hashlib.sha256(content).hexdigest(), signature)
    return out


def run_once(root: Path, meta: dict[str, Any], keys: Path, digests: list | None) -> dict[str, Any]:
    from auditcorr.config import Config
    from auditcorr.lake import Lake
    from auditcorr.pipeline import Pipeline

    files = sorted((root / p for p in meta["cloudtrail_files"]), key=lambda p: p.name)
    lake_dir = tempfile.mkdtemp(prefix="auditcorr-digests-")
    now = [DAY0_MS + 86_400_000 - 1_000]
    pipe = Pipeline(Lake.open(lake_dir), Config(integrity_public_keys_dir=str(keys)), clock=lambda: now[0])
    arrivals: list[tuple[datetime, str, Any]] = [(_name_time(p), "log", p) for p in files]
    arrivals += [(at, "digest", (key, body, md)) for at, key, body, md in digests or []]
    seconds = {"log": 0.0, "digest": 0.0}
    for _, kind, item in sorted(arrivals, key=lambda a: a[0]):
        t0 = time.perf_counter()
        if kind == "log":
            pipe.ingest_object(str(item), item.read_bytes())
        else:
            key, body, md = item
            pipe.ingest_object(str(root / key), body, metadata=md)
        seconds[kind] += time.perf_counter() - t0
    now[0] = DAY0_MS + 86_400_000 + 3 * 3_600_000
    t0 = time.perf_counter()
    for r in meta["sessions_reports"]:
        pipe.ingest_object(str(root / r), (root / r).read_bytes())
    seconds["report"] = time.perf_counter() - t0
    rows = pipe.lake.read("log_file_integrity").to_pylist()
    act = pipe.lake.read("attributed_activity", columns=["event_id", "log_integrity"])
    shutil.rmtree(lake_dir, ignore_errors=True)
    return {**seconds, "log_statuses": sorted({r["status"] for r in rows if r["file_kind"] == "log"}),
            "log_integrity": sorted({str(v) for v in act.column("log_integrity").to_pylist()})}


def main(argv: list[str] | None = None) -> None:
    from tests.integrity.trail import Signer

    ap = argparse.ArgumentParser(prog="python -m benchmarks.digests", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args(argv)
    world, _ = scale_world(workdir(a.workdir), 100_000, 10_000)
    root = Path(world.root)
    meta = json.loads((root / "_world.json").read_text())
    files = sorted((root / p for p in meta["cloudtrail_files"]), key=lambda p: p.name)
    signer = Signer()
    keys = Path(tempfile.mkdtemp(prefix="auditcorr-keys-"))
    signer.write_key(keys)
    digests = make_digests(root, files, signer)
    for i in range(a.runs):
        without, with_ = run_once(root, meta, keys, None), run_once(root, meta, keys, digests)
        day = with_["log"] + with_["report"]
        print(f"run {i + 1}: without digests files {without['log']:.1f}s + report {without['report']:.1f}s | "
              f"with: files {with_['log']:.1f}s + report {with_['report']:.1f}s + 24 digests {with_['digest']:.2f}s "
              f"= {100 * with_['digest'] / day:.1f}% of the day; log files {with_['log_statuses']}, "
              f"log_integrity after the report {with_['log_integrity']}")


if __name__ == "__main__":
    main()
