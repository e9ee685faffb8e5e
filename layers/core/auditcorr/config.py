"""Configuration: a TOML file, or defaults that serve the demo.

The core never reads the environment; the CLI and the Lambda handlers build a :class:`Config`
(from ``--config``/``AUDITCORR_CONFIG`` or from template parameters) and pass it in.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
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



def default_severity() -> dict[str, str]:
    """Each rule's default severity, as its declaration in ``auditcorr.rules`` gives it (imported
    here, late: the rules import this module)."""
    from .rules import default_severity as from_rules

    return from_rules() | INTEGRITY_SEVERITY


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_SEVERITY":  # the former constant
        return default_severity()
    raise AttributeError(name)


#: CloudTrail log file integrity rules (``auditcorr.integrity.alerts``; docs/reliability.md)
INTEGRITY_SEVERITY = {
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


_ACCOUNT_ID = re.compile(r"^\d{12}$", re.ASCII)


@dataclass(frozen=True)
class FleetGroup:
    """The AppStream fleets of one account: the network in which their private addresses mean
    something (``[[fleets]]``).  The flat ``[attribution]`` section is one group with ``account``
    None: any account, each write's own (see ``attribution.scope``)."""

    account: str | None = None
    #: regions of its fleets (empty: any)
    regions: tuple[str, ...] = ()
    cidrs: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    nat_cidrs: tuple[str, ...] = ()
    #: VPC endpoints its fleets reach S3 through: a write through one of them is this account's
    vpc_endpoints: tuple[str, ...] = ()
    #: (stack, fleet) pairs to poll live (empty: discover)
    stacks: tuple[tuple[str, str], ...] = ()
    #: a write's bucket region must be the session's region (true for gateway endpoints, which reach
    #: only their own region's buckets; set false where fleets use interface endpoints across regions)
    match_region: bool = True


#: the matchers a ``[[suppress]]`` entry may name (each optional; all given must match)
SUPPRESS_MATCHERS = ("account", "principal", "bucket", "key_prefix", "source", "user")


@dataclass(frozen=True)
class Suppression:
    """One ``[[suppress]]`` entry: signals of ``rule`` (``"*"``: any) that match every matcher given
    are kept with ``suppressed_by = id`` and never published.  ``principal`` may use ``*`` wildcards;
    ``source`` is an address or a CIDR.  ``expires`` (epoch ms, UTC) is judged against the signal's
    EVENT time: a signal for an event at or after it is not suppressed, so an entry stops applying
    without a redeploy, and a replay or a re-ordered ingest decides the same."""

    rule: str
    reason: str
    account: str | None = None
    principal: str | None = None
    bucket: str | None = None
    key_prefix: str | None = None
    source: str | None = None
    user: str | None = None
    expires_ms: int | None = None
    name: str | None = None

    @property
    def id(self) -> str:
        """``name``, or a short hash of what the entry matches (stable while the entry is unchanged)."""
        if self.name:
            return self.name
        text = "|".join(f"{k}={getattr(self, k)}" for k in ("rule", *SUPPRESS_MATCHERS, "expires_ms"))
        return "suppress-" + hashlib.sha256(text.encode()).hexdigest()[:10]

    @classmethod
    def parse(cls, item: Any, where: str) -> Suppression:
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(item) - {"rule", "reason", "expires", "name", *SUPPRESS_MATCHERS}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
        for key in ("rule", "reason"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ConfigError(f"{where}.{key} is required (a non-empty string)")
        kw: dict[str, Any] = {}
        for key in (*SUPPRESS_MATCHERS, "name"):
            if key in item:
                if not isinstance(item[key], str) or not item[key]:
                    raise ConfigError(f"{where}.{key} must be a non-empty string")
                kw[key] = item[key]
        if "source" in kw:
            try:
                ipaddress.ip_network(kw["source"], strict=False)
            except ValueError as exc:
                raise ConfigError(f"{where}.source: {kw['source']!r} is not an address or CIDR") from exc
        if "expires" in item:
            kw["expires_ms"] = _epoch_ms(item["expires"], f"{where}.expires")
        return cls(rule=item["rule"], reason=item["reason"], **kw)


def _epoch_ms(value: Any, where: str) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(f"{where}: {value!r} is not an ISO 8601 time") from exc
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    raise ConfigError(f"{where} must be a time (TOML datetime, date or ISO 8601 string)")


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
    severity: dict[str, str] = field(default_factory=default_severity)
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
    #: most one input object may inflate to (MiB) before it is quarantined; None: 256 MiB, or in Lambda
    #: derived from the function's memory (``ingest.inflate.cap_for_memory``, set by the adapter)
    max_inflated_mb: float | None = None
    #: the organisation's fleet groups (``[[fleets]]``); empty: the flat ``[attribution]`` group
    fleets: tuple[FleetGroup, ...] = ()
    #: flat configuration: a write's bucket region must be the session's region (see FleetGroup)
    match_region: bool = True
    # findings: signals with the same rule and grouping key in one dedup window are one finding
    dedup_minutes: int = 60
    dedup_minutes_by_rule: dict[str, int] = field(default_factory=dict)
    #: SNS/Security Hub: a growing finding is announced again at most once per this many minutes
    update_minutes: int = 15
    suppressions: tuple[Suppression, ...] = ()
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

        for rule, minutes in {"*": self.dedup_minutes, **self.dedup_minutes_by_rule}.items():
            if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 1:
                raise ConfigError(f"alerts.dedup_minutes ({rule}) must be a whole number of minutes >= 1")
        if self.update_minutes < 0:
            raise ConfigError("alerts.update_minutes must be >= 0")

    def dedup_ms(self, rule: str) -> int:
        """The rule's dedup window in milliseconds."""
        return int(self.dedup_minutes_by_rule.get(rule, self.dedup_minutes)) * 60_000

    def fleet_groups(self) -> tuple[FleetGroup, ...]:
        """The groups the join scopes by: ``[[fleets]]``, or the flat ``[attribution]`` as one group."""
        if self.fleets:
            return self.fleets
        return (FleetGroup(None, (), self.fleet_cidrs, self.roles, self.nat_cidrs, (), self.live_stacks,
                           self.match_region),)

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


def _fleet_group(item: Any, i: int) -> FleetGroup:
    where = f"fleets[{i}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(item) - {"account", "regions", "cidrs", "roles", "nat_cidrs", "vpc_endpoints", "stacks",
                           "match_region"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    account = item.get("account")
    if not isinstance(account, str) or not _ACCOUNT_ID.match(account):
        raise ConfigError(f"{where}.account must be a 12-digit AWS account id")
    stacks = []
    for s in _tuple_of_str(item, "stacks", where, ()):
        stack, sep, fleet = s.partition(":")
        if not sep or not stack or not fleet:
            raise ConfigError(f"{where}.stacks entries are 'stack:fleet', got {s!r}")
        stacks.append((stack, fleet))
    match_region = item.get("match_region", True)
    if not isinstance(match_region, bool):
        raise ConfigError(f"{where}.match_region must be true or false")
    return FleetGroup(account, _tuple_of_str(item, "regions", where, ()), _tuple_of_str(item, "cidrs", where, ()),
                      _tuple_of_str(item, "roles", where, ()), _tuple_of_str(item, "nat_cidrs", where, ()),
                      _tuple_of_str(item, "vpc_endpoints", where, ()), tuple(stacks), match_region)


def from_mapping(data: dict[str, Any]) -> Config:
    _D = Config()  # noqa: N806 - the defaults (built here, not at import: the rules' severities are imported late)
    known = {"attribution", "claims", "ingest", "alerts", "live", "logon_check", "lake", "fleets", "suppress",
             "integrity"}
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
    severity = default_severity()
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
    raw_fleets = data.get("fleets", [])
    if not isinstance(raw_fleets, list):
        raise ConfigError("fleets must be an array of tables ([[fleets]])")
    fleets = tuple(_fleet_group(item, i) for i, item in enumerate(raw_fleets))
    if len({f.account for f in fleets}) != len(fleets):
        raise ConfigError("fleets: one [[fleets]] entry per account")
    roles = _tuple_of_str(att, "roles", "attribution", _D.roles)
    cidrs = _tuple_of_str(att, "fleet_cidrs", "attribution", _D.fleet_cidrs)
    nat = _tuple_of_str(att, "nat_cidrs", "attribution", _D.nat_cidrs)
    if fleets:  # an organisation: the groups say which roles, subnets and NATs there are
        roles = tuple(dict.fromkeys(r for f in fleets for r in f.roles))
        cidrs = tuple(dict.fromkeys(c for f in fleets for c in f.cidrs))
        nat = tuple(dict.fromkeys(c for f in fleets for c in f.nat_cidrs))
        stacks += [p for f in fleets for p in f.stacks if p not in stacks]
    match_region = att.get("match_region", _D.match_region)
    if not isinstance(match_region, bool):
        raise ConfigError("attribution.match_region must be true or false")
    per_rule = alerts.get("dedup_minutes_per_rule", {})
    if not isinstance(per_rule, dict):
        raise ConfigError("alerts.dedup_minutes_per_rule must be a table (rule = minutes)")
    entries = data.get("suppress", [])
    if not isinstance(entries, list):
        raise ConfigError("suppress must be an array of tables ([[suppress]])")
    suppressions = tuple(Suppression.parse(e, f"suppress[{i}]") for i, e in enumerate(entries))
    return Config(
        fleets=fleets,
        match_region=match_region,
        dedup_minutes=int(_number(alerts, "dedup_minutes", "alerts", _D.dedup_minutes)),
        dedup_minutes_by_rule={str(k): int(_number(per_rule, k, "alerts.dedup_minutes_per_rule", 0))
                               for k in per_rule},
        update_minutes=int(_number(alerts, "update_minutes", "alerts", _D.update_minutes)),
        suppressions=suppressions,
        tolerance_seconds=int(_number(att, "tolerance_seconds", "attribution", _D.tolerance_seconds)),
        roles=roles,
        fleet_cidrs=cidrs,
        nat_cidrs=nat,
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
        max_inflated_mb=(float(_number(ing, "max_inflated_mb", "ingest", 0)) or None) if "max_inflated_mb" in ing
        else _D.max_inflated_mb,
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
