"""Issue 6, Lambda half: at-least-once delivery, retries after a partial run, concurrent invocations and
a re-sent report give the tables and alerts of one clean run -- the tables read back from the moto
bucket, every SNS message (each exactly once) and every Security Hub finding -- through the handlers
``template.yaml`` names."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from typing import Any

from tests.integration import aws
from tests.integration import scenario as sc
from tests.lambda_hardening import harness as hz
from tests.lambda_hardening import workers
from tests.lambda_hardening.harness import CT, CT_KEYS, PA, REPORT_KEYS, UR, App, differences

_CACHE: dict[str, Any] = {}


class Injected(RuntimeError):
    """A failure the test put there (a Lambda timing out, a 5xx that outlasted the retries, ...)."""


def fail_once(obj: Any, method: str, when: Callable[..., bool]) -> list[str]:
    """Make ``obj.method`` raise :class:`Injected` the first time ``when(*args)`` holds."""
    real = getattr(obj, method)
    fired: list[str] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not fired and when(*args):
            fired.append(repr(args[:2]))
            raise Injected(f"injected in {method}{args[:2]!r}")
        return real(*args, **kwargs)

    setattr(obj, method, wrapper)
    return fired


def lake_of(app: App, function: str) -> Any:
    module, _ = app.container(function)
    return module.ingestor().pipeline.lake


def run_delivered_twice(app: App) -> dict[str, Any]:
    """Every message twice in its batch, then the batch again to a new container; the alert-file events
    twice, the second time in reverse order (a late duplicate of an older file arrives last)."""
    if "twice" in _CACHE:
        return _CACHE["twice"]
    app.stage()
    bodies = [app.ct_body(k) for k in CT_KEYS for _ in range(2)]
    assert app.sqs(CT, bodies) == {"batchItemFailures": []}
    assert app.sqs(CT, bodies, fresh=True) == {"batchItemFailures": []}
    reports = [app.report_body(k) for k in REPORT_KEYS]
    assert app.sqs(UR, reports + reports) == {"batchItemFailures": []}
    assert app.sqs(UR, reports, fresh=True) == {"batchItemFailures": []}
    events = list(app.pending_alert_events)
    app.publish_pending()
    app.pending_alert_events = events[::-1]
    app.publish_pending(fresh=True)
    _CACHE["twice"] = app.snapshot()
    return _CACHE["twice"]


def test_every_notification_delivered_twice_changes_nothing(app, clean):
    assert differences(run_delivered_twice(app), clean, parts=("tables", "sns")) == []


def test_a_late_duplicate_of_an_older_alert_file_leaves_security_hub_in_the_latest_state(app, clean):
    assert differences(run_delivered_twice(app), clean, parts=("findings",)) == []


def run_with_partial_failures(app: App) -> dict[str, Any]:
    """Each function dies part-way through one message and SQS re-delivers just that message:
    - ingest_cloudtrail, message 1: after s3_writes and logons, before its attribution;
    - ingest_cloudtrail, message 4: after every table and the alerts file, before its manifest;
    - ingest_usage_report: after the sessions table, before the re-attribution;
    - publish_alerts: the third SNS message fails, after Security Hub took that file's findings."""
    if "partial" in _CACHE:
        return _CACHE["partial"]
    app.stage()
    lake = lake_of(app, CT)
    before_attribution = fail_once(lake, "write_partitioned", lambda table, *_: table == "attributed_activity")
    manifests = iter(range(1, 100))  # message 1 dies before its manifest: the 3rd one written is message 4's
    before_manifest = fail_once(lake, "put_json",
                                lambda path, *_: "/_state/ingested/" in path and next(manifests) == 3)
    event = aws.sqs_event([app.ct_body(k) for k in CT_KEYS])
    first = app.invoke(CT, event)
    assert before_attribution and before_manifest
    assert len(first["batchItemFailures"]) == 2  # only the two messages that died; the others went on
    assert app.retry_failures(CT, event, first) == {"batchItemFailures": []}

    fired = fail_once(lake_of(app, UR), "write_partitioned", lambda table, *_: table == "attributed_activity")
    event = aws.sqs_event([app.report_body(k) for k in REPORT_KEYS])
    first = app.invoke(UR, event)
    assert fired and len(first["batchItemFailures"]) == 1
    assert app.retry_failures(UR, event, first) == {"batchItemFailures": []}

    module, _ = app.container(PA)
    calls = {"n": 0}

    def second_publish_fails(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "Publish")

    module.publisher().sns.meta.events.register("before-call.sns.Publish", second_publish_fails)
    events, app.pending_alert_events = app.pending_alert_events, []
    event = aws.sqs_event(events)
    first = app.invoke(PA, event)
    assert len(first["batchItemFailures"]) == 1
    assert app.retry_failures(PA, event, first) == {"batchItemFailures": []}
    _CACHE["partial"] = app.snapshot()
    return _CACHE["partial"]


def test_each_function_retried_after_writing_part_of_its_output(app, clean):
    assert differences(run_with_partial_failures(app), clean) == []


def test_the_same_report_resent_and_the_same_day_under_another_name(app, clean):
    app.clean_run()
    renamed = sc.SESSIONS_KEY.replace("daily-session-report", "daily-session-report-resent")
    app.deployment.client("s3").put_object(Bucket=aws.APPSTREAM_BUCKET, Key=renamed, Body=sc.sessions_report())
    assert app.sqs(UR, [app.report_body(sc.SESSIONS_KEY)], fresh=True) == {"batchItemFailures": []}
    assert app.sqs(UR, [app.report_body(renamed)]) == {"batchItemFailures": []}
    app.publish_pending()

    # the day was replaced by the renamed delivery: the same sessions, now naming it as their source
    snap = app.snapshot()
    assert differences(snap, clean, ignore={"sessions": {"source_object"}}) == []
    assert {r["source_object"] for r in snap["tables"]["sessions"]} == {f"s3://{aws.APPSTREAM_BUCKET}/{renamed}"}


# -- concurrency: separate processes, like separate Lambda containers --------------------------------
def run_concurrently(app: App, function: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(events))
    results = ctx.Queue()
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "POWERTOOLS_"))}
    env |= app.deployment.function_env(function)
    mark = app.server.log.mark()
    procs = [ctx.Process(target=workers.invoke_after_barrier, args=(env, function, ev, barrier, results))
             for ev in events]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    app.pending_alert_events += hz.alert_events(app.server.log.since(mark))
    return out


def test_concurrent_invocations_on_one_partition_and_the_same_object_twice_at_once(app, clean):
    """Two containers at once, both writing dt=2026-03-02, each deciding before the other writes: they
    split the files, and both hold the first file's message (SQS delivers at least once, sometimes to
    two consumers at the same time). Then two publishers at once on the same alert events."""
    app.stage()
    first = aws.sqs_event([app.ct_body(k) for k in CT_KEYS[:3]])
    second = aws.sqs_event([app.ct_body(k) for k in [CT_KEYS[0], *CT_KEYS[3:]]])

    results = run_concurrently(app, CT, [first, second])

    assert results == [{"batchItemFailures": []}] * 2, results
    assert app.sqs(UR, [app.report_body(k) for k in REPORT_KEYS]) == {"batchItemFailures": []}
    events, app.pending_alert_events = app.pending_alert_events, []
    published = run_concurrently(app, PA, [aws.sqs_event(events), aws.sqs_event(events)])
    assert all("error" not in r for r in published), published
    if any(r["batchItemFailures"] for r in published):  # "in progress" in the other container: SQS retries
        assert app.sqs(PA, events, fresh=True) == {"batchItemFailures": []}

    assert differences(app.snapshot(), clean) == []
