from __future__ import annotations

from pathlib import Path

from auditcorr.schemas import CATALOG
from scripts.catalog import render_doc

ROOT = Path(__file__).resolve().parents[2]


def test_tables_doc_is_current():
    assert (ROOT / "docs" / "tables.md").read_text() == render_doc(), (
        "docs/tables.md is stale: run `make catalog`")


def test_tables_doc_describes_every_column_of_every_table():
    doc = render_doc()
    for spec in CATALOG.values():
        section = doc.split(f"## `{spec.name}` (schema v{spec.version})", 1)[1].split("\n## ", 1)[0]
        assert spec.description in section
        for col in spec.columns:
            assert f"| `{col.name}` | `{col.type}` |" in section
            assert col.description in section


def test_the_readme_configuration_block_shows_the_defaults():
    """The README's TOML example is the configuration with no file: parsed, it equals ``Config()``
    (defaults are declared once, in ``auditcorr.config``; the README only shows them)."""
    import re
    import tomllib

    from auditcorr.config import Config, from_mapping

    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Configuration.*?```toml\n(.*?)```", text, re.S)
    assert block, "README has a ## Configuration section with a toml block"
    assert from_mapping(tomllib.loads(block.group(1))) == Config()
