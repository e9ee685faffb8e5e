"""The deployment's settings, read once from the Lambda environment (``template.yaml`` Globals).

The core never reads the environment (ADR 0001); this is the edge that does. Each template
parameter that the core's configuration holds becomes one ``AUDITCORR_*`` variable, mapped here onto
the same TOML-shaped mapping that ``auditcorr.config.from_mapping`` validates for the CLI.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditcorr.config import Config, ConfigError, from_mapping
from auditcorr.ocsf.export import AUTHENTICATION, DATASTORE, FINDING

#: environment variable -> (TOML section, key, kind)
CONFIG_ENV: dict[str, tuple[str, str, str]] = {
    "AUDITCORR_ROLES": ("attribution", "roles", "list"),
    "AUDITCORR_FLEET_CIDRS": ("attribution", "fleet_cidrs", "list"),
    "AUDITCORR_TOLERANCE_SECONDS": ("attribution", "tolerance_seconds", "int"),
    "AUDITCORR_MAX_SESSION_HOURS": ("attribution", "max_session_hours", "float"),
    "AUDITCORR_REPORT_GRACE_HOURS": ("attribution", "report_grace_hours", "float"),
    "AUDITCORR_CLAIM_SOURCE": ("claims", "session_id", "str"),
    "AUDITCORR_WRITE_EVENTS": ("ingest", "write_events", "list"),
    "AUDITCORR_DISABLED_RULES": ("alerts", "disabled", "list"),
    "AUDITCORR_COMPACT_THRESHOLD": ("lake", "compact_threshold", "int"),
    "AUDITCORR_COMPACT_MAX_MB": ("lake", "compact_max_mb", "float"),
    "AUDITCORR_MAX_INFLATED_MB": ("ingest", "max_inflated_mb", "float"),
    "AUDITCORR_LIVE_FRESHNESS_SECONDS": ("live", "freshness_seconds", "int"),
    "AUDITCORR_LOGON_WINDOW_HOURS": ("logon_check", "window_hours", "float"),
    "AUDITCORR_LOGON_MISMATCH_WINDOW_SECONDS": ("logon_check", "mismatch_window_seconds", "int"),
    "AUDITCORR_DEDUP_MINUTES": ("alerts", "dedup_minutes", "int"),
    "AUDITCORR_FINDING_UPDATE_MINUTES": ("alerts", "update_minutes", "int"),
    "AUDITCORR_SUPPRESSIONS": ("", "suppress", "json"),
    "AUDITCORR_FLEETS": ("", "fleets", "json"),  # [[fleets]] groups as a JSON array
}
#: read by ``poll_sessions`` only (``auditcorr_aws.appstream.LivePoller.from_env``): the
#: ``stack:fleet,...`` pairs to poll; empty -- discover them. Not part of :data:`CONFIG_ENV` because the
#: TOML form (``[[live.stacks]]`` tables) has no flat equivalent.
LIVE_STACKS_ENV = "AUDITCORR_LIVE_STACKS"


#: ``auditcorr query --athena``: the Glue database and Athena workgroup (defaults: the template's)
ATHENA_DATABASE_ENV = "AUDITCORR_ATHENA_DATABASE"
ATHENA_WORKGROUP_ENV = "AUDITCORR_ATHENA_WORKGROUP"


def environment(env: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The process environment, or ``env`` when given (tests): the one place that reads it."""
    return os.environ if env is None else env


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def config_mapping(env: Mapping[str, str]) -> dict[str, Any]:
    """The TOML-shaped mapping the environment describes (unset or empty variables: defaults)."""
    data: dict[str, Any] = {}
    for var, (section, key, kind) in CONFIG_ENV.items():
        raw = env.get(var, "").strip()
        if not raw:
            continue
        value: Any
        try:
            if kind == "list":
                value = _split(raw)
                if not value:
                    continue
            elif kind == "int":
                value = int(raw)
            elif kind == "float":
                value = float(raw)
            elif kind == "json":
                value = json.loads(raw)
            else:
                value = raw
        except ValueError as exc:
            raise ConfigError(f"{var}: {raw!r} is not a valid {kind}") from exc
        if section:
            data.setdefault(section, {})[key] = value
        else:  # a top-level key ([[suppress]])
            data[key] = value
    return data


def config_from_env(env: Mapping[str, str]) -> Config:
    """The core's configuration from the environment.  With no ``AUDITCORR_MAX_INFLATED_MB``, the cap
    on what one object may inflate to is derived from the function's memory (Lambda sets
    ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``): a bomb is quarantined, never an out-of-memory retry loop."""
    data = config_mapping(env)
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "").strip()
    if "max_inflated_mb" not in data.get("ingest", {}) and memory.isdigit():
        from auditcorr.ingest.inflate import cap_for_memory

        data.setdefault("ingest", {})["max_inflated_mb"] = cap_for_memory(int(memory)) / (1 << 20)
    return from_mapping(data)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


#: an S3 bucket name (3-63 characters of lowercase letters, digits, dots and hyphens)
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _bucket_list(value: str) -> tuple[str, ...]:
    """``a,b , c`` -> ("a", "b", "c"); a name that cannot be a bucket is a configuration error."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    bad = [n for n in names if not _BUCKET_NAME.fullmatch(n)]
    if bad:
        raise ConfigError(f"not S3 bucket names: {', '.join(bad)}")
    return names


@dataclass(frozen=True)
class Settings:
    lake_uri: str
    region: str
    cloudtrail_bucket: str | None = None
    #: AppStream's usage-report buckets (one per account and region); empty: any bucket
    appstream_logs_buckets: tuple[str, ...] = ()
    alert_topic_arn: str | None = None
    security_hub: bool = False
    idempotency_table: str | None = None
    idempotency_days: int = 90
    account_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        lake = env.get("AUDITCORR_LAKE_URI", "").strip()
        if not lake.startswith("s3://") or len(lake) <= len("s3://"):
            raise ConfigError("AUDITCORR_LAKE_URI must be s3://bucket/prefix")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            raise ConfigError("AWS_REGION is not set")
        try:
            days = int(env.get("AUDITCORR_IDEMPOTENCY_DAYS", "90") or "90")
        except ValueError as exc:
            raise ConfigError("AUDITCORR_IDEMPOTENCY_DAYS must be an integer") from exc
        return cls(
            lake_uri=lake.rstrip("/"),
            region=region,
            cloudtrail_bucket=env.get("AUDITCORR_CLOUDTRAIL_BUCKET") or None,
            appstream_logs_buckets=_bucket_list(env.get("AUDITCORR_APPSTREAM_LOGS_BUCKETS", "")),
            alert_topic_arn=env.get("AUDITCORR_ALERT_TOPIC_ARN") or None,
            security_hub=_flag(env.get("AUDITCORR_SECURITY_HUB")),
            idempotency_table=env.get("AUDITCORR_IDEMPOTENCY_TABLE") or None,
            idempotency_days=days,
            account_id=env.get("AUDITCORR_ACCOUNT_ID") or None,
        )

    @property
    def lake_bucket(self) -> str:
        return self.lake_uri[len("s3://"):].split("/", 1)[0]

    @property
    def lake_prefix(self) -> str:
        rest = self.lake_uri[len("s3://"):].split("/", 1)
        return rest[1].strip("/") if len(rest) > 1 else ""

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"


# -- export_ocsf: Security Lake custom sources (docs/adr/0009-ocsf-export-schedule.md) ---------------
SECURITY_LAKE_BUCKET_ENV = "AUDITCORR_SECURITY_LAKE_BUCKET"
OCSF_EXTERNAL_ID_ENV = "AUDITCORR_OCSF_EXTERNAL_ID"
#: custom source -> the variable holding the provider role CreateCustomLogSource gave it
OCSF_ROLE_ENV: dict[str, str] = {
    DATASTORE: "AUDITCORR_OCSF_ROLE_DATASTORE",
    AUTHENTICATION: "AUDITCORR_OCSF_ROLE_AUTH",
    FINDING: "AUDITCORR_OCSF_ROLE_FINDING",
}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")


@dataclass(frozen=True)
class OcsfSettings:
    """Where ``export_ocsf`` writes: the Security Lake bucket (this region's), one provider role per
    custom source and the external id the sources were registered with."""

    bucket: str
    roles: Mapping[str, str]
    external_id: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OcsfSettings:
        bucket = env.get(SECURITY_LAKE_BUCKET_ENV, "").strip()
        if not _BUCKET.match(bucket):
            raise ConfigError(f"{SECURITY_LAKE_BUCKET_ENV} must be the Security Lake bucket's name")
        roles = {}
        for source, var in OCSF_ROLE_ENV.items():
            arn = env.get(var, "").strip()
            if not _ROLE_ARN.match(arn):
                raise ConfigError(f"{var} must be the provider role ARN of the custom source {source}")
            roles[source] = arn
        external_id = env.get(OCSF_EXTERNAL_ID_ENV, "").strip()
        if not _EXTERNAL_ID.match(external_id):
            raise ConfigError(f"{OCSF_EXTERNAL_ID_ENV} must be the external id the custom sources trust")
        return cls(bucket=bucket, roles=roles, external_id=external_id)
