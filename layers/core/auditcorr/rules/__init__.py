"""Detection rules as code: one module per family, each rule a pure named function with its metadata.

``writes``  rules over the attributed S3 writes (``session_id_mismatch``, ``unknown_session_id``,
            ``credentials_outside_fleet``, ``unattributed_activity``)
``logons``  the logon cross-check over sessions (``session_without_logon``, ``logon_user_mismatch``)
``scope``   the organisation's rules (``fleet_credentials_via_service``, ``usage_report_missing``)

A rule is declared once (:class:`Rule`: id, default severity, title and description templates,
grouping key, the evidence it waits for, Security Hub types) beside its function; ``RULES`` below
is built from the families' ``DEFINITIONS``.  Add a rule to a family: its function and its
``Rule`` in that module.  Add a family: a module with ``DEFINITIONS`` and one line in ``FAMILIES``.
The signal life cycle (``reconcile``) is in ``lifecycle.py``.
"""

from __future__ import annotations

from . import logons, scope, writes
from .base import ALERT_IN, ALERTS, CLOSED, OPEN, TS, Rule, RuleInfo, alert_id, conform
from .lifecycle import reconcile
from .writes import write_alerts

#: every family module (each has ``DEFINITIONS``: its rules, in order)
FAMILIES = (writes, logons, scope)

#: every rule, by id
RULES: dict[str, Rule] = {r.id: r for fam in FAMILIES for r in fam.DEFINITIONS}
WRITE_RULES: tuple[str, ...] = writes.RULE_IDS
LOGON_RULES: tuple[str, ...] = logons.RULE_IDS

#: the alias kept for ``ALERT_IN``'s private former name
_ALERT_IN = ALERT_IN


def default_severity() -> dict[str, str]:
    """Every rule's default severity (``[alerts.severity]`` overrides it)."""
    return {r.id: r.severity for r in RULES.values()}


__all__ = ["ALERTS", "ALERT_IN", "CLOSED", "FAMILIES", "LOGON_RULES", "OPEN", "RULES", "TS", "WRITE_RULES", "Rule",
           "RuleInfo", "alert_id", "conform", "default_severity", "reconcile", "write_alerts"]
