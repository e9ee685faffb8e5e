"""template.yaml's OCSF export: deployed only when Security Lake is configured, scheduled without retries
or overlap, least privilege (the lake tables it reads, its own state, AssumeRole on the three provider
roles, nothing of the Security Lake bucket), alarms, and one named Athena query per class that runs
on the exported files as Security Lake's own tables present them."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from auditcorr.lake import Lake
from auditcorr.ocsf.export import SOURCES, Output, export_ocsf
from auditcorr.ocsf.incremental import READS
from auditcorr_aws.settings import OCSF_ROLE_ENV, OcsfSettings
from tests.integration import aws
from tests.integration import scenario as sc
from tests.integration import template as tplmod

TPL = tplmod.load()
RES = TPL["Resources"]
SL_PARAMS = ("SecurityLakeBucketName", "SecurityLakeExternalId", "SecurityLakeDatastoreRoleArn",
             "SecurityLakeAuthRoleArn", "SecurityLakeFindingRoleArn")
REFS = {"LakeBucket": aws.LAKE_BUCKET, "AlertsTopic": "t", "IdempotencyTable": "i", "AWS::AccountId": aws.ACCOUNT,
        "AWS::Region": aws.REGION, "AWS::Partition": "aws", "AWS::StackName": "s", "GlueDatabase": "auditcorr",
        "AthenaWorkGroup": "auditcorr", "OperationsTopic": "ops", "ExportOcsfFunction": "fn",
        "ExportOcsfLogGroup": "lg"}
ATTRS = {("LakeBucket", "Arn"): f"arn:aws:s3:::{aws.LAKE_BUCKET}"}


def resolver(params: dict | None = None) -> tplmod.Resolver:
    return tplmod.Resolver(TPL, aws.PARAMS if params is None else params, REFS, ATTRS)


def ocsf_resources() -> dict[str, dict]:
    """Every resource that is about the export (it names the function, its log group, or a Security
    Lake parameter)."""
    import json

    words = ("ExportOcsf", *SL_PARAMS, "amazon_security_lake")
    return {name: res for name, res in RES.items() if name.startswith(("ExportOcsf", "SecurityLake"))
            or any(w in json.dumps(res) for w in words)}


def test_the_export_exists_only_when_every_security_lake_parameter_is_set():
    base = {k: v for k, v in aws.PARAMS.items() if k not in SL_PARAMS}
    assert resolver(base).condition("OcsfExportEnabled") is False  # the defaults: no export
    assert resolver(aws.PARAMS).condition("OcsfExportEnabled") is True
    for missing in SL_PARAMS:
        assert resolver({**aws.PARAMS, missing: ""}).condition("OcsfExportEnabled") is False, missing
    found = ocsf_resources()
    assert {"ExportOcsfFunction", "ExportOcsfLogGroup", "ExportOcsfFailingAlarm", "ExportOcsfRejectedAlarm",
            "ExportOcsfBacklogAlarm"} <= set(found)
    for name, res in found.items():
        assert res.get("Condition") == "OcsfExportEnabled", name
    for p in SL_PARAMS:
        assert TPL["Parameters"][p]["Default"] == ""


def test_the_function_environment_is_what_the_settings_read():
    d = aws.Deployment("http://unused", "t", "", TPL, aws.PARAMS, REFS)
    env = d.function_env("ExportOcsfFunction")
    ocsf = OcsfSettings.from_env(env)
    assert ocsf.bucket == aws.SECURITY_LAKE_BUCKET and ocsf.external_id == aws.SECURITY_LAKE_EXTERNAL_ID
    assert dict(ocsf.roles) == aws.PROVIDER_ROLES
    assert set(OCSF_ROLE_ENV) == set(SOURCES)
    # the other functions are not given the Security Lake settings
    for fn in ("IngestCloudTrailFunction", "PublishAlertsFunction", "PollSessionsFunction"):
        assert not set(OCSF_ROLE_ENV.values()) & set(d.function_env(fn))


def test_the_export_is_scheduled_never_retried_never_overlapping():
    fn = RES["ExportOcsfFunction"]["Properties"]
    assert fn["CodeUri"].rstrip("/") == "functions/export_ocsf" and fn["Handler"] == "app.lambda_handler"
    (event,) = fn["Events"].values()
    assert event["Type"] == "Schedule" and event["Properties"]["Schedule"] == {"Ref": "OcsfExportSchedule"}
    assert TPL["Parameters"]["OcsfExportSchedule"]["Default"] == "rate(15 minutes)"  # Security Lake: 5 min..1 h
    assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert fn["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert fn["ReservedConcurrentExecutions"] == 1  # one run at a time: one writer of the state and objects
    from auditcorr_aws.ocsf import RESERVE_MS

    assert fn["Timeout"] * 1000 > 4 * RESERVE_MS


def _statements() -> list[dict]:
    (inline, *rest) = RES["ExportOcsfFunction"]["Properties"]["Policies"]
    assert rest == []  # not the LakeWritePolicy
    return [st for st in resolver()(inline["Statement"]) if st.get("Effect") == "Allow"]


def _as_list(v):
    return v if isinstance(v, list) else [v]


def test_the_export_reads_only_what_it_exports_writes_only_its_state_and_assumes_only_the_provider_roles():
    sts = _statements()
    lake = f"arn:aws:s3:::{aws.LAKE_BUCKET}/{aws.LAKE_PREFIX}"
    by_action: dict[str, set[str]] = {}
    for st in sts:
        for a in _as_list(st["Action"]):
            by_action.setdefault(a, set()).update(_as_list(st["Resource"]))
    assert set(by_action) <= {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "sts:AssumeRole", "kms:Decrypt",
                              "kms:GenerateDataKey"}
    assert by_action["sts:AssumeRole"] == set(aws.PROVIDER_ROLES.values())
    reads = {r for r in by_action["s3:GetObject"] if r.endswith("/*")}
    assert reads == {f"{lake}/{t}/*" for t in READS} | {f"{lake}/_state/ocsf_export/*"}
    # writes: its state (and pyarrow's empty directory markers), nothing of the tables
    assert {r for r in by_action["s3:PutObject"] if not r.endswith("/")} == {f"{lake}/_state/ocsf_export/*"}
    every = {r for rs in by_action.values() for r in rs}
    assert not any(aws.SECURITY_LAKE_BUCKET in r for r in every)  # Security Lake only through the roles
    assert "*" not in every


def named_queries() -> dict[str, dict]:
    r = resolver()
    return {res["Properties"]["Name"]: r(res["Properties"]) for name, res in RES.items()
            if res["Type"] == "AWS::Athena::NamedQuery" and res.get("Condition") == "OcsfExportEnabled"}


def security_lake_table(source: str) -> str:
    """The custom source's table as Security Lake names it (CreateCustomLogSource's tableArn)."""
    return f"amazon_security_lake_table_{aws.REGION.replace('-', '_')}_ext_{source.replace('-', '_')}"


def test_one_named_query_per_class_against_the_custom_sources_own_tables():
    q = named_queries()
    assert len(q) == len(SOURCES)
    assert {p["Database"] for p in q.values()} == {"amazon_security_lake_glue_db_us_east_1"}
    for source in SOURCES:
        assert sum(security_lake_table(source) in p["QueryString"] for p in q.values()) == 1, source


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The integration scenario ingested (CloudTrail, then the usage report) and exported locally."""
    from auditcorr.config import Config
    from auditcorr.pipeline import Pipeline

    root = tmp_path_factory.mktemp("ocsf")
    lake = Lake.open(str(root / "lake"))
    pipe = Pipeline(lake, Config(), clock=lambda: int(datetime(2026, 3, 3, 12, tzinfo=UTC).timestamp() * 1000))
    for key, body in sc.cloudtrail_files().items():
        pipe.ingest_object(f"s3://{aws.CLOUDTRAIL_BUCKET}/{key}", body)
    pipe.ingest_object(f"s3://{aws.APPSTREAM_BUCKET}/{sc.SESSIONS_KEY}", sc.sessions_report())
    export_ocsf(lake, Output.open(str(root / "sl")))
    return root / "sl"


def run_athena_sql(sql: str, params: list, out, partition_type: pa.DataType = pa.string()) -> list[dict]:
    """Athena SQL through the project's Trino -> DuckDB translator, over the exported files registered
    under the names and partition columns Security Lake's crawler gives them (their type is the
    crawler's guess: strings, or numbers for eventday/accountid)."""
    import duckdb

    from auditcorr_cli.query.trino import translate

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    for source in SOURCES:
        part = ds.partitioning(pa.schema([("region", pa.string()), ("accountId", partition_type),
                                          ("eventDay", partition_type)]), flavor="hive")
        dataset = ds.dataset(str(out / "ext" / source), format="parquet", partitioning=part)
        table = dataset.to_table()
        table = table.rename_columns([c.lower() for c in table.column_names])  # Glue lower-cases columns
        con.register(security_lake_table(source), table)
    body = "\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
    rel = con.sql(translate(body), params=params)
    return rel.to_arrow_table().to_pylist()


@pytest.mark.parametrize("partition_type", [pa.string(), pa.int64()])
def test_the_who_wrote_query_names_the_user_from_security_lake(exported, partition_type):
    q = named_queries()["security-lake-who-wrote-this-object"]["QueryString"]
    rows = run_athena_sql(q, ["research-data", sc.DATA_KEY_ALICE, "20260301", "20260303"], exported, partition_type)
    assert [(r["event_id"], r["attribution"], r["user_name"], r["session_id"]) for r in rows] == [
        (sc.EV["alice_put"], "attributed", "alice", sc.S1)]
    assert str(rows[0]["eventday"]) == "20260302" and str(rows[0]["accountid"]) == sc.ACCOUNT
    assert run_athena_sql(q, ["research-data", sc.DATA_KEY_ALICE, "20260303", "20260304"], exported,
                          partition_type) == []  # another day


def test_the_logons_query_lists_a_users_logons(exported):
    q = named_queries()["security-lake-user-logons"]["QueryString"]
    rows = run_athena_sql(q, ["alice", "20260301", "20260303"], exported)
    assert [r["event_id"] for r in rows] == [sc.EV["alice_logon"]]
    assert rows[0]["status"] == "Success" and rows[0]["user_name"] == "alice"
    assert run_athena_sql(q, ["alice", "20260303", "20260303"], exported) == []  # outside the days


def test_the_open_findings_query_lists_the_open_alerts(exported):
    from auditcorr.lake import Lake as _Lake

    q = named_queries()["security-lake-open-findings"]["QueryString"]
    rows = run_athena_sql(q, ["20260301", "20260303"], exported)
    lake = _Lake.open(str(exported.parent / "lake"))
    alerts = lake.read("alerts").to_pylist()
    latest: dict[str, dict] = {}
    for a in sorted(alerts, key=lambda a: a["updated_at"]):
        latest[a["alert_id"]] = a
    want = {a["alert_id"] for a in latest.values() if a["status"] == "open"}
    assert want and {r["finding_uid"] for r in rows} == want
    assert "credentials_outside_fleet" in {r["rule"] for r in rows}
