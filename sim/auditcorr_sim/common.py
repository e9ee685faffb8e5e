"""What the scenario world and the scale generator share: the synthetic account, its fleets and
names, the public types (``World``, ``Arrival``, ``ExpectedWrite``, ``ScaleWorld``) and the small
time and key helpers.  SYNTHETIC DATA: see ``world.py``."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
#: the organisation world's second AppStream account
SECOND_ACCOUNT = "444455556666"
REGION = "us-east-1"
STACK = "analytics"
FLEET_SINGLE = "analytics-single"
FLEET_MULTI = "analytics-multi"
FLEET_ROLE_NAME = "AppStreamFleetRole"
FLEET_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{FLEET_ROLE_NAME}"
FLEET_ROLE_ID = "AROA3XFRBF23EXAMPLE"
SAML_ROLE_NAME = "AppStreamSAMLRole"
SAML_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{SAML_ROLE_NAME}"
SAML_ROLE_ID = "AROA3XFRBF23SAMLEXA"
SAML_PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta"
SAML_ISSUER = "http://www.okta.com/exk9sYnthet1cExamp1e"
SAML_NAME_QUALIFIER = "Q0x7s3NlW5y3nthet1cQualifier="
VPCE_ID = "vpce-0a1b2c3d4e5f60718"
TRAIL_BUCKET = f"aws-cloudtrail-logs-{ACCOUNT}-auditcorr"
TRAIL_NAME = "auditcorr-trail"
REPLAY_IP = "203.0.113.77"
ETL_IP = "192.0.2.10"
ETL_USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/etl-bot"
LIVE_POLLER_IP = "192.0.2.200"
ADMIN_IP = "192.0.2.50"
IDLE_IPS = ("10.40.99.23", "10.40.99.41")
BUCKETS = (f"research-data-{ACCOUNT}", f"analytics-results-{ACCOUNT}")
TOLERANCE_SECONDS = 60

ATTRIBUTED = "attributed"
AMBIGUOUS = "ambiguous"
UNATTRIBUTED = "unattributed"
PENDING = "pending"
VIA_SERVICE = "via_service"
EXTERNAL = "external"
OUT_OF_SCOPE = "out_of_scope"

KIND_CLOUDTRAIL = "cloudtrail"
KIND_SESSIONS = "sessions_report"
KIND_APPS = "applications_report"
KIND_DIGEST = "digest"

SESSION_COLUMNS: tuple[str, ...] = (
    "user_session_id", "aws_account_id", "region", "session_start_time", "session_end_time",
    "session_duration_in_seconds", "user_id", "user_arn", "authentication_type",
    "authentication_type_user_id", "fleet_name", "stack_name", "instance_type", "eni_private_ip_address",
    "connected_at_least_once",
    "client_ip_addresses", "google_drive_enabled", "one_drive_enabled", "home_folders_storage_location",
    "user_settings_clipboard_copy_from_local_device", "user_settings_clipboard_copy_to_local_device",
    "user_settings_file_upload", "user_settings_file_download", "user_settings_printing_to_local_device",
    "application_settings_enabled", "domain_joined", "max_session_duration", "session_type", "stream_view",
    "streaming_experience_settings_protocol", "instance_id", "is_multisession",
)
APP_COLUMNS: tuple[str, ...] = ("user_session_id", "application_name", "schedule", "year", "month", "day")

SCENARIOS: tuple[str, ...] = (
    "single_window", "multi_claim_resolved", "multi_claim_alone", "multi_ambiguous", "multi_sole_occupant",
    "edge_end_in_next_tolerance", "inside_beats_tolerance", "gap_claim_settles", "gap_ambiguous",
    "skew_before_start", "skew_after_end", "midnight_span", "disguised_session_id", "fabricated_session_id",
    "replayed_credentials", "idle_fleet_ip", "out_of_scope_iam_user", "duplicate_delivery",
)
#: scenarios only the organisation world holds (``generate_org_world``)
ORG_SCENARIOS: tuple[str, ...] = ("fleet_credentials_via_service", "invoked_by_service", "ipv4_mapped_address")

_SEC = 1000
_MIN = 60 * _SEC
_HOUR = 60 * _MIN
_DAY = 24 * _HOUR
_TOL = TOLERANCE_SECONDS * _SEC
_WINDOW = 5 * _MIN  # one CloudTrail file per 5-minute window
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
NO_CLAIM_NAME = "AppStream2.0"

_FIRST = ("amara", "bruno", "chen", "dalia", "emeka", "farah", "goran", "hana", "ines", "jonas", "kavya",
          "liam", "maya", "nikolai", "olu", "priya", "quentin", "rosa", "sami", "tara", "umar", "vera",
          "wei", "ximena", "yusuf", "zoe", "aiko", "bjorn", "carmen", "dev", "elif", "felix", "greta",
          "hugo", "isla", "jamal", "kira", "lucas", "mei", "nora")
_LAST = ("abara", "bergstrom", "castillo", "dubois", "eriksen", "fontaine", "garcia", "haddad", "ivanova",
         "jensen", "kowalski", "lindqvist", "moreau", "nakamura", "okafor", "petrov", "quispe", "rossi",
         "sato", "tanaka", "ueda", "varga", "weber", "xu", "yilmaz", "zimmermann", "alvarez", "brennan",
         "costa", "demir", "eklund", "fischer", "gonzaga", "horvat", "iqbal", "jovanovic")
_WRITE_UAS = (
    "[aws-cli/2.15.30 Python/3.11.8 Windows/10 exe/AMD64 prompt/off command/s3.cp]",
    "[Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/windows#10 md/arch#amd64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69]",
    "[aws-sdk-java/2.25.16 Windows_Server_2019/10.0 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 "
    "vendor/Eclipse_Adoptium io/sync http/Apache cfg/retry-mode/legacy]",
    "[paws/0.6.1 (R4.3.2; windows; x86_64)]",
)
_REPLAY_UA = ("[aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off "
              "command/s3.cp]")
_ETL_UA = ("[Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.12.2 "
           "Botocore/1.34.69]")
_BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/122.0.0.0 Safari/537.36")
_PROJECTS = ("cohort-2026", "claims-model", "survey-q1", "genomics-pilot", "risk-dashboard",
             "supply-forecast")
_STEMS = ("summary", "export", "model-output", "cleaned", "notes", "figures", "Q1 report (final)",
          "résumé-données", "scratch")
_EXTS = (".csv", ".parquet", ".xlsx", ".png", ".ipynb", ".json")
_APPS = ("Firefox", "RStudio", "JupyterLab", "Microsoft Excel", "Tableau Desktop", "Notepad++", "QGIS, LTR")


# -- tenants: one account's AppStream in one region -------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    """One account's AppStream fleets in one region, as the world generator builds them.

    The default is the single-account world (``ACCOUNT`` in ``REGION``, its own trail, the reports
    under ``appstream-logs/``).  An organisation gives each tenant its own account (or the same
    account in another region), the SAME fleet subnet (10.40.0.0/16: VPCs reuse private ranges),
    the organisation trail's key layout (``AWSLogs/<org id>/<account>/CloudTrail/<region>/...``) and
    the AppStream report bucket's name (``appstream-logs-<region>-<account>-<random>``), which is how
    a pipeline tells a report's scope when its rows do not."""

    account: str = ACCOUNT
    region: str = REGION
    #: organisation trail: its id (``o-...``) is in every key; None: the account's own trail
    org_id: str | None = None
    #: the trail's bucket (None: the account's own, ``aws-cloudtrail-logs-<account>-auditcorr``)
    trail_bucket_name: str | None = None
    #: folder the usage reports are written under: the report bucket's name (None: ``appstream-logs``)
    report_bucket: str | None = None
    vpce_id: str = VPCE_ID
    fleet_role_id: str = FLEET_ROLE_ID
    saml_role_id: str = SAML_ROLE_ID
    #: the written-to buckets (empty: ``research-data-<account>``, ``analytics-results-<account>``)
    buckets: tuple[str, ...] = ()
    #: users' client addresses: 0 the documentation ranges; k > 0 ``100.<64+k>.1-2.x`` (disjoint per k)
    client_net: int = 0

    @property
    def fleet_role_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role/{FLEET_ROLE_NAME}"

    @property
    def saml_role_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role/{SAML_ROLE_NAME}"

    @property
    def saml_provider_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:saml-provider/Okta"

    @property
    def etl_user_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/etl-bot"

    @property
    def trail_bucket(self) -> str:
        return self.trail_bucket_name or f"aws-cloudtrail-logs-{self.account}-auditcorr"

    @property
    def bucket_names(self) -> tuple[str, ...]:
        return self.buckets or (f"research-data-{self.account}", f"analytics-results-{self.account}")

    @property
    def trail_prefix(self) -> str:
        """``cloudtrail/AWSLogs/[<org id>/]<account>`` (the local copy keeps the trail's folder)."""
        org = f"{self.org_id}/" if self.org_id else ""
        return f"cloudtrail/AWSLogs/{org}{self.account}"

    @property
    def report_prefix(self) -> str:
        return self.report_bucket or "appstream-logs"

    @property
    def scope(self) -> tuple[str, str]:
        return self.account, self.region


DEFAULT_TENANT = Tenant()


def org_tenant(account: str, region: str, *, org_id: str = "o-a1b2c3d4e5", client_net: int = 1,
               trail_bucket: str = "aws-cloudtrail-logs-999988887777-org") -> Tenant:
    """A tenant of an organisation: the organisation trail's layout, its own report bucket, VPC
    endpoint, role ids and buckets (named after account and region, so one account may run in
    two regions), and its own users' client addresses."""
    digest = hashlib.sha256(f"{account}|{region}".encode()).hexdigest()
    return Tenant(
        account=account, region=region, org_id=org_id, trail_bucket_name=trail_bucket,
        report_bucket=f"appstream-logs-{region}-{account}-{digest[:10]}",
        vpce_id=f"vpce-0{digest[10:26]}",
        fleet_role_id="AROA" + digest[26:42].upper(), saml_role_id="AROA" + digest[42:58].upper(),
        buckets=(f"research-data-{account}-{region}", f"analytics-results-{account}-{region}"),
        client_net=client_net)


# -- public types --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    at: datetime  # UTC
    path: Path
    kind: str  # cloudtrail | sessions_report | applications_report | digest


@dataclass(frozen=True)
class ExpectedWrite:
    status: str  # attributed | ambiguous | unattributed | external | out_of_scope
    user_id: str | None
    session_id: str | None
    candidate_session_ids: tuple[str, ...] = ()  # sorted; for ambiguous writes only


@dataclass
class World:
    root: Path
    #: every file written, in arrival order (the order a pipeline would see them); a sessions report
    #: delivered twice is listed twice with the same path
    arrivals: list[Arrival]
    #: event_id -> expected attribution, for every S3 write record generated (fleet role or not)
    truth: dict[str, ExpectedWrite]
    #: (rule, event_id) of every alert the write rules must raise, and no others (the logon
    #: cross-check rules raise none: see the module doc)
    expected_alerts: set[tuple[str, str]]
    users: list[str]
    #: the sessions, sorted by start: ``session_id``, ``user_id``, ``stack_name``, ``fleet_name``,
    #: ``instance_id``, ``eni_private_ip_address``, ``session_start_time``/``session_end_time``/
    #: ``max_expiration_time``/``logon_time`` (datetime, UTC), ``is_multisession`` (bool),
    #: ``client_ip_addresses`` (list), ``authentication_type`` ("SAML"), ``logon_event_id``,
    #: ``access_key_id`` (of the role session named after it)
    sessions: list[dict[str, Any]]
    #: scenario name (see the module doc) -> event ids
    scenarios: dict[str, list[str]] = field(default_factory=dict)
    #: session-level scenario facts (see the module doc)
    session_scenarios: dict[str, list[str]] = field(default_factory=dict)
    #: the tenants (account, region) the world holds; one for :func:`generate_world`
    tenants: list[Tenant] = field(default_factory=lambda: [DEFAULT_TENANT])
    #: event_id -> (account, region) of the network each write (fleet role or not) came from
    write_scope: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: (account, region, YYYY-MM-DD) of each sessions report that never arrives
    missing_reports: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class ScaleWorld:
    root: Path
    cloudtrail_files: list[Path]
    sessions_reports: list[Path]
    n_writes: int
    n_sessions: int = 0
    n_records: int = 0  # writes + logons


# -- small helpers ---------------------------------------------------------------------------------------


def _ms(dt: datetime) -> int:
    return (dt.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)


def _dt(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _iso(ms: int) -> str:
    return _dt(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compact(ms: int) -> str:
    return _dt(ms).strftime("%Y%m%dT%H%M%SZ")


def _sts_expiration(ms: int) -> str:
    """STS ``credentials.expiration`` as CloudTrail renders it: ``Mar 2, 2026, 9:38:05 AM``."""
    d = _dt(ms)
    hour = d.hour % 12 or 12
    return f"{d:%b} {d.day}, {d.year}, {hour}:{d:%M:%S} {'AM' if d.hour < 12 else 'PM'}"


def _floor_sec(ms: int) -> int:
    return ms - ms % _SEC


def _ceil_sec(ms: int) -> int:
    return -(-ms // _SEC) * _SEC


def _day_path(ms: int) -> str:
    return _dt(ms).strftime("%Y/%m/%d")


def _report_paths(day_ms: int, prefix: str = "appstream-logs") -> tuple[str, str]:
    d = _dt(day_ms)
    part = f"schedule=DAILY/year={d:%Y}/month={d:%m}/day={d:%d}"
    return (f"{prefix}/sessions/{part}/daily-session-report-{d:%Y-%m-%d}.csv",
            f"{prefix}/applications/{part}/daily-app-report-{d:%Y-%m-%d}.csv")


def _ct_key(deliver_ms: int, suffix: str, tenant: Tenant | None = None) -> str:
    t = tenant or DEFAULT_TENANT
    return (f"{t.trail_prefix}/CloudTrail/{t.region}/{_day_path(deliver_ms)}/"
            f"{t.account}_CloudTrail_{t.region}_{_dt(deliver_ms):%Y%m%dT%H%MZ}_{suffix}.json.gz")


def _fleet_ip(block: int, i: int) -> str:
    """Fleet addresses: 200 a /24, from 10.40.<block>.10 on (never 10.40.99.x, the idle subnet)."""
    third = block + i // 200
    if third >= 99:
        third += 1
    if third > 255:
        raise ValueError("too many fleet instances for 10.40.0.0/16")
    return f"10.40.{third}.{10 + i % 200}"


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _csv_bytes(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


@dataclass
class _Session:
    sid: str
    fleet: str
    instance_id: str
    ip: str
    start: int  # ms
    end: int
    multi: bool
    user: str = ""
    logon_ms: int = 0
    logon_event_id: str = ""
    client_ips: tuple[str, ...] = ()
    key_id: str = ""
    time_style: str = "z"  # z | offset | frac  (how the report renders its times)
    pinned: bool = False  # edge scenario: keep whole-second times


