"""The compiled OCSF schema shipped with the package, and the Arrow types it implies.

``schema/ocsf-1.6.0-subset.json`` is the ocsf/ocsf-schema repository at tag 1.6.0, compiled for the
three classes auditcorr emits (Apache-2.0, ``schema/LICENSE`` and ``schema/NOTICE``).  Both the
validator and the mapping read attribute names, types, enums and requirements from it: nothing
about the schema is restated by hand in this package.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pyarrow as pa

SCHEMA_FILE = "ocsf-1.6.0-subset.json"

#: OCSF scalar base types -> Arrow.  timestamp_t is epoch milliseconds (a long), as OCSF defines it.
_BASE_ARROW: dict[str, pa.DataType] = {
    "string_t": pa.string(),
    "integer_t": pa.int32(),
    "long_t": pa.int64(),
    "float_t": pa.float64(),
    "boolean_t": pa.bool_(),
}


@functools.cache
def load_schema() -> dict[str, Any]:
    """The compiled schema (parsed once per process)."""
    text = resources.files(__package__).joinpath("schema", SCHEMA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True)
class Catalog:
    """Look-ups over a compiled schema (the shipped one unless a test passes another)."""

    schema: dict[str, Any]

    @classmethod
    def default(cls) -> Catalog:
        return cls(load_schema())

    @property
    def version(self) -> str:
        return str(self.schema["version"])

    def class_by_uid(self, uid: int) -> tuple[str, dict[str, Any]] | None:
        for name, cls_ in self.schema["classes"].items():
            if cls_["uid"] == uid:
                return name, cls_
        return None

    def klass(self, name: str) -> dict[str, Any]:
        return dict(self.schema["classes"][name])

    def obj(self, name: str) -> dict[str, Any] | None:
        o = self.schema["objects"].get(name)
        return dict(o) if o is not None else None

    def base_type(self, type_name: str) -> str:
        """Follow a scalar type to its base (``timestamp_t`` -> ``long_t``, ``ip_t`` -> ``string_t``)."""
        seen = set()
        t = type_name
        while t not in _BASE_ARROW and t != "json_t":
            if t in seen or t not in self.schema["types"]:
                raise KeyError(f"unknown OCSF type {type_name!r}")
            seen.add(t)
            nxt = self.schema["types"][t].get("type")
            if nxt is None:
                raise KeyError(f"OCSF type {t!r} has no base type")
            t = nxt
        return t

    def attribute(self, owner: dict[str, Any], name: str) -> dict[str, Any]:
        attrs = owner["attributes"]
        if name not in attrs:
            raise KeyError(f"OCSF defines no attribute {name!r} here")
        return dict(attrs[name])

    def arrow_type(self, attr: dict[str, Any], shape: Any = None) -> pa.DataType:
        """Arrow type of an attribute.  ``shape``: for an object attribute, the dict of its chosen
        child attributes (each a nested shape or None); for ``object``/``json_t`` (free-form), an
        explicit Arrow type."""
        t = attr["type"]
        if isinstance(shape, pa.DataType):
            inner = shape
        elif t in self.schema["objects"] and t != "object":
            owner = self.schema["objects"][t]
            inner = pa.struct([pa.field(k, self.arrow_type(self.attribute(owner, k), v))
                               for k, v in (shape or {}).items()])
        elif t in ("object", "json_t"):
            raise TypeError(f"free-form attribute of type {t} needs an explicit Arrow type")
        else:
            inner = _BASE_ARROW[self.base_type(t)]
        return pa.list_(inner) if attr.get("is_array") else inner

    def class_arrow_schema(self, class_name: str, shape: dict[str, Any]) -> pa.Schema:
        """The Arrow schema of a class restricted to ``shape`` (attribute -> nested shape)."""
        cls_ = self.schema["classes"][class_name]
        return pa.schema([pa.field(k, self.arrow_type(self.attribute(cls_, k), v)) for k, v in shape.items()],
                         metadata={b"ocsf.version": self.version.encode(),
                                   b"ocsf.class_uid": str(cls_["uid"]).encode()})

    def caption(self, owner: dict[str, Any], attr: str, value: int) -> str:
        """The enum caption of ``value`` for ``attr`` (``activity_id`` 5 -> ``Write``)."""
        return str(owner["attributes"][attr]["enum"][str(value)])


def hive_type(t: pa.DataType) -> str:
    """The Glue/Athena (Hive DDL) type of an Arrow type, nested structs and arrays included."""
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.type)}" for f in t) + ">"
    if pa.types.is_list(t):
        return f"array<{hive_type(t.value_type)}>"
    simple = {pa.string(): "string", pa.int32(): "int", pa.int64(): "bigint", pa.bool_(): "boolean",
              pa.float64(): "double"}
    if t in simple:
        return simple[t]
    raise TypeError(f"no Glue type for {t}")
