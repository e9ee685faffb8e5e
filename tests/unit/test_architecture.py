"""The core imports no AWS SDK, awswrangler or Powertools (only adapters at the edge may)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "layers" / "core" / "auditcorr"
FORBIDDEN = ("boto3", "botocore", "awswrangler", "aws_lambda_powertools")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_no_aws_sdk():
    offenders = {}
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE)
        if rel.parts[:2] == ("adapters", "aws"):
            continue
        bad = imports(path) & set(FORBIDDEN)
        if bad:
            offenders[str(rel)] = sorted(bad)
    assert offenders == {}


def test_the_check_sees_adapters():
    # guard against a vacuous pass: the AWS adapters do import boto3 or powertools
    aws = CORE / "adapters" / "aws"
    found = set()
    for path in aws.rglob("*.py"):
        found |= imports(path) & set(FORBIDDEN)
    assert found, "expected the AWS adapters to import an AWS library"
