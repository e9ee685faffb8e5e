"""Least privilege that still works: every request each handler really sends (recorded by the moto
server, mapped to its IAM action, resource and condition keys by :mod:`.iam`) is allowed by that
function's policy in ``template.yaml`` -- on an empty lake (the first invocation after a deploy, when
pyarrow creates the "directories"), with versioned source buckets (notifications then carry version
ids), through compactions and the publisher's fallback read -- and nothing outside the documented set of
actions is ever called."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from auditcorr_aws.appstream import AUTH_TYPES, PAGE_LIMIT
from tests.integration import aws
from tests.integration import scenario as sc
from tests.lambda_hardening import iam
from tests.lambda_hardening.harness import CT, CT_KEYS, PA, PS, REPORT_KEYS, UR, App, eventbridge

#: the appstream actions poll_sessions may call (issue 4), and nothing else
APPSTREAM_ACTIONS = {"appstream:DescribeSessions", "appstream:DescribeStacks", "appstream:DescribeFleets",
                     "appstream:ListAssociatedFleets"}


def versioned_sources(app: App) -> None:
    """The trail and AppStream buckets versioned (common for log archives): events name the version."""
    s3 = app.deployment.client("s3")
    for bucket in (aws.CLOUDTRAIL_BUCKET, aws.APPSTREAM_BUCKET):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    app.stage()
    for bucket, keys in ((aws.CLOUDTRAIL_BUCKET, CT_KEYS), (aws.APPSTREAM_BUCKET, REPORT_KEYS)):
        for key in keys:
            app.versions[(bucket, key)] = s3.head_object(Bucket=bucket, Key=key)["VersionId"]


def check(app: App, function: str, mark: int) -> list[str]:
    return [str(c) for c in iam.denied(app.deployment, function, app.server.log.since(mark))]


@pytest.mark.parametrize("function", [CT, UR])
def test_an_ingest_on_an_empty_lake_with_versioned_sources_needs_only_its_policy(app, function):
    versioned_sources(app)
    mark = app.server.log.mark()
    if function == CT:
        assert app.sqs(CT, [app.ct_body(k) for k in CT_KEYS]) == {"batchItemFailures": []}
    else:
        assert app.sqs(UR, [app.report_body(k) for k in REPORT_KEYS]) == {"batchItemFailures": []}
    requests = app.server.log.since(mark)
    assert any("versionId=" in r.query for r in requests)  # the versions were really asked for
    assert check(app, function, mark) == []


def test_every_listed_report_bucket_and_only_those_can_be_read(app):
    """An organisation's second report bucket (another account's, forwarded) is read with the same
    policy; objects of a bucket not in ``AppStreamLogsBucketNames``, or outside the report prefixes,
    are not readable."""
    s3 = app.deployment.client("s3")
    for key in REPORT_KEYS:
        s3.put_object(Bucket=aws.APPSTREAM_BUCKET_2, Key=key,
                      Body=sc.sessions_report() if key == sc.SESSIONS_KEY else sc.applications_report())
    mark = app.server.log.mark()
    assert app.sqs(UR, [eventbridge(aws.APPSTREAM_BUCKET_2, k) for k in REPORT_KEYS]) == {"batchItemFailures": []}
    requests = app.server.log.since(mark)
    assert any(aws.APPSTREAM_BUCKET_2 in (r.host + r.path) for r in requests)  # really read there
    assert check(app, UR, mark) == []
    statements = iam.function_statements(app.deployment.tpl, UR, iam.resolver_for(app.deployment))
    for bucket in (aws.APPSTREAM_BUCKET, aws.APPSTREAM_BUCKET_2):
        assert iam.allows(statements, iam.Call("s3:GetObject", f"arn:aws:s3:::{bucket}/{sc.SESSIONS_KEY}"))
        assert not iam.allows(statements, iam.Call("s3:GetObject", f"arn:aws:s3:::{bucket}/other/x.csv"))
    unlisted = "appstream-logs-us-east-1-999988887777-zzzzzzzz"
    assert not iam.allows(statements, iam.Call("s3:GetObject", f"arn:aws:s3:::{unlisted}/{sc.SESSIONS_KEY}"))


def test_ingests_compacting_a_populated_lake_need_only_their_policy(app, handler):
    app.stage()
    app.containers[CT] = handler(CT, AUDITCORR_COMPACT_THRESHOLD="2")
    app.containers[UR] = handler(UR, AUDITCORR_COMPACT_THRESHOLD="2")
    assert app.sqs(CT, [app.ct_body(k) for k in CT_KEYS[:2]]) == {"batchItemFailures": []}
    mark = app.server.log.mark()
    assert app.sqs(CT, [app.ct_body(k) for k in CT_KEYS[2:]]) == {"batchItemFailures": []}
    assert any(r.method == "DELETE" for r in app.server.log.since(mark))  # a compaction ran
    assert check(app, CT, mark) == []
    mark = app.server.log.mark()
    assert app.sqs(UR, [app.report_body(k) for k in REPORT_KEYS]) == {"batchItemFailures": []}
    assert check(app, UR, mark) == []


def test_publishing_and_its_fallback_read_need_only_its_policy(app):
    app.clean_run()  # leaves the alert events published; make new ones
    assert app.sqs(CT, [app.ct_body(k) for k in CT_KEYS], fresh=True) == {"batchItemFailures": []}
    events = app.pending_alert_events or [eventbridge(aws.LAKE_BUCKET, sc.ALERT_KEY)]
    app.pending_alert_events = []
    gone = eventbridge(aws.LAKE_BUCKET, f"{aws.LAKE_PREFIX}/findings/dt=2026-03-02/part-compacted-away.parquet")
    mark = app.server.log.mark()
    assert app.sqs(PA, [*events, gone], fresh=True) == {"batchItemFailures": []}
    requests = app.server.log.since(mark)
    assert any("list-type=2" in r.query for r in requests)  # the fallback listed the partition
    assert check(app, PA, mark) == []


def test_live_polls_on_an_empty_lake_and_through_compaction_need_only_their_policy(app, handler):
    module, h = handler(PS, AUDITCORR_LIVE_STACKS="analytics:analytics-single", AUDITCORR_COMPACT_THRESHOLD="2")
    poller = module.poller()
    poller.sleep = lambda _s: None
    t = int(sc.T0.timestamp() * 1000)
    called: set[str] = set()
    poller.client.meta.events.register("before-parameter-build.appstream",
                                       lambda model, **_: called.add(f"appstream:{model.name}"))
    mark = app.server.log.mark()
    for minute in range(4):  # the 3rd poll of the day compacts both tables (read, write, delete)
        poller.pipeline.clock = lambda m=minute: t + m * 60_000
        with Stubber(poller.client) as stub:
            for auth in AUTH_TYPES:
                stub.add_response("describe_sessions", {"Sessions": []}, {
                    "StackName": "analytics", "FleetName": "analytics-single", "AuthenticationType": auth,
                    "Limit": PAGE_LIMIT})
            h(sc.payload("poll_sessions.json"), aws.FakeContext())
    requests = app.server.log.since(mark)
    assert any(r.method == "DELETE" for r in requests)  # compacted
    assert check(app, PS, mark) == []
    assert called == {"appstream:DescribeSessions"}  # configured pairs: no discovery calls


def test_discovery_calls_only_the_four_appstream_actions_the_policy_grants(deployment):
    """The poller's discovery path, against the real AppStream API model (a Stubber validates every
    request against botocore's service model): only the granted actions are called."""
    from auditcorr_aws import appstream

    client = appstream.appstream_client(region=aws.REGION)
    seen: list[str] = []
    client.meta.events.register("before-parameter-build.appstream", lambda model, **_: seen.append(model.name))
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{"Name": "analytics", "Arn": "arn:aws:appstream:x"}]})
        stub.add_response("list_associated_fleets", {"Names": ["analytics-single"]}, {"StackName": "analytics"})
        stub.add_response("describe_fleets", {"Fleets": []})
        for auth in AUTH_TYPES:
            stub.add_response("describe_sessions", {"Sessions": []}, {
                "StackName": "analytics", "FleetName": "analytics-single", "AuthenticationType": auth,
                "Limit": PAGE_LIMIT})
        result = appstream.poll(client, None, sleep=lambda _s: None)
    assert result.polled == [("analytics", "analytics-single")]
    statements = iam.function_statements(deployment.tpl, PS, iam.resolver_for(deployment))
    granted = {a for st in statements for a in iam._as_list(st["Action"]) if a.startswith("appstream:")}
    assert granted == APPSTREAM_ACTIONS
    assert {f"appstream:{op}" for op in seen} == granted  # each granted action is needed


def test_the_checker_catches_what_the_policy_would_deny(app):
    """A control: requests outside a policy are reported (so an empty answer above means something)."""
    statements = iam.function_statements(app.deployment.tpl, PS, iam.resolver_for(app.deployment))
    lake = f"arn:aws:s3:::{aws.LAKE_BUCKET}"
    assert not iam.allows(statements, iam.Call("s3:GetObject", f"{lake}/{aws.LAKE_PREFIX}/s3_writes/dt=x/a.parquet"))
    assert not iam.allows(statements, iam.Call("s3:PutObject", f"{lake}/{aws.LAKE_PREFIX}/alerts/dt=x/a.parquet"))
    assert not iam.allows(statements, iam.Call("s3:ListBucket", lake, {"s3:prefix": f"{aws.LAKE_PREFIX}/logons/"}))
    assert iam.allows(statements, iam.Call("s3:ListBucket", lake, {"s3:prefix": f"{aws.LAKE_PREFIX}/live_polls/"}))
    assert iam.allows(statements, iam.Call("appstream:DescribeSessions", "*"))
    assert not iam.allows(statements, iam.Call("appstream:ExpireSession", "*"))
    ct = iam.function_statements(app.deployment.tpl, CT, iam.resolver_for(app.deployment))
    assert not iam.allows(ct, iam.Call("s3:GetObject", f"arn:aws:s3:::{aws.CLOUDTRAIL_BUCKET}/other/key"))
