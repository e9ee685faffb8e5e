"""Run analyst SQL on Athena (``auditcorr query --athena``) through awswrangler.

Values are Athena execution parameters (``?`` placeholders, ``paramstyle="qmark"``), never SQL
text; each is passed as the SQL literal Athena expects. ``ctas_approach=False``: the query runs as
written (no CTAS wrapper, which needs CREATE permissions and hides parameter errors).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

DEFAULT_DATABASE = "auditcorr"
DEFAULT_WORKGROUP = "auditcorr"


class AthenaQueryError(RuntimeError):
    """Athena refused or failed the query; the message is Athena's reason."""


def sql_literal(value: Any) -> str:
    """A Python value as a Trino SQL literal (for execution parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='milliseconds')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def run_query(sql: str, params: list[Any] | None = None, database: str | None = None,
              workgroup: str | None = None, boto3_session: Any = None) -> pa.Table:
    import awswrangler as wr

    try:
        df = wr.athena.read_sql_query(
            sql, database=database or DEFAULT_DATABASE, workgroup=workgroup or DEFAULT_WORKGROUP,
            ctas_approach=False, params=[sql_literal(p) for p in params] if params else None,
            paramstyle="qmark", boto3_session=boto3_session)
    except wr.exceptions.QueryFailed as exc:
        raise AthenaQueryError(f"Athena query failed: {exc}") from exc
    return pa.Table.from_pandas(df, preserve_index=False)


def runner(env: Mapping[str, str] | None = None) -> Callable[[str, list[Any]], pa.Table]:
    """A ``Runner`` (as in :mod:`auditcorr_cli.query.analyst`) on Athena; database and workgroup from
    ``AUDITCORR_ATHENA_DATABASE`` / ``AUDITCORR_ATHENA_WORKGROUP`` (default ``auditcorr``, as the
    template's defaults)."""
    from .settings import ATHENA_DATABASE_ENV, ATHENA_WORKGROUP_ENV, environment

    env = environment(env)
    database = env.get(ATHENA_DATABASE_ENV) or DEFAULT_DATABASE
    workgroup = env.get(ATHENA_WORKGROUP_ENV) or DEFAULT_WORKGROUP

    def run(sql: str, params: list[Any]) -> pa.Table:
        return run_query(sql, params, database, workgroup)

    return run
