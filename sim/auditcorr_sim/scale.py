"""Volume for benchmarks: :func:`generate_scale` (millions of writes), rendered from pre-built text
templates and streamed to disk one file at a time by a threaded gzip writer.  SYNTHETIC DATA:
same record and report shapes as ``world.py``, no scenarios or truth."""

from __future__ import annotations

import csv
import math
import random
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from .common import (  # shared by the scenario world and the scale generator
    _ALNUM,
    _BROWSER_UA,
    _DAY,
    _FIRST,
    _LAST,
    _SEC,
    _WRITE_UAS,
    ACCOUNT,
    BUCKETS,
    FLEET_MULTI,
    FLEET_ROLE_ARN,
    FLEET_ROLE_ID,
    FLEET_ROLE_NAME,
    FLEET_SINGLE,
    NO_CLAIM_NAME,
    REGION,
    SAML_ISSUER,
    SAML_NAME_QUALIFIER,
    SAML_PROVIDER_ARN,
    SAML_ROLE_ARN,
    SAML_ROLE_ID,
    SAML_ROLE_NAME,
    SESSION_COLUMNS,
    STACK,
    VPCE_ID,
    ScaleWorld,
    _ct_key,
    _dt,
    _fleet_ip,
    _ms,
    _report_paths,
    _sts_expiration,
    _write_bytes,
)

# -- the scale path ------------------------------------------------------------------------------------

_PLACEHOLDER = "@@{}@@"
#: per-record fields of the write template, in the order they appear in its text
_WRITE_ORDER = ("t", "n", "size", "rid", "rid", "eid", "n")
_WRITE_SPECS = ("t", "n", "size", "rid", "eid")


def _scale_templates() -> tuple[str, str]:
    """(write, logon) record texts with ``@@name@@`` placeholders and ``%`` escaped."""
    p = _PLACEHOLDER.format
    bucket = BUCKETS[0]
    host = f"{bucket}.s3.{REGION}.amazonaws.com"
    key = f"{p('keyprefix')}{p('n')}.csv"
    write = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole", "principalId": f"{FLEET_ROLE_ID}:{p('name')}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{FLEET_ROLE_NAME}/{p('name')}",
            "accountId": ACCOUNT, "accessKeyId": p("akid"),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": FLEET_ROLE_ID, "arn": FLEET_ROLE_ARN,
                                  "accountId": ACCOUNT, "userName": FLEET_ROLE_NAME},
                "attributes": {"creationDate": p("created"), "mfaAuthenticated": "false"}}},
        "eventTime": p("t"), "eventSource": "s3.amazonaws.com", "eventName": "PutObject", "awsRegion": REGION,
        "sourceIPAddress": p("ip"), "userAgent": _WRITE_UAS[0],
        "requestParameters": {"bucketName": bucket, "Host": host, "key": key},
        "responseElements": None,
        "additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                "bytesTransferredIn": p("size"), "SSEApplied": "Default_SSE_S3",
                                "AuthenticationMethod": "AuthHeader", "x-amz-id-2": f"{p('rid')}EXAMPLEid2=",
                                "bytesTransferredOut": 0},
        "requestID": p("rid"), "eventID": p("eid"), "readOnly": False,
        "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                      {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
        "eventType": "AwsApiCall", "managementEvent": False, "recipientAccountId": ACCOUNT,
        "vpcEndpointId": VPCE_ID, "eventCategory": "Data",
    }
    logon = {
        "eventVersion": "1.10",
        "userIdentity": {"type": "SAMLUser", "principalId": f"SYNTHETICSAMLPRINCIPAL0000=:{p('user')}",
                         "userName": p("user"), "identityProvider": SAML_PROVIDER_ARN},
        "eventTime": p("t"), "eventSource": "sts.amazonaws.com", "eventName": "AssumeRoleWithSAML",
        "awsRegion": REGION, "sourceIPAddress": p("ip"), "userAgent": _BROWSER_UA,
        "requestParameters": {"roleSessionName": p("user"), "roleArn": SAML_ROLE_ARN,
                              "principalArn": SAML_PROVIDER_ARN, "durationSeconds": 3600},
        "responseElements": {
            "credentials": {"accessKeyId": p("akid"), "expiration": p("exp")},
            "assumedRoleUser": {"assumedRoleId": f"{SAML_ROLE_ID}:{p('user')}",
                                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{SAML_ROLE_NAME}/{p('user')}"},
            "subject": p("user"), "subjectType": "persistent", "issuer": SAML_ISSUER,
            "audience": "https://signin.aws.amazon.com/saml", "nameQualifier": SAML_NAME_QUALIFIER},
        "requestID": p("rid"), "eventID": p("eid"), "readOnly": True, "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": ACCOUNT, "eventCategory": "Management",
    }
    return (orjson.dumps(write).decode().replace("%", "%%"), orjson.dumps(logon).decode().replace("%", "%%"))


def _positional(text: str) -> list[str]:
    """Split the write template at its per-record placeholders (``_WRITE_ORDER``, checked) into the
    constant text around them; a record is then ``"".join`` of those pieces and its values."""
    text = text.replace(f'"{_PLACEHOLDER.format("size")}"', _PLACEHOLDER.format("size")).replace("%%", "%")
    found = sorted((i, name) for name in _WRITE_SPECS for i in _find_all(text, _PLACEHOLDER.format(name)))
    if tuple(name for _, name in found) != _WRITE_ORDER:
        raise AssertionError(f"write template order changed: {found}")
    pieces, pos = [], 0
    for i, name in found:
        pieces.append(text[pos:i])
        pos = i + len(_PLACEHOLDER.format(name))
    pieces.append(text[pos:])
    pieces[0] = "," + pieces[0]  # records are comma-led in the buffer; flush drops the first comma
    return pieces


def _find_all(text: str, sub: str) -> list[int]:
    out, i = [], text.find(sub)
    while i >= 0:
        out.append(i)
        i = text.find(sub, i + 1)
    return out


def _fill(pieces: list[str], **values: str) -> tuple[bytes, ...]:
    out = []
    for text in pieces:
        for name, value in values.items():
            text = text.replace(_PLACEHOLDER.format(name), value)
        out.append(text.encode())
    return tuple(out)


@lru_cache(maxsize=1)
def _hms_tables() -> tuple[list[str], list[bytes]]:
    """``HH:MM:SSZ`` for each second of a day, as text and as bytes."""
    hms = [f"{h:02d}:{m:02d}:{sec:02d}Z" for h in range(24) for m in range(60) for sec in range(60)]
    return hms, [x.encode() for x in hms]


def _user_name(i: int) -> str:
    f, rest = divmod(i, len(_LAST))
    n = f // len(_FIRST)
    return f"{_FIRST[f % len(_FIRST)]}.{_LAST[rest]}{n or ''}@example.com"


class _FileSink:
    """Joins, compresses (gzip level 1) and writes CloudTrail bodies on one worker thread: zlib
    releases the GIL, so rendering the next file overlaps with compressing the last one.  The body
    arrives as a list of byte pieces and is joined in slices (no second full-size copy).  At most
    two files wait."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="world-gzip")
        self.pending: list[Future[None]] = []

    @staticmethod
    def _write(path: Path, pieces: list[bytes]) -> None:
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: gzip container, mtime 0
        step = 8192
        out = [comp.compress(b"".join(pieces[i:i + step])) for i in range(0, len(pieces), step)]
        out.append(comp.flush())
        _write_bytes(path, b"".join(out))

    def put(self, path: Path, pieces: list[bytes]) -> None:
        while len(self.pending) >= 2:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(self._write, path, pieces))

    def close(self) -> None:
        try:
            for f in self.pending:
                f.result()
        finally:
            self.pool.shutdown(wait=True)


def generate_scale(root: Path, *, n_writes: int, n_sessions: int, seed: int = 7, records_per_file: int = 5000,
                   days: int = 1, multi_session_share: float = 0.3) -> ScaleWorld:
    """Write ``n_writes`` S3 write records (plus one logon a session) and the sessions reports.

    Same record and report shapes as :func:`generate_world`, without its scenarios or truth: every
    write is a ``PutObject`` by the fleet role from its session's IP, strictly inside the session,
    70 % of them naming the session as role session name. Sessions run on seats: a single-session
    instance is one seat; a multi-session instance has three seats sharing its IP. Deterministic for
    a seed. Records are rendered from text templates (filled per session, then joined with the
    per-record values) and streamed out ``records_per_file`` at a time; memory holds one or two files
    and the per-day report writers, not the records.  Event ids are version-4 uuids made of a random
    prefix per session and a random last group per record.
    """
    if n_sessions < 1 or n_writes < 0 or days < 1 or records_per_file < 1:
        raise ValueError("need n_sessions >= 1, n_writes >= 0, days >= 1, records_per_file >= 1")
    if not 0.0 <= multi_session_share <= 1.0:
        raise ValueError("multi_session_share must be within [0, 1]")
    root = Path(root)
    rng = random.Random(seed)
    getbits, rand = rng.getrandbits, rng.random
    write_tmpl, logon_tmpl = _scale_templates()
    write_pieces = _positional(write_tmpl)
    logon_tmpl = logon_tmpl.replace('"@@', '"%(').replace('@@"', ')s"').replace("@@", ")s")
    hms, hms_b = _hms_tables()
    origin_s = _ms(datetime(2026, 3, 2, tzinfo=UTC)) // _SEC
    day_prefix = [_dt((origin_s + d * 86_400) * _SEC).strftime("%Y-%m-%dT") for d in range(days + 1)]
    day_prefix_b = [x.encode() for x in day_prefix]

    def iso_s(sec: int) -> str:
        d, rem = divmod(sec - origin_s, 86_400)
        return day_prefix[d] + hms[rem]

    per_seat = 6  # sessions a seat runs per day
    n_seats = max(1, math.ceil(n_sessions / (days * per_seat)))
    while n_seats > 30_000:  # keep within the /16
        per_seat *= 2
        n_seats = max(1, math.ceil(n_sessions / (days * per_seat)))
    n_multi_seats = round(n_seats * multi_session_share / 3) * 3
    n_single_seats = n_seats - n_multi_seats
    slot_s = 86_400 // per_seat
    q, r = divmod(n_writes, n_sessions)

    sink = _FileSink()
    ct_files: list[Path] = []
    buf: list[bytes] = []  # pieces of comma-led records
    ext = buf.extend
    n_buf = 0  # records in buf
    newest = 0  # newest event second in the buffer
    counter = 0

    def flush() -> None:
        nonlocal newest, n_buf, buf, ext
        deliver = (newest + 5 * 60 + int(rand() * 120)) * _SEC
        path = root / _ct_key(deliver, "".join(rng.choices(_ALNUM, k=16)))
        buf[0] = b'{"Records":[' + buf[0][1:]
        buf.append(b"]}")
        sink.put(path, buf)  # the worker owns this list now
        ct_files.append(path)
        buf = []
        ext = buf.extend
        newest = n_buf = 0

    reports: dict[int, tuple[Path, Any, Any]] = {}

    def report_writer(day_ms: int) -> Any:
        entry = reports.get(day_ms)
        if entry is None:
            path = root / _report_paths(day_ms)[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = path.open("w", newline="", encoding="utf-8")
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(SESSION_COLUMNS)
            entry = reports[day_ms] = (path, fh, w)
        return entry[2]

    def uuid_prefix() -> str:  # the first four groups of a version-4 uuid
        return f"{getbits(32):08x}-{getbits(16):04x}-4{getbits(12):03x}-{0x8000 | getbits(14):04x}-"

    try:
        for i in range(n_sessions):
            seat = i % n_seats
            d, k = divmod(i // n_seats, per_seat)
            multi = seat >= n_single_seats
            inst = seat if not multi else n_single_seats + (seat - n_single_seats) // 3
            ip = _fleet_ip(1, inst)
            start = origin_s + d * 86_400 + k * slot_s + 180 + int(rand() * (slot_s // 5))  # logon same day
            end = start + slot_s // 2 + int(rand() * (slot_s // 4))
            sid = f"{uuid_prefix()}{getbits(48):012x}"
            user = _user_name(seat)
            client_ip = f"100.{64 + (seat >> 16) % 64}.{(seat >> 8) & 255}.{seat & 255}"
            logon = start - 10 - int(rand() * 110)
            buf.append(("," + logon_tmpl % {
                "user": user, "t": iso_s(logon), "ip": client_ip, "akid": f"ASIASAML{i:012X}",
                "exp": _sts_expiration((logon + 3600) * _SEC), "rid": f"{getbits(64):016X}",
                "eid": f"{uuid_prefix()}{getbits(48):012x}"}).encode())
            n_buf += 1
            newest = max(newest, logon)
            nw = q + (1 if i < r else 0)
            if nw:
                common = {"created": iso_s(start + 30), "ip": ip,
                          "keyprefix": f"projects/p{seat % 7}/{iso_s(start)[:10]}/out-"}
                pc = _fill(write_pieces, name=sid, akid=f"ASIA{i:016X}", **common)
                pu = _fill(write_pieces, name=NO_CLAIM_NAME, akid=f"ASIA{inst:012X}FLT0", **common)
                # event ids: a random uuid4 prefix per session, a random last group per record
                eprefix = uuid_prefix().encode()
                lo, span = start + 90, max(1, end - start - 180)
                for _ in range(nw):
                    t = lo + int(rand() * span)
                    if t > newest:
                        newest = t
                    counter += 1
                    n = b"%010d" % counter
                    rid = b"%016X" % getbits(64)
                    dd, rem = divmod(t - origin_s, 86_400)
                    p = pc if rand() < 0.7 else pu
                    ext((p[0], day_prefix_b[dd], hms_b[rem], p[1], n, p[2], b"%d" % getbits(24), p[3], rid,
                         p[4], rid, p[5], eprefix, b"%012x" % getbits(48), p[6], n, p[7]))
                    n_buf += 1
                    if n_buf >= records_per_file:
                        flush()
            if n_buf >= records_per_file:
                flush()
            report_writer(end // 86_400 * _DAY).writerow([
                sid, ACCOUNT, REGION, iso_s(start), iso_s(end), str(end - start), user, "", "SAML",
                f"{user}SAML", FLEET_MULTI if multi else FLEET_SINGLE, STACK,
                "stream.standard.2xlarge" if multi else "stream.standard.medium", ip, "true", client_ip,
                "false", "false", "", "ENABLED", "DISABLED", "ENABLED", "DISABLED", "DISABLED", "false",
                "false", "57600", "ALWAYS_ON", "APP" if multi else "DESKTOP", "TCP", f"i-0{inst:016x}",
                "true" if multi else "false"])
        if n_buf:
            flush()
    finally:
        sink.close()
        for _, fh, _ in reports.values():
            fh.close()
    return ScaleWorld(root=root, cloudtrail_files=ct_files,
                      sessions_reports=[reports[d][0] for d in sorted(reports)],
                      n_writes=n_writes, n_sessions=n_sessions, n_records=n_sessions + n_writes)

