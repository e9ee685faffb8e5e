"""Test generator: a CloudTrail trail's log files and hourly digest files, signed as CloudTrail signs.

Independent of the code under test on purpose: the signing string, the key encodings and the gzip
bodies are written here from the AWS documentation ("CloudTrail digest file structure", "Custom
implementations of CloudTrail log file integrity validation"), and signed with ``cryptography``
(RSASSA-PKCS1-v1_5, SHA-256: Java's SHA256withRSA).

A ``Trail`` holds S3 objects by key (bytes as CloudTrail would store them) and each digest's
``head-object`` metadata; tests mutate it (delete, modify, append), then validate it in memory or
after ``write(root)`` through the local loader.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from auditcorr.integrity import DigestSeen, LogFileSeen, digest_seen, log_file_seen, metadata_from_head_object

T0 = datetime(2026, 11, 30, 10, 1, 31, tzinfo=UTC)  # digests end hh:01:31, like the AWS samples
HOUR = timedelta(hours=1)


class Signer:
    """A CloudTrail-like regional signing key pair."""

    def __init__(self, bits: int = 2048) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.public = self.private.public_key()

    def pkcs1_der(self) -> bytes:  # the form ListPublicKeys returns
        return self.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)

    @property
    def fingerprint(self) -> str:  # MD5 of that DER, hex
        return hashlib.md5(self.pkcs1_der()).hexdigest()

    def sign(self, message: bytes) -> str:
        return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256()).hex()

    def key_file(self, form: str = "der") -> tuple[str, bytes]:
        """(file name, bytes) for a key directory: ``<fingerprint>.der`` or ``.pem``."""
        if form == "der":
            return f"{self.fingerprint}.der", self.pkcs1_der()
        fmt = (
            serialization.PublicFormat.PKCS1 if form == "pem-pkcs1" else serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"{self.fingerprint}.pem", self.public.public_bytes(serialization.Encoding.PEM, fmt)

    def write_key(self, directory: Path, form: str = "der", *, name: str | None = None) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        default_name, data = self.key_file(form)
        path = directory / (name or default_name)
        path.write_bytes(data)
        return path


def cloudtrail_signing_string(doc: dict, content: bytes) -> bytes:
    previous = doc["previousDigestSignature"]
    return (
        f"{doc['digestEndTime']}\n{doc['digestS3Bucket']}/{doc['digestS3Object']}\n"
        f"{hashlib.sha256(content).hexdigest()}\n{previous if previous is not None else 'null'}"
    ).encode()


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TrailSpec:
    account: str = "111122223333"
    region: str = "eu-west-1"
    trail: str = "audit-trail"
    home_region: str | None = None  # None: the trail's own region
    bucket: str = "ct-bucket"
    prefix: str = ""  # the trail's S3 key prefix, with its trailing slash
    org_id: str | None = None
    start: datetime = T0  # end time of the digest before the first one built
    hours: int = 4
    logs_per_hour: int = 2
    backfill: bool = False
    seed: int = 7

    @property
    def base(self) -> str:
        org = f"{self.org_id}/" if self.org_id else ""
        return f"{self.prefix}AWSLogs/{org}{self.account}"


@dataclass
class Trail:
    spec: TrailSpec
    objects: dict[str, bytes] = field(default_factory=dict)  # S3 key -> stored bytes
    metadata: dict[str, dict] = field(default_factory=dict)  # digest key -> head-object output
    digest_keys: list[str] = field(default_factory=list)  # oldest first
    logs_by_digest: dict[str, list[str]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)  # key -> uncompressed content
    signatures: dict[str, str] = field(default_factory=dict)

    @property
    def log_keys(self) -> list[str]:
        return [k for d in self.digest_keys for k in self.logs_by_digest[d]]

    def merge(self, other: Trail) -> Trail:
        self.objects.update(other.objects)
        self.metadata.update(other.metadata)
        self.digest_keys += other.digest_keys
        self.logs_by_digest.update(other.logs_by_digest)
        self.contents.update(other.contents)
        self.signatures.update(other.signatures)
        return self

    # --- tampering helpers ---
    def delete(self, key: str) -> None:
        self.objects.pop(key)
        self.metadata.pop(key, None)

    def add_log(self, key: str, content: bytes) -> None:
        """A file that is not a digest's business (late, stray or forged)."""
        self.objects[key] = gzip.compress(content, mtime=0)
        self.contents[key] = content

    # --- as validator inputs ---
    def inputs(self, *, with_metadata: bool = True) -> tuple[list[DigestSeen], list[LogFileSeen]]:
        digests, logs = [], []
        for key in sorted(self.objects):
            body = self.objects[key]
            if "/CloudTrail-Digest/" in key:
                meta = self.metadata.get(key)
                metadata = metadata_from_head_object(meta) if (meta is not None and with_metadata) else None
                digests.append(digest_seen(key, body, metadata, bucket=self.spec.bucket))
            else:
                chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
                logs.append(log_file_seen(key, chunks, bucket=self.spec.bucket))
        return digests, logs

    def write(self, root: Path) -> Path:
        """Files at ``root/<key>``, each digest with its ``<name>.metadata.json`` sidecar."""
        for key, body in self.objects.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            if key in self.metadata:
                path.with_name(path.name + ".metadata.json").write_text(json.dumps(self.metadata[key], indent=2))
        return root


def _log_content(rng: random.Random, spec: TrailSpec, when: datetime, n: int) -> bytes:
    records = [
        {
            "eventVersion": "1.09",
            "eventTime": _iso(when - timedelta(minutes=5, seconds=i)),
            "eventSource": "s3.amazonaws.com",
            "eventName": "PutObject",
            "awsRegion": spec.region,
            "recipientAccountId": spec.account,
            "eventID": f"{rng.getrandbits(64):016x}",
        }
        for i in range(n)
    ]
    return json.dumps({"Records": records}).encode()


def build_trail(
    spec: TrailSpec,
    signer: Signer,
    *,
    previous: tuple[str, str, str] | None = None,
    signers: dict[int, Signer] | None = None,
    previous_overrides: dict[int, dict] | None = None,
    log_body: Callable[[datetime, int], bytes] | None = None,
) -> Trail:
    """Hourly digests ``spec.start + 1h, + 2h, ...`` each listing ``logs_per_hour`` log files.

    ``previous``: (digest key, uncompressed sha256, signature) the first digest chains to; None makes
    the first digest a chain start (previous fields null).  ``signers``: a different key for some
    hours (key rotation).  ``previous_overrides``: replace previous* fields of digest ``i`` before
    signing (a chain CloudTrail did not write, signed with a valid key).  ``log_body``: the
    uncompressed body of the ``j``-th log file delivered at a time (default: minimal records).
    """
    rng = random.Random(spec.seed)
    trail = Trail(spec)
    home = spec.home_region or spec.region
    suffix = "_backfill" if spec.backfill else ""
    for i in range(spec.hours):
        start, end = spec.start + i * HOUR, spec.start + (i + 1) * HOUR
        entries = []
        keys = []
        for j in range(spec.logs_per_hour):
            at = start + timedelta(minutes=5 + j * (50 // max(1, spec.logs_per_hour)))
            name = f"{spec.account}_CloudTrail_{spec.region}_{at:%Y%m%dT%H%MZ}_{rng.getrandbits(80):020X}"[:-4]
            key = f"{spec.base}/CloudTrail/{spec.region}/{at:%Y/%m/%d}/{name}.json.gz"
            body = log_body(at, j) if log_body is not None else _log_content(rng, spec, at, 1 + j)
            trail.objects[key] = gzip.compress(body, mtime=0)
            trail.contents[key] = body
            keys.append(key)
            entries.append(
                {
                    "s3Bucket": spec.bucket,
                    "s3Object": key,
                    "hashValue": hashlib.sha256(body).hexdigest(),
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": _iso(at - timedelta(minutes=5)),
                    "oldestEventTime": _iso(at - timedelta(minutes=5, seconds=j)),
                }
            )
        key_signer = (signers or {}).get(i, signer)
        digest_key = (
            f"{spec.base}/CloudTrail-Digest/{spec.region}/{end:%Y/%m/%d}/"
            f"{spec.account}_CloudTrail-Digest_{spec.region}_{spec.trail}_{home}_{end:%Y%m%dT%H%M%SZ}{suffix}.json.gz"
        )
        doc = {
            "awsAccountId": spec.account,
            "digestStartTime": _iso(start),
            "digestEndTime": _iso(end),
            "digestS3Bucket": spec.bucket,
            "digestS3Object": digest_key,
            "digestPublicKeyFingerprint": key_signer.fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": entries[-1]["newestEventTime"] if entries else None,
            "oldestEventTime": entries[0]["oldestEventTime"] if entries else None,
            "previousDigestS3Bucket": spec.bucket if previous else None,
            "previousDigestS3Object": previous[0] if previous else None,
            "previousDigestHashValue": previous[1] if previous else None,
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": previous[2] if previous else None,
            "logFiles": entries,
        }
        doc.update((previous_overrides or {}).get(i, {}))
        content = json.dumps(doc).encode()
        signature = key_signer.sign(cloudtrail_signing_string(doc, content))
        trail.objects[digest_key] = gzip.compress(content, mtime=0)
        trail.contents[digest_key] = content
        trail.signatures[digest_key] = signature
        head = {
            "AcceptRanges": "bytes",
            "ContentLength": len(trail.objects[digest_key]),
            "ContentType": "application/json",
            "ContentEncoding": "gzip",
            "ServerSideEncryption": "AES256",
            "Metadata": {"signature": signature, "signature-algorithm": "SHA256withRSA"},
        }
        if spec.backfill:
            head["Metadata"]["backfill-generation-timestamp"] = _iso(end + HOUR)
        trail.metadata[digest_key] = head
        trail.digest_keys.append(digest_key)
        trail.logs_by_digest[digest_key] = keys
        previous = (digest_key, hashlib.sha256(content).hexdigest(), signature)
    return trail


def continue_from(trail: Trail) -> tuple[str, str, str]:
    """The ``previous`` argument that chains a new build to the last digest of ``trail``."""
    key = trail.digest_keys[-1]
    return key, hashlib.sha256(trail.contents[key]).hexdigest(), trail.signatures[key]


def rel(key: str) -> str:
    return key[key.index("AWSLogs/") :]
