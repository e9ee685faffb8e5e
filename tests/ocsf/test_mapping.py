"""Mapping the lake's rows to OCSF: every record valid, the person only where attribution found one."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from auditcorr.lake import Lake
from auditcorr.ocsf.catalog import Catalog
from auditcorr.ocsf.export import Window, prune, read_activity, read_alerts, read_logons
from auditcorr.ocsf.mapping import Mapper
from auditcorr.ocsf.validate import Validator
from tests.ocsf import scenario as sc

ALL = Window(None, None)


def records(table: pa.Table) -> list[dict]:
    return [prune(r) for r in table.to_pylist()]


def by(recs, key):
    return {key(r): r for r in recs}


@pytest.fixture
def mapped(scenario_lake):
    lake = Lake.open(str(scenario_lake))
    m = Mapper()
    return {
        "activity": m.datastore_activity(read_activity(lake, ALL, None, None)),
        "logons": m.authentication(read_logons(lake, ALL, None, None)),
        "alerts": m.detection_finding(read_alerts(lake, ALL, None, None)),
        "lake": lake,
    }


def test_every_emitted_record_is_valid_ocsf(mapped):
    validator = Validator()
    for name in ("activity", "logons", "alerts"):
        recs = records(mapped[name].events)
        assert recs, name
        assert validator.validate_all(recs) == [], name
        assert not mapped[name].rejected


def _assert_shaped_as_the_class(catalog, owner, arrow_type, path=""):
    """Every Arrow field is an attribute the class/object defines, nested as a struct where OCSF has
    an object (free-form ``unmapped``/``json_t`` excepted), a list where it has an array."""
    for f in arrow_type:
        attr = owner["attributes"].get(f.name)
        assert attr is not None, f"{path}{f.name} is not an OCSF attribute"
        t = f.type
        if attr.get("is_array"):
            assert pa.types.is_list(t), f"{path}{f.name} should be a list"
            t = t.value_type
        obj = catalog.obj(attr["type"])
        if attr["type"] in ("object", "json_t"):
            continue
        if obj is not None:
            assert pa.types.is_struct(t), f"{path}{f.name} should be a struct"
            _assert_shaped_as_the_class(catalog, obj, t, f"{path}{f.name}.")
        else:
            assert t == catalog.arrow_type({**attr, "is_array": False}), f"{path}{f.name}: {t}"


def test_arrow_schema_is_nested_structs_shaped_as_the_class(mapped):
    cat = Catalog.default()
    for name, cls_name in (("activity", "datastore_activity"), ("logons", "authentication"),
                           ("alerts", "detection_finding")):
        schema = mapped[name].events.schema
        _assert_shaped_as_the_class(cat, cat.klass(cls_name), schema)
        assert pa.types.is_struct(schema.field("metadata").type)
    assert pa.types.is_struct(mapped["activity"].events.schema.field("actor").type)
    assert mapped["activity"].events.schema.field("time").type == pa.int64()  # epoch ms


def test_attributed_write_names_user_session_and_credentials(mapped):
    r = by(records(mapped["activity"].events), lambda r: r["metadata"]["uid"])["w-attributed"]
    assert (r["class_uid"], r["activity_id"], r["type_uid"], r["category_uid"]) == (6005, 5, 600505, 6)
    assert r["actor"]["user"]["name"] == "alice@example.com"
    assert r["actor"]["session"]["uid"] == sc.sid(1)
    assert r["actor"]["session"]["issuer"] == "arn:aws:iam::111122223333:role/AppStreamFleetRole"
    assert r["actor"]["session"]["uid_alt"].startswith("arn:aws:sts::111122223333:assumed-role/")
    assert r["src_endpoint"] == {"ip": sc.IP_ALICE, "instance_uid": "i-0123456789abcdef0"}
    assert r["databucket"]["type_id"] == 1 and r["databucket"]["name"] == "research-data"
    assert r["databucket"]["file"]["path"] == "data/alice.csv"
    assert r["api"]["operation"] == "PutObject"
    assert r["cloud"] == {"provider": "AWS", "region": "us-east-1",
                          "account": {"uid": "111122223333", "type_id": 10, "type": "AWS Account"}}
    assert "cloud" in r["metadata"]["profiles"] and r["metadata"]["version"] == "1.6.0"
    data = r["enrichments"][0]["data"]
    assert (data["status"], data["match"], data["logon_event_id"]) == ("attributed", "window", "logon-alice")
    assert r["time"] == int((sc.T0 + 5 * sc.M).timestamp() * 1000)


@pytest.mark.parametrize("event_id, status", [("w-ambiguous", "ambiguous"), ("w-pending", "pending"),
                                               ("w-unattributed", "unattributed"), ("w-external", "external")])
def test_unresolved_writes_invent_no_actor(mapped, event_id, status):
    r = by(records(mapped["activity"].events), lambda r: r["metadata"]["uid"])[event_id]
    assert "user" not in r["actor"]
    assert "uid" not in r["actor"]["session"]  # no AppStream session either
    assert r["actor"]["session"]["issuer"].endswith(":role/AppStreamFleetRole")  # only the role that signed
    assert r["enrichments"][0]["data"]["status"] == status
    assert r["message"].startswith(f"{status}: ")
    assert not any(o["name"] == "actor.user.name" for o in r["observables"])


def test_ambiguous_write_lists_its_candidates(mapped):
    r = by(records(mapped["activity"].events), lambda r: r["metadata"]["uid"])["w-ambiguous"]
    data = r["enrichments"][0]["data"]
    assert data["candidate_session_ids"] == sorted([sc.sid(2), sc.sid(3)])
    assert sorted(data["candidate_user_ids"]) == ["bob@example.com", "carol@example.com"]


def test_external_write_keeps_the_logged_source(mapped):
    r = by(records(mapped["activity"].events), lambda r: r["metadata"]["uid"])["w-external"]
    assert r["src_endpoint"]["ip"] == sc.OUTSIDE


def test_logons_are_authentication_events(mapped):
    recs = by(records(mapped["logons"].events), lambda r: r["metadata"]["uid"])
    r = recs["logon-alice"]
    assert (r["class_uid"], r["activity_id"], r["type_uid"], r["category_uid"]) == (3002, 1, 300201, 3)
    assert r["user"]["name"] == "alice@example.com"
    assert r["service"]["name"] == "sts.amazonaws.com"
    assert (r["auth_protocol_id"], r["auth_protocol"]) == (5, "SAML")
    assert (r["status_id"], r["status"]) == (1, "Success")
    assert r["src_endpoint"]["ip"] == "198.51.100.7"
    assert r["session"]["credential_uid"] == "ASIALOGONKEY0000001"


def test_open_alerts_are_new_detection_findings(mapped):
    recs = by(records(mapped["alerts"].events), lambda r: r["finding_info"]["analytic"]["uid"])
    r = recs["credentials_outside_fleet"]
    assert (r["class_uid"], r["activity_id"], r["type_uid"], r["category_uid"]) == (2004, 1, 200401, 2)
    assert (r["severity_id"], r["severity"]) == (5, "Critical")
    assert (r["status_id"], r["status"]) == (1, "New")
    assert r["finding_info"]["related_events"] == [{"uid": "w-external"}]
    ev = r["evidences"][0]
    assert ev["src_endpoint"]["ip"] == sc.OUTSIDE and ev["databucket"]["name"] == "research-data"
    assert r["resources"][0]["uid"] == "arn:aws:s3:::research-data/data/replay.csv"
    # a session rule: the session and its user are the evidence, no bucket
    s = recs["session_without_logon"]
    assert "databucket" not in s["evidences"][0] and s["evidences"][0]["actor"]["session"]["uid"]
    assert "related_events" not in s["finding_info"]


def test_closed_alert_is_a_close_finding_with_the_reason(mapped):
    lake = mapped["lake"]
    alerts = read_alerts(lake, ALL, None, None)
    i = alerts.column("rule").to_pylist().index("unattributed_activity")
    status = alerts.column("status").to_pylist()
    reason = alerts.column("status_reason").to_pylist()
    updated = alerts.column("updated_at").to_pylist()
    status[i], reason[i] = "closed", "no longer raised after recomputation"
    updated[i] = updated[i] + timedelta(hours=3)
    alerts = (alerts.set_column(alerts.schema.get_field_index("status"), "status", pa.array(status))
              .set_column(alerts.schema.get_field_index("status_reason"), "status_reason", pa.array(reason))
              .set_column(alerts.schema.get_field_index("updated_at"), "updated_at",
                          pa.array(updated, alerts.schema.field("updated_at").type)))
    out = Mapper().detection_finding(alerts)
    recs = by(records(out.events), lambda r: r["finding_info"]["uid"])
    r = recs[alerts.column("alert_id")[i].as_py()]
    assert (r["activity_id"], r["type_uid"], r["activity_name"]) == (3, 200403, "Close")
    assert (r["status_id"], r["status"], r["status_detail"]) == (4, "Resolved", "no longer raised after recomputation")
    assert r["finding_info"]["modified_time"] > r["finding_info"]["created_time"]
    assert Validator().validate_all(records(out.events)) == []


def test_rows_a_class_cannot_hold_are_counted_not_dropped_silently(mapped):
    lake = mapped["lake"]
    t = read_activity(lake, ALL, None, None)
    bucket = t.column("bucket").to_pylist()
    bucket[0] = None
    region = t.column("region").to_pylist()
    region[1] = None
    t = t.set_column(t.schema.get_field_index("bucket"), "bucket", pa.array(bucket, pa.string()))
    t = t.set_column(t.schema.get_field_index("region"), "region", pa.array(region, pa.string()))
    out = Mapper().datastore_activity(t)
    assert dict(out.rejected) == {"no bucket": 1, "no region": 1}
    assert out.events.num_rows == t.num_rows - 2


def test_non_ip_source_goes_to_endpoint_name(mapped):
    t = read_activity(mapped["lake"], ALL, None, None)
    ips = t.column("source_ip").to_pylist()
    ips[0] = "appstream.amazonaws.com"
    t = t.set_column(t.schema.get_field_index("source_ip"), "source_ip", pa.array(ips, pa.string()))
    out = Mapper().datastore_activity(t)
    r = records(out.events)[0]
    assert r["src_endpoint"].get("name") == "appstream.amazonaws.com" and "ip" not in r["src_endpoint"]
    assert Validator().validate_all(records(out.events)) == []
