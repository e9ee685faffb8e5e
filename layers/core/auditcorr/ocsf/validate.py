"""Validate OCSF event records (JSON-shaped dicts) against the compiled schema.

Driven entirely by the compiled schema (``catalog.py``): class and object attributes, their
requirements, ``at_least_one``/``just_one`` constraints, types (scalar base types, regexes,
ranges, nesting, arrays), enum values and their sibling captions, profiles, and the class-level
identities (``class_uid``, ``category_uid``, ``type_uid = class_uid * 100 + activity_id``,
``metadata.version``).  A ``None`` value counts as absent (Parquet nulls read back as ``None``).

Each finding is a :class:`Violation` with a stable ``kind`` so tests and callers can tell them
apart without reading message text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .catalog import Catalog

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
OTHER = "99"  # the enum value "Other": its sibling string carries the meaning

#: violation kinds
UNKNOWN_CLASS = "unknown_class"
UNKNOWN_ATTRIBUTE = "unknown_attribute"
MISSING_REQUIRED = "missing_required"
AT_LEAST_ONE = "at_least_one"
JUST_ONE = "just_one"
TYPE = "type"
ENUM = "enum"
ENUM_SIBLING = "enum_sibling"
REGEX = "regex"
RANGE = "range"
TYPE_UID = "type_uid"
CATEGORY_UID = "category_uid"
VERSION = "version"
PROFILE_NOT_LISTED = "profile_not_listed"
PROFILE_UNKNOWN = "profile_unknown"
KINDS = (UNKNOWN_CLASS, UNKNOWN_ATTRIBUTE, MISSING_REQUIRED, AT_LEAST_ONE, JUST_ONE, TYPE, ENUM, ENUM_SIBLING,
         REGEX, RANGE, TYPE_UID, CATEGORY_UID, VERSION, PROFILE_NOT_LISTED, PROFILE_UNKNOWN)


@dataclass(frozen=True)
class Violation:
    path: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<record>'}: {self.kind}: {self.message}"


def _present(v: Any) -> bool:
    return v is not None


class Validator:
    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or Catalog.default()
        self._regex: dict[str, re.Pattern[str]] = {}

    # -- entry point ----------------------------------------------------------------------------
    def validate(self, record: Any) -> list[Violation]:
        out: list[Violation] = []
        if not isinstance(record, dict):
            return [Violation("", TYPE, "an event record must be an object")]
        uid = record.get("class_uid")
        found = self.catalog.class_by_uid(uid) if isinstance(uid, int) and not isinstance(uid, bool) else None
        if found is None:
            return [Violation("class_uid", UNKNOWN_CLASS, f"no class with uid {uid!r} in OCSF {self.catalog.version}")]
        _, cls_ = found
        profiles = self._profiles(record, cls_, out)
        self._object(record, cls_, "", profiles, out)
        self._identities(record, cls_, out)
        return out

    def validate_all(self, records: Iterable[Any]) -> list[tuple[int, Violation]]:
        return [(i, v) for i, r in enumerate(records) for v in self.validate(r)]

    # -- class-level rules ----------------------------------------------------------------------
    def _profiles(self, record: dict[str, Any], cls_: dict[str, Any], out: list[Violation]) -> set[str]:
        meta = record.get("metadata")
        listed = meta.get("profiles") if isinstance(meta, dict) else None
        names = {p for p in listed if isinstance(p, str)} if isinstance(listed, list) else set()
        for p in sorted(names):
            if p not in self.catalog.schema["profiles"] or p not in cls_.get("profiles", []):
                out.append(Violation("metadata.profiles", PROFILE_UNKNOWN,
                                     f"profile {p!r} does not apply to class {cls_['caption']}"))
        return names

    def _identities(self, record: dict[str, Any], cls_: dict[str, Any], out: list[Violation]) -> None:
        activity, type_uid = record.get("activity_id"), record.get("type_uid")
        if isinstance(activity, int) and isinstance(type_uid, int) and type_uid != cls_["uid"] * 100 + activity:
            out.append(Violation("type_uid", TYPE_UID,
                                 f"{type_uid} != class_uid * 100 + activity_id = {cls_['uid'] * 100 + activity}"))
        cat = record.get("category_uid")
        if isinstance(cat, int) and cat != cls_["category_uid"]:
            out.append(Violation("category_uid", CATEGORY_UID, f"{cat} != {cls_['category_uid']} ({cls_['category']})"))
        meta = record.get("metadata")
        version = meta.get("version") if isinstance(meta, dict) else None
        if version is not None and version != self.catalog.version:
            out.append(Violation("metadata.version", VERSION, f"{version!r} != {self.catalog.version!r}"))

    # -- objects --------------------------------------------------------------------------------
    def _object(self, value: dict[str, Any], owner: dict[str, Any], path: str, profiles: set[str],
                out: list[Violation]) -> None:
        attrs: dict[str, Any] = owner["attributes"]
        for key, v in value.items():
            p = f"{path}.{key}" if path else key
            attr = attrs.get(key)
            if attr is None:
                out.append(Violation(p, UNKNOWN_ATTRIBUTE, f"{owner['caption']} defines no attribute {key!r}"))
                continue
            if not _present(v):
                continue
            prof = attr.get("profile")
            if prof is not None and prof not in profiles:
                out.append(Violation(p, PROFILE_NOT_LISTED,
                                     f"attribute of profile {prof!r}, which metadata.profiles does not list"))
            self._value(v, attr, p, profiles, out)
            self._sibling(value, key, attr, p, out)
        for key, attr in attrs.items():
            if attr.get("requirement") != "required" or _present(value.get(key)):
                continue
            prof = attr.get("profile")
            if prof is None or prof in profiles:
                p = f"{path}.{key}" if path else key
                why = f" (profile {prof!r} is listed)" if prof else ""
                out.append(Violation(p, MISSING_REQUIRED, f"required by {owner['caption']}{why}"))
        cons = owner.get("constraints") or {}
        if cons.get("at_least_one"):
            names = cons["at_least_one"]
            if not any(_present(value.get(n)) for n in names):
                out.append(Violation(path, AT_LEAST_ONE, f"{owner['caption']} needs at least one of {names}"))
        if cons.get("just_one"):
            names = cons["just_one"]
            n = sum(_present(value.get(k)) for k in names)
            if n != 1:
                out.append(Violation(path, JUST_ONE, f"{owner['caption']} needs exactly one of {names}, has {n}"))

    def _sibling(self, value: dict[str, Any], key: str, attr: dict[str, Any], path: str,
                 out: list[Violation]) -> None:
        sib, enum = attr.get("sibling"), attr.get("enum")
        v = value.get(key)
        if not sib or not enum or isinstance(v, bool) or not isinstance(v, int) or str(v) not in enum:
            return
        caption = value.get(sib)
        if str(v) == OTHER:
            if not _present(caption):
                out.append(Violation(path, ENUM_SIBLING, f"{key} = 99 (Other) needs {sib} to say what it is"))
        elif _present(caption) and caption != enum[str(v)]:
            out.append(Violation(path, ENUM_SIBLING, f"{sib} {caption!r} does not match {key} {v} ({enum[str(v)]!r})"))

    # -- values ---------------------------------------------------------------------------------
    def _value(self, v: Any, attr: dict[str, Any], path: str, profiles: set[str], out: list[Violation]) -> None:
        if attr.get("is_array"):
            if not isinstance(v, list):
                out.append(Violation(path, TYPE, f"expected an array of {attr['type']}"))
                return
            item = {k: x for k, x in attr.items() if k != "is_array"}
            for i, x in enumerate(v):
                if x is None:
                    out.append(Violation(f"{path}[{i}]", TYPE, "null inside an array"))
                else:
                    self._value(x, item, f"{path}[{i}]", profiles, out)
            return
        t = attr["type"]
        if t == "object":  # free-form (``unmapped``): any JSON object
            if not isinstance(v, dict):
                out.append(Violation(path, TYPE, "expected a JSON object"))
            return
        obj = self.catalog.schema["objects"].get(t)
        if obj is not None:
            if not isinstance(v, dict):
                out.append(Violation(path, TYPE, f"expected a {obj['caption']} object"))
            else:
                self._object(v, obj, path, profiles, out)
            return
        self._scalar(v, t, attr, path, out)

    def _scalar(self, v: Any, t: str, attr: dict[str, Any], path: str, out: list[Violation]) -> None:
        base = self.catalog.base_type(t)
        if base == "json_t":
            return
        ok = {
            "string_t": isinstance(v, str),
            "integer_t": isinstance(v, int) and not isinstance(v, bool),
            "long_t": isinstance(v, int) and not isinstance(v, bool),
            "float_t": isinstance(v, int | float) and not isinstance(v, bool),
            "boolean_t": isinstance(v, bool),
        }[base]
        if not ok:
            out.append(Violation(path, TYPE, f"expected {t} ({base}), got {type(v).__name__}"))
            return
        if base in ("integer_t", "long_t"):
            lo, hi = INT32 if base == "integer_t" else INT64
            if not lo <= v <= hi:
                out.append(Violation(path, RANGE, f"{v} outside {base}"))
                return
        # the type chain's own rules (regex, max_len, range), most specific first
        chain = t
        while chain in self.catalog.schema["types"]:
            spec = self.catalog.schema["types"][chain]
            if "regex" in spec and isinstance(v, str) and not self._rx(spec["regex"]).search(v):
                out.append(Violation(path, REGEX, f"not a valid {chain}"))
            if "max_len" in spec and isinstance(v, str) and len(v) > spec["max_len"]:
                out.append(Violation(path, RANGE, f"longer than {spec['max_len']} for {chain}"))
            if "range" in spec and isinstance(v, int) and not spec["range"][0] <= v <= spec["range"][1]:
                out.append(Violation(path, RANGE, f"{v} outside {spec['range']} for {chain}"))
            nxt = spec.get("type")
            if nxt is None or nxt == chain:
                break
            chain = nxt
        enum = attr.get("enum")
        if enum and str(v) not in enum:
            out.append(Violation(path, ENUM, f"{v!r} is not one of {sorted(enum, key=_enum_key)}"))

    def _rx(self, pattern: str) -> re.Pattern[str]:
        rx = self._regex.get(pattern)
        if rx is None:
            rx = self._regex[pattern] = re.compile(pattern)
        return rx


def _enum_key(k: str) -> tuple[int, str]:
    return (int(k), k) if k.lstrip("-").isdigit() else (0, k)


def validate(record: Any, catalog: Catalog | None = None) -> list[Violation]:
    return Validator(catalog).validate(record)
