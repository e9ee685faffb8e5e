"""Write rules: one named predicate per rule over the attributed activity, with its declaration.

Every predicate takes a :class:`WriteFacts` (the attribution result's columns as NumPy arrays,
computed once) and returns a boolean mask over ``res.activity``; :func:`write_alerts` turns the
masks of the enabled rules into signal rows (``ALERT_IN``).  A signal's subject is the write:
``alert_id = H(rule, event_id)``.

Add a rule: write its predicate and its :class:`Rule` below, add it to ``DEFINITIONS``; the
registry (``auditcorr.rules.RULES``), the default severity and the Security Hub types follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..attribution import AMBIGUOUS, ATTRIBUTED, EXTERNAL, UNATTRIBUTED, AttributionResult, classify_ips
from ..config import Config
from ..schemas import ALERTS, conform
from .base import ALERT_IN, OPEN, Rule, alert_id


@dataclass(frozen=True)
class WriteFacts:
    """What the write predicates look at, computed once per attribution result."""

    res: AttributionResult
    config: Config

    @cached_property
    def status(self) -> np.ndarray:
        return self.res.activity.column("status").to_numpy(zero_copy_only=False)

    @cached_property
    def claimed(self) -> np.ndarray:
        return self.res.activity.column("claimed_session_id").is_valid().to_numpy(zero_copy_only=False)

    @cached_property
    def fleet_status(self) -> np.ndarray:
        """The source address is a fleet address (whatever the join made of it)."""
        return np.isin(self.status, [ATTRIBUTED, AMBIGUOUS, UNATTRIBUTED, "pending"])

    @cached_property
    def claim_settled(self) -> np.ndarray:
        """The claimed id is among the candidates (then the claim chose the session; for a service's
        call placed through its credentials, ``match`` says ``credentials`` and the chosen session is
        the claimed one)."""
        act = self.res.activity
        match = act.column("match").to_numpy(zero_copy_only=False)
        chose_claim = pc.fill_null(pc.equal(act.column("session_id"), act.column("claimed_session_id")), False)
        return (match == "claim") | ((match == "credentials") & chose_claim.to_numpy(zero_copy_only=False))

    @cached_property
    def valid_ip(self) -> np.ndarray:
        valid, _, _ = classify_ips(self.res.activity.column("source_ip").combine_chunks(), self.config.fleet_cidrs)
        return np.asarray(valid)

    @cached_property
    def no_match(self) -> np.ndarray:
        return self.res.activity.column("match").is_null().to_numpy(zero_copy_only=False)


# -- the rules --------------------------------------------------------------------------------
def session_id_mismatch(f: WriteFacts) -> np.ndarray:
    """A fleet write claims a session that did not hold its address, but exists elsewhere."""
    return f.fleet_status & f.claimed & ~f.claim_settled & f.res.claim_known_elsewhere


def unknown_session_id(f: WriteFacts) -> np.ndarray:
    """A fleet write claims a session no report or live observation knows, once that is decidable."""
    return f.fleet_status & f.claimed & ~f.claim_settled & ~f.res.claim_known_elsewhere & f.res.claim_decidable


def credentials_outside_fleet(f: WriteFacts) -> np.ndarray:
    """The fleet role's credentials used from a valid address outside the fleet (not its NAT)."""
    return (f.status == EXTERNAL) & f.valid_ip & f.no_match


def unattributed_activity(f: WriteFacts) -> np.ndarray:
    """A write from a fleet address no session held, once the covering reports are in."""
    return f.status == UNATTRIBUTED


DEFINITIONS: tuple[Rule, ...] = (
    Rule(
        "session_id_mismatch", "writes", "HIGH",
        "Activity claims an AppStream session that did not hold its IP",
        "{event_name} s3://{bucket}/{key} from {source_ip} claims session {claimed_session_id}, "
        "but that IP was held by session {session_id} (user {user_id}) at {event_time}: a disguised session.",
        group_by=("claimed_session_id",),
        waits_for="the claimed session to be known from a report or a live observation (else: "
                  "unknown_session_id, once decidable)",
        asff_types=("TTPs/Defense Evasion", "Unusual Behaviors/User"),
        predicate=session_id_mismatch,
    ),
    Rule(
        "unknown_session_id", "writes", "HIGH",
        "Activity claims an AppStream session id that does not exist",
        "{event_name} s3://{bucket}/{key} from {source_ip} claims session {claimed_session_id}, "
        "which no sessions report or live observation knows (resolved session: {session_id}).",
        group_by=("claimed_session_id",),
        waits_for="the reports that could name the claimed session (claim_decidable: every day up to "
                  "max_session_hours after the write covered)",
        asff_types=("TTPs/Defense Evasion", "Unusual Behaviors/User"),
        predicate=unknown_session_id,
    ),
    Rule(
        "credentials_outside_fleet", "writes", "CRITICAL",
        "Fleet role credentials used from outside the fleet's subnets",
        "{event_name} s3://{bucket}/{key} by {principal_arn} came from {source_ip}, outside the fleet "
        "CIDRs: the instance role's credentials were used elsewhere (credential replay).",
        group_by=("principal_arn", "source_ip"),
        waits_for="nothing: the address alone decides",
        asff_types=("TTPs/Credential Access", "Unusual Behaviors/Network Flow"),
        predicate=credentials_outside_fleet,
    ),
    Rule(
        "unattributed_activity", "writes", "MEDIUM",
        "Write from a fleet address while no AppStream session held it",
        "{event_name} s3://{bucket}/{key} from fleet address {source_ip} at {event_time}, "
        "but no session held that address then (reports covering the time are in).",
        group_by=("source_ip",),
        waits_for="the sessions reports covering the write (status final: not pending)",
        asff_types=("Unusual Behaviors/User",),
        predicate=unattributed_activity,
    ),
)

RULE_IDS: tuple[str, ...] = tuple(r.id for r in DEFINITIONS)

_FIELDS = ["event_id", "event_time", "event_name", "source_ip", "bucket", "key", "principal_arn", "user_id",
           "session_id", "claimed_session_id"]


def write_alerts(res: AttributionResult, config: Config,
                 definitions: tuple[Rule, ...] | None = None) -> pa.Table:
    """Signals raised by attributed activity rows (ALERTS schema, status open): one per write a rule
    of ``definitions`` (default: this family's) holds for."""
    if res.activity.num_rows == 0:
        return ALERTS.empty_table()
    facts = WriteFacts(res, config)
    parts = []
    for rule in DEFINITIONS if definitions is None else definitions:
        if not config.rule_enabled(rule.id):
            continue
        assert rule.predicate is not None
        mask = rule.predicate(facts)
        if not mask.any():
            continue
        parts.append(_alert_rows(rule, res.activity.filter(pa.array(mask)), config))
    if not parts:
        return ALERTS.empty_table()
    return pa.concat_tables(parts)


def _alert_rows(rule: Rule, sub: pa.Table, config: Config) -> pa.Table:
    extra = [c for c in ("account_id",) if c in sub.column_names]  # issue 15: the column may come later
    rows = sub.select(_FIELDS + extra).to_pylist()
    out = []
    for r in rows:
        fields = {k: ("-" if v is None else v) for k, v in r.items()}
        fields["event_time"] = r["event_time"].strftime("%Y-%m-%dT%H:%M:%SZ") if r["event_time"] else "-"
        out.append({
            **{k: r[k] for k in _FIELDS[1:] + extra},
            "alert_id": alert_id(rule.id, r["event_id"]),
            "rule": rule.id,
            "severity": config.severity.get(rule.id, rule.severity),
            "status": OPEN,
            "status_reason": None,
            "event_id": r["event_id"],
            "title": rule.title,
            "description": rule.description.format(**fields),
        })
    return conform(pa.Table.from_pylist(out, schema=ALERT_IN), ALERTS)
