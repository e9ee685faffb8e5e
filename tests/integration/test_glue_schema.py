"""The Glue tables and views in template.yaml are the core's Arrow schemas, and partition projection
points where the lake writes."""

from __future__ import annotations

import base64
import json
import re

import pyarrow as pa
import pytest

from auditcorr.lake import Lake
from auditcorr.schemas import PARTITION_COLUMN, TABLES, schema_version
from auditcorr_cli.query.engine import LATEST_VIEWS, latest_view_sql
from tests.integration import aws
from tests.integration import template as tplmod

TPL = tplmod.load()
PARAMS = {"LakePrefix": "lake", "GlueDatabaseName": "auditcorr", "ProjectionStartDate": "2020-01-01"}
REFS = {"LakeBucket": "example-auditcorr-lake", "GlueDatabase": "auditcorr", "AWS::AccountId": aws.ACCOUNT,
        "AWS::Region": aws.REGION, "AWS::Partition": "aws"}


def glue_type(t: pa.DataType) -> str:
    """The Glue (Hive) type Athena must see for an Arrow type -- exactly, or reads fail."""
    if t == pa.timestamp("ms", tz="UTC"):
        return "timestamp"
    if t == pa.string():
        return "string"
    if t == pa.int64():
        return "bigint"
    if t == pa.bool_():
        return "boolean"
    if pa.types.is_list(t):
        return f"array<{glue_type(t.value_type)}>"
    raise AssertionError(f"no Glue type decided for Arrow {t}")


def presto_type(t: pa.DataType) -> str:
    if t == pa.timestamp("ms", tz="UTC"):
        return "timestamp(3)"
    if t == pa.string():
        return "varchar"
    if pa.types.is_list(t):
        return f"array({presto_type(t.value_type)})"
    return {"bigint": "bigint", "boolean": "boolean"}[glue_type(t)]


def glue_tables() -> dict[str, dict]:
    resolve = tplmod.Resolver(TPL, PARAMS, REFS)
    out = {}
    for res in tplmod.resources(TPL, "AWS::Glue::Table").values():
        ti = resolve(res["Properties"]["TableInput"])
        out[ti["Name"]] = ti
    return out


def expected_columns(table: str) -> list[dict[str, str]]:
    return [{"Name": f.name, "Type": glue_type(f.type)} for f in TABLES[table]]


def test_one_glue_table_per_core_table_and_one_view_per_latest_view():
    tables = {n for n, t in glue_tables().items() if t["TableType"] == "EXTERNAL_TABLE"}
    views = {n for n, t in glue_tables().items() if t["TableType"] == "VIRTUAL_VIEW"}
    assert tables == set(TABLES)
    assert views == set(LATEST_VIEWS)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_glue_columns_and_types_equal_the_arrow_schema(table):
    ti = glue_tables()[table]
    got = ti["StorageDescriptor"]["Columns"]
    want = expected_columns(table)
    assert got == want, "template.yaml {} columns must be:\n{}".format(
        table, "\n".join(f'            - {{Name: {c["Name"]}, Type: "{c["Type"]}"}}' for c in want))
    assert ti["PartitionKeys"] == [{"Name": PARTITION_COLUMN, "Type": "string"}]
    assert ti["Parameters"]["auditcorr.schema_version"] == str(schema_version(TABLES[table]))


@pytest.mark.parametrize("table", sorted(TABLES))
def test_parquet_serde_and_partition_projection(table):
    ti = glue_tables()[table]
    p = ti["Parameters"]
    sd = ti["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["InputFormat"].endswith("MapredParquetInputFormat")
    assert sd["OutputFormat"].endswith("MapredParquetOutputFormat")
    assert p["projection.enabled"] == "true"
    assert p["projection.dt.type"] == "date"
    assert p["projection.dt.format"] == "yyyy-MM-dd"
    assert p["projection.dt.range"] == "2020-01-01,NOW"
    assert (p["projection.dt.interval"], p["projection.dt.interval.unit"]) == ("1", "DAYS")
    assert sd["Location"] == f"s3://example-auditcorr-lake/lake/{table}/"


@pytest.mark.parametrize("table", sorted(TABLES))
def test_projection_template_is_where_the_lake_writes(table, tmp_path):
    template = glue_tables()[table]["Parameters"]["storage.location.template"]
    assert template.count("${dt}") == 1
    lake = Lake.open(str(tmp_path))
    data = TABLES[table].empty_table()
    written = lake.write_file(table, "2026-03-02", "part-abc", data)
    relative = written[len(str(tmp_path)) + 1:]  # <table>/dt=2026-03-02/part-abc.parquet
    projected = template.replace("${dt}", "2026-03-02")
    assert f"s3://example-auditcorr-lake/lake/{relative}".startswith(projected + "/")
    assert relative.rsplit("/", 1)[0] == f"{table}/dt=2026-03-02"
    # and the same key shape on S3: s3://<bucket>/<LakePrefix>/<table>/dt=<day>/<name>.parquet
    assert re.fullmatch(r"s3://[^/]+/lake/[a-z0-9_]+/dt=\$\{dt\}", template)


@pytest.mark.parametrize("view", sorted(LATEST_VIEWS))
def test_views_are_the_local_engines_views(view):
    ti = glue_tables()[view]
    text = ti["ViewOriginalText"]
    assert text.startswith("/* Presto View: ") and text.endswith(" */")
    doc = json.loads(base64.b64decode(text[len("/* Presto View: "):-len(" */")]))
    assert doc["originalSql"] == latest_view_sql(view, "auditcorr")
    assert (doc["catalog"], doc["schema"]) == ("awsdatacatalog", "auditcorr")
    table = LATEST_VIEWS[view][0]
    fields = list(TABLES[table]) + [pa.field(PARTITION_COLUMN, pa.string())]
    assert doc["columns"] == [{"name": f.name, "type": presto_type(f.type)} for f in fields]
    assert ti["StorageDescriptor"]["Columns"] == [{"Name": f.name, "Type": glue_type(f.type)} for f in fields]
    assert ti["Parameters"]["presto_view"] == "true"


def test_glue_accepts_the_definitions(deployment):
    """Create the database, tables and views in (moto) Glue from the resolved template and read back."""
    glue = deployment.client("glue")
    db = tplmod.Resolver(TPL, PARAMS, REFS)(TPL["Resources"]["GlueDatabase"]["Properties"]["DatabaseInput"])
    glue.create_database(DatabaseInput=db)
    for name, ti in glue_tables().items():
        glue.create_table(DatabaseName="auditcorr", TableInput=ti)
        got = glue.get_table(DatabaseName="auditcorr", Name=name)["Table"]
        assert got["StorageDescriptor"]["Columns"] == ti["StorageDescriptor"]["Columns"]
        assert got.get("Parameters", {}) == ti.get("Parameters", {})
    assert {t["Name"] for t in glue.get_tables(DatabaseName="auditcorr")["TableList"]} == set(TABLES) | set(
        LATEST_VIEWS)
