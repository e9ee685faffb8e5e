"""Configuration: a TOML file, or defaults that serve the demo.

The core never reads the environment; the CLI and the Lambda handlers build a :class:`Config`
(from ``--config``/``AUDITCORR_CONFIG`` or from template parameters) and pass it in.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_ROLES = ("arn:aws:iam::111122223333:role/AppStreamFleetRole",)
DEFAULT_FLEET_CIDRS = ("10.40.0.0/16",)
DEFAULT_WRITE_EVENTS = (
    "PutObject",
    "CopyObject",
    "CompleteMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CreateMultipartUpload",
    "PostObject",
)
DEFAULT_LOGON_EVENTS = ("AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "ConsoleLogin", "AssumeRole")
#: AppStream session ids are UUIDs; a claimed value that does not look like one is not a claim
#: (the fleet role's own session name, for example).
DEFAULT_CLAIM_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

CLAIM_SOURCES = ("role_session_name", "source_identity", "principal_tag", "key_regex", "none")

SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")

DEFAULT_SEVERITY = {
    "session_id_mismatch": "HIGH",
    "unknown_session_id": "HIGH",
    "credentials_outside_fleet": "CRITICAL",
    "unattributed_activity": "MEDIUM",
    "session_without_logon": "MEDIUM",
    "logon_user_mismatch": "HIGH",
    # CloudTrail log file integrity (auditcorr.integrity.alerts; docs/reliability.md)
    "log_file_modified": "CRITICAL",
    "log_file_missing": "HIGH",
    "digest_signature_invalid": "CRITICAL",
    "digest_chain_broken": "HIGH",
    "digest_chain_gap": "MEDIUM",
}


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message says which key."""


@dataclass(frozen=True)
class ClaimSpec:
    source: str = "role_session_name"
    argument: str | None = None  # tag key for principal_tag, regex for key_regex
    pattern: str = DEFAULT_CLAIM_PATTERN

    @classmethod
    def parse(cls, text: str, pattern: str = DEFAULT_CLAIM_PATTERN) -> ClaimSpec:
        kind, _, arg = text.partition(":")
        if kind not in CLAIM_SOURCES:
            raise ConfigError(f"claims.session_id: unknown source {kind!r}; expected one of {CLAIM_SOURCES}")
        if kind in ("principal_tag", "key_regex") and not arg:
            raise ConfigError(f"claims.session_id: {kind} needs an argument, e.g. {kind}:<value>")
        if kind == "key_regex":
            try:
                rx = re.compile(arg)
            except re.error as exc:
                raise ConfigError(f"claims.session_id: invalid regex: {exc}") from exc
            if rx.groups != 1:
                raise ConfigError("claims.session_id: key_regex needs exactly one capture group")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"claims.pattern: invalid regex: {exc}") from exc
        return cls(kind, arg or None, pattern)

    def __str__(self) -> str:
        return f"{self.source}:{self.argument}" if self.argument else self.source


@dataclass(frozen=True)
class Config:
    tolerance_seconds: int = 60
    roles: tuple[str, ...] = DEFAULT_ROLES
    fleet_cidrs: tuple[str, ...] = DEFAULT_FLEET_CIDRS
    #: the fleets' NAT egress addresses: writes from them are ``external`` (a NAT hides the instance,
    #: attribution is impossible) but are not credential replay
    nat_cidrs: tuple[str, ...] = ()
    #: longest a session can last (AppStream's default maximum user duration is 16 h); a write at
    #: time t is final only once the reports for day(t) .. day(t + this) are in.
    max_session_hours: float = 16.0
    #: after this many hours past the end of a day with no report, the day counts as covered
    #: (AppStream writes no report for a day without sessions).
    report_grace_hours: float = 48.0
    write_events: tuple[str, ...] = DEFAULT_WRITE_EVENTS
    logon_events: tuple[str, ...] = DEFAULT_LOGON_EVENTS
    claim: ClaimSpec = field(default_factory=ClaimSpec)
    severity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    disabled_rules: tuple[str, ...] = ()
    #: small files (under 1 MiB) per partition above which ingest merges them into a compacted file
    #: (larger files are merged in tiers by size: ``pipeline.plan_compaction``)
    compact_threshold: int = 16
    #: most Parquet a single merge reads (MiB): its memory is ~50x that for s3_writes (Arrow
    #: decoding), so this must fit the ingest function's memory; files this large are final
    compact_max_mb: float = 8.0  # the one place of this default (the template and docs say "8")
    # live verification (AppStream API)
    live_freshness_seconds: int = 180
    live_stacks: tuple[tuple[str, str], ...] = ()  # (stack, fleet) pairs; empty: discover
    # logon cross-check
    logon_window_hours: float = 12.0
    logon_mismatch_window_seconds: int = 300
    # CloudTrail log file integrity (digest validation)
    #: validate digests and hash log files at ingest (``[integrity] enabled``)
    integrity_enabled: bool = True
    #: local CloudTrail public keys: ``<fingerprint>.pem``/``.der`` files or saved ``list-public-keys``
    #: JSON (``[integrity] public_keys_dir``); on AWS the keys come from ``ListPublicKeys``
    integrity_public_keys_dir: str | None = None

    def __post_init__(self) -> None:
        if self.tolerance_seconds < 0:
            raise ConfigError("attribution.tolerance_seconds must be >= 0")
        for key, cidrs in (("fleet_cidrs", self.fleet_cidrs), ("nat_cidrs", self.nat_cidrs)):
            for cidr in cidrs:
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError as exc:
                    raise ConfigError(f"attribution.{key}: {cidr!r} is not a CIDR") from exc
        for rule, sev in self.severity.items():
            if sev not in SEVERITIES:
                raise ConfigError(f"severity.{rule}: {sev!r} is not one of {SEVERITIES}")

    def with_(self, **kw: Any) -> Config:
        return replace(self, **kw)

    def rule_enabled(self, rule: str) -> bool:
        return rule not in self.disabled_rules


def defaults() -> Config:
    """The configuration with every default (what an empty file gives)."""
    return Config()


def _tuple_of_str(section: dict[str, Any], key: str, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if key not in section:
        return default
    value = section[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of strings")
    return tuple(value)


def _number(section: dict[str, Any], key: str, where: str, default: float) -> float:
    if key not in section:
        return default
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key} must be a number")
    return value


#: the defaults, declared once (the dataclass above); a file that omits a key gets the same value
_D = Config()


def from_mapping(data: dict[str, Any]) -> Config:
    known = {"attribution", "claims", "ingest", "alerts", "live", "logon_check", "lake", "integrity"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown section(s): {sorted(unknown)}")
    att = data.get("attribution", {})
    claims = data.get("claims", {})
    ing = data.get("ingest", {})
    alerts = data.get("alerts", {})
    live = data.get("live", {})
    lcheck = data.get("logon_check", {})
    lake = data.get("lake", {})
    integ = data.get("integrity", {})
    keys_dir = integ.get("public_keys_dir", _D.integrity_public_keys_dir)
    if keys_dir is not None and not isinstance(keys_dir, str):
        raise ConfigError("integrity.public_keys_dir must be a string (a folder)")
    enabled = integ.get("enabled", _D.integrity_enabled)
    if not isinstance(enabled, bool):
        raise ConfigError("integrity.enabled must be true or false")
    severity = dict(DEFAULT_SEVERITY)
    for rule, sev in alerts.get("severity", {}).items():
        severity[rule] = str(sev).upper()
    disabled = list(_tuple_of_str(alerts, "disabled", "alerts", ()))
    if lcheck.get("enabled", True) is False:
        disabled += ["session_without_logon", "logon_user_mismatch"]
    stacks: list[tuple[str, str]] = []
    for item in live.get("stacks", []):
        if not isinstance(item, dict) or "stack" not in item or "fleet" not in item:
            raise ConfigError("live.stacks entries need 'stack' and 'fleet'")
        stacks.append((str(item["stack"]), str(item["fleet"])))
    return Config(
        tolerance_seconds=int(_number(att, "tolerance_seconds", "attribution", _D.tolerance_seconds)),
        roles=_tuple_of_str(att, "roles", "attribution", _D.roles),
        fleet_cidrs=_tuple_of_str(att, "fleet_cidrs", "attribution", _D.fleet_cidrs),
        nat_cidrs=_tuple_of_str(att, "nat_cidrs", "attribution", _D.nat_cidrs),
        max_session_hours=float(_number(att, "max_session_hours", "attribution", _D.max_session_hours)),
        report_grace_hours=float(_number(att, "report_grace_hours", "attribution", _D.report_grace_hours)),
        write_events=_tuple_of_str(ing, "write_events", "ingest", _D.write_events),
        logon_events=_tuple_of_str(ing, "logon_events", "ingest", _D.logon_events),
        claim=ClaimSpec.parse(
            str(claims.get("session_id", _D.claim.source)), str(claims.get("pattern", _D.claim.pattern))
        ),
        severity=severity,
        disabled_rules=tuple(disabled),
        compact_threshold=int(_number(lake, "compact_threshold", "lake", _D.compact_threshold)),
        compact_max_mb=float(_number(lake, "compact_max_mb", "lake", _D.compact_max_mb)),
        live_freshness_seconds=int(_number(live, "freshness_seconds", "live", _D.live_freshness_seconds)),
        live_stacks=tuple(stacks),
        logon_window_hours=float(_number(lcheck, "window_hours", "logon_check", _D.logon_window_hours)),
        logon_mismatch_window_seconds=int(
            _number(lcheck, "mismatch_window_seconds", "logon_check", _D.logon_mismatch_window_seconds)),
        integrity_enabled=enabled,
        integrity_public_keys_dir=keys_dir or None,
    )


def load(path: str | Path | None) -> Config:
    if path is None:
        return Config()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    return from_mapping(data)
