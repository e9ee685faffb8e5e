"""Builders for real-shaped CloudTrail records and usage-report CSVs (synthetic, for tests)."""

from __future__ import annotations

import csv
import gzip
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

ACCOUNT = "111122223333"
FLEET_ROLE = f"arn:aws:iam::{ACCOUNT}:role/AppStreamFleetRole"
T0 = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)

SESSION_COLUMNS = [
    "user_session_id", "aws_account_id", "region", "session_start_time", "session_end_time",
    "session_duration_in_seconds", "user_id", "user_arn", "authentication_type", "authentication_type_user_id",
    "fleet_name", "stack_name", "instance_type", "eni_private_ip_address", "connected_at_least_once",
    "client_ip_addresses", "google_drive_enabled", "one_drive_enabled", "home_folders_storage_location",
    "user_settings_clipboard_copy_from_local_device", "user_settings_clipboard_copy_to_local_device",
    "user_settings_file_upload", "user_settings_file_download", "user_settings_printing_to_local_device",
    "application_settings_enabled", "domain_joined", "max_session_duration", "session_type", "stream_view",
    "streaming_experience_settings_protocol", "instance_id", "is_multisession",
]


def ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sid(n: int) -> str:
    return str(uuid.UUID(int=0xA5500000_0000_4000_8000_000000000000 + n))


def put(at: datetime, ip: str, key: str = "data/report.csv", session_name: str = "AppStream2.0",
        role: str = "AppStreamFleetRole", event_id: str | None = None, bucket: str = "research-data",
        event_name: str = "PutObject", **extra: Any) -> dict[str, Any]:
    rec = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLEROLEID:{session_name}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session_name}",
            "accountId": ACCOUNT,
            "accessKeyId": "ASIAEXAMPLEKEY000001",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEROLEID",
                                  "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "accountId": ACCOUNT,
                                  "userName": role},
                "attributes": {"creationDate": ts(at - timedelta(minutes=30)), "mfaAuthenticated": "false"},
            },
        },
        "eventTime": ts(at),
        "eventSource": "s3.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "[aws-cli/2.15.0]",
        "requestParameters": {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3.us-east-1.amazonaws.com"},
        "responseElements": None,
        "requestID": "EXAMPLE123",
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                      {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": ACCOUNT,
        "vpcEndpointId": "vpce-0a1b2c3d4e5f60718",
        "eventCategory": "Data",
    }
    rec.update(extra)
    return rec


def saml_logon(at: datetime, user: str, ip: str = "198.51.100.7", event_id: str | None = None) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "SAMLUser", "principalId": f"EXAMPLEbase64=:{user}", "userName": user,
                         "identityProvider": f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta"},
        "eventTime": ts(at),
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRoleWithSAML",
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "Mozilla/5.0",
        "requestParameters": {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/AppStreamSAMLRole",
                              "principalArn": f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta",
                              "roleSessionName": user, "durationSeconds": 3600},
        "responseElements": {"subject": user, "subjectType": "persistent", "issuer": "http://www.okta.com/x",
                             "audience": "https://signin.aws.amazon.com/saml",
                             "assumedRoleUser": {"arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AppStreamSAMLRole/{user}",
                                                 "assumedRoleId": f"AROAEX:{user}"},
                             "credentials": {"accessKeyId": "ASIALOGONKEY0000001", "expiration": "x"}},
        "eventID": event_id or str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }


def trail(records: list[dict[str, Any]], gz: bool = True) -> bytes:
    body = orjson.dumps({"Records": records})
    return gzip.compress(body) if gz else body


def session_row(session_id: str, user: str, ip: str, start: datetime, end: datetime, fleet: str = "analytics-single",
                multi: bool = False, instance: str = "i-0123456789abcdef0", **extra: str) -> dict[str, str]:
    row = {c: "" for c in SESSION_COLUMNS}
    row.update({
        "user_session_id": session_id, "aws_account_id": ACCOUNT, "region": "us-east-1",
        "session_start_time": ts(start), "session_end_time": ts(end),
        "session_duration_in_seconds": str(int((end - start).total_seconds())), "user_id": user,
        "authentication_type": "SAML", "fleet_name": fleet, "stack_name": "analytics",
        "instance_type": "stream.standard.medium", "eni_private_ip_address": ip,
        "connected_at_least_once": "true", "client_ip_addresses": "198.51.100.7",
        "instance_id": instance, "is_multisession": "true" if multi else "false",
    })
    row.update(extra)
    return row


def report_csv(rows: list[dict[str, str]], columns: list[str] | None = None) -> bytes:
    columns = columns or SESSION_COLUMNS
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue().encode()


def report_name(day: str) -> str:
    y, m, d = day.split("-")
    # the bucket AppStream creates for the reports: appstream-logs-<region>-<account>-<random>
    return (f"appstream-logs-us-east-1-{ACCOUNT}-f00d/sessions/schedule=DAILY/year={y}/month={m}/day={d}/"
            f"daily-session-report-{day}.csv")


def ct_name(n: int, day: str = "2026/03/02") -> str:
    """A CloudTrail key for the ``n``-th object of ``day``.  Its delivery time (which bounds the
    plausible event times, ingest/plausible.py) is the end of the next day, so that any event of the
    day or of the night after it fits; ``n`` makes the name unique."""
    delivered = datetime.strptime(day, "%Y/%m/%d") + timedelta(days=1)
    return (f"cloudtrail/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{day}/"
            f"{ACCOUNT}_CloudTrail_us-east-1_{delivered:%Y%m%d}T2359Z_{n:016d}.json.gz")
