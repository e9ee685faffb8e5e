"""The catalog: every output table declared once.

A ``TableSpec`` holds all a table's facts: its columns (Arrow type and meaning), its schema version,
the key that identifies a row and the column whose latest value wins, how compacted files are sorted,
which columns get Parquet Bloom filters, what its ``dt`` partition means, its descriptions and whether
it has a ``<name>_latest`` view.  Everything else is derived from ``CATALOG``: the lake's sort keys,
Bloom filters and "keep the latest row" rules (``lake.py``), the local engine's views
(``query/engine.py``), and -- by ``make catalog`` (scripts/catalog.py) -- ``docs/tables.md`` and the
Glue tables, views and view-recreating named queries in ``template.yaml`` (a test fails on drift).

Add a table: declare a ``TableSpec`` below, add it to ``CATALOG``, run ``make catalog``.
Change a schema only by adding nullable columns at the end and bumping its version.

Conventions
- Every table is Hive-partitioned by ``dt`` (``YYYY-MM-DD`` string, UTC).  ``dt`` is NOT stored in
  the Parquet files; it lives in the directory name, as Athena expects.
- Timestamps are ``timestamp[ms, tz=UTC]`` (Glue ``timestamp``).
- Free-form nested CloudTrail blobs are JSON strings, so the schema stays stable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("ms", tz="UTC")
STR = pa.string()
STRLIST = pa.list_(pa.string())

#: every table's Hive partition column: the row's UTC day, ``YYYY-MM-DD`` (a string in both engines)
PARTITION_COLUMN = "dt"

_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z", re.ASCII)


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str


@dataclass(frozen=True)
class TableSpec:
    """One output table.  The Arrow schema (``schema``) is built from ``columns``; the descriptions
    are not stored in the files (they go to the docs)."""

    name: str
    version: int
    #: one line, the Glue table's ``Description``
    title: str
    #: what a row is, for docs/tables.md
    description: str
    #: what a row's ``dt`` partition is (the day of what)
    partition: str
    columns: tuple[Column, ...]
    #: the columns that identify a row (de-duplication, ``keep_latest``, ``*_latest`` views)
    key: tuple[str, ...]
    #: among rows with the same key the greatest value of this column wins (None: the copies are equal)
    version_column: str | None = None
    #: the order of compacted files: row-group statistics then prune lookups by these columns
    sort_keys: tuple[str, ...] = ()
    #: Parquet Bloom filters (per row group) for equality lookups on columns the files are not sorted by
    bloom_filters: tuple[str, ...] = ()
    #: a ``<name>_latest`` view (latest row per key) in Athena and locally; needs ``version_column``, and
    #: every version of a row must have the same ``dt`` (the view numbers rows per ``dt`` and key)
    latest_view: bool = False
    schema: pa.Schema = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _TABLE_NAME.match(self.name):
            raise ValueError(f"invalid table name {self.name!r}")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names) or PARTITION_COLUMN in names:
            raise ValueError(f"{self.name}: duplicate column names, or a stored {PARTITION_COLUMN!r}")
        for c in self.columns:
            if not c.description.strip():
                raise ValueError(f"{self.name}.{c.name}: no description")
        used = {"key": self.key, "sort_keys": self.sort_keys, "bloom_filters": self.bloom_filters,
                "version_column": (self.version_column,) if self.version_column else ()}
        for what, cols in used.items():
            missing = [c for c in cols if c not in names]
            if missing:
                raise ValueError(f"{self.name}: {what} names unknown columns {missing}")
        if not self.key:
            raise ValueError(f"{self.name}: no key")
        if self.latest_view and not self.version_column:
            raise ValueError(f"{self.name}: a latest view needs a version column")
        schema = pa.schema([pa.field(c.name, c.type) for c in self.columns], metadata={
            b"auditcorr.table": self.name.encode(), b"auditcorr.schema_version": str(self.version).encode()})
        object.__setattr__(self, "schema", schema)


# columns several tables share, declared once
_EVENT_ID = Column("event_id", STR, "CloudTrail `eventID` (unique per event; duplicates are dropped)")
_EVENT_TIME = Column("event_time", TS, "CloudTrail `eventTime`, UTC")
_EVENT_NAME = Column("event_name", STR, "CloudTrail `eventName`")
_EVENT_SOURCE = Column("event_source", STR, "CloudTrail `eventSource`")
_AWS_REGION = Column("aws_region", STR, "CloudTrail `awsRegion`: the region the call was made in")
_RECIPIENT_ACCOUNT = Column("recipient_account_id", STR, "CloudTrail `recipientAccountId`: the account that "
                                                         "received the event")
_BUCKET = Column("bucket", STR, "`requestParameters.bucketName` (or from the object ARN in `resources`)")
_KEY = Column("key", STR, "`requestParameters.key`, the raw object key")
_SOURCE_IP = Column("source_ip", STR, "`sourceIPAddress` as logged (may be a service name or garbage; validated "
                                      "before use)")
_VPC_ENDPOINT = Column("vpc_endpoint_id", STR, "`vpcEndpointId`: set when the call came through a VPC endpoint "
                                               "(private source IP)")
_PRINCIPAL_TYPE = Column("principal_type", STR, "`userIdentity.type` (AssumedRole, SAMLUser, IAMUser, ...)")
_PRINCIPAL_ARN = Column("principal_arn", STR, "`userIdentity.arn`")
_ROLE_SESSION_NAME = Column("role_session_name", STR, "the role session name (last part of the assumed-role ARN)")
_SOURCE_IDENTITY = Column("source_identity", STR, "`sessionContext.sourceIdentity` (writes) or "
                                                  "`requestParameters.sourceIdentity` (logons)")
_USER_AGENT = Column("user_agent", STR, "CloudTrail `userAgent`")
_ERROR_CODE = Column("error_code", STR, "CloudTrail `errorCode` (null when the call succeeded)")
_SOURCE_OBJECT = Column("source_object", STR, "the input object this row was read from")
_SESSION_ID = Column("session_id", STR, "AppStream session id (`user_session_id` / `Id`)")
_USER_ID = Column("user_id", STR, "AppStream user id (for SAML: the SAML subject)")
_FLEET = Column("fleet_name", STR, "the AppStream fleet")
_STACK = Column("stack_name", STR, "the AppStream stack")
_INSTANCE_ID = Column("instance_id", STR, "the streaming instance that served the session")
_ENI_IP = Column("eni_private_ip_address", STR, "the streaming instance's private IP (what S3 logs as "
                                                "`sourceIPAddress` through a VPC endpoint)")
_AUTH_TYPE = Column("authentication_type", STR, "how the user signed in (SAML, USERPOOL, API, ...)")
_REPORT_DATE = Column("report_date", STR, "the usage report's day")
_EXTRA_COLUMNS = Column("extra_columns", STR, "report columns this version of auditcorr does not model, as a "
                                              "JSON object")
_ACCOUNT_ID = Column("account_id", STR, "the account whose network the address belongs to (writes: the scope "
                                        "rule of docs/architecture.md; alerts: their subject's; live: the poller's)")
_REGION = Column("region", STR, "the region of that scope (writes: the bucket's region, `awsRegion`)")
_OBSERVED_AT = Column("observed_at", TS, "time of the AppStream API poll")


S3_WRITES_TABLE = TableSpec(
    name="s3_writes",
    version=2,
    title="CloudTrail S3 data events that write (one row per eventID)",
    description="Every S3 write data event (in-scope or not), one row per CloudTrail `eventID`.",
    partition="the event's UTC date",
    columns=(
        _EVENT_ID, _EVENT_TIME, _EVENT_NAME, _EVENT_SOURCE, _AWS_REGION, _RECIPIENT_ACCOUNT, _BUCKET, _KEY,
        _SOURCE_IP, _VPC_ENDPOINT, _PRINCIPAL_TYPE, _PRINCIPAL_ARN,
        Column("principal_id", STR, "`userIdentity.principalId` (for a role: `AROA...:<session name>`)"),
        Column("principal_account_id", STR, "`userIdentity.accountId`: the account of the caller"),
        Column("role_arn", STR, "the IAM role behind an assumed-role principal (`sessionContext.sessionIssuer.arn`)"),
        _ROLE_SESSION_NAME, _SOURCE_IDENTITY,
        Column("access_key_id", STR, "`userIdentity.accessKeyId` (temporary key id, not a secret)"),
        _USER_AGENT, _ERROR_CODE,
        Column("request_parameters", STR, "`requestParameters` as a JSON string"),
        Column("additional_event_data", STR, "`additionalEventData` as a JSON string"),
        _SOURCE_OBJECT,
        # v2: scope by account and region
        Column("vpc_endpoint_account_id", STR, "`vpcEndpointAccountId`: the account that owns the VPC endpoint "
                                               "(newer events)"),
        Column("invoked_by", STR, "`userIdentity.invokedBy`: the AWS service that made the call for the principal"),
        _ACCOUNT_ID, _REGION,
    ),
    key=("event_id",),
    # ``who``: bucket/key
    sort_keys=("bucket", "key", "event_time"),
)

CREDENTIAL_USES_TABLE = TableSpec(
    name="credential_uses",
    version=1,
    title="CloudTrail calls that start a service's work with the caller's credentials (StartQueryExecution)",
    description="Calls that hand a principal's credentials to a service which then acts for it (Athena's "
                "`StartQueryExecution`: the query's results are written by Athena with the caller's access "
                "key, `invokedBy` athena.amazonaws.com), one row per `eventID`, with the columns of "
                "`s3_writes` (`bucket`, `key`, `request_parameters` and `additional_event_data` empty: a "
                "query's text is not kept). The join places such a service's writes at the "
                "fleet address the same access key was used from (`attributed_activity.match` = "
                "`credentials`).",
    partition="the event's UTC date",
    columns=S3_WRITES_TABLE.columns,
    key=("event_id",),
    sort_keys=("access_key_id", "event_time"),
)

LOGONS_TABLE = TableSpec(
    name="logons",
    version=2,
    title="CloudTrail logon events (AssumeRoleWithSAML, ConsoleLogin, ...)",
    description="Logon-like CloudTrail events (AssumeRoleWithSAML, AssumeRoleWithWebIdentity, ConsoleLogin, "
                "AssumeRole), one row per `eventID`.",
    partition="the event's UTC date",
    columns=(
        _EVENT_ID, _EVENT_TIME, _EVENT_NAME, _EVENT_SOURCE, _AWS_REGION, _RECIPIENT_ACCOUNT, _SOURCE_IP,
        Column("user_name", STR, "who logged on: SAML subject (AssumeRoleWithSAML), web identity user, source "
                                 "identity or role session name (AssumeRole), IAM user name (ConsoleLogin)"),
        _PRINCIPAL_TYPE, _PRINCIPAL_ARN,
        Column("role_arn", STR, "`requestParameters.roleArn`: the role the logon assumed"),
        Column("role_session_name", STR, "`requestParameters.roleSessionName`"),
        _SOURCE_IDENTITY,
        Column("saml_issuer", STR, "`responseElements.issuer`: the SAML identity provider (AssumeRoleWithSAML)"),
        Column("assumed_role_arn", STR, "`responseElements.assumedRoleUser.arn`: the assumed-role ARN the logon "
                                        "created"),
        Column("issued_access_key_id", STR, "access key id issued by the logon (joins to `s3_writes.access_key_id`)"),
        Column("principal_tags", STR, "session tags passed at logon, as a JSON object"),
        Column("outcome", STR, "Success or Failure"),
        _ERROR_CODE, _USER_AGENT, _SOURCE_OBJECT,
        # v2
        Column("account_id", STR, "the account the logon happened in (`recipientAccountId`)"),
        Column("region", STR, "the region the logon was logged in (`awsRegion`)"),
    ),
    key=("event_id",),
    # ``timeline``: logons by user
    sort_keys=("user_name", "event_time"),
)

SESSIONS_TABLE = TableSpec(
    name="sessions",
    version=1,
    title="AppStream sessions from the daily usage reports",
    description="AppStream sessions from the daily sessions usage reports (a session appears in the report "
                "of the day it ENDS); a report delivered again replaces its partition.",
    partition="the report's day",
    columns=(
        _SESSION_ID,
        Column("aws_account_id", STR, "the account of the AppStream fleet"),
        Column("region", STR, "the region of the AppStream fleet"),
        Column("session_start_time", TS, "when the session started, UTC"),
        Column("session_end_time", TS, "when the session ended, UTC"),
        Column("session_duration_in_seconds", pa.int64(), "the session's length as the report gives it"),
        _USER_ID,
        Column("user_arn", STR, "the report's `user_arn`"),
        _AUTH_TYPE,
        Column("authentication_type_user_id", STR, "the report's `authentication_type_user_id`: the user id as the "
                                                   "authentication type knows it"),
        _FLEET, _STACK,
        Column("instance_type", STR, "the streaming instance's type"),
        _ENI_IP,
        Column("connected_at_least_once", pa.bool_(), "whether the user ever connected to the session"),
        Column("client_ip_addresses", STRLIST, "the client IPs the user connected from (the report keeps the last 10)"),
        _INSTANCE_ID,
        Column("is_multisession", pa.bool_(), "whether the instance served several sessions at once (multi-session "
                                              "fleet)"),
        Column("max_session_duration", pa.int64(), "the report's `max_session_duration`: the fleet's longest session"),
        Column("session_type", STR, "the report's `session_type`"),
        _EXTRA_COLUMNS, _REPORT_DATE, _SOURCE_OBJECT,
    ),
    key=("session_id",),
    version_column="report_date",
    sort_keys=("user_id", "session_start_time"),
    bloom_filters=("user_id",),
)

APPLICATIONS_TABLE = TableSpec(
    name="applications",
    version=1,
    title="AppStream applications used per session (daily usage reports)",
    description="AppStream applications usage reports (applications launched per session).",
    partition="the report's day",
    columns=(
        _SESSION_ID,
        Column("application_name", STR, "the application launched in the session"),
        _REPORT_DATE, _EXTRA_COLUMNS, _SOURCE_OBJECT,
    ),
    key=("session_id", "application_name"),
)

ATTRIBUTED_ACTIVITY_TABLE = TableSpec(
    name="attributed_activity",
    version=2,
    title="S3 writes with the session and user behind them (every computation; use attributed_activity_latest)",
    description="Each in-scope S3 write exactly once, with its latest attribution. A recomputation that changes "
                "a row records what it was in `previous_*`.",
    partition="the event's UTC date",
    columns=(
        _EVENT_ID, _EVENT_TIME, _EVENT_NAME, _BUCKET, _KEY, _SOURCE_IP, _VPC_ENDPOINT, _PRINCIPAL_ARN,
        Column("role_arn", STR, "the IAM role behind an assumed-role principal (`sessionContext.sessionIssuer.arn`)"),
        Column("claimed_session_id", STR, "the session id the write claims (per `claims.session_id`), if it looks "
                                          "like one"),
        Column("status", STR, "attributed, ambiguous, pending, unattributed, external or via_service (a service "
                              "called with the principal's credentials, from no address, and its key was seen "
                              "from no fleet address)"),
        Column("match", STR, "what chose the session: claim, window (inside the session), tolerance (clock-skew "
                             "margin), nat (from the NAT egress: none could be) or credentials (a service's call, "
                             "placed at the fleet address its access key was used from)"),
        _USER_ID, _SESSION_ID,
        Column("session_source", STR, "report (usage report, authoritative) or live (AppStream API observation)"),
        Column("session_start_time", TS, "start of the chosen session, UTC"),
        Column("session_end_time", TS, "end of the chosen session, UTC"),
        Column("candidate_user_ids", STRLIST, "the users of `candidate_session_ids`, same order"),
        Column("candidate_session_ids", STRLIST, "every session that held the IP within the tolerant window, sorted"),
        _FLEET, _STACK, _INSTANCE_ID,
        Column("logon_event_id", STR, "the user's logon closest before the session start"),
        Column("logon_time", TS, "the time of that logon"),
        Column("logon_source_ip", STR, "the client IP of that logon"),
        _ERROR_CODE,
        Column("computed_at", TS, "when this attribution was computed"),
        # what a recomputation changed (late report, live -> report): never a silent rewrite
        Column("previous_status", STR, "status before the last recomputation that changed it"),
        Column("previous_session_id", STR, "session before the last recomputation that changed it"),
        Column("previous_session_source", STR, "session source before the last recomputation that changed it"),
        # v2: the write's scope; only sessions of the same scope are candidates
        _ACCOUNT_ID, _REGION,
        # version 2 (additive): the integrity of the CloudTrail log file the write was read from
        Column("log_integrity", STR, "the `log_file_integrity` status of the CloudTrail log file this write was read "
                                     "from when the row was computed: not_yet_covered at first, refreshed when the day "
                                     "is re-attributed (its sessions report) and at once when the file is found "
                                     "modified; the current value is `log_file_integrity_latest.status` joined on "
                                     "`log_file` = `object_key` (null in rows written before version 2)"),
        Column("log_file", STR, "the CloudTrail log file the write was read from, as ingested "
                                "(`s3_writes.source_object`; null in rows written before version 2)"),
    ),
    key=("event_id",),
    version_column="computed_at",
    # ``timeline``'s places: source_ip
    sort_keys=("source_ip", "event_time"),
    # ``timeline``'s user_id, ``who``'s event_id (docs/performance.md, section 4)
    bloom_filters=("user_id", "event_id"),
    latest_view=True,
)

ALERTS_TABLE = TableSpec(
    name="alerts",
    version=2,
    title="Signal (alert) state changes (use alerts_latest for the current state)",
    description="Every state change of every signal: one alert per (rule, event) with its evidence (append-only "
                "history). Signals are grouped into `findings`, which are what is published. Use the view "
                "`alerts_latest` for the current state.",
    partition="the UTC date of the event that raised the alert",
    columns=(
        Column("alert_id", STR, "deterministic id: hash of rule and subject (event id or session id)"),
        Column("rule", STR, "the detection rule"),
        Column("severity", STR, "ASFF severity label"),
        Column("status", STR, "open or closed"),
        Column("status_reason", STR, "why an alert was closed or re-opened"),
        _EVENT_ID, _EVENT_TIME, _SOURCE_IP, _BUCKET, _KEY, _PRINCIPAL_ARN, _USER_ID, _SESSION_ID,
        Column("claimed_session_id", STR, "the session id the write claims, if any"),
        Column("title", STR, "the rule's one-line title"),
        Column("description", STR, "what happened, in words, with the alert's fields"),
        Column("detected_at", TS, "when the alert was first raised"),
        Column("updated_at", TS, "when this row (state) was written"),
        # v2
        _ACCOUNT_ID, _REGION,
        # v2: findings
        Column("finding_id", STR, "the finding this signal belongs to (hash of rule, grouping key and dedup window)"),
        Column("suppressed_by", STR, "the `[[suppress]]` entry that matched (its name or id); null: not suppressed. "
                                     "Suppressed signals are kept but never published"),
    ),
    key=("alert_id",),
    version_column="updated_at",
    sort_keys=("event_time", "alert_id"),
    bloom_filters=("user_id",),
    latest_view=True,
)

FINDINGS_TABLE = TableSpec(
    name="findings",
    version=1,
    title="Findings: signals grouped by rule, grouping key and dedup window (use findings_latest)",
    description="Every version of every finding (append-only history): the signals (`alerts`) of one rule with the "
                "same grouping key in one dedup window, with their count, first and last event and a sample. "
                "A finding closes when every signal in it is retracted. Use the view `findings_latest` for the "
                "current state.",
    partition="the UTC date of the start of the finding's dedup window",
    columns=(
        Column("finding_id", STR, "deterministic id: hash of rule, account, grouping key and window start"),
        Column("rule", STR, "the detection rule"),
        Column("severity", STR, "ASFF severity label (the highest of its signals)"),
        Column("status", STR, "open, closed (every signal retracted) or suppressed (every open signal suppressed)"),
        Column("status_reason", STR, "why the finding was closed or suppressed"),
        Column("account_id", STR, "the AWS account of the signals, when they carry one"),
        Column("group_key", STR, "the rule's grouping key, as `field=value; ...`"),
        _PRINCIPAL_ARN, _SOURCE_IP, _USER_ID,
        Column("claimed_session_id", STR, "the claimed session id, when it is part of the grouping key"),
        Column("window_start", TS, "start of the dedup window (UTC, aligned to the epoch)"),
        Column("window_end", TS, "end of the dedup window (exclusive)"),
        Column("first_event_time", TS, "the earliest event among the counted signals"),
        Column("last_event_time", TS, "the latest event among the counted signals"),
        Column("event_count", pa.int64(), "how many signals are counted: the open unsuppressed ones (open), the "
                                          "suppressed ones (suppressed), every retracted one (closed)"),
        Column("suppressed_count", pa.int64(), "how many open signals of the finding are suppressed"),
        Column("sample_event_ids", STRLIST, "up to 10 counted events, earliest first"),
        Column("title", STR, "the rule's one-line title"),
        Column("description", STR, "what the finding is, in words, with its earliest signal as an example"),
        Column("previous_status", STR, "the status of the version before this one (null for the first)"),
        Column("previous_updated_at", TS, "when the version before this one was written (null for the first)"),
        Column("status_since", TS, "when the finding entered its current status"),
        Column("created_at", TS, "when the finding was first written"),
        Column("updated_at", TS, "when this row (version) was written"),
    ),
    key=("finding_id",),
    version_column="updated_at",
    sort_keys=("window_start", "finding_id"),
    latest_view=True,
)

LIVE_SESSIONS_TABLE = TableSpec(
    name="live_sessions",
    version=2,
    title="Live AppStream DescribeSessions observations",
    description="Snapshots of the live AppStream API (DescribeSessions), one row per session per poll.",
    partition="the UTC date of the poll",
    columns=(
        _OBSERVED_AT, _SESSION_ID, _USER_ID, _AUTH_TYPE, _STACK, _FLEET,
        Column("state", STR, "`State`: PENDING, ACTIVE or EXPIRED"),
        Column("connection_state", STR, "`ConnectionState`: CONNECTED or NOT_CONNECTED"),
        Column("start_time", TS, "`StartTime`: when the session started, UTC"),
        Column("max_expiration_time", TS, "`MaxExpirationTime`: when the session will end at the latest, UTC"),
        _ENI_IP, _INSTANCE_ID,
        # v2
        _ACCOUNT_ID, _REGION,
    ),
    key=("session_id", "observed_at"),
)

LIVE_POLLS_TABLE = TableSpec(
    name="live_polls",
    version=2,
    title="Live AppStream polls (which stack/fleet was polled when, and errors)",
    description="One row per (stack, fleet) per poll: how many sessions were seen, or the error.",
    partition="the UTC date of the poll",
    columns=(
        _OBSERVED_AT, _STACK, _FLEET,
        Column("sessions_seen", pa.int64(), "how many sessions the poll saw"),
        Column("error", STR, "why the poll failed (null when it succeeded)"),
        # v2
        _ACCOUNT_ID, _REGION,
    ),
    key=("stack_name", "fleet_name", "observed_at"),
)

LOG_FILE_INTEGRITY_TABLE = TableSpec(
    name="log_file_integrity",
    version=1,
    title="CloudTrail log file and digest integrity (use log_file_integrity_latest)",
    description="One row per CloudTrail log file and per digest file each time a validation changes what is known "
                "of it (append-only history; `log_file_integrity_latest` holds the current state). Log files are "
                "checked against the SHA-256 their signed digest lists; digests by signature and chain "
                "(auditcorr.integrity, ADR 0007).",
    partition="the UTC day of the file's time (log file: the delivery time in its name; digest: its end time)",
    columns=(
        Column("object_key", STR, "the object as ingested (`s3://bucket/key` or a local path); for a log file a digest "
                                  "lists but nobody delivered, the key the digest lists"),
        Column("rel_key", STR, "the key from `AWSLogs/` on: how digests name a file"),
        Column("file_kind", STR, "log or digest"),
        Column("account", STR, "the account in the key"),
        Column("region", STR, "the region in the key"),
        Column("org_id", STR, "the organisation id in the key (organisation trails)"),
        Column("file_time", TS, "log file: the delivery time in its name; digest: `digestEndTime`"),
        Column("digest_key", STR, "log file: the digest that lists it (as ingested)"),
        Column("expected_sha256", STR, "log file: the SHA-256 of its uncompressed content the digest lists"),
        Column("actual_sha256", STR, "the SHA-256 of the uncompressed content as ingested (digest: of the digest)"),
        Column("status", STR, "log file: verified, modified, missing, not_yet_covered or unverifiable; digest: "
                              "verified (signature and chain hold), invalid (signature or chain do not) or "
                              "unverifiable (no key or no signature metadata)"),
        Column("reason", STR, "why the status, when it is not plain (e.g. hash_mismatch, gzip_trailing_data, "
                              "digest_no_key, digest_missing, trusted_by_successor_hash)"),
        Column("trail", STR, "digest: the trail name in its key"),
        Column("home_region", STR, "digest: the trail's home region in its key"),
        Column("backfill", pa.bool_(), "digest: a backfill digest (its own chain)"),
        Column("digest_start", TS, "digest: `digestStartTime`"),
        Column("fingerprint", STR, "digest: the public key fingerprint it names"),
        Column("signature_status", STR, "digest: valid, valid_from_successor, invalid, no_metadata, no_key, "
                                        "unsupported_algorithm, invalid_format or moved"),
        Column("trust_source", STR, "digest: why its content is trusted (signature, successor_signature, "
                                    "successor_hash), null when it is not"),
        Column("chain_status", STR, "digest: ok, chain_start, gap_before, broken_link or unknown"),
        Column("chain_reason", STR, "digest: why the chain status (e.g. previous_digest_missing, "
                                    "previous_hash_mismatch)"),
        Column("missing_before", pa.int64(), "digest: digests estimated missing just before it (hourly cadence)"),
        Column("previous_key", STR, "digest: `previousDigestS3Object`"),
        Column("log_count", pa.int64(), "digest: how many log files it lists"),
        Column("checked_at", TS, "when this validation ran"),
    ),
    key=("rel_key",),
    version_column="checked_at",
    sort_keys=("rel_key",),
    latest_view=True,
)

EVENT_ID_CONFLICTS_TABLE = TableSpec(
    name="event_id_conflicts",
    version=1,
    title="Two different records under one CloudTrail eventID",
    description="One row per copy of an `eventID` whose content differs from the copy kept (the first wins): "
                "real duplicate deliveries are identical, so a row here is evidence of tampering or a bug.",
    partition="the UTC date the conflict was found (the pipeline's clock)",
    columns=(
        _EVENT_ID,
        Column("table_name", STR, "the table the kept copy is in: `s3_writes` or `logons`"),
        Column("kept_source", STR, "the input object the kept (first) copy came from"),
        Column("kept_hash", STR, "BLAKE2b-128 (hex) of the kept copy (see `hash_of`)"),
        Column("other_source", STR, "the input object the differing copy came from"),
        Column("other_hash", STR, "BLAKE2b-128 (hex) of the differing copy"),
        Column("hash_of", STR, "`record`: both copies in one object, hashes of the whole records as canonical "
                               "JSON (sorted keys); `row`: copies in two objects, hashes of their stored rows "
                               "(the table's columns but `source_object`, `account_id`, `region`)"),
        Column("detected_at", TS, "when the differing copy was ingested (the pipeline's clock), UTC"),
    ),
    key=("event_id", "table_name", "other_source", "other_hash"),
)

#: every output table, in the order of the docs and the template
CATALOG: dict[str, TableSpec] = {t.name: t for t in (
    S3_WRITES_TABLE, CREDENTIAL_USES_TABLE, LOGONS_TABLE, SESSIONS_TABLE, APPLICATIONS_TABLE,
    ATTRIBUTED_ACTIVITY_TABLE, ALERTS_TABLE, FINDINGS_TABLE, LIVE_SESSIONS_TABLE, LIVE_POLLS_TABLE,
    LOG_FILE_INTEGRITY_TABLE, EVENT_ID_CONFLICTS_TABLE)}

# -- derived views of the catalog (the names the rest of the code imports) ------------------------
TABLES: dict[str, pa.Schema] = {name: t.schema for name, t in CATALOG.items()}
S3_WRITES = S3_WRITES_TABLE.schema
CREDENTIAL_USES = CREDENTIAL_USES_TABLE.schema
LOGONS = LOGONS_TABLE.schema
SESSIONS = SESSIONS_TABLE.schema
APPLICATIONS = APPLICATIONS_TABLE.schema
ATTRIBUTED_ACTIVITY = ATTRIBUTED_ACTIVITY_TABLE.schema
ALERTS = ALERTS_TABLE.schema
FINDINGS = FINDINGS_TABLE.schema
LIVE_SESSIONS = LIVE_SESSIONS_TABLE.schema
LIVE_POLLS = LIVE_POLLS_TABLE.schema
LOG_FILE_INTEGRITY = LOG_FILE_INTEGRITY_TABLE.schema
EVENT_ID_CONFLICTS = EVENT_ID_CONFLICTS_TABLE.schema

#: the columns that identify a row for "keep the latest row" views and de-duplication
ROW_KEYS: dict[str, tuple[str, ...]] = {name: t.key for name, t in CATALOG.items()}
#: the column whose latest value wins among duplicate keys (None: any copy, they are identical)
ROW_VERSION: dict[str, str | None] = {name: t.version_column for name, t in CATALOG.items()}


def schema_version(schema: pa.Schema) -> int:
    return int((schema.metadata or {}).get(b"auditcorr.schema_version", b"0"))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns, order and types (missing columns null)."""
    cols = []
    for field_ in schema:
        if field_.name in table.column_names:
            col = table.column(field_.name)
            if col.type != field_.type:
                col = col.cast(field_.type)
            cols.append(col)
        else:
            cols.append(pa.nulls(table.num_rows, field_.type))
    return pa.Table.from_arrays(cols, schema=schema)
