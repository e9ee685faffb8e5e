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

import pyarrow as pa
import pyarrow.compute as pc

from ..attribution import AttributionResult
from ..config import Config
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


def with_alert_scope(raised: pa.Table, activity: pa.Table) -> pa.Table:
    """Per-write signals with the ``account_id`` and ``region`` of the write they are about (ALERT_IN)."""
    if raised.num_rows == 0:
        return conform(raised, ALERT_IN)
    pos = pc.index_in(raised.column("event_id"), value_set=activity.column("event_id"))
    for name in ("account_id", "region"):
        raised = raised.set_column(raised.schema.get_field_index(name), name,
                                   activity.column(name).combine_chunks().take(pos))
    return conform(raised, ALERT_IN)


def attribution_signals(res: AttributionResult, config: Config) -> tuple[pa.Table, pa.Array, list[str]]:
    """Every signal an attribution result raises (the write rules' and the organisation's, ALERT_IN),
    the subjects they were decided for (the writes, and their scopes' report days) and the rules
    they cover: what ``reconcile`` needs.  The pipeline and ``rules replay`` both use this."""
    act = res.activity
    raised = pa.concat_tables([
        with_alert_scope(pa.concat_tables([write_alerts(res, config), scope.via_service_alerts(res, config)]), act),
        scope.report_missing_alerts(res, config)])
    subjects = pa.concat_arrays([act.column("event_id").combine_chunks().cast(pa.string()),
                                 pa.array(scope.report_subjects(res), pa.string())])
    return raised, subjects, list(WRITE_RULES) + list(scope.RULES)


def default_severity() -> dict[str, str]:
    """Every rule's default severity (``[alerts.severity]`` overrides it)."""
    return {r.id: r.severity for r in RULES.values()}


__all__ = ["ALERTS", "ALERT_IN", "CLOSED", "FAMILIES", "LOGON_RULES", "OPEN", "RULES", "TS", "WRITE_RULES", "Rule",
           "RuleInfo", "alert_id", "attribution_signals", "conform", "default_severity", "reconcile",
           "with_alert_scope", "write_alerts"]
