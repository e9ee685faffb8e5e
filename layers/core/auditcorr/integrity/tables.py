"""Arrow schemas of the integrity outputs (one row per log file, per digest, per signal).

Versioned like the lake's tables: a change of columns bumps SCHEMA_VERSION.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

SCHEMA_VERSION = "1"
_TS = pa.timestamp("ms", tz="UTC")
_META = {b"auditcorr.integrity.schema_version": SCHEMA_VERSION.encode()}

LOG_SCHEMA = pa.schema(
    [
        ("object_key", pa.string()),
        ("rel_key", pa.string()),
        ("account", pa.string()),
        ("region", pa.string()),
        ("org_id", pa.string()),
        ("log_time", _TS),
        ("digest_key", pa.string()),
        ("expected_sha256", pa.string()),
        ("actual_sha256", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ],
    metadata=_META,
)

DIGEST_SCHEMA = pa.schema(
    [
        ("digest_key", pa.string()),
        ("rel_key", pa.string()),
        ("account", pa.string()),
        ("region", pa.string()),
        ("org_id", pa.string()),
        ("trail", pa.string()),
        ("home_region", pa.string()),
        ("backfill", pa.bool_()),
        ("digest_start", _TS),
        ("digest_end", _TS),
        ("sha256", pa.string()),
        ("fingerprint", pa.string()),
        ("signature_status", pa.string()),
        ("trusted", pa.bool_()),
        ("trust_source", pa.string()),
        ("chain_status", pa.string()),
        ("chain_reason", pa.string()),
        ("missing_before", pa.int32()),
        ("previous_key", pa.string()),
        ("log_count", pa.int32()),
    ],
    metadata=_META,
)

SIGNAL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("rule", pa.string()),
        ("severity", pa.string()),
        ("subject", pa.string()),
        ("account", pa.string()),
        ("region", pa.string()),
        ("reason", pa.string()),
    ],
    metadata=_META,
)


def rows_to_table(rows: Sequence[object], schema: pa.Schema) -> pa.Table:
    """Rows (dataclasses) with one attribute per schema column -> a table of that schema."""
    arrays = [pa.array([getattr(row, name) for row in rows], type=schema.field(name).type) for name in schema.names]
    return pa.Table.from_arrays(arrays, schema=schema)
