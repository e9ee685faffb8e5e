"""The CLI against a deployed lake: ``--lake s3://...`` (pyarrow's S3 client, endpoint from
AWS_ENDPOINT_URL, here a moto server on 127.0.0.1) and ``query --athena`` (awswrangler on Athena,
moto with seeded results)."""

from __future__ import annotations

import json

import boto3
import requests
from click.testing import CliRunner

from auditcorr_cli.main import main
from tests.integration import aws
from tests.integration import scenario as sc

LAKE = f"s3://{aws.LAKE_BUCKET}/{aws.LAKE_PREFIX}"


def write_inputs(tmp_path):
    folder = tmp_path / "inputs"
    for key, body in sc.cloudtrail_files().items():
        path = folder / "cloudtrail" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    report = folder / "appstream" / sc.SESSIONS_KEY
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_bytes(sc.sessions_report())
    return folder


def test_ingest_and_query_an_s3_lake(fake_aws, tmp_path):
    boto3.client("s3", region_name=aws.REGION).create_bucket(Bucket=aws.LAKE_BUCKET)
    inputs = write_inputs(tmp_path)
    runner = CliRunner()

    ingest = runner.invoke(main, ["ingest", "--lake", LAKE, str(inputs / "cloudtrail"), str(inputs / "appstream")])
    assert ingest.exit_code == 0, ingest.output
    assert "cloudtrail" in ingest.output and "sessions_report" in ingest.output

    keys = aws.Deployment(fake_aws, "", "", {}, {}).lake_objects()
    assert any(k.startswith("lake/s3_writes/dt=2026-03-02/") and k.endswith(".parquet") for k in keys)

    query = runner.invoke(main, ["query", "--lake", LAKE, "--format", "json",
                                 "SELECT event_id, user_id, status FROM attributed_activity_latest "
                                 "WHERE dt = '2026-03-02' ORDER BY event_id"])
    assert query.exit_code == 0, query.output
    rows = {r["event_id"]: r for r in json.loads(query.output)}
    assert rows[sc.EV["alice_put"]]["user_id"] == "alice"
    assert rows[sc.EV["replay"]]["status"] == "external"

    who = runner.invoke(main, ["who", "--lake", LAKE, "--bucket", "research-data", "--key", sc.DATA_KEY_ALICE])
    assert who.exit_code == 0 and "user alice" in who.output


def seed_athena(endpoint: str, rows: list[list[str]], columns: list[tuple[str, str]]) -> None:
    info = [{"Name": n, "Type": t, "CatalogName": "hive", "SchemaName": "", "TableName": "", "Label": n,
             "Nullable": "UNKNOWN", "CaseSensitive": True, "Precision": 0, "Scale": 0} for n, t in columns]
    data = [{"Data": [{"VarCharValue": n} for n, _ in columns]}] + [
        {"Data": [{"VarCharValue": v} for v in row]} for row in rows]
    requests.post(f"{endpoint}/moto-api/static/athena/query-results", timeout=10, json={
        "account_id": aws.ACCOUNT, "region": aws.REGION,
        "results": [{"rows": data, "column_info": info}]}).raise_for_status()


def test_query_athena_runs_on_athena(fake_aws, monkeypatch):
    boto3.client("s3", region_name=aws.REGION).create_bucket(Bucket=aws.LAKE_BUCKET)
    athena = boto3.client("athena", region_name=aws.REGION)
    athena.create_work_group(Name="auditcorr-test", Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{aws.LAKE_BUCKET}/athena-results/"}})
    monkeypatch.setenv("AUDITCORR_ATHENA_WORKGROUP", "auditcorr-test")
    monkeypatch.setenv("AUDITCORR_ATHENA_DATABASE", "auditcorr")
    seed_athena(fake_aws, [["attributed", "3"], ["pending", "1"]], [("status", "varchar"), ("writes", "bigint")])

    sql = "SELECT status, count(*) AS writes FROM attributed_activity_latest GROUP BY status"
    result = CliRunner().invoke(main, ["query", "--athena", "--format", "json", sql])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"status": "attributed", "writes": 3}, {"status": "pending", "writes": 1}]
    (qid,) = athena.list_query_executions(WorkGroup="auditcorr-test")["QueryExecutionIds"]
    ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert ex["Query"] == sql
    assert ex["QueryExecutionContext"]["Database"] == "auditcorr"


def test_athena_parameters_are_literals_never_sql(fake_aws):
    from datetime import UTC, datetime

    from auditcorr_aws.athena import run_query, sql_literal

    assert sql_literal("o'brien") == "'o''brien'"
    assert sql_literal(None) == "NULL"
    assert sql_literal(datetime(2026, 3, 2, 8, 0, tzinfo=UTC)) == "TIMESTAMP '2026-03-02 08:00:00.000'"
    boto3.client("s3", region_name=aws.REGION).create_bucket(Bucket=aws.LAKE_BUCKET)
    athena = boto3.client("athena", region_name=aws.REGION)
    athena.create_work_group(Name="wg", Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{aws.LAKE_BUCKET}/athena-results/"}})
    seed_athena(fake_aws, [], [("x", "varchar")])
    run_query("SELECT x FROM t WHERE a = ? AND b = ?", ["x' OR '1'='1", 7], "auditcorr", "wg")
    (qid,) = athena.list_query_executions(WorkGroup="wg")["QueryExecutionIds"]
    ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert ex["Query"] == "SELECT x FROM t WHERE a = ? AND b = ?"
    assert ex["ExecutionParameters"] == ["'x'' OR ''1''=''1'", "7"]
