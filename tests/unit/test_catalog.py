"""One declaration per table (schemas.CATALOG): what is derived from it, what it refuses, and `make
catalog`'s output (docs/tables.md and template.yaml's generated section) equal to the committed files."""

from __future__ import annotations

import dataclasses
import shutil

import pyarrow as pa
import pytest
import yaml

from auditcorr import lake
from auditcorr.schemas import (
    CATALOG,
    PARTITION_COLUMN,
    ROW_KEYS,
    ROW_VERSION,
    STR,
    TABLES,
    TS,
    Column,
    TableSpec,
    schema_version,
)
from auditcorr_cli.query.engine import LATEST_VIEWS
from scripts import catalog
from tests.integration import template as tplmod


def test_generated_files_are_the_committed_files():
    for path, text in catalog.generated().items():
        assert path.read_text() == text, f"{path.name} is stale: run `make catalog`"
    assert catalog.main(["--check"]) == 0


def test_check_names_a_stale_file_and_writing_makes_it_current(tmp_path, monkeypatch, capsys):
    doc, tpl = tmp_path / "tables.md", tmp_path / "template.yaml"
    shutil.copy(catalog.DOC, doc)
    shutil.copy(catalog.TEMPLATE, tpl)
    monkeypatch.setattr(catalog, "ROOT", tmp_path)
    monkeypatch.setattr(catalog, "DOC", doc)
    monkeypatch.setattr(catalog, "TEMPLATE", tpl)
    # a hand edit inside the generated section, and a hand edit outside it
    text = tpl.read_text()
    edited = text.replace("- {Name: bucket, Type: \"string\"}", "- {Name: bucket, Type: \"varchar\"}", 1)
    edited = edited.replace("Outputs:\n", "Outputs:\n  # kept by hand\n", 1)
    assert edited != text
    tpl.write_text(edited)
    assert catalog.main(["--check"]) == 1
    assert "stale: template.yaml" in capsys.readouterr().err
    assert tpl.read_text() == edited  # --check writes nothing
    assert catalog.main([]) == 0
    regenerated = tpl.read_text()
    assert "# kept by hand" in regenerated and '{Name: bucket, Type: "varchar"}' not in regenerated
    assert catalog.main(["--check"]) == 0


def test_splice_needs_both_markers_once():
    with pytest.raises(ValueError, match="markers"):
        catalog.splice("Resources:\n" + catalog.BEGIN, "x")
    with pytest.raises(ValueError, match="markers"):
        catalog.splice(catalog.BEGIN + catalog.END + catalog.BEGIN + catalog.END, "x")
    assert catalog.splice("a\n" + catalog.BEGIN + "old\n" + catalog.END + "b\n", "new\n") == "a\nnew\nb\n"


def test_the_names_other_modules_import_are_derived_from_the_declaration():
    assert list(TABLES) == list(CATALOG)
    for name, spec in CATALOG.items():
        assert TABLES[name] is spec.schema
        assert TABLES[name].names == [c.name for c in spec.columns]
        assert schema_version(TABLES[name]) == spec.version
        assert ROW_KEYS[name] == spec.key and ROW_VERSION[name] == spec.version_column
        assert lake.SORT_KEYS.get(name, ()) == spec.sort_keys
        assert lake.BLOOM_FILTERS.get(name, ()) == spec.bloom_filters
    assert LATEST_VIEWS == {f"{s.name}_latest": (s.name, s.key, s.version_column)
                            for s in CATALOG.values() if s.latest_view}
    # the tables analysts' lookups rely on (docs/performance.md) keep their layout
    assert lake.SORT_KEYS["s3_writes"] == ("bucket", "key", "event_time")
    assert lake.BLOOM_FILTERS["attributed_activity"] == ("user_id", "event_id")
    assert set(LATEST_VIEWS) == {"alerts_latest", "attributed_activity_latest", "findings_latest",
                                 "log_file_integrity_latest"}


def _spec(**change) -> TableSpec:
    base = dict(name="findings", version=1, title="t", description="d", partition="the day",
                columns=(Column("finding_id", STR, "id"), Column("updated_at", TS, "when")),
                key=("finding_id",), version_column="updated_at")
    return TableSpec(**(base | change))  # type: ignore[arg-type]


@pytest.mark.parametrize("change, why", [
    ({"name": "Findings-1"}, "invalid table name"),
    ({"columns": (Column("finding_id", STR, "id"), Column("finding_id", STR, "again"))}, "duplicate"),
    ({"columns": (Column("finding_id", STR, "id"), Column(PARTITION_COLUMN, STR, "day"))}, "duplicate"),
    ({"columns": (Column("finding_id", STR, " "),)}, "no description"),
    ({"key": ()}, "no key"),
    ({"key": ("nope",)}, "key names unknown"),
    ({"version_column": "nope"}, "version_column names unknown"),
    ({"sort_keys": ("finding_id", "nope")}, "sort_keys names unknown"),
    ({"bloom_filters": ("nope",)}, "bloom_filters names unknown"),
    ({"version_column": None, "latest_view": True}, "latest view needs a version column"),
])
def test_a_declaration_that_contradicts_itself_is_refused(change, why):
    with pytest.raises(ValueError, match=why):
        _spec(**change)


def test_a_new_declaration_generates_a_glue_table_and_a_doc_section():
    spec = _spec(columns=(Column("finding_id", STR, "the finding's id"), Column("updated_at", TS, "when"),
                          Column("count", pa.int64(), "how many: with a colon"),
                          Column("open", pa.bool_(), "still open"),
                          Column("resources", pa.list_(pa.string()), "ARNs")),
                 title="Findings: one row per state change", sort_keys=("updated_at",), bloom_filters=("count",))
    resources = yaml.load("\n".join(catalog._glue_table(spec)), Loader=tplmod.CfnLoader)  # noqa: S506
    assert list(resources) == ["FindingsTable"]
    ti = resources["FindingsTable"]["Properties"]["TableInput"]
    assert (ti["Name"], ti["Description"], ti["Parameters"]["auditcorr.schema_version"]) == (
        "findings", "Findings: one row per state change", "1")
    assert ti["StorageDescriptor"]["Columns"] == [
        {"Name": "finding_id", "Type": "string"}, {"Name": "updated_at", "Type": "timestamp"},
        {"Name": "count", "Type": "bigint"}, {"Name": "open", "Type": "boolean"},
        {"Name": "resources", "Type": "array<string>"}]
    assert ti["Parameters"]["storage.location.template"] == {
        "Fn::Sub": "s3://${LakeBucket}/${LakePrefix}/findings/dt=${!dt}"}
    doc = "\n".join(catalog._doc_table(spec))
    assert "| `count` | `int64` | `bigint` | how many: with a colon |" in doc
    assert "Compacted files sorted by `updated_at`." in doc and "Bloom filters: `count`." in doc


def test_every_declared_table_and_view_is_in_the_generated_section_once():
    section = catalog.render_template_section()
    body = section.removeprefix(catalog.BEGIN).removesuffix(catalog.END)
    resources = yaml.load(body, Loader=tplmod.CfnLoader)  # noqa: S506
    tables = {r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]["TableType"]
              for r in resources.values() if r["Type"] == "AWS::Glue::Table"}
    assert tables == {n: "EXTERNAL_TABLE" for n in CATALOG} | {v: "VIRTUAL_VIEW" for v in LATEST_VIEWS}
    queries = {r["Properties"]["Name"] for r in resources.values() if r["Type"] == "AWS::Athena::NamedQuery"}
    assert queries == {f"recreate-view-{v}" for v in LATEST_VIEWS}
    assert len(resources) == len(CATALOG) + 2 * len(LATEST_VIEWS)


def test_plain_scalars_read_back_as_the_same_text():
    for text in ("plain words (and more)", "a: colon", "# hash", "yes", "'quoted'", "1", "x #y", "- dash"):
        assert yaml.safe_load(f"k: {catalog._plain(text)}") == {"k": text}


def test_table_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOG["alerts"].version = 2  # type: ignore[misc]
