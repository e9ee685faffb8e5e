"""template.yaml: least-privilege IAM, settings in Globals, queues with dead-letter queues and alarms,
the lake bucket's protections, named queries that run, samconfig environments."""

from __future__ import annotations

import copy
import re
import tomllib
from datetime import UTC, datetime

import pytest

from auditcorr_aws.settings import CONFIG_ENV, config_from_env
from auditcorr_cli.query.engine import LocalEngine, latest_view_sql
from tests.integration import aws
from tests.integration import scenario as sc
from tests.integration import template as tplmod

TPL = tplmod.load()
RES = TPL["Resources"]


_TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

print(json.dumps(transform(json.load(sys.stdin), {}, NoManagedPolicies())))
"""


def transformed() -> dict:
    """The template as CloudFormation receives it: the SAM transform, offline (samtranslator is a dev
    dependency; the SAM CLI's own venv .venv-sam is a fallback)."""
    import json
    import os
    import subprocess
    import sys

    tpl = copy.deepcopy(TPL)
    for res in tpl["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://placeholder/code.zip"
        if res["Type"] == "AWS::Serverless::LayerVersion":
            res["Properties"]["ContentUri"] = "s3://placeholder/layer.zip"
    try:
        import samtranslator  # noqa: F401

        python = sys.executable
    except ImportError:
        python = str(aws.repo_path(".venv-sam", "bin", "python"))
        assert os.path.exists(python), "aws-sam-translator is a dev dependency: pip install -e '.[dev]'"
    env = dict(os.environ, AWS_DEFAULT_REGION="us-east-1")
    out = subprocess.run([python, "-c", _TRANSFORM], input=json.dumps(tpl), capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    return json.loads(out.stdout)


def statements(doc: dict) -> list[dict]:
    out = []
    for st in doc.get("Statement", []):
        if isinstance(st, dict) and "Fn::If" in st:
            out += [s for s in st["Fn::If"][1:] if isinstance(s, dict) and "Effect" in s]
        else:
            out.append(st)
    return out


def allow_statements(cfn: dict) -> list[tuple[str, dict]]:
    found = []
    for name, res in cfn["Resources"].items():
        props = res.get("Properties", {})
        docs = []
        if res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            docs = [props["PolicyDocument"]]
        for doc in docs:
            found += [(name, st) for st in statements(doc) if st.get("Effect") == "Allow"]
    return found


def as_list(v):
    return v if isinstance(v, list) else [v]


#: actions that support no resource-level permissions (Service Authorization Reference, Amazon AppStream
#: 2.0: no resource type, no condition key), hence granted on "*" -- only these, only to poll_sessions
RESOURCELESS = {"PollSessionsFunctionRole": {"appstream:DescribeSessions", "appstream:DescribeStacks",
                                             "appstream:DescribeFleets", "appstream:ListAssociatedFleets"},
                # CloudTrail's public keys for digest validation: the action has no resource type
                "IngestCloudTrailFunctionRole": {"cloudtrail:ListPublicKeys"}}


@pytest.fixture(scope="module")
def cfn() -> dict:
    return transformed()


def test_sam_transform_succeeds_offline(cfn):
    roles = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == len(tplmod.function_specs(TPL)) == 5
    assert cfn["Resources"]["ExportOcsfFunctionRole"]["Condition"] == "OcsfExportEnabled"  # only with Security Lake


def test_no_wildcard_actions_and_scoped_resources(cfn):
    found = allow_statements(cfn)
    assert found
    for name, st in found:
        for action in as_list(st["Action"]):
            assert "*" not in action, f"{name}: wildcard action {action}"
        for resource in as_list(st["Resource"]):
            if resource == "*":
                assert set(as_list(st["Action"])) <= RESOURCELESS.get(name, set()), \
                    f"{name}: {st.get('Sid')} on every resource"


def test_poll_sessions_is_scheduled_never_retried_never_overlapping():
    fn = RES["PollSessionsFunction"]["Properties"]
    assert fn["CodeUri"].rstrip("/") == "functions/poll_sessions" and fn["Handler"] == "app.lambda_handler"
    (event,) = fn["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": "PollSessionsSchedule"}
    assert TPL["Parameters"]["PollSessionsSchedule"]["Default"] == "rate(1 minute)"
    assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] == 0  # EventBridge's retries
    assert fn["EventInvokeConfig"]["MaximumRetryAttempts"] == 0  # Lambda's own async retries
    assert fn["EventInvokeConfig"]["MaximumEventAgeInSeconds"] == 60  # a throttled tick is dropped
    assert fn["ReservedConcurrentExecutions"] == 1
    assert 30 <= fn["Timeout"] < 60  # inside the minute; the handler keeps 15 s to store the poll
    assert fn["Environment"]["Variables"]["AUDITCORR_LIVE_STACKS"] == {"Ref": "LiveStacks"}
    assert TPL["Parameters"]["LiveStacks"]["Default"] == ""  # empty: discover


def test_poll_sessions_reads_appstream_and_writes_only_the_live_tables_and_its_data_clock():
    (inline, *rest) = RES["PollSessionsFunction"]["Properties"]["Policies"]
    assert rest == []  # not the LakeWritePolicy
    sts = statements(inline)
    actions = {a for st in sts for a in as_list(st["Action"])}
    assert {a for a in actions if a.startswith("appstream:")} == RESOURCELESS["PollSessionsFunctionRole"]
    s3_resources = {r["Fn::Sub"] for st in sts for r in as_list(st["Resource"])
                    if isinstance(r, dict) and "Fn::Sub" in r and "LakeBucket.Arn" in r["Fn::Sub"]}
    lake = "${LakeBucket.Arn}/${LakePrefix}"
    assert s3_resources == {f"{lake}/live_sessions/*", f"{lake}/live_polls/*",  # the two tables
                            f"{lake}/_state/clocks.json",  # the data clock a poll moves
                            lake, f"{lake}/live_sessions", f"{lake}/live_polls", f"{lake}/",  # pyarrow's dirs
                            f"{lake}/_state", f"{lake}/_state/"}
    writes = [st for st in sts if {"s3:PutObject", "s3:DeleteObject"} & set(as_list(st["Action"]))]
    for st in writes:
        for r in as_list(st["Resource"]):
            assert r["Fn::Sub"].endswith(("/live_sessions/*", "/live_polls/*", "${LakePrefix}/", "/_state/clocks.json",
                                          "/_state/")), r
        assert "s3:DeleteObject" not in as_list(st["Action"]) or "_state" not in str(st["Resource"])


def test_every_checkov_skip_says_why():
    """scripts/check-template.sh fails on any checkov finding not skipped in the template; a skip must
    carry its justification."""
    skips = [(name, s) for name, res in RES.items()
             for s in res.get("Metadata", {}).get("checkov", {}).get("skip", [])]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
        assert len(skip.get("comment", "")) >= 40, f"{name}: {skip['id']} skipped without a reason"


def test_s3_access_is_limited_to_the_prefixes_it_needs():
    fn = RES["IngestCloudTrailFunction"]["Properties"]["Policies"][0]["Statement"][0]
    assert fn["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${CloudTrailBucketName}/"
                                         "${CloudTrailKeyPrefix}AWSLogs/*"}
    usage = RES["IngestUsageReportFunction"]["Properties"]["Policies"][0]["Statement"][0]
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        for buckets in (["appstream-logs-a"], ["appstream-logs-a", "appstream-logs-b", "appstream-logs-c"]):
            resolve = tplmod.Resolver(TPL, {"AppStreamLogsBucketNames": ",".join(buckets)},
                                      {"AWS::Partition": partition})
            assert resolve(usage["Resource"]) == [
                f"arn:{partition}:s3:::{b}/{prefix}/*" for prefix in ("sessions", "applications") for b in buckets]
    lake = RES["LakeWritePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert lake["Resource"] == {"Fn::Sub": "${LakeBucket.Arn}/${LakePrefix}/*"}


def test_functions_run_python312_with_the_core_layer_and_globals_env():
    glob = TPL["Globals"]["Function"]
    assert glob["Runtime"] == "python3.12"
    assert {"Ref": "CoreLayer"} in glob["Layers"]
    assert RES["CoreLayer"]["Metadata"]["BuildMethod"] == "python3.12"
    env = glob["Environment"]["Variables"]
    # every configuration variable the adapter reads that has a template parameter is set in Globals
    for var in ("AUDITCORR_ROLES", "AUDITCORR_FLEET_CIDRS", "AUDITCORR_CLAIM_SOURCE", "AUDITCORR_TOLERANCE_SECONDS",
                "AUDITCORR_MAX_SESSION_HOURS", "AUDITCORR_WRITE_EVENTS", "AUDITCORR_DISABLED_RULES",
                "AUDITCORR_LIVE_FRESHNESS_SECONDS", "AUDITCORR_LOGON_WINDOW_HOURS",
                "AUDITCORR_LOGON_MISMATCH_WINDOW_SECONDS"):
        assert var in env and var in CONFIG_ENV
    for spec in tplmod.function_specs(TPL).values():
        assert spec["file"].is_file()
        assert spec["env"]["POWERTOOLS_SERVICE_NAME"] == spec["dir"].name


def test_globals_env_builds_the_core_config():
    d = aws.Deployment("http://unused", "arn:aws:sns:us-east-1:123456789012:t", "", TPL,
                       aws.PARAMS | {"FleetCidrs": "10.40.0.0/16,10.41.0.0/16", "ToleranceSeconds": 90,
                                     "ClaimSource": "principal_tag:AppStreamSession",
                                     "DisabledRules": "unattributed_activity", "LiveFreshnessSeconds": 240,
                                     "LogonWindowHours": 8, "LogonMismatchWindowSeconds": 120},
                       {"LakeBucket": "b", "AlertsTopic": "t", "IdempotencyTable": "i", "AWS::AccountId": "1"})
    cfg = config_from_env(d.function_env("IngestCloudTrailFunction"))
    assert cfg.fleet_cidrs == ("10.40.0.0/16", "10.41.0.0/16")
    assert cfg.tolerance_seconds == 90
    assert cfg.roles == (aws.FLEET_ROLE,)
    assert str(cfg.claim) == "principal_tag:AppStreamSession"
    assert cfg.disabled_rules == ("unattributed_activity",)
    assert "PutObject" in cfg.write_events
    assert (cfg.live_freshness_seconds, cfg.logon_window_hours, cfg.logon_mismatch_window_seconds) == (240, 8.0, 120)
    defaults = config_from_env(aws.Deployment("http://unused", "t", "", TPL, aws.PARAMS, d.refs)
                               .function_env("PollSessionsFunction"))
    assert (defaults.live_freshness_seconds, defaults.logon_window_hours,
            defaults.logon_mismatch_window_seconds) == (180, 12.0, 300)  # the template defaults = the core's


def test_template_defaults_are_the_configuration_defaults():
    """A default lives in one place (``auditcorr.config.Config``): every configuration variable in the
    functions' environment comes from a template parameter whose default gives the core's default."""
    from dataclasses import fields

    from auditcorr.config import Config

    globals_env = TPL["Globals"]["Function"]["Environment"]["Variables"]
    assert set(CONFIG_ENV) <= set(globals_env), "every configuration variable is set for the functions"
    given = {"AttributedRoleArns": "roles", "FleetCidrs": "fleet_cidrs"}  # deployment-specific, required
    refs = {"LakeBucket": "b", "AlertsTopic": "t", "IdempotencyTable": "i", "AWS::AccountId": "1"}
    required = {"AppStreamLogsBucketNames"}  # a deployment's own, not the core's configuration
    d = aws.Deployment("http://unused", "t", "", TPL,
                       {k: v for k, v in aws.PARAMS.items() if k in given or k in required}, refs)
    got = config_from_env(d.function_env("IngestCloudTrailFunction"))
    want = Config()
    skip = set(given.values()) | {"severity", "disabled_rules", "live_stacks"}
    for f in fields(Config):
        if f.name not in skip:
            assert getattr(got, f.name) == getattr(want, f.name), f.name


@pytest.mark.parametrize("function", ["IngestCloudTrailFunction", "IngestUsageReportFunction",
                                      "PublishAlertsFunction"])
def test_sqs_triggers_report_batch_item_failures_and_queues_have_dlq_and_alarm(function):
    (event,) = RES[function]["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
    props = RES[queue]["Properties"]
    dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    timeout = RES[function]["Properties"].get("Timeout", TPL["Globals"]["Function"]["Timeout"])
    assert props["VisibilityTimeout"] >= 6 * timeout
    alarms = [r for r in RES.values() if r["Type"] == "AWS::CloudWatch::Alarm"
              and r["Properties"].get("Namespace") == "AWS/SQS"
              and r["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq, "QueueName"]}]
    assert len(alarms) == 1


def test_lake_bucket_is_encrypted_private_tls_only_and_expires_scratch_prefixes():
    bucket = RES["LakeBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    policy = RES["LakeBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny" and policy["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    prefixes = {r["Prefix"]["Fn::Sub"] if isinstance(r["Prefix"], dict) else r["Prefix"]
                for r in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r}
    assert prefixes == {"${LakePrefix}/quarantine/", "athena-results/"}


def test_workgroup_has_results_encryption_and_a_cutoff():
    wg = RES["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert wg["EnforceWorkGroupConfiguration"] is True
    assert wg["BytesScannedCutoffPerQuery"] == {"Ref": "BytesScannedCutoffPerQuery"}
    assert wg["ResultConfiguration"]["OutputLocation"] == {"Fn::Sub": "s3://${LakeBucket}/athena-results/"}
    assert "Fn::If" in wg["ResultConfiguration"]["EncryptionConfiguration"]


def named_queries() -> dict[str, str]:
    return {r["Properties"]["Name"]: r["Properties"]["QueryString"]
            for r in tplmod.resources(TPL, "AWS::Athena::NamedQuery").values()}


def test_named_queries_for_the_analysts_questions():
    assert {"who-wrote-this-object", "user-timeline", "open-alerts", "writes-still-pending", "open-findings",
            "finding-signals"} <= set(named_queries())
    from auditcorr_cli.query import analyst

    body = re.sub(r"^--.*\n", "", named_queries()["user-timeline"], flags=re.M)
    assert body.split() == analyst.positional(analyst.TIMELINE_SQL)[0].split()
    for view in ("alerts_latest", "attributed_activity_latest"):
        assert named_queries()[f"recreate-view-{view}"].split() == (
            f"CREATE OR REPLACE VIEW {view} AS " + latest_view_sql(view)).split()


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory):
    """The scenario ingested into a local lake (the same files the Lambdas write)."""
    from auditcorr.config import Config
    from auditcorr.lake import Lake
    from auditcorr.pipeline import Pipeline

    lake = Lake.open(str(tmp_path_factory.mktemp("lake")))
    pipe = Pipeline(lake, Config(), clock=lambda: int(datetime(2026, 3, 3, 12, tzinfo=UTC).timestamp() * 1000))
    for key, body in sc.cloudtrail_files().items():
        pipe.ingest_object(f"s3://{aws.CLOUDTRAIL_BUCKET}/{key}", body)
    return lake


def test_named_queries_run_and_answer(local_lake):
    from auditcorr_cli.query import analyst

    eng = LocalEngine(local_lake)
    q = named_queries()
    who = eng.query(q["who-wrote-this-object"], ["research-data", sc.DATA_KEY_ALICE, "2026-03-01", "2026-03-03"])
    assert who.column("event_id").to_pylist() == [sc.EV["alice_put"]]
    assert who.column("status").to_pylist() == ["pending"]  # no usage report yet
    pending = eng.query(q["writes-still-pending"])
    assert sc.EV["alice_put"] in pending.column("event_id").to_pylist()
    open_alerts = eng.query(q["open-alerts"])
    assert "credentials_outside_fleet" in open_alerts.column("rule").to_pylist()
    open_findings = eng.query(q["open-findings"]).to_pylist()
    replay = next(r for r in open_findings if r["rule"] == "credentials_outside_fleet")
    assert replay["event_count"] == 1 and replay["sample_event_ids"] == [sc.EV["replay"]]
    signals = eng.query(q["finding-signals"], [replay["finding_id"]])
    assert signals.column("event_id").to_pylist() == [sc.EV["replay"]]
    t0, t1 = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)
    values = {"user": "alice", "first_day": "2026-03-01", "last_day": "2026-03-03", "since": t0, "until": t1}
    timeline = eng.query(q["user-timeline"], [values[n] for n in analyst.positional(analyst.TIMELINE_SQL)[1]])
    assert "logon" in timeline.column("kind").to_pylist()
    assert timeline.equals(analyst.timeline(eng.query, "alice", t0, t1))


def test_samconfig_has_default_and_prod():
    cfg = tomllib.loads(aws.repo_path("samconfig.toml").read_text())
    assert {"default", "prod"} <= set(cfg)
    for env in ("default", "prod"):
        overrides = cfg[env]["deploy"]["parameters"]["parameter_overrides"]
        names = {o.split("=", 1)[0] for o in overrides}
        required = {k for k, v in TPL["Parameters"].items() if "Default" not in v}
        assert required <= names, f"{env}: missing {required - names}"
        assert names <= set(TPL["Parameters"])


def test_member_accounts_may_forward_report_events_only_when_an_organisation_is_given():
    """The default bus accepts other accounts' forwarded report events only from the named
    organisation (``ReportEventsOrganizationId``), and only ``events:PutEvents``; without it the
    policy is not created."""
    res = RES["ForwardedReportEventsPolicy"]
    base = {"AppStreamLogsBucketNames": aws.APPSTREAM_BUCKET}
    refs = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012",
            "AWS::StackName": "auditcorr"}
    assert not tplmod.Resolver(TPL, base, refs).condition(res["Condition"])
    resolve = tplmod.Resolver(TPL, base | {"ReportEventsOrganizationId": "o-a1b2c3d4e5"}, refs)
    assert resolve.condition(res["Condition"])
    st = resolve(res["Properties"]["Statement"])
    assert st == {"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
                  "Resource": "arn:aws:events:eu-west-1:123456789012:event-bus/default",
                  "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}
    pattern = TPL["Parameters"]["ReportEventsOrganizationId"]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "o-a1b2c3d4e5")
    assert not re.fullmatch(pattern, "123456789012") and not re.fullmatch(pattern, "*")
