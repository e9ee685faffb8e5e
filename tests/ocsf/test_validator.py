"""The validator is driven by the shipped compiled OCSF 1.6.0 schema and catches every kind of violation."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from auditcorr.ocsf import validate as v
from auditcorr.ocsf.catalog import Catalog

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "layers" / "core" / "auditcorr" / "ocsf" / "schema"


def good() -> dict:
    return {
        "class_uid": 6005, "category_uid": 6, "activity_id": 5, "type_uid": 600505, "severity_id": 1,
        "activity_name": "Write", "time": 1772438700000,
        "metadata": {"version": "1.6.0", "product": {"name": "auditcorr"}, "profiles": ["cloud"]},
        "cloud": {"provider": "AWS", "region": "us-east-1", "account": {"uid": "111122223333", "type_id": 10}},
        "actor": {"user": {"name": "alice@example.com"}, "session": {"uid": "s-1"}},
        "src_endpoint": {"ip": "10.40.0.17", "port": 443},
        "databucket": {"name": "research-data", "type_id": 1, "region": "us-east-1"},
        "observables": [{"name": "src_endpoint.ip", "type_id": 2, "value": "10.40.0.17"}],
        "enrichments": [{"name": "src_endpoint.ip", "value": "10.40.0.17", "data": {"anything": [1, "x"]}}],
        "unmapped": {"whatever": {"nested": True}},
    }


def kinds(record) -> set[str]:
    return {x.kind for x in v.validate(record)}


def test_the_shipped_schema_is_ocsf_160_with_its_licence():
    cat = Catalog.default()
    assert cat.version == "1.6.0"
    assert {c["uid"] for c in cat.schema["classes"].values()} == {6005, 3002, 2004}
    assert "Apache License" in (SCHEMA_DIR / "LICENSE").read_text()
    assert (SCHEMA_DIR / "NOTICE").is_file()


def test_a_well_formed_record_passes():
    assert v.validate(good()) == []


def _set(path: str, value):
    def mutate(r):
        *parents, last = path.split(".")
        node = r
        for p in parents:
            node = node[p]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return mutate


_DELETE = object()

CASES = [
    ("class unknown", _set("class_uid", 9999), v.UNKNOWN_CLASS),
    ("attribute the class lacks", _set("bucket", "x"), v.UNKNOWN_ATTRIBUTE),
    ("attribute a nested object lacks", _set("actor.user.shoe_size", 44), v.UNKNOWN_ATTRIBUTE),
    ("required attribute missing", _set("src_endpoint", _DELETE), v.MISSING_REQUIRED),
    ("required nested attribute missing", _set("databucket.type_id", _DELETE), v.MISSING_REQUIRED),
    ("metadata.product missing", _set("metadata.product", _DELETE), v.MISSING_REQUIRED),
    ("class at_least_one", lambda r: r.pop("databucket"), v.AT_LEAST_ONE),
    ("object at_least_one", _set("actor", {}), v.AT_LEAST_ONE),
    ("string where an integer belongs", _set("severity_id", "1"), v.TYPE),
    ("timestamp as ISO text", _set("time", "2026-03-02T08:05:00Z"), v.TYPE),
    ("boolean is not an integer", _set("activity_id", True), v.TYPE),
    ("object where a scalar belongs", _set("src_endpoint.ip", {"v4": "10.0.0.1"}), v.TYPE),
    ("scalar where an object belongs", _set("actor.user", "alice"), v.TYPE),
    ("scalar where an array belongs", _set("observables", {"name": "x", "type_id": 2}), v.TYPE),
    ("enum value not defined", _set("severity_id", 7), v.ENUM),
    ("nested enum value not defined", _set("databucket.type_id", 4), v.ENUM),
    ("enum inside an array item", lambda r: r["observables"][0].update(type_id=46), v.ENUM),
    ("sibling caption disagrees", _set("activity_name", "Read"), v.ENUM_SIBLING),
    ("Other without its caption", lambda r: r.update(activity_id=99, type_uid=600599, activity_name=None),
     v.ENUM_SIBLING),
    ("not an IP address", _set("src_endpoint.ip", "appstream.amazonaws.com"), v.REGEX),
    ("port out of range", _set("src_endpoint.port", 70000), v.RANGE),
    ("integer_t beyond 32 bits", _set("severity_id", 2**40), v.RANGE),
    ("type_uid not class_uid*100+activity_id", _set("type_uid", 600501), v.TYPE_UID),
    ("category of another class", _set("category_uid", 2), v.CATEGORY_UID),
    ("other OCSF version", _set("metadata.version", "1.1.0"), v.VERSION),
    ("cloud without the cloud profile", _set("metadata.profiles", []), v.PROFILE_NOT_LISTED),
    ("profile attribute nested in an object", lambda r: r["metadata"].update(profiles=None), v.PROFILE_NOT_LISTED),
    ("cloud profile listed, cloud missing", _set("cloud", _DELETE), v.MISSING_REQUIRED),
    ("cloud.provider missing", _set("cloud.provider", _DELETE), v.MISSING_REQUIRED),
    ("profile the class does not have", _set("metadata.profiles", ["cloud", "load_balancer"]), v.PROFILE_UNKNOWN),
    ("unmapped must be an object", _set("unmapped", "free text"), v.TYPE),
    ("null inside an array", _set("observables", [None]), v.TYPE),
]


@pytest.mark.parametrize(("what", "mutate", "kind"), CASES, ids=[c[0] for c in CASES])
def test_each_violation_kind_is_caught(what, mutate, kind):
    r = copy.deepcopy(good())
    mutate(r)
    assert kind in kinds(r), f"{what}: {v.validate(r)}"


def test_every_violation_kind_has_a_negative_case():
    assert {c[2] for c in CASES} | {v.JUST_ONE} == set(v.KINDS)  # just_one: its own test below


def test_just_one_constraint_from_the_schema():
    # vulnerability (a Detection Finding attribute) must name exactly one of advisory, cve, cwe
    rec = {"class_uid": 2004, "category_uid": 2, "activity_id": 1, "type_uid": 200401, "severity_id": 1,
           "time": 1, "metadata": {"version": "1.6.0", "product": {"name": "auditcorr"}},
           "finding_info": {"uid": "a-1"},
           "vulnerabilities": [{"cve": {"uid": "CVE-2024-0001"}, "cwe": {"uid": "CWE-79"}}]}
    assert v.JUST_ONE in kinds(rec)
    rec["vulnerabilities"] = [{"cve": {"uid": "CVE-2024-0001"}}]
    assert v.JUST_ONE not in kinds(rec)


def test_requirements_come_from_the_schema_not_the_code():
    # make finding_info.title required in a copy of the schema: the same record now fails
    cat = Catalog.default()
    schema = copy.deepcopy(cat.schema)
    schema["objects"]["finding_info"]["attributes"]["title"]["requirement"] = "required"
    rec = {"class_uid": 2004, "category_uid": 2, "activity_id": 1, "type_uid": 200401, "severity_id": 1,
           "time": 1, "metadata": {"version": "1.6.0", "product": {"name": "auditcorr"}},
           "finding_info": {"uid": "a-1"}}
    assert v.validate(rec, cat) == []
    assert [x.path for x in v.validate(rec, Catalog(schema))] == ["finding_info.title"]
