"""The synthetic world behind the ``events/`` payloads (synthetic data: no real usage report is public).

Two analysts on one single-session fleet, 2026-03-02 (UTC):
- alice, session S1 on 10.40.1.10, 07:50-10:30; bob, session S2 on 10.40.1.11, 07:55-10:30.
- The CloudTrail files named in ``events/ingest_cloudtrail/*`` hold their logons and writes, one write
  from bob's instance that CLAIMS alice's session (a disguised session) and one write with the fleet
  role's credentials from outside the fleet (credential replay).
- The usage reports named in ``events/ingest_usage_report/*`` hold the two sessions and their apps.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests import factories as f
from tests.integration.aws import APPSTREAM_BUCKET, CLOUDTRAIL_BUCKET, LAKE_BUCKET, LAKE_PREFIX, repo_path

T0 = f.T0  # 2026-03-02T08:00:00Z
S1, S2 = f.sid(1), f.sid(2)
ALICE_IP, BOB_IP, OUTSIDE_IP = "10.40.1.10", "10.40.1.11", "203.0.113.9"

ACCOUNT = "111122223333"


def ct_key(hhmm: str, suffix: str) -> str:
    return (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/03/02/"
            f"{ACCOUNT}_CloudTrail_us-east-1_20260302T{hhmm}Z_{suffix}.json.gz")


KEY_S3 = ct_key("0835", "Xk3f9Qm2Lp7Rt1Va")
KEY_EB = ct_key("0840", "Bn8Hd2Wq5Zc4Ye6U")
KEY_SNS1 = ct_key("0845", "Mf7Kp3Tx9Gs1Jd2R")
KEY_SNS2 = ct_key("0850", "Qa4Ve8Lc6Nh2Pw5S")
KEY_SNSRAW = ct_key("0855", "Tz1Rb7Ky3Fu9Dm4H")
SESSIONS_KEY = "sessions/schedule=DAILY/year=2026/month=03/day=02/daily-session-report-2026-03-02.csv"
APPS_KEY = "applications/schedule=DAILY/year=2026/month=03/day=02/daily-app-report-2026-03-02.csv"
ALERT_KEY = f"{LAKE_PREFIX}/findings/dt=2026-03-02/part-0a1b2c3d4e5f60718293a4b5.parquet"
ALERT_NAME = "part-0a1b2c3d4e5f60718293a4b5"

# event ids (CloudTrail eventID) of the writes, per file
EV = {
    "alice_put": "11111111-0000-4000-8000-000000000001",
    "bob_claims_alice": "11111111-0000-4000-8000-000000000002",
    "replay": "11111111-0000-4000-8000-000000000003",
    "alice_put2": "11111111-0000-4000-8000-000000000004",
    "bob_put": "11111111-0000-4000-8000-000000000005",
    "alice_logon": "22222222-0000-4000-8000-000000000001",
    "bob_logon": "22222222-0000-4000-8000-000000000002",
}

#: object key prefix of the research data the analysts write (personal: must never reach the logs)
DATA_KEY_ALICE = "exports/alice-private-cohort.csv"


def cloudtrail_files() -> dict[str, bytes]:
    m = timedelta(minutes=1)
    return {
        KEY_S3: f.trail([
            f.saml_logon(T0 - 15 * m, "alice", event_id=EV["alice_logon"]),
            f.put(T0 + 20 * m, ALICE_IP, key=DATA_KEY_ALICE, session_name=S1, event_id=EV["alice_put"]),
        ]),
        KEY_EB: f.trail([
            f.put(T0 + 30 * m, BOB_IP, key="exports/q1.csv", session_name=S1, event_id=EV["bob_claims_alice"]),
        ]),
        KEY_SNS1: f.trail([
            f.put(T0 + 40 * m, OUTSIDE_IP, key="exports/q2.csv", session_name="i-0123456789abcdef0",
                  event_id=EV["replay"], vpcEndpointId=None),
        ]),
        KEY_SNS2: f.trail([
            f.put(T0 + 45 * m, ALICE_IP, key="exports/q3.csv", session_name=S1, event_id=EV["alice_put2"]),
        ]),
        KEY_SNSRAW: f.trail([
            f.saml_logon(T0 - 10 * m, "bob", event_id=EV["bob_logon"]),
            f.put(T0 + 50 * m, BOB_IP, key="exports/q4.csv", session_name=S2, event_id=EV["bob_put"]),
        ]),
    }


#: which writes each CloudTrail file holds
WRITES_IN = {KEY_S3: ["alice_put"], KEY_EB: ["bob_claims_alice"], KEY_SNS1: ["replay"],
             KEY_SNS2: ["alice_put2"], KEY_SNSRAW: ["bob_put"]}


def sessions_report() -> bytes:
    m = timedelta(minutes=1)
    return f.report_csv([
        f.session_row(S1, "alice", ALICE_IP, T0 - 10 * m, T0 + 150 * m, instance="i-0aaaaaaaaaaaaaaa1"),
        f.session_row(S2, "bob", BOB_IP, T0 - 5 * m, T0 + 150 * m, instance="i-0bbbbbbbbbbbbbbb2"),
    ])


def applications_report() -> bytes:
    return ("user_session_id,application_name\r\n"
            f"{S1},RStudio\r\n{S1},Firefox\r\n{S2},Excel\r\n").encode()


def stage_sources(s3: Any) -> None:
    """Put every source object the ``events/`` payloads announce into the moto buckets."""
    for key, body in cloudtrail_files().items():
        s3.put_object(Bucket=CLOUDTRAIL_BUCKET, Key=key, Body=body)
    s3.put_object(Bucket=APPSTREAM_BUCKET, Key=SESSIONS_KEY, Body=sessions_report())
    s3.put_object(Bucket=APPSTREAM_BUCKET, Key=APPS_KEY, Body=applications_report())


def payload(path: str) -> dict[str, Any]:
    return json.loads(repo_path("events", path).read_text())


__all__ = ["LAKE_BUCKET", "payload", "stage_sources"]


def alert_changes(workdir: Any, now_ms: int | None = None, table: str = "findings") -> Any:
    """Every finding row (every version) the pipeline writes for this world, computed in a local lake:
    the content of the findings file that ``events/publish_alerts/*`` announces (``table="alerts"``:
    the signals)."""
    from auditcorr.config import Config
    from auditcorr.lake import Lake
    from auditcorr.pipeline import Pipeline

    now = now_ms or int((T0 + timedelta(days=30)).timestamp() * 1000)
    lake = Lake.open(str(workdir))
    pipe = Pipeline(lake, Config(), clock=lambda: now)
    for key, body in cloudtrail_files().items():
        pipe.ingest_object(f"s3://{CLOUDTRAIL_BUCKET}/{key}", body)
    pipe.ingest_object(f"s3://{APPSTREAM_BUCKET}/{SESSIONS_KEY}", sessions_report())
    return lake.read(table, latest=False).drop_columns(["dt"])


def announced(rows: Any, update_ms: int = 15 * 60_000) -> set[tuple[str, str]]:
    """(finding, announcement) of every finding row that has something to say (what SNS receives)."""
    from auditcorr.findings import announcement

    out = set()
    for r in rows.to_pylist():
        ms = {k: int(r[k].timestamp() * 1000) if r[k] else None for k in ("updated_at", "previous_updated_at")}
        kind = announcement(r["status"], r["previous_status"], ms["updated_at"], ms["previous_updated_at"], update_ms)
        if kind:
            out.add((r["finding_id"], kind))
    return out


def mirrored(rows: Any) -> set[str]:
    """The findings Security Hub holds after these finding rows: every one that is or was open."""
    return {r["finding_id"] for r in rows.to_pylist() if "open" in (r["status"], r["previous_status"])}


def stage_alert_file(lake: Any, rows: Any, name: str = ALERT_NAME) -> str:
    """Write finding rows where ``events/publish_alerts/*`` says a new findings file landed."""
    return lake.write_file("findings", "2026-03-02", name, rows)


def events_paths() -> list[str]:
    """Every payload under events/<function folder>/ (relative paths)."""
    root = repo_path("events")
    return sorted(f"{p.parent.name}/{p.name}" for p in root.glob("*/*.json"))
