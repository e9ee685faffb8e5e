"""Small Arrow helpers the stages share: one place, not one copy per module."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def one_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array; no copy when it already is one chunk (``combine_chunks`` copies)."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def masked_take(values: pa.Array | pa.ChunkedArray, idx: np.ndarray) -> pa.Array:
    """``values[idx]`` with null where ``idx < 0``."""
    return one_array(values).take(pa.array(idx, mask=idx < 0))


def epoch_ms(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A timestamp column as int64 epoch milliseconds (nulls as 0)."""
    return one_array(col).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
