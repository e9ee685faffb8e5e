"""The logon cross-check now lives in :mod:`auditcorr.rules.logons`; this name is kept for imports."""

from __future__ import annotations

from .rules.logons import (
    DEFAULT_AUTH_TYPES,
    DEFAULT_CLOUDTRAIL_LAG_MS,
    DEFAULT_MISMATCH_EVENTS,
    OWN_LOGON_MODES,
    evaluate,
)
from .rules.logons import RULE_IDS as RULES

__all__ = ["DEFAULT_AUTH_TYPES", "DEFAULT_CLOUDTRAIL_LAG_MS", "DEFAULT_MISMATCH_EVENTS", "OWN_LOGON_MODES", "RULES",
           "evaluate"]
