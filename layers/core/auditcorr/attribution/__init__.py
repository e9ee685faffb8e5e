"""The attribution join, one step per module.

``model``       statuses, :class:`Match` codes, :class:`Coverage`, :class:`AttributionResult`
``addresses``   valid IP? in the fleet's subnets? normal form (per distinct value)
``claims``      the session id a write claims
``candidates``  (write, session) pairs on the same address within the tolerant window
``logons``      the logon behind a session
``join``        :func:`attribute`: scope -> candidates -> choice -> finality -> status, match, logon
``inputs``      what the join reads from the lake (sessions window, logons, live freshness, coverage)
"""

from .addresses import classify_ips, ip_codes
from .candidates import candidate_pairs, equal_pairs
from .claims import extract_claims
from .join import attribute
from .logons import match_logons
from .model import (
    AMBIGUOUS,
    ATTRIBUTED,
    DAY_MS,
    EXTERNAL,
    PENDING,
    SESSION_COLS,
    STATUSES,
    UNATTRIBUTED,
    AttributionResult,
    Coverage,
    Match,
)

__all__ = [
    "AMBIGUOUS", "ATTRIBUTED", "DAY_MS", "EXTERNAL", "PENDING", "SESSION_COLS", "STATUSES", "UNATTRIBUTED",
    "AttributionResult", "Coverage", "Match", "attribute", "candidate_pairs", "classify_ips", "equal_pairs",
    "extract_claims", "ip_codes", "match_logons",
]
