"""Generate docs/tables.md from the Arrow schemas (a test keeps the two in step).

Usage: python scripts/gen_tables_doc.py > docs/tables.md
"""

from __future__ import annotations

import pyarrow as pa

from auditcorr.schemas import PARTITION_COLUMN, ROW_KEYS, ROW_VERSION, TABLES, schema_version

ABOUT = {
    "s3_writes": "Every S3 write data event (in-scope or not), one row per CloudTrail `eventID`. "
                 "Partition: the event's UTC date.",
    "logons": "Logon-like CloudTrail events (AssumeRoleWithSAML, AssumeRoleWithWebIdentity, ConsoleLogin, "
              "AssumeRole), one row per `eventID`. Partition: the event's UTC date.",
    "sessions": "AppStream sessions from the daily sessions usage reports. Partition: the report's day "
                "(a session appears in the report of the day it ENDS); a report delivered again replaces "
                "its partition.",
    "applications": "AppStream applications usage reports (applications launched per session). "
                    "Partition: the report's day.",
    "attributed_activity": "Each in-scope S3 write exactly once, with its latest attribution. Partition: "
                           "the event's UTC date. A recomputation that changes a row records what it was in "
                           "`previous_*`.",
    "alerts": "Every state change of every alert (append-only history). Use the view `alerts_latest` for "
              "the current state. Partition: the UTC date of the event that raised it.",
    "live_sessions": "Snapshots of the live AppStream API (DescribeSessions), one row per session per poll. "
                     "Partition: the UTC date of the poll.",
    "live_polls": "One row per (stack, fleet) per poll: how many sessions were seen, or the error. "
                  "Partition: the UTC date of the poll.",
}

COLUMNS = {
    "event_id": "CloudTrail `eventID` (unique per event; duplicates are dropped)",
    "event_time": "CloudTrail `eventTime`, UTC",
    "event_name": "CloudTrail `eventName`",
    "event_source": "CloudTrail `eventSource`",
    "bucket": "`requestParameters.bucketName` (or from the object ARN in `resources`)",
    "key": "`requestParameters.key`, the raw object key",
    "source_ip": "`sourceIPAddress` as logged (may be a service name or garbage; validated before use)",
    "vpc_endpoint_id": "`vpcEndpointId`: set when the call came through a VPC endpoint (private source IP)",
    "principal_arn": "`userIdentity.arn`",
    "role_arn": "the IAM role behind an assumed-role principal (`sessionContext.sessionIssuer.arn`)",
    "role_session_name": "the role session name (last part of the assumed-role ARN)",
    "source_identity": "`sessionContext.sourceIdentity` (writes) or `requestParameters.sourceIdentity` (logons)",
    "access_key_id": "`userIdentity.accessKeyId` (temporary key id, not a secret)",
    "request_parameters": "`requestParameters` as a JSON string",
    "additional_event_data": "`additionalEventData` as a JSON string",
    "source_object": "the input object this row was read from",
    "user_name": "who logged on: SAML subject (AssumeRoleWithSAML), web identity user, source identity or "
                 "role session name (AssumeRole), IAM user name (ConsoleLogin)",
    "issued_access_key_id": "access key id issued by the logon (joins to `s3_writes.access_key_id`)",
    "principal_tags": "session tags passed at logon, as a JSON object",
    "outcome": "Success or Failure",
    "session_id": "AppStream session id (`user_session_id` / `Id`)",
    "claimed_session_id": "the session id the write claims (per `claims.session_id`), if it looks like one",
    "status": "attributed, ambiguous, pending, unattributed or external (attributed_activity); "
              "open or closed (alerts)",
    "match": "what chose the session: claim, window (inside the session) or tolerance (clock-skew margin)",
    "user_id": "AppStream user id (for SAML: the SAML subject)",
    "session_source": "report (usage report, authoritative) or live (AppStream API observation)",
    "candidate_session_ids": "every session that held the IP within the tolerant window, sorted",
    "candidate_user_ids": "the users of `candidate_session_ids`, same order",
    "logon_event_id": "the user's logon closest before the session start",
    "computed_at": "when this attribution was computed",
    "previous_status": "status before the last recomputation that changed it",
    "previous_session_id": "session before the last recomputation that changed it",
    "previous_session_source": "session source before the last recomputation that changed it",
    "alert_id": "deterministic id: hash of rule and subject (event id or session id)",
    "rule": "the detection rule",
    "severity": "ASFF severity label",
    "status_reason": "why an alert was closed or re-opened",
    "detected_at": "when the alert was first raised",
    "updated_at": "when this row (state) was written",
    "observed_at": "time of the AppStream API poll",
    "report_date": "the usage report's day",
    "extra_columns": "report columns this version of auditcorr does not model, as a JSON object",
}


def glue_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_string(t):
        return "string"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_list(t):
        return f"array<{glue_type(t.value_type)}>"
    raise TypeError(t)


def render() -> str:
    out = ["# Tables", "",
           "Generated from `layers/core/auditcorr/schemas.py` by `python scripts/gen_tables_doc.py` "
           "(a test fails when this file is stale).", "",
           "All tables: Parquet (ZSTD), Hive partitions `dt=YYYY-MM-DD` (a **string** partition column, UTC, "
           "in Athena and locally), timestamps `timestamp[ms, UTC]` (Glue `timestamp`). Nested CloudTrail "
           "blobs are JSON strings. The schema version is in each file's metadata "
           "(`auditcorr.schema_version`).", "",
           "Views (both engines): `attributed_activity_latest` (latest row per `event_id`), "
           "`alerts_latest` (latest row per `alert_id`).", ""]
    for name, schema in TABLES.items():
        key = ", ".join(ROW_KEYS[name])
        ver = ROW_VERSION[name]
        out += [f"## `{name}` (schema v{schema_version(schema)})", "", ABOUT[name], "",
                f"Row key: `{key}`" + (f"; latest by `{ver}`." if ver else "."), "",
                "| column | Arrow type | Glue type | meaning |", "|---|---|---|---|"]
        for f in schema:
            out.append(f"| `{f.name}` | `{f.type}` | `{glue_type(f.type)}` | {COLUMNS.get(f.name, '')} |")
        out.append(f"| `{PARTITION_COLUMN}` | partition | `string` | UTC date, `YYYY-MM-DD` |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
