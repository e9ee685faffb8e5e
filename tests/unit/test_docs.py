from __future__ import annotations

from pathlib import Path

from scripts.gen_tables_doc import render

ROOT = Path(__file__).resolve().parents[2]


def test_tables_doc_is_current():
    assert (ROOT / "docs" / "tables.md").read_text().strip() == render().strip(), (
        "docs/tables.md is stale: run `python scripts/gen_tables_doc.py > docs/tables.md`")


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
