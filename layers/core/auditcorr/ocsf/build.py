"""Column-wise construction of nested OCSF structs from Arrow arrays.

A *spec* is a dict: OCSF attribute name -> an Arrow array (a scalar attribute, cast to the type the
compiled schema gives it), a nested spec (an object attribute), :class:`Free` (a free-form
``object``/``json_t`` attribute, e.g. ``unmapped``) or :class:`ListOf` (an array of objects).  An
object is null in a row where all of its children are null, so a row never carries an empty
object.  Every field's Arrow type comes from the catalog: the output is shaped as the class.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .catalog import Catalog

Spec = dict[str, Any]


@dataclass(frozen=True)
class Free:
    """A free-form attribute: its value is these (name -> array) columns as a struct."""

    columns: dict[str, pa.Array]


@dataclass(frozen=True)
class ListOf:
    """An array attribute of objects: up to ``len(entries)`` items per row, each item an object spec
    (an item is left out of a row where all of its children are null).  Every entry has the same keys."""

    entries: list[Spec]


def arr(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def const(value: Any, type_: pa.DataType, n: int, where: pa.Array | None = None) -> pa.Array:
    """``value`` in every row (or only where ``where`` is true; null elsewhere)."""
    full = pa.repeat(pa.scalar(value, type_), n)
    if where is None:
        return full
    return arr(pc.if_else(pc.fill_null(where, False), full, pa.nulls(n, type_)))


def where(mask: pa.Array, values: pa.Array) -> pa.Array:
    """``values`` where ``mask`` is true, null elsewhere."""
    return arr(pc.if_else(pc.fill_null(mask, False), values, pa.nulls(len(values), values.type)))


def ms(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A timestamp column as epoch milliseconds (OCSF ``timestamp_t``)."""
    c = arr(col)
    if pa.types.is_timestamp(c.type):
        c = c.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    return c


def lookup(col: pa.Array | pa.ChunkedArray, table: Mapping[Any, Any], type_: pa.DataType,
           default: Any = None) -> pa.Array:
    """Map each value through ``table`` (``default`` for others, null stays null unless default)."""
    c = arr(col)
    keys = list(table)
    idx = pc.index_in(c, value_set=pa.array(keys, c.type if c.type != pa.null() else pa.string()))
    values = pa.array([table[k] for k in keys] + [default], type_)
    return arr(values.take(pc.fill_null(idx, len(keys))))


class Builder:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._ip_rx = re.compile(catalog.schema["types"]["ip_t"]["regex"])

    # -- specs -> arrays ------------------------------------------------------------------------
    def struct(self, owner: dict[str, Any], spec: Spec, n: int) -> pa.StructArray:
        names, arrays = [], []
        for key, val in spec.items():
            attr = self.catalog.attribute(owner, key)
            arrays.append(self._child(attr, val, n))
            names.append(key)
        if not arrays:
            raise ValueError("an object spec needs at least one attribute")
        valid = np.zeros(n, dtype=bool)
        for a in arrays:
            valid |= a.is_valid().to_numpy(zero_copy_only=False)
        return pa.StructArray.from_arrays(arrays, names=names, mask=pa.array(~valid))

    def _child(self, attr: dict[str, Any], val: Any, n: int) -> pa.Array:
        if isinstance(val, dict):
            obj = self.catalog.obj(attr["type"])
            if obj is None:
                raise TypeError(f"attribute of type {attr['type']} is not an object")
            return self.struct(obj, val, n)
        if isinstance(val, Free):
            if attr["type"] not in ("object", "json_t"):
                raise TypeError(f"{attr['type']} is not free-form")
            cols = {k: arr(v) for k, v in val.columns.items()}
            valid = np.zeros(n, dtype=bool)
            for c in cols.values():
                valid |= c.is_valid().to_numpy(zero_copy_only=False)
            return pa.StructArray.from_arrays(list(cols.values()), names=list(cols), mask=pa.array(~valid))
        if isinstance(val, ListOf):
            if not attr.get("is_array"):
                raise TypeError("ListOf for an attribute that is not an array")
            obj = self.catalog.obj(attr["type"])
            if obj is None:
                raise TypeError(f"array of {attr['type']} is not an array of objects")
            return self._list(obj, val.entries, n)
        a = arr(val)
        want = self.catalog.arrow_type(attr)
        return a if a.type == want else a.cast(want)

    def _list(self, item: dict[str, Any], entries: list[Spec], n: int) -> pa.Array:
        built = [self.struct(item, e, n) for e in entries]
        k = len(built)
        values = pa.concat_arrays(built)
        valid = np.stack([b.is_valid().to_numpy(zero_copy_only=False) for b in built], axis=1)  # n x k
        order = (np.arange(n)[:, None] + np.arange(k)[None, :] * n)[valid]
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(valid.sum(axis=1), out=offsets[1:])
        counts = valid.sum(axis=1)
        return pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(order, pa.int64())),
                                        mask=pa.array(counts == 0))

    # -- helpers over columns -------------------------------------------------------------------
    def valid_ip(self, col: pa.Array | pa.ChunkedArray) -> pa.Array:
        """True where the value is an IP address OCSF's ``ip_t`` accepts (checked once per distinct value)."""
        c = arr(col)
        good = []
        for u in pc.unique(c).to_pylist():
            if not u:
                continue
            try:
                ipaddress.ip_address(u)
            except ValueError:
                continue
            if len(u) <= self.catalog.schema["types"]["ip_t"].get("max_len", 40) and self._ip_rx.search(u):
                good.append(u)
        return arr(pc.is_in(c, value_set=pa.array(good, pa.string())))
