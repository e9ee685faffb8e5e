"""Validate what was seen of a CloudTrail bucket: digest signatures, the digest chains, and the
log files the digests vouch for.  Pure: the inputs are values, the outputs rows and signals.

Order of work (ADR 0007):
1. each digest's signature (metadata signature, else the copy its successor carries);
2. trust: a digest whose signature verifies is trusted; so is one whose exact content (SHA-256) a
   trusted successor names in ``previousDigestHashValue`` (transitively, newest to oldest);
3. each chain (account, region, trail, home region; backfill digests apart), oldest to newest:
   the previous-digest fields against the digest before it;
4. each log file: against the hash a trusted digest lists, or why it cannot be checked.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import pyarrow as pa

from .digest import HASH_ALGORITHM, SIGNATURE_ALGORITHM, Digest, LogFileEntry, signing_string
from .gzipstream import CORRUPT, OK, TOO_LARGE, TRAILING_DATA, TRUNCATED
from .inputs import DigestSeen, KeyRing, LogFileSeen
from .keys import DigestKey, parse_digest_key, parse_log_key, relative_key
from .rsakeys import RsaPublicKey, verify_sha256_rsa
from .tables import DIGEST_SCHEMA, LOG_SCHEMA, SIGNAL_SCHEMA, rows_to_table

HOUR = timedelta(hours=1)
_NO_TIME = datetime.min.replace(tzinfo=UTC)

# log file status
VERIFIED = "verified"
MODIFIED = "modified"
MISSING = "missing"
NOT_YET_COVERED = "not_yet_covered"
UNVERIFIABLE = "unverifiable"
LOG_STATUSES = (VERIFIED, MODIFIED, MISSING, NOT_YET_COVERED, UNVERIFIABLE)

# digest signature status
SIG_VALID = "valid"
SIG_VALID_FROM_SUCCESSOR = "valid_from_successor"  # metadata signature absent/bad; the successor's copy verifies
SIG_INVALID = "invalid"
SIG_NO_METADATA = "no_metadata"
SIG_NO_KEY = "no_key"
SIG_UNSUPPORTED = "unsupported_algorithm"
SIG_INVALID_FORMAT = "invalid_format"
SIG_MOVED = "moved"  # not at the location it names (digestS3Bucket/digestS3Object)
SIGNATURE_STATUSES = (
    SIG_VALID,
    SIG_VALID_FROM_SUCCESSOR,
    SIG_INVALID,
    SIG_NO_METADATA,
    SIG_NO_KEY,
    SIG_UNSUPPORTED,
    SIG_INVALID_FORMAT,
    SIG_MOVED,
)

# how a digest's content came to be trusted
TRUST_SIGNATURE = "signature"
TRUST_SUCCESSOR_SIGNATURE = "successor_signature"
TRUST_SUCCESSOR_HASH = "successor_hash"

# chain status
CHAIN_OK = "ok"
CHAIN_GAP = "gap_before"
CHAIN_BROKEN = "broken_link"
CHAIN_START = "chain_start"
CHAIN_UNKNOWN = "unknown"
CHAIN_STATUSES = (CHAIN_OK, CHAIN_GAP, CHAIN_BROKEN, CHAIN_START, CHAIN_UNKNOWN)

# signal rules
RULE_LOG_MODIFIED = "log_file_modified"
RULE_LOG_MISSING = "log_file_missing"
RULE_DIGEST_SIGNATURE = "digest_signature_invalid"
RULE_CHAIN_GAP = "digest_chain_gap"
RULE_CHAIN_BROKEN = "digest_chain_broken"
RULES = (RULE_LOG_MODIFIED, RULE_LOG_MISSING, RULE_DIGEST_SIGNATURE, RULE_CHAIN_GAP, RULE_CHAIN_BROKEN)
_SEVERITY = {
    RULE_LOG_MODIFIED: "high",
    RULE_LOG_MISSING: "high",
    RULE_DIGEST_SIGNATURE: "high",
    RULE_CHAIN_BROKEN: "high",
    RULE_CHAIN_GAP: "medium",
}
_SIGNALLED_SIGNATURES = (SIG_INVALID, SIG_INVALID_FORMAT, SIG_MOVED)
_GZIP_NOT_AS_DELIVERED = (TRAILING_DATA, TRUNCATED, CORRUPT)


@dataclass(frozen=True, slots=True)
class LogRow:
    object_key: str  # as observed, or the key a digest lists when the file was not seen
    rel_key: str
    account: str | None
    region: str | None
    org_id: str | None
    log_time: datetime | None  # from the file name
    digest_key: str | None  # the digest (as observed) that lists it
    expected_sha256: str | None
    actual_sha256: str | None
    status: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class DigestRow:
    digest_key: str
    rel_key: str
    account: str | None
    region: str | None
    org_id: str | None
    trail: str | None
    home_region: str | None
    backfill: bool
    digest_start: datetime | None
    digest_end: datetime | None
    sha256: str | None
    fingerprint: str | None
    signature_status: str
    trusted: bool
    trust_source: str | None
    chain_status: str
    chain_reason: str | None
    missing_before: int  # digests estimated missing just before this one (hourly cadence)
    previous_key: str | None
    log_count: int


@dataclass(frozen=True, slots=True)
class Signal:
    id: str  # sha256(rule + "\n" + subject): the same finding gets the same id on every run
    rule: str
    severity: str
    subject: str
    account: str | None
    region: str | None
    reason: str | None


def signal_id(rule: str, subject: str) -> str:
    return hashlib.sha256(f"{rule}\n{subject}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    logs: list[LogRow]
    digests: list[DigestRow]
    signals: list[Signal]

    def log_table(self) -> pa.Table:
        return rows_to_table(self.logs, LOG_SCHEMA)

    def digest_table(self) -> pa.Table:
        return rows_to_table(self.digests, DIGEST_SCHEMA)

    def signal_table(self) -> pa.Table:
        return rows_to_table(self.signals, SIGNAL_SCHEMA)


# --- working state per digest --------------------------------------------------------------------


@dataclass(slots=True)
class _D:
    seen: DigestSeen
    rel: str
    key: DigestKey | None
    digest: Digest | None
    sha256: str | None
    signature_status: str = SIG_INVALID_FORMAT
    metadata_signature_bad: bool = False
    trust: str | None = None
    chain_status: str = CHAIN_UNKNOWN
    chain_reason: str | None = None
    missing_before: int = 0
    gap_from: datetime | None = None

    @property
    def end(self) -> datetime | None:
        if self.digest is not None:
            return self.digest.digest_end_time
        return self.key.end_time if self.key is not None else None


def _seen_order(seen: DigestSeen) -> tuple[str, str, str]:
    return (seen.key, seen.parsed.sha256 if seen.parsed else "", seen.error or "")


def _by_time(d: _D) -> tuple[datetime, str]:
    return (d.end or _NO_TIME, d.rel)


def _unhex(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _verify_once(key: RsaPublicKey, message: bytes, signature: bytes) -> bool:
    """A pure function of its arguments: a digest re-validated with its neighbours (the pipeline
    validates around every digest that arrives) is verified once per process."""
    return verify_sha256_rsa(key, message, signature)


def _verifies(d: _D, keys: KeyRing, signature_hex: str | None) -> bool:
    if d.digest is None or d.sha256 is None:
        return False
    key = keys.get(d.digest.public_key_fingerprint)
    signature = _unhex(signature_hex)
    if key is None or signature is None:
        return False
    return _verify_once(key, signing_string(d.digest, d.sha256), signature)


def _check_signature(d: _D, keys: KeyRing, successors: list[_D]) -> None:
    digest, seen = d.digest, d.seen
    if digest is None:
        d.signature_status = SIG_INVALID_FORMAT
        return
    claimed_bucket_ok = seen.bucket is None or seen.bucket == digest.digest_s3_bucket
    if relative_key(digest.digest_s3_object) != d.rel or not claimed_bucket_ok:
        d.signature_status = SIG_MOVED
        return
    meta = seen.metadata
    algorithms = {digest.signature_algorithm} | (
        {meta.signature_algorithm} if meta and meta.signature_algorithm else set()
    )
    if algorithms != {SIGNATURE_ALGORITHM}:
        d.signature_status = SIG_UNSUPPORTED
        return
    if keys.get(digest.public_key_fingerprint) is None:
        d.signature_status = SIG_NO_KEY
        return
    metadata_signature = meta.signature if meta else None
    if metadata_signature and _verifies(d, keys, metadata_signature):
        d.signature_status = SIG_VALID
        return
    d.metadata_signature_bad = bool(metadata_signature)
    for successor in successors:
        if successor.digest is not None and _verifies(d, keys, successor.digest.previous_signature):
            d.signature_status = SIG_VALID_FROM_SUCCESSOR
            return
    d.signature_status = SIG_INVALID if metadata_signature else SIG_NO_METADATA


def _successor_vouches(successor: _D, d: _D) -> bool:
    s = successor.digest
    return (
        s is not None
        and successor.trust is not None
        and s.previous_hash_value is not None
        and (s.previous_hash_algorithm or HASH_ALGORITHM) == HASH_ALGORITHM
        and s.previous_hash_value.lower() == d.sha256
    )


def _check_link(d: _D, earlier: _D | None, by_rel: dict[str, _D], window_start: datetime) -> None:
    digest = d.digest
    if digest is None:
        d.chain_status, d.chain_reason = CHAIN_UNKNOWN, d.seen.error
        return
    previous_fields = (
        digest.previous_s3_bucket,
        digest.previous_s3_object,
        digest.previous_hash_value,
        digest.previous_signature,
    )
    if all(value is None for value in previous_fields):
        d.chain_status, d.chain_reason = CHAIN_START, None
        return
    if any(value is None for value in previous_fields):
        d.chain_status, d.chain_reason = CHAIN_BROKEN, "incomplete_previous_fields"
        return
    assert digest.previous_s3_object is not None
    previous_rel = relative_key(digest.previous_s3_object)
    predecessor = by_rel.get(previous_rel)
    if predecessor is None:
        previous_key = parse_digest_key(digest.previous_s3_object)
        if previous_key is None:
            d.chain_status, d.chain_reason = CHAIN_BROKEN, "previous_key_unrecognised"
            return
        if earlier is not None and earlier.end is not None and earlier.end >= previous_key.end_time:
            # it names a digest older than one we hold: the one we hold is not its predecessor
            d.chain_status, d.chain_reason = CHAIN_BROKEN, "previous_skips_a_seen_digest"
            return
        if earlier is None and previous_key.end_time <= window_start:
            d.chain_status, d.chain_reason = CHAIN_OK, "previous_before_window"
            return
        since = earlier.end if earlier is not None and earlier.end is not None else window_start
        d.chain_status, d.chain_reason = CHAIN_GAP, "previous_digest_missing"
        d.missing_before = max(1, round((digest.digest_start_time - since) / HOUR))
        d.gap_from = since
        return
    other_chain = predecessor.key is not None and d.key is not None and predecessor.key.chain != d.key.chain
    if predecessor is not earlier and not other_chain:
        d.chain_status, d.chain_reason = CHAIN_BROKEN, "previous_is_not_the_digest_before"
        return
    if predecessor.digest is None or predecessor.sha256 is None:
        d.chain_status, d.chain_reason = CHAIN_BROKEN, "previous_digest_unreadable"
        return
    if (digest.previous_hash_algorithm or HASH_ALGORITHM) != HASH_ALGORITHM or (
        digest.previous_hash_value or ""
    ).lower() != predecessor.sha256:
        d.chain_status, d.chain_reason = CHAIN_BROKEN, "previous_hash_mismatch"
        return
    if digest.previous_s3_bucket != predecessor.digest.digest_s3_bucket:
        d.chain_status, d.chain_reason = CHAIN_BROKEN, "previous_bucket_mismatch"
        return
    meta = predecessor.seen.metadata
    if (
        predecessor.signature_status == SIG_VALID
        and meta is not None
        and meta.signature is not None
        and (digest.previous_signature or "").lower() != meta.signature.lower()
    ):
        d.chain_status, d.chain_reason = CHAIN_BROKEN, "previous_signature_mismatch"
        return
    # backfill digests chain among themselves (as the AWS CLI traverses them); should one name a
    # digest of another chain, the link is checked but cannot be checked for adjacency
    d.chain_status, d.chain_reason = CHAIN_OK, ("previous_in_other_chain" if other_chain else None)


# --- the API -------------------------------------------------------------------------------------


def validate(
    digests: Iterable[DigestSeen],
    logs: Iterable[LogFileSeen],
    keys: KeyRing,
    *,
    window_start: datetime | None = None,
    as_of: datetime | None = None,
    delivery_slack: timedelta = timedelta(minutes=15),
    overdue_after: timedelta = timedelta(hours=2),
) -> IntegrityReport:
    """Validate the digests and log files seen.

    ``window_start``: everything since then was loaded, so a digest missing after it is a gap; a
    digest whose predecessor ends before it is not (default: each chain's first digest seen).
    ``as_of``: the time of the check; a log file newer than every digest of its account and region is
    ``not_yet_covered`` unless ``as_of`` shows its digest is ``overdue_after`` late.
    ``delivery_slack``: how far a log file's name time may lie before the digest window that lists it.
    """
    items: list[_D] = []
    by_rel: dict[str, _D] = {}
    # one digest per key from AWSLogs/ on; a duplicate (same object passed twice, or the same key under
    # two roots) is dropped in a fixed order so the result never depends on the input order
    for seen in sorted(digests, key=_seen_order):
        key = parse_digest_key(seen.key)
        parsed = seen.parsed
        rel = key.rel if key else relative_key(seen.key)
        if rel in by_rel:
            continue
        d = _D(seen, rel, key, parsed.digest if parsed else None, parsed.sha256 if parsed else None)
        items.append(d)
        by_rel[rel] = d
    successors: dict[str, list[_D]] = defaultdict(list)
    for d in items:
        if d.digest is not None and d.digest.previous_s3_object:
            successors[relative_key(d.digest.previous_s3_object)].append(d)

    for d in items:
        _check_signature(d, keys, successors.get(d.rel, []))
    # trust, newest first so a successor's trust is known before its predecessor's
    for d in sorted(items, key=_by_time, reverse=True):
        if d.signature_status == SIG_VALID:
            d.trust = TRUST_SIGNATURE
        elif d.signature_status == SIG_VALID_FROM_SUCCESSOR:
            d.trust = TRUST_SUCCESSOR_SIGNATURE
        elif d.digest is not None and d.signature_status != SIG_MOVED:
            if any(_successor_vouches(s, d) for s in successors.get(d.rel, [])):
                d.trust = TRUST_SUCCESSOR_HASH

    chains: dict[tuple, list[_D]] = defaultdict(list)
    for d in items:
        if d.key is not None:
            chains[(d.key.prefix, *d.key.chain)].append(d)
        else:
            d.chain_status, d.chain_reason = CHAIN_UNKNOWN, "digest_key_unrecognised"
    for chain in chains.values():
        chain.sort(key=lambda x: (x.end, x.rel))
        starts = [x.digest.digest_start_time for x in chain if x.digest is not None]
        chain_window = window_start or (min(starts) if starts else chain[0].end)
        assert chain_window is not None
        earlier: _D | None = None
        for d in chain:
            _check_link(d, earlier, by_rel, chain_window)
            earlier = d

    log_rows = _log_rows(items, logs, as_of=as_of, delivery_slack=delivery_slack, overdue_after=overdue_after)
    digest_rows = [_digest_row(d) for d in sorted(items, key=_by_time)]
    return IntegrityReport(log_rows, digest_rows, _signals(items, log_rows))


def _digest_row(d: _D) -> DigestRow:
    k, g = d.key, d.digest
    return DigestRow(
        digest_key=d.seen.key,
        rel_key=d.rel,
        account=k.account if k else (g.aws_account_id if g else None),
        region=k.region if k else None,
        org_id=k.org_id if k else None,
        trail=k.trail if k else None,
        home_region=k.home_region if k else None,
        backfill=k.backfill if k else False,
        digest_start=g.digest_start_time if g else None,
        digest_end=d.end,
        sha256=d.sha256,
        fingerprint=g.public_key_fingerprint if g else None,
        signature_status=d.signature_status,
        trusted=d.trust is not None,
        trust_source=d.trust,
        chain_status=d.chain_status,
        chain_reason=d.chain_reason,
        missing_before=d.missing_before,
        previous_key=g.previous_s3_object if g else None,
        log_count=len(g.log_files) if g else 0,
    )


def _log_rows(
    items: list[_D],
    logs: Iterable[LogFileSeen],
    *,
    as_of: datetime | None,
    delivery_slack: timedelta,
    overdue_after: timedelta,
) -> list[LogRow]:
    # every listing of a log file, trusted digests first, then oldest digest first
    listed: dict[str, list[tuple[_D, LogFileEntry]]] = defaultdict(list)
    for d in sorted(items, key=lambda x: (x.trust is None, *_by_time(x))):
        if d.digest is None:
            continue
        for entry in d.digest.log_files:
            listed[relative_key(entry.s3_object)].append((d, entry))
    seen_by_rel: dict[str, LogFileSeen] = {}
    for log in sorted(logs, key=lambda x: (x.key, x.outcome, x.sha256 or "")):
        parsed = parse_log_key(log.key)
        seen_by_rel.setdefault(parsed.rel if parsed else relative_key(log.key), log)

    # what the digests cover, per (prefix, org, account, region): newest end, and the gaps
    horizon: dict[tuple, datetime] = {}
    gaps: dict[tuple, list[tuple[datetime, datetime]]] = defaultdict(list)
    for d in items:
        if d.key is None or d.digest is None or d.key.backfill:
            continue
        scope = (d.key.prefix, d.key.org_id, d.key.account, d.key.region)
        horizon[scope] = max(horizon.get(scope, d.digest.digest_end_time), d.digest.digest_end_time)
        if d.chain_status == CHAIN_GAP and d.gap_from is not None:
            gaps[scope].append((d.gap_from, d.digest.digest_start_time))

    rows: list[LogRow] = []
    for rel in sorted(set(listed) | set(seen_by_rel)):
        seen = seen_by_rel.get(rel)
        parsed = parse_log_key(seen.key if seen else rel)
        account, region, org, when = (
            (parsed.account, parsed.region, parsed.org_id, parsed.time) if parsed else (None, None, None, None)
        )
        actual = seen.sha256 if seen else None
        listings = listed.get(rel)
        if listings:
            d, entry = listings[0]
            status, reason = _listed_status(d, entry, seen)
            rows.append(
                LogRow(
                    seen.key if seen else entry.s3_object,
                    rel,
                    account,
                    region,
                    org,
                    when,
                    d.seen.key,
                    entry.hash_value,
                    actual,
                    status,
                    reason,
                )
            )
            continue
        assert seen is not None
        if seen.outcome in _GZIP_NOT_AS_DELIVERED:
            status, reason = MODIFIED, f"gzip_{seen.outcome}"
        elif parsed is None:
            status, reason = UNVERIFIABLE, "not_a_cloudtrail_log_key"
        else:
            scope = (parsed.prefix, parsed.org_id, parsed.account, parsed.region)
            status, reason = _unlisted_status(
                parsed.time, horizon.get(scope), gaps.get(scope, []), as_of, delivery_slack, overdue_after
            )
        rows.append(LogRow(seen.key, rel, account, region, org, when, None, None, actual, status, reason))
    return rows


def _listed_status(d: _D, entry: LogFileEntry, seen: LogFileSeen | None) -> tuple[str, str | None]:
    if seen is not None and seen.outcome in _GZIP_NOT_AS_DELIVERED:
        return MODIFIED, f"gzip_{seen.outcome}"
    if d.trust is None:
        return UNVERIFIABLE, f"digest_{d.signature_status}"
    if entry.hash_algorithm != HASH_ALGORITHM:
        return UNVERIFIABLE, "unsupported_hash_algorithm"
    if seen is None:
        return MISSING, None
    if seen.outcome == TOO_LARGE:
        return UNVERIFIABLE, "inflate_limit"
    if seen.outcome != OK or seen.sha256 is None:
        return UNVERIFIABLE, f"gzip_{seen.outcome}"
    if seen.sha256.lower() != entry.hash_value:
        return MODIFIED, "hash_mismatch"
    return VERIFIED, None if d.trust == TRUST_SIGNATURE else f"trusted_by_{d.trust}"


def _unlisted_status(
    when: datetime,
    newest: datetime | None,
    gaps: list[tuple[datetime, datetime]],
    as_of: datetime | None,
    slack: timedelta,
    overdue_after: timedelta,
) -> tuple[str, str | None]:
    if newest is None:
        return UNVERIFIABLE, "no_digest"
    if any(start - slack <= when <= end + slack for start, end in gaps):
        return UNVERIFIABLE, "digest_missing"
    if when > newest - slack:
        if as_of is not None and as_of - when > overdue_after:
            return UNVERIFIABLE, "digest_overdue"
        return NOT_YET_COVERED, None
    return UNVERIFIABLE, "not_in_any_digest"


def _signals(items: list[_D], log_rows: list[LogRow]) -> list[Signal]:
    out: dict[str, Signal] = {}

    def add(rule: str, subject: str, account: str | None, region: str | None, reason: str | None) -> None:
        sid = signal_id(rule, subject)
        out.setdefault(sid, Signal(sid, rule, _SEVERITY[rule], subject, account, region, reason))

    for row in log_rows:
        if row.status == MODIFIED:
            add(RULE_LOG_MODIFIED, row.rel_key, row.account, row.region, row.reason)
        elif row.status == MISSING:
            add(RULE_LOG_MISSING, row.rel_key, row.account, row.region, row.reason)
    for d in items:
        account = d.key.account if d.key else None
        region = d.key.region if d.key else None
        if d.signature_status in _SIGNALLED_SIGNATURES:
            add(
                RULE_DIGEST_SIGNATURE,
                d.rel,
                account,
                region,
                d.signature_status if d.seen.error is None else d.seen.error,
            )
        elif d.metadata_signature_bad:
            add(RULE_DIGEST_SIGNATURE, d.rel, account, region, "metadata_signature_invalid")
        if d.chain_status == CHAIN_GAP:
            previous = relative_key(d.digest.previous_s3_object or "") if d.digest else ""
            add(RULE_CHAIN_GAP, f"{d.rel}\n{previous}", account, region, f"{d.missing_before}_missing")
        elif d.chain_status == CHAIN_BROKEN:
            add(RULE_CHAIN_BROKEN, d.rel, account, region, d.chain_reason)
    return sorted(out.values(), key=lambda s: (s.rule, s.subject))
