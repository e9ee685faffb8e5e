"""What the Lambda image holds: the handlers import only the runtime (boto3), the core layer
(auditcorr, orjson, msgspec), the SDK for pandas layer (pyarrow, numpy) and the Powertools layer --
never the CLI's DuckDB, sqlglot or click, nor awswrangler/pandas (ADR 0003)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration import aws
from tests.integration import template as tplmod

CLI_ONLY = ("duckdb", "sqlglot", "click", "awswrangler", "pandas", "tqdm")

SCRIPT = """
import importlib.abc, importlib.util, sys
BLOCKED = set(sys.argv[2].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not in the Lambda layers")
sys.meta_path.insert(0, Block())
spec = importlib.util.spec_from_file_location("handler_under_test", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
assert callable(mod.lambda_handler)
"""


@pytest.mark.parametrize("function", sorted(tplmod.function_specs(tplmod.load())))
def test_handler_imports_without_cli_only_packages(function):
    spec = tplmod.function_specs(tplmod.load())[function]
    env = {"PYTHONPATH": str(aws.repo_path("layers", "core")), "AWS_DEFAULT_REGION": "us-east-1",
           "POWERTOOLS_SERVICE_NAME": spec["dir"].name, "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(spec["file"]), ",".join(CLI_ONLY)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_core_layer_requirements_are_the_layer_only_packages():
    reqs = aws.repo_path("layers", "core", "requirements.txt").read_text()
    names = {line.split(">")[0].split("=")[0].split("<")[0].strip().lower() for line in reqs.splitlines()
             if line.strip() and not line.startswith("#")}
    # orjson/msgspec: CloudTrail decoding (ADR 0005); cachetools: the lake's byte-budget caches (ADR 0008)
    assert names == {"orjson", "msgspec", "cachetools"}
