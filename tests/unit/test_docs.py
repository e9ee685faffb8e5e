from __future__ import annotations

from pathlib import Path

from scripts.gen_tables_doc import render

ROOT = Path(__file__).resolve().parents[2]


def test_tables_doc_is_current():
    assert (ROOT / "docs" / "tables.md").read_text().strip() == render().strip(), (
        "docs/tables.md is stale: run `python scripts/gen_tables_doc.py > docs/tables.md`")
