"""docs/ocsf.md lists the Glue columns of the three outputs as the code writes them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from auditcorr.lake import Lake
from auditcorr.ocsf.catalog import hive_type
from auditcorr.ocsf.export import SOURCES, Output, export_ocsf

DOC = Path(__file__).resolve().parents[2] / "docs" / "ocsf.md"


def test_glue_columns_in_the_doc_match_the_written_files(scenario_lake, tmp_path):
    export_ocsf(Lake.open(str(scenario_lake)), Output.open(str(tmp_path / "sl")))
    text = DOC.read_text()
    for source in SOURCES:
        section = text.split(f"#### `{source}`", 1)[1].split("####", 1)[0]
        schema = pq.read_schema(next((tmp_path / "sl" / "ext" / source).rglob("*.parquet")))
        lines = [f"| `{f.name}` | `{hive_type(f.type)}` |" for f in schema]
        documented = [ln for ln in section.splitlines() if ln.startswith("| `")]
        assert documented == lines, f"{source}: regenerate the Glue columns in docs/ocsf.md"
