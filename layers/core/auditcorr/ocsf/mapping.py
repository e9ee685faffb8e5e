"""The lake's tables as OCSF 1.6.0 events (Arrow in, Arrow out; docs/ocsf.md has the field table).

- ``attributed_activity`` (latest row per write) -> Datastore Activity (6005)
- ``logons`` -> Authentication (3002)
- ``alerts`` (latest row per alert) -> Detection Finding (2004)

Every input table carries two derived columns besides its own: ``account_id`` and ``region`` (the
cloud account and region the record belongs to; ``export.py`` derives them).  Rows a class cannot
represent validly (no time, no bucket, no account, ...) are not emitted: they are counted by reason
in :attr:`Mapped.rejected`, never dropped silently.

A write's actor is only ever the person the attribution found: ``pending``, ``ambiguous``,
``unattributed`` and ``external`` writes carry the role session that signed them (``actor.session``)
and say in ``message`` and ``enrichments`` why no user is named.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__
from .build import Builder, Free, ListOf, arr, const, lookup, ms, where
from .catalog import Catalog

PRODUCT = {"name": "auditcorr", "vendor_name": "auditcorr", "version": __version__}
PROFILES = ["cloud"]
PROVIDER = "AWS"
AWS_ACCOUNT_TYPE = 10  # account.type_id "AWS Account"
S3 = 1  # databucket.type_id
REGULAR_FILE = 1  # file.type_id
USER = 1  # user.type_id
OBS_IP, OBS_USER_NAME, OBS_RESOURCE_UID = 2, 4, 10  # observable.type_id
RULE = 1  # analytic.type_id

STR, I32, I64, BOOL = pa.string(), pa.int32(), pa.int64(), pa.bool_()

#: what the message of a write says for each attribution status (never an invented person)
WRITE_MESSAGES = {
    "attributed": "attributed: S3 write attributed to the AppStream user whose session held the source address",
    "ambiguous": "ambiguous: S3 write from an address several AppStream sessions held at that time: no single user; "
                 "candidates in enrichments",
    "pending": "pending: S3 write not attributed yet: the usage reports covering its time have not all arrived",
    "unattributed": "unattributed: S3 write from a fleet address no AppStream session held at that time: no user",
    "external": "external: S3 write with fleet-role credentials from outside the fleet's addresses: no AppStream user",
}
SEVERITY_IDS = {"INFORMATIONAL": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}
#: Authentication.auth_protocol_id per logon event (99 Other: auth_protocol names it)
AUTH_PROTOCOLS: dict[str, tuple[int, str | None]] = {
    "AssumeRoleWithSAML": (5, None),
    "AssumeRoleWithWebIdentity": (4, None),
    "ConsoleLogin": (99, "AWS Sign-In"),
    "AssumeRole": (99, "AWS STS AssumeRole"),
}


def basename(key: pa.Array) -> pa.Array:
    """The last path segment of an object key (the key itself when it has none)."""
    last = pc.struct_field(pc.extract_regex(key, r"(?P<name>[^/]+)/*$"), "name")
    return arr(pc.coalesce(last, key))


@dataclass
class Mapped:
    events: pa.Table
    rejected: Counter[str] = field(default_factory=Counter)


class Mapper:
    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or Catalog.default()
        self.b = Builder(self.catalog)

    # -- shared pieces --------------------------------------------------------------------------
    def _keep(self, t: pa.Table, checks: list[tuple[str, pa.Array]]) -> tuple[pa.Table, Counter[str]]:
        """Drop rows failing a check (first failing reason counts), keep the rest."""
        rejected: Counter[str] = Counter()
        ok = np.ones(t.num_rows, dtype=bool)
        for reason, good in checks:
            g = pc.fill_null(arr(good), False).to_numpy(zero_copy_only=False)
            bad = ok & ~g
            if bad.any():
                rejected[reason] += int(bad.sum())
            ok &= g
        return (t if ok.all() else t.filter(pa.array(ok))), rejected

    def _header(self, cls_name: str, activity: pa.Array, n: int) -> dict[str, pa.Array]:
        cls_ = self.catalog.klass(cls_name)
        uid = cls_["uid"]
        acts = {int(k): v for k, v in cls_["attributes"]["activity_id"]["enum"].items()}
        return {
            "activity_id": activity,
            "activity_name": lookup(activity, acts, STR),
            "category_uid": const(cls_["category_uid"], I32, n),
            "category_name": const(self.catalog.schema["categories"][cls_["category"]]["caption"], STR, n),
            "class_uid": const(uid, I32, n),
            "class_name": const(cls_["caption"], STR, n),
            "type_uid": arr(pc.add(pc.cast(activity, I64), pa.scalar(uid * 100, I64))),
            "type_name": lookup(activity, {k: f"{cls_['caption']}: {v}" for k, v in acts.items()}, STR),
        }

    def _severity(self, cls_name: str, ids: pa.Array) -> dict[str, pa.Array]:
        enum = {int(k): v for k, v in self.catalog.klass(cls_name)["attributes"]["severity_id"]["enum"].items()}
        return {"severity_id": ids, "severity": lookup(ids, enum, STR)}

    def _status(self, cls_name: str, ids: pa.Array) -> dict[str, pa.Array]:
        enum = {int(k): v for k, v in self.catalog.klass(cls_name)["attributes"]["status_id"]["enum"].items()}
        return {"status_id": ids, "status": lookup(ids, enum, STR)}

    def _metadata(self, n: int, log_name: str, uid: pa.Array | None, event_code: pa.Array,
                  modified: pa.Array | None) -> dict[str, object]:
        meta: dict[str, object] = {
            "version": const(self.catalog.version, STR, n),
            "product": {k: const(v, STR, n) for k, v in PRODUCT.items()},
            "profiles": pa.array([PROFILES] * n, pa.list_(STR)),
            "log_name": const(log_name, STR, n),
            "log_provider": const(PRODUCT["name"], STR, n),
            "event_code": event_code,
        }
        if uid is not None:
            meta["uid"] = uid
        if modified is not None:
            meta["modified_time"] = modified
        return meta

    def _cloud(self, t: pa.Table) -> dict[str, object]:
        n = t.num_rows
        return {
            "provider": const(PROVIDER, STR, n),
            "region": arr(t.column("region")),
            "account": {"uid": arr(t.column("account_id")), "type_id": const(AWS_ACCOUNT_TYPE, I32, n),
                        "type": const("AWS Account", STR, n)},
        }

    def _endpoint(self, ip_col: pa.Array) -> dict[str, object]:
        """A source address: ``ip`` when it is one, else the logged text (a service name) as ``name``."""
        good = self.b.valid_ip(ip_col)
        return {"ip": where(good, ip_col), "name": where(pc.invert(good), ip_col)}

    def _observable(self, name: str, type_id: int, type_name: str, value: pa.Array) -> dict[str, object]:
        n = len(value)
        present = pc.is_valid(value)
        return {"name": const(name, STR, n, present), "type_id": const(type_id, I32, n, present),
                "type": const(type_name, STR, n, present), "value": value}

    def _finish(self, cls_name: str, spec: dict[str, object], n: int, rejected: Counter[str]) -> Mapped:
        cls_ = self.catalog.klass(cls_name)
        s = self.b.struct(cls_, spec, n)
        batch = pa.RecordBatch.from_struct_array(s)
        meta = {b"ocsf.version": self.catalog.version.encode(), b"ocsf.class_uid": str(cls_["uid"]).encode(),
                b"ocsf.class_name": cls_name.encode()}
        return Mapped(pa.Table.from_batches([batch]).replace_schema_metadata(meta), rejected)

    # -- Datastore Activity (6005) --------------------------------------------------------------
    def datastore_activity(self, t: pa.Table) -> Mapped:
        t, rejected = self._keep(t, [
            ("no event time", pc.is_valid(t.column("event_time"))),
            ("no bucket", pc.is_valid(t.column("bucket"))),
            ("no source address", pc.is_valid(t.column("source_ip"))),
            ("no account", pc.is_valid(t.column("account_id"))),
            ("no region", pc.is_valid(t.column("region"))),
            ("no principal (role session)", pc.or_(pc.is_valid(t.column("principal_arn")),
                                                   pc.is_valid(t.column("role_arn")))),
        ])
        n = t.num_rows
        col = lambda name: arr(t.column(name))  # noqa: E731
        status = col("status")
        attributed = pc.fill_null(pc.equal(status, "attributed"), False)
        deleting = pc.fill_null(pc.starts_with(col("event_name"), "Delete"), False)
        activity = arr(pc.if_else(deleting, pa.scalar(7, I32), pa.scalar(5, I32)))  # Delete / Write
        failed = pc.is_valid(col("error_code"))
        bucket_arn = arr(pc.binary_join_element_wise("arn:aws:s3:::", col("bucket"), ""))
        key = col("key")
        file_name = basename(key)
        user_id = where(attributed, col("user_id"))
        session_id = where(attributed, col("session_id"))
        src = self._endpoint(col("source_ip"))
        src["instance_uid"] = where(attributed, col("instance_id"))
        spec: dict[str, object] = {
            **self._header("datastore_activity", activity, n),
            **self._severity("datastore_activity", const(1, I32, n)),
            **self._status("datastore_activity", arr(pc.if_else(failed, pa.scalar(2, I32), pa.scalar(1, I32)))),
            "status_code": col("error_code"),
            "time": ms(col("event_time")),
            "timezone_offset": const(0, I32, n),
            "message": lookup(status, WRITE_MESSAGES, STR, "S3 write with an unknown attribution status"),
            "metadata": self._metadata(n, "attributed_activity", col("event_id"), col("event_name"),
                                       ms(col("computed_at"))),
            "cloud": self._cloud(t),
            "actor": {
                "user": {"name": user_id, "uid": user_id, "type_id": const(USER, I32, n, attributed),
                         "type": const("User", STR, n, attributed)},
                "session": {"uid": session_id, "created_time": where(attributed, ms(col("session_start_time"))),
                            "issuer": col("role_arn"), "uid_alt": col("principal_arn"),
                            "credential_uid": col("access_key_id")},
            },
            "src_endpoint": src,
            "databucket": {
                "name": col("bucket"), "uid": bucket_arn, "type_id": const(S3, I32, n), "type": const("S3", STR, n),
                "region": col("bucket_region"),
                "file": {"name": file_name, "path": key, "type_id": const(REGULAR_FILE, I32, n, pc.is_valid(key)),
                         "type": const("Regular File", STR, n, pc.is_valid(key))},
            },
            "api": {"operation": col("event_name"),
                    "service": {"name": const("s3.amazonaws.com", STR, n, pc.is_valid(col("event_name")))}},
            "http_request": {"user_agent": col("user_agent")},
            "enrichments": ListOf([{
                "name": const("src_endpoint.ip", STR, n), "value": col("source_ip"),
                "type": const("appstream_attribution", STR, n), "provider": const(PRODUCT["name"], STR, n),
                "short_desc": status, "created_time": ms(col("computed_at")),
                "data": Free({
                    "status": status, "match": col("match"), "user_id": user_id, "session_id": session_id,
                    "session_source": col("session_source"),
                    "session_start_time": ms(col("session_start_time")),
                    "session_end_time": ms(col("session_end_time")),
                    "candidate_user_ids": col("candidate_user_ids"),
                    "candidate_session_ids": col("candidate_session_ids"),
                    "claimed_session_id": col("claimed_session_id"),
                    "fleet_name": col("fleet_name"), "stack_name": col("stack_name"),
                    "instance_id": col("instance_id"), "logon_event_id": col("logon_event_id"),
                    "logon_time": ms(col("logon_time")), "logon_source_ip": col("logon_source_ip"),
                    "previous_status": col("previous_status"), "previous_session_id": col("previous_session_id"),
                    "previous_session_source": col("previous_session_source"),
                }),
            }]),
            "observables": ListOf([
                self._observable("src_endpoint.ip", OBS_IP, "IP Address", src["ip"]),  # type: ignore[arg-type]
                self._observable("actor.user.name", OBS_USER_NAME, "User Name", user_id),
                self._observable("databucket.uid", OBS_RESOURCE_UID, "Resource UID", bucket_arn),
            ]),
            "unmapped": Free({"vpc_endpoint_id": col("vpc_endpoint_id"),
                              "claimed_session_id": col("claimed_session_id"),
                              "bucket_owner_account_id": col("recipient_account_id")}),
        }
        return self._finish("datastore_activity", spec, n, rejected)

    # -- Authentication (3002) ------------------------------------------------------------------
    def authentication(self, t: pa.Table) -> Mapped:
        t, rejected = self._keep(t, [
            ("no event time", pc.is_valid(t.column("event_time"))),
            ("no user", pc.or_(pc.is_valid(t.column("user_name")), pc.is_valid(t.column("principal_arn")))),
            ("no service", pc.is_valid(t.column("event_source"))),
            ("no account", pc.is_valid(t.column("account_id"))),
            ("no region", pc.is_valid(t.column("region"))),
        ])
        n = t.num_rows
        col = lambda name: arr(t.column(name))  # noqa: E731
        outcome = col("outcome")
        status_id = lookup(outcome, {"Success": 1, "Failure": 2}, I32, 0)
        proto_id = lookup(col("event_name"), {k: v[0] for k, v in AUTH_PROTOCOLS.items()}, I32, 0)
        proto_enum = {int(k): v for k, v in
                      self.catalog.klass("authentication")["attributes"]["auth_protocol_id"]["enum"].items()}
        proto_text = arr(pc.coalesce(lookup(col("event_name"), {k: v[1] for k, v in AUTH_PROTOCOLS.items()}, STR),
                                     lookup(proto_id, proto_enum, STR)))
        user_name = col("user_name")
        src = self._endpoint(col("source_ip"))
        spec: dict[str, object] = {
            **self._header("authentication", const(1, I32, n), n),  # Logon
            **self._severity("authentication", const(1, I32, n)),
            **self._status("authentication", status_id),
            "status_code": col("error_code"),
            "time": ms(col("event_time")),
            "timezone_offset": const(0, I32, n),
            "message": col("event_name"),
            "metadata": self._metadata(n, "logons", col("event_id"), col("event_name"), None),
            "cloud": self._cloud(t),
            "user": {"name": user_name, "uid": arr(pc.if_else(pc.is_valid(user_name), pa.scalar(None, STR),
                                                              col("principal_arn"))),
                     "account": {"uid": col("account_id"), "type_id": const(AWS_ACCOUNT_TYPE, I32, n),
                                 "type": const("AWS Account", STR, n)}},
            "service": {"name": col("event_source")},
            "src_endpoint": src,
            "auth_protocol_id": proto_id,
            "auth_protocol": proto_text,
            "session": {"issuer": col("saml_issuer"), "uid_alt": col("assumed_role_arn"),
                        "credential_uid": col("issued_access_key_id")},
            "http_request": {"user_agent": col("user_agent")},
            "observables": ListOf([
                self._observable("src_endpoint.ip", OBS_IP, "IP Address", src["ip"]),  # type: ignore[arg-type]
                self._observable("user.name", OBS_USER_NAME, "User Name", user_name),
            ]),
            "unmapped": Free({"principal_type": col("principal_type"), "principal_arn": col("principal_arn"),
                              "role_arn": col("role_arn"), "role_session_name": col("role_session_name"),
                              "source_identity": col("source_identity"), "principal_tags": col("principal_tags")}),
        }
        return self._finish("authentication", spec, n, rejected)

    # -- Detection Finding (2004) ---------------------------------------------------------------
    def detection_finding(self, t: pa.Table) -> Mapped:
        time_col = arr(pc.coalesce(t.column("event_time"), t.column("detected_at")))
        t = t.append_column("finding_time", time_col)
        t, rejected = self._keep(t, [
            ("no alert id", pc.is_valid(t.column("alert_id"))),
            ("no time", pc.is_valid(t.column("finding_time"))),
            ("no account", pc.is_valid(t.column("account_id"))),
            ("no region", pc.is_valid(t.column("region"))),
        ])
        n = t.num_rows
        col = lambda name: arr(t.column(name))  # noqa: E731
        closed = pc.fill_null(pc.equal(col("status"), "closed"), False)
        updated = pc.fill_null(pc.greater(col("updated_at"), col("detected_at")), False)
        activity = arr(pc.if_else(closed, pa.scalar(3, I32),  # Close
                                  pc.if_else(updated, pa.scalar(2, I32), pa.scalar(1, I32))))  # Update / Create
        status_id = arr(pc.if_else(closed, pa.scalar(4, I32), pa.scalar(1, I32)))  # Resolved / New
        severity_id = lookup(pc.utf8_upper(col("severity")), SEVERITY_IDS, I32, 0)
        is_write = pc.is_valid(col("bucket"))
        bucket_arn = arr(pc.binary_join_element_wise("arn:aws:s3:::", col("bucket"), ""))
        object_arn = where(pc.and_(is_write, pc.is_valid(col("key"))),
                           arr(pc.binary_join_element_wise(bucket_arn, col("key"), "/")))
        src = self._endpoint(col("source_ip"))
        key = col("key")
        spec: dict[str, object] = {
            **self._header("detection_finding", activity, n),
            **self._severity("detection_finding", severity_id),
            **self._status("detection_finding", status_id),
            "status_detail": col("status_reason"),
            "time": ms(col("finding_time")),
            "timezone_offset": const(0, I32, n),
            "message": col("title"),
            "is_alert": const(True, BOOL, n),
            "metadata": self._metadata(n, "alerts", None, col("rule"), ms(col("updated_at"))),
            "cloud": self._cloud(t),
            "finding_info": {
                "uid": col("alert_id"), "title": col("title"), "desc": col("description"),
                "created_time": ms(col("detected_at")), "modified_time": ms(col("updated_at")),
                "first_seen_time": ms(col("finding_time")), "last_seen_time": ms(col("finding_time")),
                "types": pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), col("rule"),
                                                  mask=pc.is_null(col("rule"))),
                "analytic": {"uid": col("rule"), "name": col("rule"),
                             "type_id": const(RULE, I32, n, pc.is_valid(col("rule"))),
                             "type": const("Rule", STR, n, pc.is_valid(col("rule")))},
                "related_events": ListOf([{"uid": where(is_write, col("event_id"))}]),
            },
            "evidences": ListOf([{
                "actor": {"user": {"name": col("user_id")}, "session": {"uid": col("session_id")}},
                "src_endpoint": src,
                "databucket": {"name": col("bucket"), "uid": where(is_write, bucket_arn),
                               "type_id": const(S3, I32, n, is_write),
                               "file": {"name": basename(key), "path": key,
                                        "type_id": const(REGULAR_FILE, I32, n, pc.is_valid(key))}},
                "data": Free({"claimed_session_id": col("claimed_session_id"), "principal_arn": col("principal_arn"),
                              "event_id": col("event_id")}),
            }]),
            "resources": ListOf([{"uid": object_arn, "name": where(pc.is_valid(object_arn), key),
                                  "type": const("AWS::S3::Object", STR, n, pc.is_valid(object_arn))}]),
            "observables": ListOf([
                self._observable("evidences.src_endpoint.ip", OBS_IP, "IP Address", src["ip"]),  # type: ignore[arg-type]
                self._observable("evidences.actor.user.name", OBS_USER_NAME, "User Name", col("user_id")),
            ]),
            "unmapped": Free({"alert_status": col("status"), "rule": col("rule")}),
        }
        return self._finish("detection_finding", spec, n, rejected)
