"""A synthetic AppStream 2.0 world: CloudTrail files, usage reports and the expected answers.

SYNTHETIC DATA. No real usage report is public, so everything written here is made up: users are
``firstname.lastname@example.com``, public addresses come from the documentation ranges
(198.51.100.0/24, 203.0.113.0/24, 192.0.2.0/24, plus 100.64.0.0/10 for large worlds) and the fleets
sit in 10.40.0.0/16.  The file formats follow ``DOMAIN.md`` (CloudTrail key layout and record shape,
the 32 sessions-report columns, the report key layout).

Two entry points:

- :func:`generate_world` -- a small world rich in scenarios, with its ground truth, for ``auditcorr
  demo``, golden end-to-end tests and examples.  Deterministic for a seed: the same seed gives the same
  bytes in every file and the same truth.
- :func:`generate_scale` -- volume for benchmarks (millions of writes), rendered from pre-built text
  templates and streamed to disk one file at a time.

Ground truth is recorded by construction, not by running a join: every write is placed at a time
chosen so its outcome is fixed by what was generated (strictly inside its own session, in a clock-skew
band next to a lone session edge, at a chosen distance from a neighbour session on the same IP, ...),
and the expected status is written down as the write is made.  The only counting done is for the
multi-session fleet, where the generator looks up which sessions it put on the instance at that
moment (and moves a write away from any other session's tolerance band, so that set is exact).

Scenarios of :func:`generate_world` (``World.scenarios`` maps each name to the event ids made for it):

``single_window``            fleet-role write strictly inside a single-session fleet session.
``multi_claim_resolved``     multi-session write whose role session name is the writer's session id,
                             while 2+ sessions share the instance: attributed through the claim.
``multi_claim_alone``        the same while the writer is alone on the instance.
``multi_ambiguous``          multi-session write without a claim while 2-4 sessions share the IP:
                             ``ambiguous``, candidates = those sessions (sorted ids).
``multi_sole_occupant``      multi-session write without a claim while the writer is alone: attributed.
``edge_end_in_next_tolerance`` write in the last seconds of session A whose IP is reused by B after a
                             gap <= 45 s (so B's tolerance reaches it): A's own window wins.
``inside_beats_tolerance``   write in the first seconds of B, within A's tolerance: B wins.
``gap_claim_settles``        write inside the exactly-20-s gap between A and B, claiming A: A.
``gap_ambiguous``            write inside that gap with no claim: ``ambiguous`` (A, B).
``skew_before_start`` / ``skew_after_end``  stamped 5-45 s outside a session whose IP is otherwise
                             free for minutes: attributed to it through the 60 s tolerance.
``midnight_span``            writes on both sides of midnight in sessions reported the next day.
``disguised_session_id``     role session name = the id of another real session (other user, other
                             IP): attributed to the IP's session; alert ``session_id_mismatch``.
``fabricated_session_id``    role session name = a uuid that is no session: alert ``unknown_session_id``.
``replayed_credentials``     fleet-role write from 203.0.113.77: ``external``; ``credentials_outside_fleet``.
``idle_fleet_ip``            write from 10.40.99.x where no session ever ran: ``unattributed``;
                             ``unattributed_activity``.
``out_of_scope_iam_user``    ``PutObject`` by the IAM user ``etl-bot`` from 192.0.2.10: ``out_of_scope``
                             (not the fleet role: a pipeline does not attribute it).
``duplicate_delivery``       writes whose record (same eventID, identical bytes) is delivered again in
                             a later CloudTrail file (about 2 % of all records are; non-writes too).

``World.session_scenarios`` holds the session-level facts: ``spanning_midnight`` (session ids),
``short_gap_pairs`` (``"<A>,<B>,<gap seconds>"``), ``report_delivered_twice`` (the report day).

The sessions report delivered twice is written ONCE, under its normal key, and listed twice in
``World.arrivals`` (the second arrival a few hours after the first): a re-delivery overwrites the
same S3 key.

Noise a pipeline must skip: ``GetObject``/``HeadObject``/``ListObjects`` by the fleet role,
AppStream ``DescribeSessions``/``CreateStreamingURL`` management events, ``AWS Internal`` events (KMS
``Decrypt``, S3 ``GetBucketAcl``), and one CloudTrail digest file.

Every session is preceded (10-120 s) by an ``AssumeRoleWithSAML`` of its own user from that user's own
client address (no two users share one), so a logon cross-check has nothing to report.

Expected statuses are the final ones (all reports in) with a 60 s tolerance.
``ExpectedWrite.candidate_session_ids`` is filled for ``ambiguous`` writes only.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .common import (  # shared by the scenario world and the scale generator
    _ALNUM,
    _APPS,
    _BROWSER_UA,
    _DAY,
    _ETL_UA,
    _EXTS,
    _FIRST,
    _HOUR,
    _LAST,
    _MIN,
    _PROJECTS,
    _REPLAY_UA,
    _SEC,
    _STEMS,
    _TOL,
    _UPPER_ALNUM,
    _WINDOW,
    _WRITE_UAS,
    ACCOUNT,
    ADMIN_IP,
    AMBIGUOUS,
    APP_COLUMNS,
    ATTRIBUTED,
    DEFAULT_TENANT,
    ETL_IP,
    EXTERNAL,
    FLEET_MULTI,
    FLEET_ROLE_NAME,
    FLEET_SINGLE,
    IDLE_IPS,
    KIND_APPS,
    KIND_CLOUDTRAIL,
    KIND_DIGEST,
    KIND_SESSIONS,
    LIVE_POLLER_IP,
    NO_CLAIM_NAME,
    ORG_SCENARIOS,
    OUT_OF_SCOPE,
    PENDING,
    REPLAY_IP,
    SAML_ISSUER,
    SAML_NAME_QUALIFIER,
    SAML_ROLE_NAME,
    SCENARIOS,
    SECOND_ACCOUNT,
    SESSION_COLUMNS,
    STACK,
    TRAIL_NAME,
    UNATTRIBUTED,
    VIA_SERVICE,
    Arrival,
    ExpectedWrite,
    Tenant,
    World,
    _ceil_sec,
    _compact,
    _csv_bytes,
    _ct_key,
    _day_path,
    _dt,
    _fleet_ip,
    _floor_sec,
    _iso,
    _ms,
    _report_paths,
    _Session,
    _sts_expiration,
    _write_bytes,
    org_tenant,
)

# -- the scenario world --------------------------------------------------------------------------------


class _Builder:
    def __init__(self, root: Path, seed: int, n_users: int, days: int, start: datetime,
                 writes_per_session: tuple[int, int], tenant: Tenant = DEFAULT_TENANT,
                 report_delay_ms: int = 0, missing_days: frozenset[int] = frozenset(),
                 service_cases: bool = False) -> None:
        if n_users < 4:
            raise ValueError("n_users must be >= 4 (the scenarios need several concurrent users)")
        if days < 1:
            raise ValueError("days must be >= 1")
        lo, hi = writes_per_session
        if lo < 0 or hi < lo:
            raise ValueError("writes_per_session must be (lo, hi) with 0 <= lo <= hi")
        self.root = root
        self.t = tenant
        #: how much later than usual this tenant's reports arrive; the report days (0 = ``start``) never written
        self.report_delay_ms = report_delay_ms
        self.missing_days = missing_days
        self.rng = random.Random(seed)
        self.n_users = n_users
        self.days = days
        self.wps = (lo, hi)
        self.origin = _ms(start) // _DAY * _DAY
        self.records: list[tuple[int, dict[str, Any]]] = []
        self.write_ids: list[str] = []
        self.truth: dict[str, ExpectedWrite] = {}
        self.alerts: set[tuple[str, str]] = set()
        self.scenarios: dict[str, list[str]] = {name: [] for name in SCENARIOS}
        #: the organisation scenarios (credentials through a service, IPv4-mapped addresses)
        self.service_cases = service_cases
        if service_cases:
            self.scenarios |= {name: [] for name in ORG_SCENARIOS}
        self.session_scenarios: dict[str, list[str]] = {
            "spanning_midnight": [], "short_gap_pairs": [], "report_delivered_twice": []}
        self.key_counter = itertools.count(1)
        self.instance_keys: dict[str, str] = {}
        self.by_ip: dict[str, list[_Session]] = {}
        self.sessions: list[_Session] = []
        self.users: list[str] = []
        self.user_ips: dict[str, tuple[str, str]] = {}
        #: (delivered ms, key, bytes, oldest ms, newest ms) of each CloudTrail file written
        self.ct_files: list[tuple[int, str, bytes, int, int]] = []
        #: event id -> the role session name a fleet write claims
        self.claimed: dict[str, str] = {}

    # random identifiers, all from the seeded generator
    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def alnum(self, n: int, alphabet: str = _ALNUM) -> str:
        return "".join(self.rng.choices(alphabet, k=n))

    def b64(self, n_bytes: int) -> str:
        return base64.b64encode(self.rng.randbytes(n_bytes)).decode()

    def access_key(self) -> str:
        return "ASIA" + self.alnum(16, _UPPER_ALNUM)

    def instance_id(self) -> str:
        return f"i-0{self.rng.getrandbits(64):016x}"

    def rand_sec(self, lo: int, hi: int) -> int:
        """A whole-second time in [lo, hi] (ms)."""
        a, b = _ceil_sec(lo) // _SEC, _floor_sec(hi) // _SEC
        if b < a:
            raise ValueError("empty time range")
        return self.rng.randint(a, b) * _SEC

    # -- people and sessions -----------------------------------------------------------------------
    def make_users(self) -> None:
        combos = [(f, la) for f in _FIRST for la in _LAST]
        self.rng.shuffle(combos)
        users = []
        for i in range(self.n_users):
            f, la = combos[i % len(combos)]
            extra = "" if i < len(combos) else str(i // len(combos) + 1)
            users.append(f"{f}.{la}{extra}@example.com")
        if self.t.client_net:  # an organisation's other tenants: their own users' addresses
            office = [f"100.{64 + self.t.client_net}.1.{i}" for i in range(10, 250)]
            home = [f"100.{64 + self.t.client_net}.2.{i}" for i in range(10, 250)]
        else:
            office = [f"198.51.100.{i}" for i in range(10, 250)]
            home = [f"203.0.113.{i}" for i in range(10, 250) if f"203.0.113.{i}" != REPLAY_IP]
        extra_ips = (f"100.64.{i // 250}.{i % 250 + 1}" for i in itertools.count())
        while len(office) < len(users):
            office.append(next(extra_ips))
        while len(home) < len(users):
            home.append(next(extra_ips))
        self.rng.shuffle(office)
        self.rng.shuffle(home)
        self.users = users
        self.user_ips = {u: (office[i], home[i]) for i, u in enumerate(users)}

    def gap(self) -> int:
        if self.rng.random() < 0.12:
            return self.rng.randint(10, 45) * _SEC  # the next user gets the instance almost at once
        return self.rng.randint(2 * 60, 40 * 60) * _SEC

    def make_slots(self) -> list[_Session]:
        rng = self.rng
        n_single = max(3, round(self.n_users * 0.4))
        n_multi = max(2, self.n_users // 12)
        slots: list[_Session] = []
        for i in range(n_single):
            inst, ip = self.instance_id(), _fleet_ip(1, i)
            for d in range(self.days):
                day0 = self.origin + d * _DAY
                t = day0 + 7 * _HOUR + rng.randint(0, 100) * _MIN + rng.randint(0, 59) * _SEC
                first = True
                while True:
                    dur = rng.randint(20 * 60, 180 * 60) * _SEC
                    if t + dur > day0 + 19 * _HOUR + 30 * _MIN:
                        break
                    slots.append(_Session("", FLEET_SINGLE, inst, ip, t, t + dur, False))
                    # the first instance's first gap of the first day is exactly 20 seconds
                    t += dur + (20 * _SEC if (i == 0 and d == 0 and first) else self.gap())
                    first = False
                if i < 2:  # a late session that runs past midnight
                    midnight = day0 + _DAY
                    s = midnight - rng.randint(20, 90) * _MIN - rng.randint(0, 59) * _SEC
                    e = midnight + rng.randint(20, 120) * _MIN + rng.randint(0, 59) * _SEC
                    slots.append(_Session("", FLEET_SINGLE, inst, ip, s, e, False))
        for j in range(n_multi):
            inst, ip = self.instance_id(), _fleet_ip(60, j)
            seats = 4 if j == 0 else 2 if j == 1 else rng.randint(2, 4)
            for d in range(self.days):
                day0 = self.origin + d * _DAY
                for _ in range(seats):
                    t = day0 + 7 * _HOUR + 30 * _MIN + rng.randint(0, 120) * _MIN + rng.randint(0, 59) * _SEC
                    while True:
                        dur = rng.randint(30, 240) * _MIN + rng.randint(0, 59) * _SEC
                        if t + dur > day0 + 18 * _HOUR + 30 * _MIN:
                            break
                        slots.append(_Session("", FLEET_MULTI, inst, ip, t, t + dur, True))
                        t += dur + rng.randint(1, 25) * _MIN + rng.randint(0, 59) * _SEC
        slots.sort(key=lambda s: (s.start, s.ip, s.end))
        return slots

    def assign_users(self, slots: list[_Session]) -> None:
        rng = self.rng
        free_at = dict.fromkeys(self.users, -(10**15))
        count = dict.fromkeys(self.users, 0)
        kept: list[_Session] = []
        for s in slots:
            cands = [u for u in self.users if free_at[u] <= s.start - 3 * _MIN]
            if not cands:
                continue  # nobody free: the instance stays idle
            best = min(count[u] for u in cands)
            u = rng.choice([c for c in cands if count[c] == best])
            count[u] += 1
            free_at[u] = s.end + rng.randint(1, 20) * _MIN
            s.user = u
            s.sid = self.uuid4()
            s.key_id = self.access_key()
            s.logon_ms = s.start - rng.randint(10, 120) * _SEC
            office, home = self.user_ips[u]
            first_ip = office if rng.random() < 0.8 else home
            s.client_ips = (first_ip, home if first_ip == office else office) if rng.random() < 0.15 \
                else (first_ip,)
            kept.append(s)
        self.sessions = kept
        for s in kept:
            self.by_ip.setdefault(s.ip, []).append(s)
            if s.instance_id not in self.instance_keys:
                self.instance_keys[s.instance_id] = self.access_key()
        for lst in self.by_ip.values():
            lst.sort(key=lambda x: x.start)

    def short_gap_pairs(self) -> list[tuple[_Session, _Session, int]]:
        pairs = []
        for ip in sorted(self.by_ip):
            lst = self.by_ip[ip]
            if lst[0].multi:
                continue
            for a, b in itertools.pairwise(lst):
                g = b.start - a.end
                if 0 < g <= 45 * _SEC:
                    a.pinned = b.pinned = True
                    pairs.append((a, b, g))
                    self.session_scenarios["short_gap_pairs"].append(f"{a.sid},{b.sid},{g // _SEC}")
        return pairs

    def choose_time_styles(self) -> None:
        free = [s for s in self.sessions if not s.pinned]
        k = max(2, len(free) // 25)
        picked = self.rng.sample(free, min(len(free), 2 * k))
        for s in picked[:k]:
            s.time_style = "offset"
        for s in picked[k:]:
            s.time_style = "frac"
            s.start += self.rng.randint(1, 999)
            s.end += self.rng.randint(1, 999)

    # -- records -------------------------------------------------------------------------------------
    def event_version(self) -> str:
        return self.rng.choices(("1.09", "1.10", "1.11"), weights=(2, 5, 3))[0]

    def add(self, t: int, rec: dict[str, Any]) -> dict[str, Any]:
        self.records.append((t, rec))
        return rec

    def fleet_identity(self, name: str, key_id: str, created_ms: int) -> dict[str, Any]:
        created = _compact(created_ms) if self.rng.random() < 0.05 else _iso(created_ms)
        return {
            "type": "AssumedRole",
            "principalId": f"{self.t.fleet_role_id}:{name}",
            "arn": f"arn:aws:sts::{self.t.account}:assumed-role/{FLEET_ROLE_NAME}/{name}",
            "accountId": self.t.account,
            "accessKeyId": key_id,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": self.t.fleet_role_id, "arn": self.t.fleet_role_arn,
                                  "accountId": self.t.account, "userName": FLEET_ROLE_NAME},
                "attributes": {"creationDate": created, "mfaAuthenticated": "false"},
            },
        }

    def object_key(self, t: int) -> tuple[str, str]:
        n = next(self.key_counter)
        rng = self.rng
        key = (f"projects/{rng.choice(_PROJECTS)}/{_dt(t):%Y-%m-%d}/"
               f"{rng.choice(_STEMS)}-{n:05d}{rng.choice(_EXTS)}")
        return rng.choice(self.t.bucket_names), key

    def s3_record(self, t: int, event_name: str, ip: str, identity: dict[str, Any], *, vpce: bool = True,
                  user_agent: str | None = None, read_only: bool = False,
                  bucket_key: tuple[str, str] | None = None) -> dict[str, Any]:
        rng = self.rng
        bucket, key = bucket_key or self.object_key(t)
        host = f"{bucket}.s3.{self.t.region}.amazonaws.com"
        params: dict[str, Any] = {"bucketName": bucket, "Host": host}
        resources: list[dict[str, Any]]
        if event_name == "ListObjects":
            params.update({"prefix": key.rsplit("/", 1)[0] + "/", "delimiter": "/", "encoding-type": "url"})
            resources = [{"accountId": self.t.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        else:
            params["key"] = key
            resources = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                         {"accountId": self.t.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        if event_name == "CopyObject":
            params["x-amz-copy-source"] = f"{bucket}/scratch/{rng.getrandbits(32):08x}.tmp"
        elif event_name == "CompleteMultipartUpload":
            params["uploadId"] = base64.urlsafe_b64encode(rng.randbytes(48)).decode()
        size = rng.randint(200, 50_000_000) if not read_only else 0
        rec: dict[str, Any] = {
            "eventVersion": self.event_version(),
            "userIdentity": identity,
            "eventTime": _iso(t),
            "eventSource": "s3.amazonaws.com",
            "eventName": event_name,
            "awsRegion": self.t.region,
            "sourceIPAddress": ip,
            "userAgent": user_agent or rng.choice(_WRITE_UAS),
            "requestParameters": params,
            "responseElements": None,
            "additionalEventData": {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": size,
                "SSEApplied": "Default_SSE_S3",
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": self.b64(57),
                "bytesTransferredOut": rng.randint(0, 5_000_000) if read_only else 0,
            },
            "requestID": f"{rng.getrandbits(64):016X}",
            "eventID": self.uuid4(),
            "readOnly": read_only,
            "resources": resources,
            "eventType": "AwsApiCall",
            "managementEvent": False,
            "recipientAccountId": self.t.account,
            "eventCategory": "Data",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": host},
        }
        if vpce:
            rec["vpcEndpointId"] = self.t.vpce_id
            rec["vpcEndpointAccountId"] = self.t.account
        return self.add(t, rec)

    def write_event_name(self) -> str:
        return self.rng.choices(("PutObject", "CopyObject", "CompleteMultipartUpload"), weights=(88, 6, 6))[0]

    def fleet_write(self, t: int, ip: str, name: str, key_id: str, expected: ExpectedWrite, scenario: str,
                    *, alert: str | None = None, vpce: bool = True, user_agent: str | None = None,
                    created_ms: int | None = None) -> str:
        created = created_ms if created_ms is not None else t - self.rng.randint(5, 50) * _MIN
        rec = self.s3_record(t, self.write_event_name(), ip, self.fleet_identity(name, key_id, created),
                             vpce=vpce, user_agent=user_agent)
        eid = rec["eventID"]
        self.truth[eid] = expected
        self.claimed[eid] = name
        self.write_ids.append(eid)
        self.scenarios[scenario].append(eid)
        if alert:
            self.alerts.add((alert, eid))
        return eid

    def session_write(self, s: _Session, t: int, claim: bool, expected: ExpectedWrite, scenario: str,
                      no_claim_name: str = NO_CLAIM_NAME) -> str:
        """A write by the code running in session ``s`` (its IP), claiming it or claiming nothing."""
        if claim:
            return self.fleet_write(t, s.ip, s.sid, s.key_id, expected, scenario,
                                    created_ms=min(s.start + 30 * _SEC, t - 5 * _SEC))
        return self.fleet_write(t, s.ip, no_claim_name, self.instance_keys[s.instance_id], expected, scenario)

    @staticmethod
    def attributed(s: _Session) -> ExpectedWrite:
        return ExpectedWrite(ATTRIBUTED, s.user, s.sid)

    def occupancy(self, ip: str, t: int) -> tuple[list[_Session], bool]:
        """Sessions the generator put on ``ip`` whose own window holds ``t``; and whether ``t`` stays
        clear of every tolerance band (so that set is exactly the candidate set)."""
        strict, clean = [], True
        for x in self.by_ip.get(ip, ()):
            if x.start <= t <= x.end:
                strict.append(x)
            elif x.start - _TOL <= t <= x.end + _TOL:
                clean = False
        return strict, clean

    def logons(self) -> None:
        for s in self.sessions:
            rec = self.saml_logon(s.logon_ms, s.user, s.client_ips[0])
            s.logon_event_id = rec["eventID"]

    def saml_logon(self, t: int, user: str, ip: str) -> dict[str, Any]:
        pid = hashlib.sha256(f"saml|{user}".encode()).hexdigest()[:27].upper() + "="
        return self.add(t, {
            "eventVersion": self.event_version(),
            "userIdentity": {"type": "SAMLUser", "principalId": f"{pid}:{user}", "userName": user,
                             "identityProvider": self.t.saml_provider_arn},
            "eventTime": _iso(t),
            "eventSource": "sts.amazonaws.com",
            "eventName": "AssumeRoleWithSAML",
            "awsRegion": self.t.region,
            "sourceIPAddress": ip,
            "userAgent": _BROWSER_UA,
            "requestParameters": {"sAMLAssertionID": f"id{self.rng.getrandbits(96):024x}",
                                  "roleSessionName": user, "roleArn": self.t.saml_role_arn,
                                  "principalArn": self.t.saml_provider_arn, "durationSeconds": 3600},
            "responseElements": {
                "credentials": {"accessKeyId": self.access_key(), "expiration": _sts_expiration(t + _HOUR)},
                "assumedRoleUser": {"assumedRoleId": f"{self.t.saml_role_id}:{user}",
                                    "arn": f"arn:aws:sts::{self.t.account}:assumed-role/{SAML_ROLE_NAME}/{user}"},
                "packedPolicySize": 6,
                "subject": user,
                "subjectType": "persistent",
                "issuer": SAML_ISSUER,
                "audience": "https://signin.aws.amazon.com/saml",
                "nameQualifier": SAML_NAME_QUALIFIER,
            },
            "requestID": self.uuid4(),
            "eventID": self.uuid4(),
            "readOnly": True,
            "resources": [{"accountId": self.t.account, "type": "AWS::IAM::Role", "ARN": self.t.saml_role_arn},
                          {"accountId": self.t.account, "type": "AWS::IAM::SAMLProvider",
                           "ARN": self.t.saml_provider_arn}],
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.t.account,
            "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": "sts.amazonaws.com"},
        })

    # -- writes ----------------------------------------------------------------------------------------
    def ordinary_writes(self) -> None:
        rng = self.rng
        for s in self.sessions:
            lo, hi = s.start + 90 * _SEC, s.end - 90 * _SEC
            for _ in range(rng.randint(*self.wps)):
                claim = rng.random() < 0.7
                if not s.multi:
                    self.session_write(s, self.rand_sec(lo, hi), claim, self.attributed(s), "single_window")
                    continue
                if claim:
                    t = self.rand_sec(lo, hi)
                    strict, _ = self.occupancy(s.ip, t)
                    scenario = "multi_claim_resolved" if len(strict) > 1 else "multi_claim_alone"
                    self.session_write(s, t, True, self.attributed(s), scenario)
                    continue
                self.multi_unclaimed(s, lo, hi)

    def multi_unclaimed(self, s: _Session, lo: int, hi: int, want_shared: bool = False) -> bool:
        """An unclaimed write from multi-session ``s``; False if no clear time was found."""
        for _ in range(40):
            t = self.rand_sec(lo, hi)
            strict, clean = self.occupancy(s.ip, t)
            if clean and (len(strict) > 1 or not want_shared):
                break
        else:
            return False
        name = self.rng.choice((NO_CLAIM_NAME, s.instance_id))
        if len(strict) == 1:
            self.session_write(s, t, False, self.attributed(s), "multi_sole_occupant", name)
        else:
            cands = tuple(sorted(x.sid for x in strict))
            self.session_write(s, t, False, ExpectedWrite(AMBIGUOUS, None, None, cands), "multi_ambiguous",
                               name)
        return True

    def forced_multi_ambiguous(self) -> None:
        """At least two shared-instance unclaimed writes per multi instance and day."""
        per: dict[tuple[str, int], int] = {}
        for s in self.sessions:
            if not s.multi:
                continue
            k = (s.ip, (s.start - self.origin) // _DAY)
            if per.get(k, 0) >= 2:
                continue
            if self.multi_unclaimed(s, s.start + 90 * _SEC, s.end - 90 * _SEC, want_shared=True):
                per[k] = per.get(k, 0) + 1

    def edge_writes(self, pairs: list[tuple[_Session, _Session, int]]) -> None:
        rng = self.rng
        for a, b, g in pairs:
            t = a.end - rng.randint(1, 10) * _SEC  # A's last seconds; B's tolerance starts at A.end + g - 60
            self.session_write(a, t, rng.random() < 0.5, self.attributed(a), "edge_end_in_next_tolerance")
            k = rng.randint(1, max(1, (_TOL - g) // _SEC - 1))  # B's first seconds, still in A's tolerance
            self.session_write(b, b.start + k * _SEC, rng.random() < 0.5, self.attributed(b),
                               "inside_beats_tolerance")
            if g == 20 * _SEC:
                self.session_write(a, a.end + 10 * _SEC, True, self.attributed(a), "gap_claim_settles")
                self.session_write(a, a.end + 8 * _SEC, False,
                                   ExpectedWrite(AMBIGUOUS, None, None, tuple(sorted((a.sid, b.sid)))),
                                   "gap_ambiguous")

    def skew_writes(self) -> None:
        rng = self.rng
        before, after = [], []
        for lst in self.by_ip.values():
            if lst[0].multi:
                continue
            for i, s in enumerate(lst):
                if s.pinned:
                    continue
                if i == 0 or s.start - lst[i - 1].end >= 3 * _MIN:
                    before.append(s)
                if i == len(lst) - 1 or lst[i + 1].start - s.end >= 3 * _MIN:
                    after.append(s)
        before.sort(key=lambda x: x.start)
        after.sort(key=lambda x: x.start)
        for s in rng.sample(before, min(len(before), max(3, len(before) // 7))):
            t = _floor_sec(s.start) - rng.randint(5, 45) * _SEC
            self.session_write(s, t, rng.random() < 0.6, self.attributed(s), "skew_before_start")
        for s in rng.sample(after, min(len(after), max(3, len(after) // 7))):
            t = _ceil_sec(s.end) + rng.randint(5, 45) * _SEC
            self.session_write(s, t, rng.random() < 0.6, self.attributed(s), "skew_after_end")

    def midnight_writes(self) -> None:
        rng = self.rng
        for s in self.sessions:
            if s.start // _DAY == s.end // _DAY:
                continue
            self.session_scenarios["spanning_midnight"].append(s.sid)
            midnight = s.end // _DAY * _DAY
            for t in (midnight - rng.randint(2, 15) * _MIN - rng.randint(0, 59) * _SEC,
                      midnight + rng.randint(2, 15) * _MIN + rng.randint(0, 59) * _SEC):
                self.session_write(s, t, rng.random() < 0.7, self.attributed(s), "midnight_span")

    def plain_single(self, min_minutes: int = 30) -> list[_Session]:
        return [s for s in self.sessions
                if not s.multi and not s.pinned and s.end - s.start >= min_minutes * _MIN]

    def disguised_writes(self) -> None:
        rng = self.rng
        pool = self.plain_single()
        for a in rng.sample(pool, min(len(pool), max(3, 2 * self.days))):
            t = self.rand_sec(a.start + 2 * _MIN, a.end - 2 * _MIN)
            others = [b for b in self.sessions if b.user != a.user and b.ip != a.ip]
            live = [b for b in others if b.start <= t <= b.end]
            b = rng.choice(live or others)
            self.fleet_write(t, a.ip, b.sid, self.access_key(), self.attributed(a), "disguised_session_id",
                             alert="session_id_mismatch")

    def fabricated_write(self) -> None:
        a = self.rng.choice(self.plain_single())
        known = {s.sid for s in self.sessions}
        fake = self.uuid4()
        while fake in known:
            fake = self.uuid4()
        t = self.rand_sec(a.start + 2 * _MIN, a.end - 2 * _MIN)
        self.fleet_write(t, a.ip, fake, self.access_key(), self.attributed(a), "fabricated_session_id",
                         alert="unknown_session_id")

    def replay_writes(self) -> None:
        rng = self.rng
        pool = self.plain_single()
        for v in rng.sample(pool, min(len(pool), 3)):
            t = self.rand_sec(v.start + 5 * _MIN, v.end - 2 * _MIN)
            self.fleet_write(t, REPLAY_IP, v.sid, v.key_id, ExpectedWrite(EXTERNAL, None, None),
                             "replayed_credentials", alert="credentials_outside_fleet", vpce=False,
                             user_agent=_REPLAY_UA, created_ms=v.start + 30 * _SEC)

    def idle_writes(self) -> None:
        rng = self.rng
        key = self.access_key()
        times = [self.origin + 12 * _HOUR + rng.randint(0, 59) * _MIN,
                 self.origin + 12 * _HOUR + rng.randint(60, 119) * _MIN,
                 self.origin + (self.days - 1) * _DAY + 15 * _HOUR + rng.randint(0, 59) * _MIN]
        for i, t in enumerate(times):
            self.fleet_write(t + rng.randint(0, 59) * _SEC, IDLE_IPS[i % 2], NO_CLAIM_NAME, key,
                             ExpectedWrite(UNATTRIBUTED, None, None), "idle_fleet_ip",
                             alert="unattributed_activity")

    def service_writes(self) -> None:
        """Fleet-role writes whose source is a service name: one no service claims (the published
        bypass: instance credentials used through ``appstream.amazonaws.com``), one Athena makes for
        the role (``userIdentity.invokedBy``, as when Athena writes query results)."""
        rng = self.rng
        for d in range(self.days):
            a = rng.choice([s for s in self.plain_single() if (s.start - self.origin) // _DAY == d] or
                           self.plain_single())
            t = self.rand_sec(a.start + 2 * _MIN, a.end - 2 * _MIN)
            self.fleet_write(t, "appstream.amazonaws.com", NO_CLAIM_NAME, self.instance_keys[a.instance_id],
                             ExpectedWrite(EXTERNAL, None, None), "fleet_credentials_via_service",
                             alert="fleet_credentials_via_service", vpce=False,
                             user_agent="appstream.amazonaws.com")
            # Athena writes a query's results with the session's credentials: placed through the
            # same key's use from the session's address shortly before (attributed to the session) ...
            t = self.rand_sec(a.start + 4 * _MIN, a.end - 2 * _MIN)
            self.start_query(t - self.rng.randint(30, 120) * _SEC, a)
            self.athena_write(t, a.sid, a.key_id, self.attributed(a))
            # ... and with credentials whose use CloudTrail shows from no fleet address: via_service
            t = self.rand_sec(a.start + 2 * _MIN, a.end - 2 * _MIN)
            self.athena_write(t, a.sid, self.access_key(), ExpectedWrite(VIA_SERVICE, None, None))

    def start_query(self, t: int, s: _Session) -> None:
        """The session's Athena ``StartQueryExecution`` (a management event, from the instance's
        address through an interface endpoint, signed with the session's key): the call whose results
        Athena then writes with that key."""
        rec = {
            "eventVersion": self.event_version(),
            "userIdentity": self.fleet_identity(s.sid, s.key_id, min(s.start + 30 * _SEC, t - 5 * _SEC)),
            "eventTime": _iso(t),
            "eventSource": "athena.amazonaws.com",
            "eventName": "StartQueryExecution",
            "awsRegion": self.t.region,
            "sourceIPAddress": s.ip,
            "userAgent": "aws-cli/2.15.0 md/command#athena.start-query-execution",
            "requestParameters": {"queryString": "SELECT * FROM cohort LIMIT 1000",
                                  "clientRequestToken": self.uuid4(), "workGroup": "primary",
                                  "resultConfiguration": {"outputLocation": "s3://analytics-results/athena/"}},
            "responseElements": {"queryExecutionId": self.uuid4()},
            "requestID": self.uuid4(),
            "eventID": self.uuid4(),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.t.account,
            "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": f"athena.{self.t.region}.amazonaws.com"},
        }
        self.add(t, rec)

    def athena_write(self, t: int, name: str, key_id: str, expected: ExpectedWrite) -> None:
        eid = self.fleet_write(t, "athena.amazonaws.com", name, key_id, expected, "invoked_by_service",
                               vpce=False, user_agent="athena.amazonaws.com")
        rec = next(r for _, r in reversed(self.records) if r["eventID"] == eid)
        rec["userIdentity"]["invokedBy"] = "athena.amazonaws.com"

    def mapped_writes(self) -> None:
        """Writes whose source is the IPv4-mapped IPv6 form of a fleet address: attributed like it."""
        rng = self.rng
        for a in rng.sample(self.plain_single(), min(3, len(self.plain_single()))):
            t = self.rand_sec(a.start + 2 * _MIN, a.end - 2 * _MIN)
            self.fleet_write(t, f"::ffff:{a.ip}", NO_CLAIM_NAME, self.instance_keys[a.instance_id],
                             self.attributed(a), "ipv4_mapped_address")

    def etl_writes(self) -> None:
        rng = self.rng
        ident = {"type": "IAMUser", "principalId": "AIDA3XFRBF23ETLBOT01", "arn": self.t.etl_user_arn,
                 "accountId": self.t.account, "accessKeyId": "AKIA3XFRBF23ETLBOT01", "userName": "etl-bot"}
        for d in range(self.days):
            for h in (2, 14):
                t = self.origin + d * _DAY + h * _HOUR + rng.randint(0, 50) * _MIN + rng.randint(0, 59) * _SEC
                rec = self.s3_record(t, "PutObject", ETL_IP, ident, vpce=False, user_agent=_ETL_UA)
                eid = rec["eventID"]
                self.truth[eid] = ExpectedWrite(OUT_OF_SCOPE, None, None)
                self.write_ids.append(eid)
                self.scenarios["out_of_scope_iam_user"].append(eid)

    # -- noise -----------------------------------------------------------------------------------------
    def read_noise(self) -> None:
        rng = self.rng
        for s in self.sessions:
            for _ in range(rng.randint(0, 3)):
                t = self.rand_sec(s.start + 30 * _SEC, s.end - 30 * _SEC)
                name = s.sid if rng.random() < 0.7 else NO_CLAIM_NAME
                key = s.key_id if name == s.sid else self.instance_keys[s.instance_id]
                ev = rng.choice(("GetObject", "HeadObject", "ListObjects"))
                self.s3_record(t, ev, s.ip, self.fleet_identity(name, key, t - 10 * _MIN), read_only=True)

    def management_noise(self) -> None:
        rng = self.rng
        poller = {"type": "AssumedRole", "principalId": "AROA3XFRBF23LIVEPOLL:auditcorr-live",
                  "arn": f"arn:aws:sts::{self.t.account}:assumed-role/AuditCorrLiveRole/auditcorr-live",
                  "accountId": self.t.account, "accessKeyId": "ASIA3XFRBF23LIVEPOLL",
                  "sessionContext": {"sessionIssuer": {
                      "type": "Role", "principalId": "AROA3XFRBF23LIVEPOLL",
                      "arn": f"arn:aws:iam::{self.t.account}:role/AuditCorrLiveRole", "accountId": self.t.account,
                      "userName": "AuditCorrLiveRole"},
                      "attributes": {"creationDate": _iso(self.origin), "mfaAuthenticated": "false"}}}
        admin = {"type": "AssumedRole", "principalId": "AROA3XFRBF23ADMINROL:ops.admin@example.com",
                 "arn": f"arn:aws:sts::{self.t.account}:assumed-role/AppStreamAdmin/ops.admin@example.com",
                 "accountId": self.t.account, "accessKeyId": "ASIA3XFRBF23ADMINKEY",
                 "sessionContext": {"sessionIssuer": {
                     "type": "Role", "principalId": "AROA3XFRBF23ADMINROL",
                     "arn": f"arn:aws:iam::{self.t.account}:role/AppStreamAdmin", "accountId": self.t.account,
                     "userName": "AppStreamAdmin"},
                     "attributes": {"creationDate": _iso(self.origin), "mfaAuthenticated": "true"}}}
        for d in range(self.days):
            day0 = self.origin + d * _DAY
            for half_hour in range(14, 40):  # 07:00 .. 20:00, every 30 minutes, per fleet
                for fleet in (FLEET_SINGLE, FLEET_MULTI):
                    t = day0 + half_hour * 30 * _MIN + rng.randint(0, 120) * _SEC
                    self.mgmt(t, "appstream.amazonaws.com", "DescribeSessions", poller, LIVE_POLLER_IP,
                              {"stackName": STACK, "fleetName": fleet, "authenticationType": "SAML"}, None,
                              read_only=True)
            for _ in range(3):
                t = day0 + rng.randint(8 * 60, 17 * 60) * _MIN
                self.mgmt(t, "appstream.amazonaws.com", "CreateStreamingURL", admin, ADMIN_IP,
                          {"stackName": STACK, "fleetName": FLEET_SINGLE, "userId": "ops.admin@example.com",
                           "validity": 60},
                          {"streamingURL": "HIDDEN_DUE_TO_SECURITY_REASONS",
                           "expires": _sts_expiration(t + _MIN)}, read_only=False)
            for h in range(0, 24, 4):  # AWS-internal calls
                t = day0 + h * _HOUR + rng.randint(0, 239) * _MIN
                svc = {"type": "AWSService", "invokedBy": "AWS Internal"}
                if h % 8 == 0:
                    self.mgmt(t, "kms.amazonaws.com", "Decrypt", svc, "AWS Internal",
                              {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, None, read_only=True)
                else:
                    self.mgmt(t, "s3.amazonaws.com", "GetBucketAcl", svc, "AWS Internal",
                              {"bucketName": self.t.bucket_names[0],
                               "Host": f"{self.t.bucket_names[0]}.s3.{self.t.region}.amazonaws.com",
                               "acl": ""}, None, read_only=True)

    def mgmt(self, t: int, source: str, name: str, identity: dict[str, Any], ip: str,
             params: dict[str, Any], response: Any, *, read_only: bool) -> None:
        self.add(t, {
            "eventVersion": self.event_version(),
            "userIdentity": identity,
            "eventTime": _iso(t),
            "eventSource": source,
            "eventName": name,
            "awsRegion": self.t.region,
            "sourceIPAddress": ip,
            "userAgent": source if ip == "AWS Internal" else _BROWSER_UA,
            "requestParameters": params,
            "responseElements": response,
            "requestID": self.uuid4(),
            "eventID": self.uuid4(),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.t.account,
            "eventCategory": "Management",
        })

    # -- files -----------------------------------------------------------------------------------------
    def write_cloudtrail(self) -> list[Arrival]:
        rng = self.rng
        windows: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for t, rec in self.records:
            windows.setdefault(t // _WINDOW, []).append((t, rec))
        delivery: dict[int, int] = {}

        def deliver_at(w: int) -> int:  # a window's file lands 3-12 minutes after the window closes
            if w not in delivery:
                delivery[w] = (w + 1) * _WINDOW + rng.randint(3 * 60, 12 * 60) * _SEC
            return delivery[w]

        for w in sorted(windows):
            deliver_at(w)
        # about 2 % of all records are delivered again, identical, in a file of a later window that
        # also lands later than the first delivery
        writes = set(self.write_ids)
        idx_w = [i for i, (_, r) in enumerate(self.records) if r["eventID"] in writes]
        idx_o = [i for i, (_, r) in enumerate(self.records) if r["eventID"] not in writes]
        dups = rng.sample(idx_w, min(len(idx_w), max(3, round(len(idx_w) * 0.02)))) + \
            rng.sample(idx_o, min(len(idx_o), max(1, round(len(idx_o) * 0.02))))
        for i in sorted(dups):
            t, rec = self.records[i]
            w = t // _WINDOW
            target = w + rng.randint(1, 3)
            while deliver_at(target) <= deliver_at(w):
                target += 1
            windows.setdefault(target, []).append((t, rec))
            if rec["eventID"] in writes:
                self.scenarios["duplicate_delivery"].append(rec["eventID"])
        arrivals = []
        for w in sorted(windows):
            entries = windows[w]
            rng.shuffle(entries)
            deliver = deliver_at(w)
            key = _ct_key(deliver, self.alnum(16), self.t)
            data = gzip.compress(orjson.dumps({"Records": [r for _, r in entries]}), compresslevel=6, mtime=0)
            _write_bytes(self.root / key, data)
            arrivals.append(Arrival(_dt(deliver), self.root / key, KIND_CLOUDTRAIL))
            times = [t for t, _ in entries]
            self.ct_files.append((deliver, key, data, min(times), max(times)))
        arrivals.append(self.write_digest())
        return arrivals

    def write_digest(self) -> Arrival:
        """One digest covering the log files delivered in the first hour with any delivery."""
        first = min(f[0] for f in self.ct_files) // _HOUR * _HOUR
        end = first + _HOUR
        files = [f for f in self.ct_files if first <= f[0] < end]
        deliver = end + self.rng.randint(5, 15) * _MIN
        key = (f"{self.t.trail_prefix}/CloudTrail-Digest/{self.t.region}/{_day_path(deliver)}/"
               f"{self.t.account}_CloudTrail-Digest_{self.t.region}_{TRAIL_NAME}_{self.t.region}_{_compact(deliver)}.json.gz")
        body = {
            "awsAccountId": self.t.account,
            "digestStartTime": _iso(first),
            "digestEndTime": _iso(end),
            "digestS3Bucket": self.t.trail_bucket,
            "digestS3Object": key.removeprefix("cloudtrail/"),
            "digestPublicKeyFingerprint": hashlib.sha256(b"auditcorr synthetic").hexdigest()[:32],
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": _iso(max(f[4] for f in files)),
            "oldestEventTime": _iso(min(f[3] for f in files)),
            "previousDigestS3Bucket": None,
            "previousDigestS3Object": None,
            "previousDigestHashValue": None,
            "previousDigestHashAlgorithm": None,
            "previousDigestSignature": None,
            "logFiles": [{"s3Bucket": self.t.trail_bucket, "s3Object": k.removeprefix("cloudtrail/"),
                          "hashValue": hashlib.sha256(data).hexdigest(), "hashAlgorithm": "SHA-256",
                          "newestEventTime": _iso(hi), "oldestEventTime": _iso(lo)}
                         for _, k, data, lo, hi in files],
        }
        _write_bytes(self.root / key, gzip.compress(orjson.dumps(body), compresslevel=6, mtime=0))
        return Arrival(_dt(deliver), self.root / key, KIND_DIGEST)

    @staticmethod
    def report_time(ms: int, style: str) -> str:
        d = _dt(ms)
        if style == "offset":
            return d.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        if style == "frac":
            return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % _SEC:03d}Z"
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")

    def session_row(self, s: _Session) -> list[str]:
        rng = self.rng
        t = self.report_time
        return [
            s.sid, self.t.account, self.t.region, t(s.start, s.time_style), t(s.end, s.time_style),
            str((s.end - s.start) // _SEC), s.user, "", "SAML", f"{s.user}SAML",
            s.fleet, STACK, "stream.standard.2xlarge" if s.multi else "stream.standard.medium", s.ip, "true",
            ";".join(s.client_ips), "false", "false",
            f"s3://appstream2-36fb080bb8-{self.t.region}-{self.t.account}/user/custom/"
            f"{hashlib.sha256(s.user.encode()).hexdigest()}",
            "ENABLED", "DISABLED", "ENABLED", "DISABLED", "DISABLED", "false", "false", "57600", "ALWAYS_ON",
            "APP" if s.multi else "DESKTOP", rng.choice(("TCP", "TCP", "UDP")), s.instance_id,
            "true" if s.multi else "false",
        ]

    def write_reports(self) -> list[Arrival]:
        rng = self.rng
        by_day: dict[int, list[_Session]] = {}
        for s in self.sessions:
            by_day.setdefault(s.end // _DAY * _DAY, []).append(s)
        arrivals = []
        for n, day in enumerate(sorted(by_day)):
            if (day - self.origin) // _DAY in self.missing_days:
                continue  # never delivered
            ss = sorted(by_day[day], key=lambda x: (x.start, x.sid))
            sess_key, app_key = _report_paths(day, self.t.report_prefix)
            rows = [self.session_row(s) for s in ss]
            apps = []
            d = _dt(day)
            for s in ss:
                for app in rng.sample(_APPS, rng.randint(1, 3)):
                    apps.append([s.sid, app, "DAILY", f"{d:%Y}", f"{d:%m}", f"{d:%d}"])
            _write_bytes(self.root / sess_key, _csv_bytes(SESSION_COLUMNS, rows))
            _write_bytes(self.root / app_key, _csv_bytes(APP_COLUMNS, apps))
            at = day + _DAY + rng.randint(2 * 60, 6 * 60 - 10) * _MIN + rng.randint(0, 59) * _SEC + \
                self.report_delay_ms
            arrivals.append(Arrival(_dt(at), self.root / sess_key, KIND_SESSIONS))
            arrivals.append(Arrival(_dt(at + rng.randint(10, 300) * _SEC), self.root / app_key, KIND_APPS))
            if n == 0:  # delivered again, same key and bytes, a few hours later
                again = at + rng.randint(2 * 60, 4 * 60) * _MIN + rng.randint(0, 59) * _SEC
                arrivals.append(Arrival(_dt(again), self.root / sess_key, KIND_SESSIONS))
                self.session_scenarios["report_delivered_twice"].append(f"{d:%Y-%m-%d}")
        return arrivals

    def session_dicts(self) -> list[dict[str, Any]]:
        return [{
            "session_id": s.sid,
            "user_id": s.user,
            "stack_name": STACK,
            "fleet_name": s.fleet,
            "instance_id": s.instance_id,
            "eni_private_ip_address": s.ip,
            "session_start_time": _dt(s.start),
            "session_end_time": _dt(s.end),
            "max_expiration_time": _dt(s.start + 16 * _HOUR),
            "is_multisession": s.multi,
            "client_ip_addresses": list(s.client_ips),
            "authentication_type": "SAML",
            "logon_time": _dt(s.logon_ms),
            "logon_event_id": s.logon_event_id,
            "access_key_id": s.key_id,
            "aws_account_id": self.t.account,
            "region": self.t.region,
        } for s in sorted(self.sessions, key=lambda x: (x.start, x.sid))]

    def build(self) -> World:
        self.make_users()
        self.assign_users(self.make_slots())
        pairs = self.short_gap_pairs()
        self.choose_time_styles()
        self.logons()
        self.ordinary_writes()
        self.forced_multi_ambiguous()
        self.edge_writes(pairs)
        self.skew_writes()
        self.midnight_writes()
        self.disguised_writes()
        self.fabricated_write()
        self.replay_writes()
        self.idle_writes()
        self.etl_writes()
        if self.service_cases:
            self.service_writes()
            self.mapped_writes()
        self.read_noise()
        self.management_noise()
        self.root.mkdir(parents=True, exist_ok=True)
        arrivals = self.write_cloudtrail() + self.write_reports()
        arrivals.sort(key=lambda a: (a.at, a.kind, a.path.as_posix()))
        missing = self.without_missing_reports()
        return World(root=self.root, arrivals=arrivals, truth=self.truth, expected_alerts=self.alerts,
                     users=list(self.users), sessions=self.session_dicts(), scenarios=self.scenarios,
                     session_scenarios=self.session_scenarios, tenants=[self.t],
                     write_scope=dict.fromkeys(self.write_ids, self.t.scope), missing_reports=missing)

    def without_missing_reports(self) -> list[tuple[str, str, str]]:
        """The truth once the reports of ``missing_days`` never come: the fleet writes of such a day
        stay ``pending`` (unless a session reported on another day explains them, e.g. one that ends
        after midnight) and raise none of the alerts that wait for reports but ``session_id_mismatch``
        for a claim of a known session (the day raises one ``usage_report_missing`` instead).
        A missing day must change nothing else (no write of
        another day may need a session of it): checked, else ValueError."""
        if not self.missing_days:
            return []
        report_days = {(s.end // _DAY * _DAY - self.origin) // _DAY for s in self.sessions}
        for d in self.missing_days:
            if not any(r >= d + 2 for r in report_days - self.missing_days):
                raise ValueError(f"no report two days after missing day {d} of {self.t.account} {self.t.region}: "
                                 "a pipeline could never call it missing (more days, or an earlier missing day)")
        lost = {s.sid for s in self.sessions if (s.end // _DAY * _DAY - self.origin) // _DAY in self.missing_days}
        waiting = {"session_id_mismatch", "unknown_session_id", "unattributed_activity"}
        by_sid = {s.sid: s for s in self.sessions}
        t_of = {rec["eventID"]: t for t, rec in self.records}
        for eid in self.write_ids:
            exp = self.truth[eid]
            day = (t_of[eid] // _DAY * _DAY - self.origin) // _DAY
            if day in self.missing_days and exp.status in (ATTRIBUTED, AMBIGUOUS, UNATTRIBUTED):
                # the sessions still known (reported on another day, e.g. one that ends after midnight)
                # decide it; with none, it waits.  A claim of a known session is still checked.
                present = sorted({exp.session_id, *exp.candidate_session_ids} - lost - {None})
                if not present:
                    self.truth[eid] = ExpectedWrite(PENDING, None, None)
                elif len(present) == 1:
                    self.truth[eid] = ExpectedWrite(ATTRIBUTED, by_sid[present[0]].user, present[0])
                else:
                    self.truth[eid] = ExpectedWrite(AMBIGUOUS, None, None, tuple(present))
                keep = {"session_id_mismatch"} if self.claimed.get(eid) not in lost else set()
                self.alerts -= {(rule, eid) for rule in waiting - keep}
                continue
            needs = {exp.session_id, *exp.candidate_session_ids, self.claimed.get(eid)} & lost
            if needs and exp.status not in (EXTERNAL, VIA_SERVICE):
                raise ValueError(f"a write of another day needs a session of the missing report ({eid}, {exp}): "
                                 "choose another missing day (e.g. the first)")
        return [(self.t.account, self.t.region, f"{_dt(self.origin + d * _DAY):%Y-%m-%d}")
                for d in sorted(self.missing_days)]


def generate_world(root: Path, *, seed: int = 7, n_users: int = 36, days: int = 2,
                   start: datetime = datetime(2026, 3, 2, tzinfo=UTC),
                   writes_per_session: tuple[int, int] = (2, 8)) -> World:
    """Write a synthetic AppStream world under ``root`` and return its files and ground truth.

    ``start`` is floored to its UTC day; sessions run on ``days`` days from it (the late ones end
    the next day).  Same arguments, same bytes.  The defaults hold every scenario of the module doc;
    a very small world (few users, one day) may miss some, e.g. the 20 s gap when no user is free
    to take the instance: check ``World.scenarios``.
    """
    return _Builder(Path(root), seed, n_users, days, start, writes_per_session).build()




#: the default organisation: two accounts, one of them in two regions, every fleet in 10.40.0.0/16
ORG_TENANTS: tuple[Tenant, ...] = (
    org_tenant(ACCOUNT, "us-east-1", client_net=1),
    org_tenant(SECOND_ACCOUNT, "us-east-1", client_net=2),
    org_tenant(SECOND_ACCOUNT, "eu-west-1", client_net=3),
)


def generate_org_world(root: Path, *, tenants: Sequence[Tenant] = ORG_TENANTS, seed: int = 7, n_users: int = 12,
                       days: int = 2, start: datetime = datetime(2026, 3, 2, tzinfo=UTC),
                       writes_per_session: tuple[int, int] = (2, 6),
                       missing_report: tuple[int, int] | None = (1, 0),
                       report_delays: Sequence[float] = (0.0, 9.0, 20.0)) -> World:
    """An organisation's world: one :func:`generate_world` per tenant (its own seed, users, sessions
    and scenarios, the SAME fleet addresses), in one organisation trail and one report bucket per
    tenant, merged: arrivals sorted by time, truth and expected alerts united.

    ``missing_report``: (tenant index, day index from ``start``) whose sessions report never comes:
    its fleet writes stay ``pending`` (``World.missing_reports`` names it; a pipeline should raise one
    ``usage_report_missing`` for it once a report two days later is in).  ``report_delays``: hours
    each tenant's reports arrive later than usual (reports arrive per account at different times).
    """
    if not tenants:
        raise ValueError("tenants must not be empty")
    if len({t.scope for t in tenants}) != len(tenants):
        raise ValueError("one tenant per (account, region)")
    if missing_report is not None and not (0 <= missing_report[0] < len(tenants) and 0 <= missing_report[1] < days):
        raise ValueError("missing_report must be (tenant index, day index) inside the world")
    root = Path(root)
    worlds = []
    for i, tenant in enumerate(tenants):
        delay = report_delays[i] if i < len(report_delays) else 0.0
        missing = frozenset({missing_report[1]}) if missing_report is not None and missing_report[0] == i \
            else frozenset()
        worlds.append(_Builder(root, seed + 7919 * i, n_users, days, start, writes_per_session, tenant,
                               round(delay * _HOUR), missing, service_cases=True).build())
    world = World(root=root, arrivals=[], truth={}, expected_alerts=set(), users=[], sessions=[],
                  scenarios={name: [] for name in SCENARIOS + ORG_SCENARIOS},
                  session_scenarios={k: [] for k in worlds[0].session_scenarios}, tenants=list(tenants))
    for w in worlds:
        if set(w.truth) & set(world.truth):
            raise ValueError("two tenants drew the same event id: choose another seed")
        world.arrivals += w.arrivals
        world.truth |= w.truth
        world.expected_alerts |= w.expected_alerts
        world.users += [u for u in w.users if u not in world.users]
        world.sessions += w.sessions
        world.write_scope |= w.write_scope
        world.missing_reports += w.missing_reports
        for name, ids in w.scenarios.items():
            world.scenarios[name] += ids
        for name, ids in w.session_scenarios.items():
            world.session_scenarios[name] += ids
    world.arrivals.sort(key=lambda a: (a.at, a.kind, a.path.as_posix()))
    world.sessions.sort(key=lambda s: (s["session_start_time"], s["session_id"]))
    return world

