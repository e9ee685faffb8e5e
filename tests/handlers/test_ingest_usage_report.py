"""ingest_usage_report through its template handler, against moto: a late sessions report
re-attributes the writes it explains; nothing was alerted before it came."""

from __future__ import annotations

from auditcorr_cli.query.engine import LocalEngine
from tests.integration import aws
from tests.integration import scenario as sc

FN = "IngestUsageReportFunction"


def test_a_late_sessions_report_attributes_earlier_writes(deployment, handler, capsys):
    sc.stage_sources(deployment.client("s3"))
    _, ct = handler("IngestCloudTrailFunction")
    for path in ("ingest_cloudtrail/s3-notification-via-sqs.json", "ingest_cloudtrail/eventbridge-via-sqs.json"):
        assert ct(sc.payload(path), aws.FakeContext()) == {"batchItemFailures": []}
    engine = LocalEngine(deployment.lake())
    before = {r["event_id"]: r for r in engine.query("SELECT * FROM attributed_activity_latest").to_pylist()}
    assert before[sc.EV["alice_put"]]["user_id"] is None
    capsys.readouterr()

    _, h = handler(FN)
    assert h(sc.payload("ingest_usage_report/eventbridge-sessions-report-via-sqs.json"), aws.FakeContext()) == {
        "batchItemFailures": []}

    engine = LocalEngine(deployment.lake())
    after = {r["event_id"]: r for r in engine.query("SELECT * FROM attributed_activity_latest").to_pylist()}
    assert after[sc.EV["alice_put"]]["user_id"] == "alice"
    assert after[sc.EV["alice_put"]]["session_id"] == sc.S1
    assert after[sc.EV["alice_put"]]["previous_status"] == before[sc.EV["alice_put"]]["status"]
    alerts = engine.query("SELECT rule, status, user_id FROM alerts_latest WHERE event_id = ?",
                          [sc.EV["bob_claims_alice"]]).to_pylist()
    assert {"rule": "session_id_mismatch", "status": "open", "user_id": "bob"} in alerts
    metrics = aws.emf_metrics(capsys.readouterr().out)
    # no alert was opened before the report came (decisions wait for their evidence), so none closes
    assert metrics["objects_ingested"] == 1 and metrics["alerts_closed"] == 0


def test_the_url_encoded_key_of_an_s3_notification_is_decoded(deployment, handler):
    sc.stage_sources(deployment.client("s3"))
    _, h = handler(FN)
    path = "ingest_usage_report/s3-notification-sessions-report-via-sqs.json"
    assert "%3D" in sc.payload(path)["Records"][0]["body"]
    assert h(sc.payload(path), aws.FakeContext()) == {"batchItemFailures": []}
    assert deployment.lake().read("sessions").num_rows == 2


def test_keys_outside_sessions_and_applications_are_ignored(deployment, handler, capsys):
    s3 = deployment.client("s3")
    s3.put_object(Bucket=aws.APPSTREAM_BUCKET, Key="other/daily-session-report-2026-03-02.csv",
                  Body=sc.sessions_report())
    body = sc.payload("ingest_usage_report/eventbridge-applications-report-direct.json")
    body["detail"]["object"]["key"] = "other/daily-session-report-2026-03-02.csv"
    _, h = handler(FN)
    assert h(aws.sqs_event([body]), aws.FakeContext()) == {"batchItemFailures": []}
    assert aws.emf_metrics(capsys.readouterr().out)["objects_ignored"] == 1
    assert deployment.lake().read("sessions").num_rows == 0


def test_a_report_without_a_day_is_quarantined_not_retried(deployment, handler):
    s3 = deployment.client("s3")
    key = "sessions/schedule=DAILY/undated-report.csv"
    s3.put_object(Bucket=aws.APPSTREAM_BUCKET, Key=key, Body=sc.sessions_report())
    body = sc.payload("ingest_usage_report/eventbridge-applications-report-direct.json")
    body["detail"]["object"]["key"] = key
    _, h = handler(FN)
    assert h(aws.sqs_event([body]), aws.FakeContext()) == {"batchItemFailures": []}
    assert any(k.endswith(".reason.json") for k in deployment.lake_objects() if "/quarantine/" in k)


def test_reports_of_every_listed_bucket_are_ingested_and_other_buckets_ignored(deployment, handler, capsys):
    """An organisation feeds one stack from each account's report bucket (``AppStreamLogsBucketNames``):
    each listed bucket's report is read (its account's sessions land under that account), a bucket
    that is not listed is ignored, never read."""
    from datetime import timedelta

    from tests import factories as f

    s3 = deployment.client("s3")
    other = "appstream-logs-us-east-1-999988887777-zzzzzzzz"
    s3.create_bucket(Bucket=other)
    t = sc.T0
    second = f.report_csv([f.session_row("0f1e2d3c-0000-4000-8000-000000000444", "carol", "10.40.0.17",
                                         t, t + timedelta(hours=2), aws_account_id="444455556666")])
    s3.put_object(Bucket=aws.APPSTREAM_BUCKET, Key=sc.SESSIONS_KEY, Body=sc.sessions_report())
    s3.put_object(Bucket=aws.APPSTREAM_BUCKET_2, Key=sc.SESSIONS_KEY, Body=second)
    s3.put_object(Bucket=other, Key=sc.SESSIONS_KEY, Body=second)

    def announced(bucket: str) -> dict:
        body = sc.payload("ingest_usage_report/eventbridge-applications-report-direct.json")
        body["detail"]["bucket"]["name"] = bucket
        body["detail"]["object"]["key"] = sc.SESSIONS_KEY
        return body

    _, h = handler(FN)
    capsys.readouterr()
    bodies = [announced(b) for b in (aws.APPSTREAM_BUCKET, aws.APPSTREAM_BUCKET_2, other)]
    assert h(aws.sqs_event(bodies), aws.FakeContext()) == {"batchItemFailures": []}
    metrics = aws.emf_metrics(capsys.readouterr().out)
    assert metrics["objects_ingested"] == 2 and metrics["objects_ignored"] == 1
    sessions = deployment.lake().read("sessions").to_pylist()
    assert sorted((r["aws_account_id"], r["user_id"]) for r in sessions) == [
        ("111122223333", "alice"), ("111122223333", "bob"), ("444455556666", "carol")]
    assert {r["source_object"].split("/")[2] for r in sessions} == {aws.APPSTREAM_BUCKET, aws.APPSTREAM_BUCKET_2}
