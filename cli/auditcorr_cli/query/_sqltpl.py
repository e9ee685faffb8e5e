"""Small helpers shared by the Trino -> DuckDB translation modules: refusals and DuckDB templates."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

# a run-time refusal: the local engine cannot answer exactly as Athena would
REFUSED_PREFIX = "auditcorr: "
# a run-time failure Athena raises too (so ``try()`` may turn it into NULL, as Trino's try does)
ATHENA_FAILS_PREFIX = "athena fails too: "


class UnsupportedSQL(ValueError):
    """The statement cannot be run locally with exactly Athena's answer."""


def refuse(construct: str, why: str) -> UnsupportedSQL:
    return UnsupportedSQL(f"{construct}: {why}")


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def err(msg: str) -> str:
    """DuckDB SQL raising a refusal when evaluated (``error()`` is a ``duckdb.Error`` at run time)."""
    return f"error({lit(REFUSED_PREFIX + msg)})"


def fail(msg: str) -> str:
    """DuckDB SQL raising the failure Athena raises for the same value."""
    return f"error({lit(ATHENA_FAILS_PREFIX + msg)})"


ATOMIC = (exp.Column, exp.Literal, exp.Paren, exp.Func, exp.Placeholder, exp.Null, exp.Boolean, exp.Lambda)


def tpl(template: str, **args: exp.Expression) -> exp.Expression:
    """Parse a DuckDB template and put copies of ``args`` in place of its ``_name_`` columns."""
    def sub(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name.strip("_") in args:
            new = args[node.name.strip("_")].copy()
            return new if isinstance(new, ATOMIC) else exp.Paren(this=new)
        return node
    return sqlglot.parse_one(template, read="duckdb").transform(sub)
