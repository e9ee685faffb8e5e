"""``auditcorr backfill`` under moto: an existing history (account and organisation trail layouts,
a report bucket) is listed, put in delivery order and enqueued as the S3 notifications the ingest
functions accept; the real handlers then ingest it, and a second backfill ingests nothing twice."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner

from auditcorr_aws import backfill as bf
from auditcorr_aws.envelopes import decode
from auditcorr_cli.main import main
from tests import factories as f
from tests.integration import aws
from tests.integration import scenario as sc

DAY = "2026-03-02"


def queue(sqs: Any, name: str) -> str:
    return str(sqs.create_queue(QueueName=name)["QueueUrl"])


def drain(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return bodies
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def keys_of(bodies: list[str]) -> list[str]:
    return [ref.key for b in bodies for ref in decode(b).refs]


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["backfill", *args], catch_exceptions=False)


def stage_history(s3: Any) -> dict[str, list[str]]:
    """The scenario's day, plus objects that must NOT be enqueued: the day before, a digest, Insights."""
    sc.stage_sources(s3)
    prev = sc.ct_key("2355", "Pv0Pv0Pv0Pv0Pv0P").replace("2026/03/02", "2026/03/01").replace("20260302", "20260301")
    s3.put_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=prev, Body=f.trail([]))
    digest = (f"AWSLogs/{sc.ACCOUNT}/CloudTrail-Digest/us-east-1/2026/03/02/"
              f"{sc.ACCOUNT}_CloudTrail-Digest_us-east-1_trail_us-east-1_20260302T0900Z.json.gz")
    s3.put_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=digest, Body=b"{}")
    insight = f"AWSLogs/{sc.ACCOUNT}/CloudTrail-Insight/us-east-1/2026/03/02/x.json.gz"
    s3.put_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=insight, Body=b"{}")
    older_report = sc.SESSIONS_KEY.replace("day=02", "day=01").replace("03-02", "03-01")
    s3.put_object(Bucket=aws.APPSTREAM_BUCKET, Key=older_report, Body=sc.sessions_report())
    return {"cloudtrail": sorted(sc.cloudtrail_files()), "report": [sc.APPS_KEY, sc.SESSIONS_KEY]}


def test_backfill_enqueues_in_delivery_order_and_the_functions_ingest_it(deployment, handler):
    sqs, s3 = deployment.client("sqs"), deployment.client("s3")
    expected = stage_history(s3)
    ct_url, rep_url = queue(sqs, "cloudtrail-queue"), queue(sqs, "reports-queue")
    args = ["--trail", f"s3://{aws.CLOUDTRAIL_BUCKET}", "--reports", f"s3://{aws.APPSTREAM_BUCKET}/",
            "--since", DAY, "--until", DAY, "--queue-cloudtrail", ct_url, "--queue-reports", rep_url]

    r = run_cli(*args, "--format", "json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["sent"] == {"cloudtrail": 5, "report": 2}
    ct_bodies, rep_bodies = drain(sqs, ct_url), drain(sqs, rep_url)
    # only the day asked for, no digest or Insights file; CloudTrail in delivery order (the time in the name)
    assert keys_of(ct_bodies) == expected["cloudtrail"]
    assert sorted(keys_of(rep_bodies)) == expected["report"]
    assert summary["last_delivery"].startswith("2026-03-03T00:00")  # the report comes after its day's files

    # the real handlers accept the messages as they are
    _, ingest_ct = handler("IngestCloudTrailFunction")
    assert ingest_ct(aws.sqs_event(ct_bodies), aws.FakeContext()) == {"batchItemFailures": []}
    _, ingest_rep = handler("IngestUsageReportFunction")
    assert ingest_rep(aws.sqs_event(rep_bodies), aws.FakeContext()) == {"batchItemFailures": []}
    act = {r["event_id"]: r for r in deployment.lake().read("attributed_activity").to_pylist()}
    alice = act[sc.EV["alice_put"]]
    assert (alice["status"], alice["session_id"], alice["user_id"]) == ("attributed", sc.S1, "alice")
    assert act[sc.EV["bob_put"]]["session_id"] == sc.S2
    before = deployment.lake_objects()

    # a second backfill over the same days: enqueued again, ingested once (manifests)
    assert run_cli(*args).exit_code == 0
    again = drain(sqs, ct_url) + drain(sqs, rep_url)
    assert len(again) == 7
    assert ingest_ct(aws.sqs_event(again[:5]), aws.FakeContext()) == {"batchItemFailures": []}
    assert ingest_rep(aws.sqs_event(again[5:]), aws.FakeContext()) == {"batchItemFailures": []}
    after = deployment.lake_objects()
    new_tables = {k for k in set(after) - set(before) if "/_state/" not in k}
    assert new_tables == set()  # nothing written to any table


def org_key(org: str, account: str, region: str, day: str, hhmm: str, n: int) -> str:
    y, m, d = day.split("-")
    return (f"trail/AWSLogs/{org}/{account}/CloudTrail/{region}/{y}/{m}/{d}/"
            f"{account}_CloudTrail_{region}_{y}{m}{d}T{hhmm}Z_{n:016d}.json.gz")


def test_organisation_trail_is_discovered_and_dry_run_sends_nothing(deployment):
    sqs, s3 = deployment.client("sqs"), deployment.client("s3")
    org = "o-a1b2c3d4e5"
    placed = []
    for i, account in enumerate(("111122223333", "444455556666")):
        for region in ("us-east-1", "eu-west-1"):
            for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
                for hhmm in ("0105", "2350"):
                    key = org_key(org, account, region, day, hhmm, i)
                    s3.put_object(Bucket=aws.CLOUDTRAIL_BUCKET, Key=key, Body=f.trail([]))
                    placed.append(key)
    ct_url = queue(sqs, "cloudtrail-queue")

    r = run_cli("--trail", f"s3://{aws.CLOUDTRAIL_BUCKET}/trail", "--since", "2026-03-02", "--until", "2026-03-03",
                "--queue-cloudtrail", ct_url, "--dry-run", "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["found"] == {"cloudtrail": 2 * 2 * 2 * 2}  # accounts x regions x days x files
    assert out["sent"] == {}
    assert out["prefixes_listed"] == 2 * 2 * 2  # accounts x regions x days: one listing each
    assert drain(sqs, ct_url) == []

    found = bf.list_objects(s3, [bf.Location.parse(f"s3://{aws.CLOUDTRAIL_BUCKET}/trail/")], [],
                            date(2026, 3, 2), date(2026, 3, 3))
    times = [x.delivered for x in found]
    assert times == sorted(times)  # interleaved across accounts and regions by delivery time
    assert {x.key for x in found} == {k for k in placed if "/2026/03/01/" not in k}
    assert [x.key for x in found[:4]] == sorted(k for k in placed if "20260302T0105Z" in k)


@pytest.mark.parametrize("key", [
    "sessions/schedule=DAILY/year=2026/month=03/day=02/daily-session-report-2026-03-02.csv",
    "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/a b+c%d.json.gz",
])
def test_a_message_decodes_to_the_object_it_names(key):
    from datetime import UTC, datetime

    t = datetime(2026, 3, 3, tzinfo=UTC)
    found = bf.Found("report", "appstream-logs-us-east-1-111122223333-abc", key, "0123abcd", 10, t, t)
    refs = decode(bf.notification(found, "us-east-1")).refs
    assert [(r.bucket, r.key, r.etag) for r in refs] == [(found.bucket, key, "0123abcd")]


def test_bad_requests_are_refused_clearly(deployment):
    r = run_cli("--trail", "s3://b", "--since", "2026-03-05", "--until", "2026-03-01", "--dry-run")
    assert r.exit_code != 0 and "before --since" in r.output
    r = run_cli("--trail", "s3://b", "--since", DAY, "--until", DAY)
    assert r.exit_code == 2 and "--queue-cloudtrail" in r.output
    r = run_cli("--trail", "/local/folder", "--since", DAY, "--until", DAY, "--dry-run")
    assert r.exit_code != 0 and "not an s3:// location" in r.output
    r = run_cli("--since", DAY, "--until", DAY)
    assert r.exit_code == 2
    r = run_cli("--trail", "s3://b", "--since", "yesterday", "--until", DAY, "--dry-run")
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output


def test_refused_messages_are_retried_then_reported():
    from datetime import UTC, datetime

    t = datetime(2026, 3, 2, tzinfo=UTC)
    found = [bf.Found("cloudtrail", "b", f"k{i}", None, 1, t, t) for i in range(12)]

    class FlakySqs:
        def __init__(self) -> None:
            self.calls: list[int] = []

        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
            self.calls.append(len(Entries))
            # the first request refuses its entry "3" once; every request refuses "11"'s entry
            fail = [e for e in Entries if (e["Id"] == "3" and len(self.calls) == 1)
                    or json.loads(e["MessageBody"])["Records"][0]["s3"]["object"]["key"] == "k11"]
            return {"Failed": [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in fail]}

    sqs = FlakySqs()
    with pytest.raises(bf.BackfillError, match="1 message"):
        bf.enqueue(sqs, found, {"cloudtrail": "url"}, "us-east-1")
    assert sqs.calls == [10, 1, 2, 1]  # 10, retry of one, the last 2, retry of k11
