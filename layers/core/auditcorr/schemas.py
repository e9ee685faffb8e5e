"""One explicit, versioned Arrow schema per output table.

These schemas are the contract between the core, the lake files, the Glue tables in
``template.yaml`` (a test checks they match) and ``docs/tables.md``.  Change a schema only by
adding nullable columns at the end and bumping its version.

Conventions
- Every table is Hive-partitioned by ``dt`` (``YYYY-MM-DD`` string, UTC).  ``dt`` is NOT stored in
  the Parquet files; it lives in the directory name, as Athena expects.
- Timestamps are ``timestamp[ms, tz=UTC]`` (Glue ``timestamp``).
- Free-form nested CloudTrail blobs are JSON strings, so the schema stays stable.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("ms", tz="UTC")
STR = pa.string()
STRLIST = pa.list_(pa.string())

PARTITION_COLUMN = "dt"


def _schema(name: str, version: int, fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    return pa.schema(
        [pa.field(n, t) for n, t in fields],
        metadata={b"auditcorr.table": name.encode(), b"auditcorr.schema_version": str(version).encode()},
    )


S3_WRITES = _schema(
    "s3_writes",
    1,
    [
        ("event_id", STR),
        ("event_time", TS),
        ("event_name", STR),
        ("event_source", STR),
        ("aws_region", STR),
        ("recipient_account_id", STR),
        ("bucket", STR),
        ("key", STR),
        ("source_ip", STR),
        ("vpc_endpoint_id", STR),
        ("principal_type", STR),
        ("principal_arn", STR),
        ("principal_id", STR),
        ("principal_account_id", STR),
        ("role_arn", STR),
        ("role_session_name", STR),
        ("source_identity", STR),
        ("access_key_id", STR),
        ("user_agent", STR),
        ("error_code", STR),
        ("request_parameters", STR),
        ("additional_event_data", STR),
        ("source_object", STR),
    ],
)

LOGONS = _schema(
    "logons",
    1,
    [
        ("event_id", STR),
        ("event_time", TS),
        ("event_name", STR),
        ("event_source", STR),
        ("aws_region", STR),
        ("recipient_account_id", STR),
        ("source_ip", STR),
        ("user_name", STR),
        ("principal_type", STR),
        ("principal_arn", STR),
        ("role_arn", STR),
        ("role_session_name", STR),
        ("source_identity", STR),
        ("saml_issuer", STR),
        ("assumed_role_arn", STR),
        ("issued_access_key_id", STR),
        ("principal_tags", STR),
        ("outcome", STR),
        ("error_code", STR),
        ("user_agent", STR),
        ("source_object", STR),
    ],
)

SESSIONS = _schema(
    "sessions",
    1,
    [
        ("session_id", STR),
        ("aws_account_id", STR),
        ("region", STR),
        ("session_start_time", TS),
        ("session_end_time", TS),
        ("session_duration_in_seconds", pa.int64()),
        ("user_id", STR),
        ("user_arn", STR),
        ("authentication_type", STR),
        ("authentication_type_user_id", STR),
        ("fleet_name", STR),
        ("stack_name", STR),
        ("instance_type", STR),
        ("eni_private_ip_address", STR),
        ("connected_at_least_once", pa.bool_()),
        ("client_ip_addresses", STRLIST),
        ("instance_id", STR),
        ("is_multisession", pa.bool_()),
        ("max_session_duration", pa.int64()),
        ("session_type", STR),
        ("extra_columns", STR),
        ("report_date", STR),
        ("source_object", STR),
    ],
)

APPLICATIONS = _schema(
    "applications",
    1,
    [
        ("session_id", STR),
        ("application_name", STR),
        ("report_date", STR),
        ("extra_columns", STR),
        ("source_object", STR),
    ],
)

ATTRIBUTED_ACTIVITY = _schema(
    "attributed_activity",
    1,
    [
        ("event_id", STR),
        ("event_time", TS),
        ("event_name", STR),
        ("bucket", STR),
        ("key", STR),
        ("source_ip", STR),
        ("vpc_endpoint_id", STR),
        ("principal_arn", STR),
        ("role_arn", STR),
        ("claimed_session_id", STR),
        ("status", STR),
        ("match", STR),
        ("user_id", STR),
        ("session_id", STR),
        ("session_source", STR),
        ("session_start_time", TS),
        ("session_end_time", TS),
        ("candidate_user_ids", STRLIST),
        ("candidate_session_ids", STRLIST),
        ("fleet_name", STR),
        ("stack_name", STR),
        ("instance_id", STR),
        ("logon_event_id", STR),
        ("logon_time", TS),
        ("logon_source_ip", STR),
        ("error_code", STR),
        ("computed_at", TS),
        # what a recomputation changed (late report, live -> report): never a silent rewrite
        ("previous_status", STR),
        ("previous_session_id", STR),
        ("previous_session_source", STR),
    ],
)

ALERTS = _schema(
    "alerts",
    1,
    [
        ("alert_id", STR),
        ("rule", STR),
        ("severity", STR),
        ("status", STR),
        ("status_reason", STR),
        ("event_id", STR),
        ("event_time", TS),
        ("source_ip", STR),
        ("bucket", STR),
        ("key", STR),
        ("principal_arn", STR),
        ("user_id", STR),
        ("session_id", STR),
        ("claimed_session_id", STR),
        ("title", STR),
        ("description", STR),
        ("detected_at", TS),
        ("updated_at", TS),
    ],
)

LIVE_SESSIONS = _schema(
    "live_sessions",
    1,
    [
        ("observed_at", TS),
        ("session_id", STR),
        ("user_id", STR),
        ("authentication_type", STR),
        ("stack_name", STR),
        ("fleet_name", STR),
        ("state", STR),
        ("connection_state", STR),
        ("start_time", TS),
        ("max_expiration_time", TS),
        ("eni_private_ip_address", STR),
        ("instance_id", STR),
    ],
)

LIVE_POLLS = _schema(
    "live_polls",
    1,
    [
        ("observed_at", TS),
        ("stack_name", STR),
        ("fleet_name", STR),
        ("sessions_seen", pa.int64()),
        ("error", STR),
    ],
)

TABLES: dict[str, pa.Schema] = {
    "s3_writes": S3_WRITES,
    "logons": LOGONS,
    "sessions": SESSIONS,
    "applications": APPLICATIONS,
    "attributed_activity": ATTRIBUTED_ACTIVITY,
    "alerts": ALERTS,
    "live_sessions": LIVE_SESSIONS,
    "live_polls": LIVE_POLLS,
}

#: the column that identifies a row for "keep the latest row" views and de-duplication
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "s3_writes": ("event_id",),
    "logons": ("event_id",),
    "sessions": ("session_id",),
    "applications": ("session_id", "application_name"),
    "attributed_activity": ("event_id",),
    "alerts": ("alert_id",),
    "live_sessions": ("session_id", "observed_at"),
    "live_polls": ("stack_name", "fleet_name", "observed_at"),
}

#: the column whose latest value wins among duplicate keys (None: any copy, they are identical)
ROW_VERSION: dict[str, str | None] = {
    "s3_writes": None,
    "logons": None,
    "sessions": "report_date",
    "applications": None,
    "attributed_activity": "computed_at",
    "alerts": "updated_at",
    "live_sessions": None,
    "live_polls": None,
}


def schema_version(schema: pa.Schema) -> int:
    return int((schema.metadata or {}).get(b"auditcorr.schema_version", b"0"))


def empty(table: str) -> pa.Table:
    return TABLES[table].empty_table()


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns, order and types (missing columns null)."""
    cols = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            if col.type != field.type:
                col = col.cast(field.type)
            cols.append(col)
        else:
            cols.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(cols, schema=schema)
