"""Logs carry ids and counts, never raw records, user agents, user names, IP addresses, the analysts'
object keys or SAML assertions: everything every handler writes in a full run -- stdout (the Powertools
JSON log lines and EMF metrics that CloudWatch Logs receives), stderr, and any log record at WARNING or
above from any library -- is searched for the personal values the inputs carried. The functions log at
DEBUG here, stricter than the template's default (INFO).

The log-file names (``s3://<trail bucket>/AWSLogs/...``), input ids, alert ids, stack and fleet names
and error codes may appear: they identify the inputs, not the people."""

from __future__ import annotations

import gzip
import logging
from datetime import timedelta

import pytest

from auditcorr_sim.fake_appstream import FakeAppStream
from tests import factories as f
from tests.integration import aws
from tests.integration import scenario as sc
from tests.lambda_hardening.harness import CT, CT_KEYS, PS, REPORT_KEYS, UR, App

M = timedelta(minutes=1)
CAROL = "carol.canary@example.org"
CAROL_IP = "10.40.7.77"
CAROL_HOME_IP = "192.0.2.77"
CAROL_KEY = "private/carol-canary-payroll 2026.xlsx"
CANARY_UA = "CanaryAgent/7.7 (leak-check; X11)"
SAML_ASSERTION = "PHNhbWxwOlJlc3BvbnNlIGNhbmFyeT0ibGVhay1jaGVjayI+"  # base64 of a fake <samlp:Response ...>
CANARY_KEY = sc.ct_key("0910", "CanaryCanaryCan1")
BROKEN_KEY = sc.ct_key("0915", "BrokenCanaryBrk1")

#: every personal value the inputs of the run carry
SENSITIVE = [
    "alice", "bob", CAROL, "carol.canary",
    sc.ALICE_IP, sc.BOB_IP, sc.OUTSIDE_IP, "198.51.100.7", CAROL_IP, CAROL_HOME_IP,
    sc.DATA_KEY_ALICE, "exports/q1.csv", "exports/q2.csv", "exports/q3.csv", "exports/q4.csv", CAROL_KEY,
    "carol-canary-payroll", "aws-cli/2.15.0", "Mozilla/5.0", CANARY_UA, SAML_ASSERTION,
]


def canary_trail() -> bytes:
    logon = f.saml_logon(sc.T0 + 5 * M, CAROL, ip=CAROL_HOME_IP)
    logon["userAgent"] = CANARY_UA
    logon["requestParameters"]["SAMLAssertion"] = SAML_ASSERTION  # hostile or future CloudTrail shape
    # claims alice's session from carol's address: a disguise, alerted at once (it needs no report),
    # so carol's address reaches the alert people receive -- and must still not reach the logs
    write = f.put(sc.T0 + 30 * M, CAROL_IP, key=CAROL_KEY, session_name=sc.S1, userAgent=CANARY_UA)
    no_time = f.put(sc.T0 + 31 * M, CAROL_IP, key=CAROL_KEY, session_name=CAROL)
    del no_time["eventTime"]  # rejected with a reason: the reason must not quote the record
    bad_ip = f.put(sc.T0 + 32 * M, f"{CAROL_IP}, {CAROL_HOME_IP}", key=CAROL_KEY, session_name=CAROL)
    return f.trail([logon, write, no_time, bad_ip])


@pytest.fixture
def full_run(app: App, monkeypatch, capsys, caplog):
    """Every handler through its template name with its events/ payloads, plus personal canaries, a
    broken file, a failing stack and a failing SNS publish; returns everything that was logged."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.WARNING)
    s3 = app.deployment.client("s3")
    app.stage()
    s3.put_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=CANARY_KEY, Body=canary_trail())
    s3.put_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=BROKEN_KEY,
                  Body=gzip.compress(f"{{\"Records\": [{{\"userAgent\": \"{CANARY_UA}\"".encode())[:-4])

    # ingest_cloudtrail: every events/ payload (S3, EventBridge, CloudTrail SNS envelopes), the canaries
    for path in sorted(p for p in sc.events_paths() if p.startswith("ingest_cloudtrail/")):
        assert app.invoke(CT, sc.payload(path)) == {"batchItemFailures": []}
    assert app.sqs(CT, [app.ct_body(k) for k in [*CT_KEYS, CANARY_KEY, BROKEN_KEY]]) == {"batchItemFailures": []}
    # ingest_usage_report: every payload
    for path in sorted(p for p in sc.events_paths() if p.startswith("ingest_usage_report/")):
        assert app.invoke(UR, sc.payload(path)) == {"batchItemFailures": []}
    assert app.sqs(UR, [app.report_body(k) for k in REPORT_KEYS]) == {"batchItemFailures": []}
    # poll_sessions: its payload, live sessions of alice, bob and carol, one stack failing
    module, h = app.container(PS)
    t = int((sc.T0 + 20 * M).timestamp() * 1000)
    fake = FakeAppStream([
        {"session_id": sc.S1, "user_id": "alice", "stack_name": "analytics", "fleet_name": "analytics-single",
         "start_ms": t - 600_000, "end_ms": t + 600_000, "eni_private_ip_address": sc.ALICE_IP},
        {"session_id": sc.S2, "user_id": "bob", "stack_name": "analytics", "fleet_name": "analytics-single",
         "start_ms": t - 600_000, "end_ms": t + 600_000, "eni_private_ip_address": sc.BOB_IP,
         "authentication_type": "API"},
        {"session_id": "canary-session", "user_id": CAROL, "stack_name": "labs", "fleet_name": "labs-fleet",
         "start_ms": t - 600_000, "end_ms": t + 600_000, "eni_private_ip_address": CAROL_IP}],
        stacks={"analytics": ["analytics-single"], "labs": ["labs-fleet"], "broken": ["broken-fleet"]})
    fake.now_ms = t
    fake.fail("DescribeSessions", code="AccessDeniedException", StackName="broken")
    module.poller().client = fake
    module.poller().sleep = lambda _s: None
    assert h(sc.payload("poll_sessions.json"), aws.FakeContext())["stacks_failed"] == 1
    # publish_alerts: every alert event; the first SNS publish fails once and is retried
    pa_module, _ = app.container("PublishAlertsFunction")
    failed = []

    def first_publish_fails(**_):
        if not failed:
            failed.append(1)
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "Publish")

    pa_module.publisher().sns.meta.events.register("before-call.sns.Publish", first_publish_fails)
    events, app.pending_alert_events = app.pending_alert_events, []
    event = aws.sqs_event(events)
    first = app.invoke("PublishAlertsFunction", event)
    assert len(first["batchItemFailures"]) == 1
    assert app.retry_failures("PublishAlertsFunction", event, first) == {"batchItemFailures": []}
    for path in sorted(p for p in sc.events_paths() if p.startswith("publish_alerts/")):
        assert app.invoke("PublishAlertsFunction", sc.payload(path)) == {"batchItemFailures": []}

    out = capsys.readouterr()
    records = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    return out.out + out.err + records, len(events)


def test_the_logs_of_a_full_run_carry_ids_and_counts_and_no_personal_data(full_run, app):
    import json

    text, alert_events = full_run
    assert alert_events and '"message":"live poll stored"' in text and "object quarantined" in text
    # the run really carried the personal data: it reached the signals behind the findings people receive
    signals = app.deployment.lake().read("alerts").to_pylist()
    assert any(CAROL_IP == s["source_ip"] for s in signals)
    assert app.deployment.sns_messages()  # and findings were published

    leaked = [value for value in SENSITIVE if value.lower() in text.lower()]
    assert leaked == [], f"personal data in the logs: {leaked}"

    lines = [json.loads(line) for line in text.splitlines() if line.startswith('{"level"')]
    assert lines and all(entry.get("correlation_id") for entry in lines)
    ingested = [entry for entry in lines if entry["message"] == "object ingested"]
    assert ingested and all(entry["input_id"] and isinstance(entry["records_in"], int) for entry in ingested)
    canary = next(entry for entry in ingested if entry["object"].endswith(CANARY_KEY))
    assert canary["records_in"] == 4 and canary["rejected"] >= 1  # counted, with no record quoted
