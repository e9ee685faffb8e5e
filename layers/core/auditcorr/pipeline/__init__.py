"""The ingest pipeline: :class:`Pipeline` (``orchestrator.py``) composes the stages, one module each."""

from .compaction import (
    COMPACT_FANOUT,
    COMPACT_MAX_BYTES,
    COMPACT_SORT_KEYS,
    COMPACT_UNIT_BYTES,
    PartFile,
    StageTimes,
    compact_name,
    compacted_order,
    compaction_tier,
    plan_compaction,
)
from .live_ingest import LiveOutcome
from .load import classify
from .orchestrator import Clock, Pipeline, wall_clock

__all__ = [
    "COMPACT_FANOUT", "COMPACT_MAX_BYTES", "COMPACT_SORT_KEYS", "COMPACT_UNIT_BYTES", "Clock", "LiveOutcome",
    "PartFile", "Pipeline", "StageTimes", "classify", "compact_name", "compacted_order", "compaction_tier",
    "plan_compaction", "wall_clock",
]
