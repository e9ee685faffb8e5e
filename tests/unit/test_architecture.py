"""Package boundaries (docs/architecture.md).

- ``auditcorr`` (the pure core) imports no AWS SDK, awswrangler or Powertools, and none of the
  other three packages: adapters, shell and simulation depend on the core, never the reverse.
- ``auditcorr_aws`` (the adapters, shipped in the Lambda layer beside the core) never imports the
  shell or the simulation.
- The Lambda layer folder holds exactly the two product packages: the simulation is not shipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "core"
CORE = LAYER / "auditcorr"
ADAPTERS = LAYER / "auditcorr_aws"
AWS_LIBRARIES = {"boto3", "botocore", "awswrangler", "aws_lambda_powertools"}


def imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file (lazy imports inside functions too)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def offenders(package: Path, forbidden: set[str]) -> dict[str, list[str]]:
    out = {}
    for path in package.rglob("*.py"):
        bad = imports(path) & forbidden
        if bad:
            out[str(path.relative_to(ROOT))] = sorted(bad)
    return out


def test_core_imports_no_aws_library_and_no_outer_package():
    shell_libraries = {"click", "duckdb", "sqlglot"}  # the CLI and the local engine: the shell's
    assert offenders(CORE, AWS_LIBRARIES | shell_libraries | {"auditcorr_aws", "auditcorr_cli", "auditcorr_sim"}) == {}


def test_adapters_import_neither_shell_nor_simulation():
    assert offenders(ADAPTERS, {"auditcorr_cli", "auditcorr_sim"}) == {}


def test_the_check_sees_adapters():
    # guard against a vacuous pass: the AWS adapters do import boto3 or powertools, and the core
    assert offenders(ADAPTERS, AWS_LIBRARIES), "expected the AWS adapters to import an AWS library"
    assert offenders(ADAPTERS, {"auditcorr"})


def test_the_layer_ships_only_the_product():
    packages = sorted(p.name for p in LAYER.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert packages == ["auditcorr", "auditcorr_aws"]
