"""What every rule is: a pure named function plus its metadata, declared side by side.

A :class:`Rule` holds the facts the rest of the system needs about a detection: its id, default
severity, title and description templates (``str.format`` over the signal's fields), the fields that
group its signals into one finding, the evidence it waits for before it decides, and its Security
Hub finding types.  The function itself lives next to the declaration, in the rule's family module
(``writes.py``, ``logons.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..schemas import ALERTS, TS, conform

OPEN = "open"
CLOSED = "closed"

#: the alert columns a rule fills (``reconcile`` sets ``detected_at``/``updated_at``; the finding
#: grouping sets ``finding_id``, suppressions ``suppressed_by``)
ALERT_IN = pa.schema([f for f in ALERTS if f.name not in ("detected_at", "updated_at")])

__all__ = ["ALERTS", "ALERT_IN", "CLOSED", "OPEN", "TS", "Rule", "RuleInfo", "alert_id", "conform"]


def alert_id(rule: str, subject: str) -> str:
    """A signal's id: the rule and its subject (the event id, or the session id)."""
    return hashlib.sha256(f"auditcorr/v1|{rule}|{subject}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Rule:
    id: str
    #: the family module that evaluates it (``writes``: attributed activity; ``logons``: sessions)
    family: str
    severity: str
    title: str
    #: ``str.format`` template over the signal's fields (the family's format fields)
    description: str
    #: alert columns whose values (with ``account_id``, when the alert has one) make one finding
    #: within the dedup window
    group_by: tuple[str, ...]
    #: the evidence the rule waits for before it raises or clears anything (for docs and reviews)
    waits_for: str
    asff_types: tuple[str, ...] = ("Unusual Behaviors/User",)
    #: the rule's predicate (family-specific signature; see the family module)
    predicate: Callable[..., Any] | None = None


#: the former name of :class:`Rule` (it held only ``title`` and ``description``)
RuleInfo = Rule
