"""The local Athena: DuckDB over the lake's Parquet files, Athena (Trino) SQL translated by sqlglot.

Every table of the lake is registered under its Glue name (``s3_writes``, ``attributed_activity``,
...), with ``dt`` a string partition column as in Glue.  ``alerts`` holds every state change of
every alert; ``alerts_latest`` and ``attributed_activity_latest`` keep the latest row per id --
the same views exist in Athena (template.yaml), so a query means the same on both engines.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from ..lake import Lake
from ..schemas import PARTITION_COLUMN, TABLES

LATEST_VIEWS = {
    "alerts_latest": ("alerts", "alert_id", "updated_at"),
    "attributed_activity_latest": ("attributed_activity", "event_id", "computed_at"),
}


def latest_view_sql(view: str, database: str | None = None) -> str:
    """The Trino SQL of a ``*_latest`` view (also used for the Athena views)."""
    table, key, version = LATEST_VIEWS[view]
    src = f"{database}.{table}" if database else table
    cols = ", ".join(f'"{f.name}"' for f in TABLES[table]) + f', "{PARTITION_COLUMN}"'
    # every version of a row has the same key AND the same dt (an event's date never changes):
    # numbering per (dt, key) is the same answer, and lets a filter on dt reach the scan
    window = f"row_number() OVER (PARTITION BY {PARTITION_COLUMN}, {key} ORDER BY {version} DESC)"
    return f"SELECT {cols} FROM (SELECT *, {window} AS rn FROM {src}) WHERE rn = 1"


def fetch_arrow(cursor: Any) -> pa.Table:
    """The result as an Arrow table (``to_arrow_table`` in DuckDB 2, ``fetch_arrow_table`` before)."""
    fetch = getattr(cursor, "to_arrow_table", None) or cursor.fetch_arrow_table
    return fetch()


def _literal(text: str) -> str:
    """A SQL string literal (single quotes doubled): for the lake's own file paths only."""
    return "'" + text.replace("'", "''") + "'"


class LocalEngine:
    """DuckDB over the lake.

    A local lake is read by DuckDB's own Parquet reader (``read_parquet`` over the exact list of
    visible files, Hive ``dt`` partitions): it prunes partitions, row groups (min/max statistics of
    the sorted, compacted files) and pushes filters, including through the ``*_latest`` windows,
    which is what makes ``who``/``timeline`` lookups cheap (docs/performance.md). File access is then
    limited to exactly those files (``allowed_paths``) before external access is switched off. A
    remote lake (``s3://``) is scanned through pyarrow datasets on the lake's filesystem.
    """

    def __init__(self, lake: Lake, threads: int | None = None) -> None:
        import duckdb

        self.lake = lake
        self.con = duckdb.connect(config={"threads": threads} if threads else {})
        self.con.execute("SET TimeZone='UTC'")
        # never resolve an unknown table name to a Python object of the caller
        self.con.execute("SET python_enable_replacements = false")
        # every view binds its files' footers on each statement: parse them once per engine
        self.con.execute("SET parquet_metadata_cache = true")
        self._datasets: dict[str, Any] = {}
        allowed: list[str] = []
        for table, schema in TABLES.items():
            full = schema.append(pa.field(PARTITION_COLUMN, pa.string()))
            files = lake.files(table)
            if files and lake.is_local:
                self._register_parquet(table, full, files)
                allowed.extend(files)
                continue
            if files:
                part = ds.partitioning(pa.schema([pa.field(PARTITION_COLUMN, pa.string())]), flavor="hive")
                obj: Any = ds.dataset(files, schema=full, filesystem=lake.fs, format="parquet",
                                      partitioning=part, partition_base_dir=lake.table_dir(table))
            else:
                obj = full.empty_table()
            self._datasets[table] = obj
            self.con.register(table, obj)
        from .trino import translate

        for view in LATEST_VIEWS:
            self.con.execute(f"CREATE VIEW {view} AS {translate(latest_view_sql(view))}")
        # defence in depth behind the translator's refusals: no file/network access from SQL beyond
        # the lake's own visible files, no extension downloads, and no statement can switch that back
        # on (tests/hardening/test_security.py)
        if allowed:
            self.con.execute("SET allowed_paths = " + "[" + ", ".join(_literal(f) for f in allowed) + "]")
        for setting in ("enable_external_access = false", "autoinstall_known_extensions = false",
                        "autoload_known_extensions = false", "lock_configuration = true"):
            self.con.execute(f"SET {setting}")

    def _register_parquet(self, table: str, full: pa.Schema, files: list[str]) -> None:
        """``table`` as a view over its files with the table's exact columns and types: columns a
        file predates read as NULL (``union_by_name``), every column cast to the schema's type."""
        self.con.register("_empty_schema", full.empty_table())
        types = {name: typ for name, typ, *_ in self.con.execute("DESCRIBE _empty_schema").fetchall()}
        self.con.unregister("_empty_schema")
        src = (f"read_parquet([{', '.join(_literal(f) for f in files)}], hive_partitioning = true, "
               f"union_by_name = true, hive_types = {{'{PARTITION_COLUMN}': VARCHAR}})")
        present = {name for name, *_ in self.con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        cols = []
        for f in full:
            expr = f'"{f.name}"' if f.name in present else "NULL"
            cols.append(f'CAST({expr} AS {types[f.name]}) AS "{f.name}"')
        self.con.execute(f"CREATE VIEW {table} AS SELECT {', '.join(cols)} FROM {src}")

    def execute(self, duck_sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run DuckDB SQL (already translated) with positional parameters."""
        rel = self.con.sql(duck_sql, params=params or None)
        if rel is None:  # a statement without a result set
            return pa.table({})
        return fetch_arrow(rel)

    def query(self, trino_sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run Athena (Trino) SQL: translated, refused if it would answer differently; columns named
        as Athena names them (``_col0``, ... for unaliased expressions)."""
        from .trino import translate
        from .trino_more import athena_names

        table = self.execute(translate(trino_sql), params)
        return table.rename_columns(athena_names(table.column_names))

    def close(self) -> None:
        self.con.close()
