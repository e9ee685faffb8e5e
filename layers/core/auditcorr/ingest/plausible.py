"""The plausible range of an event's time, and the rejection of times outside it.

A CloudTrail log file's key carries the time CloudTrail wrote it
(``<account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<unique>.json.gz``).  CloudTrail delivers an event
within minutes on average (not guaranteed), never before it happened.  So an event time more than
:data:`BEFORE_DELIVERY` before that time, or more than :data:`AFTER_DELIVERY` after it (clock skew),
is not what CloudTrail wrote: the record is rejected with the reason.  Whatever the key says, times
outside :data:`ABSOLUTE_MIN` .. :data:`ABSOLUTE_MAX` (or ``now + AFTER_DELIVERY`` when the caller
knows "now") are rejected too: CloudTrail did not exist before 2013, and a year-9999 time breaks
date arithmetic and partition names downstream (docs/reliability.md, "Event times").
"""

from __future__ import annotations

import posixpath
import re
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from ..counts import FileOutcome

DAY_MS = 86_400_000
#: how long before its file's delivery an event may have happened (CloudTrail's own delay is minutes;
#: a week leaves room for late deliveries without admitting forged or absurd times)
BEFORE_DELIVERY = 7 * DAY_MS
#: how long after its file's delivery an event may claim to have happened (clock skew only)
AFTER_DELIVERY = 3_600_000
#: CloudTrail launched in November 2013: nothing it logged is older than this
ABSOLUTE_MIN = int(datetime(2013, 1, 1, tzinfo=UTC).timestamp() * 1000)
#: far enough ahead for any real data, far from the edge of every date type (year 9999)
ABSOLUTE_MAX = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)

OUTSIDE_DELIVERY = "eventTime implausible for the file's delivery time (over 7 days before or 1 hour after)"
OUTSIDE_ABSOLUTE = "eventTime outside the plausible range (2013 to 2100, or after now)"

_DELIVERY = re.compile(r"_CloudTrail_[^_/]+_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_[^/]*\Z", re.ASCII)


def delivery_ms(source: str) -> int | None:
    """The delivery time in a CloudTrail key (epoch ms), or None when the name has none."""
    m = _DELIVERY.search(posixpath.basename(source.replace("\\", "/")))
    if not m:
        return None
    try:
        y, mo, d, h, mi = map(int, m.groups())
        return int(datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        return None


def window(source: str, now_ms: int | None = None) -> tuple[int, int, bool]:
    """(lowest, highest, relative): the accepted event times for records of ``source``.

    ``relative`` says whether the key's delivery time narrowed the absolute bounds."""
    lo, hi = ABSOLUTE_MIN, ABSOLUTE_MAX
    if now_ms is not None:
        hi = min(hi, now_ms + AFTER_DELIVERY)
    delivered = delivery_ms(source)
    if delivered is None or not lo <= delivered <= hi:
        return lo, hi, False  # no delivery time, or an absurd one: the absolute bounds only
    return max(lo, delivered - BEFORE_DELIVERY), min(hi, delivered + AFTER_DELIVERY), True


def reject_implausible(table: pa.Table, source: str, outcome: FileOutcome,
                       now_ms: int | None = None) -> pa.Table:
    """``table`` without the rows whose ``event_time`` is outside :func:`window`; each such row is
    counted as rejected with the reason.  Vectorised: one comparison over the column."""
    if table.num_rows == 0:
        return table
    lo, hi, relative = window(source, now_ms)
    ms = table.column("event_time").cast(pa.int64())
    outside = pc.or_(pc.less(ms, lo), pc.greater(ms, hi))
    n = pc.sum(pc.cast(pc.fill_null(outside, False), pa.int64())).as_py() or 0
    if not n:
        return table
    if relative:
        # say which bound a time broke: outside the absolute range is a different (stronger) claim
        absolute = pc.or_(pc.less(ms, ABSOLUTE_MIN), pc.greater(ms, ABSOLUTE_MAX if now_ms is None
                                                                else min(ABSOLUTE_MAX, now_ms + AFTER_DELIVERY)))
        n_abs = pc.sum(pc.cast(pc.fill_null(absolute, False), pa.int64())).as_py() or 0
        if n_abs:
            outcome.reject(OUTSIDE_ABSOLUTE, n_abs)
        if n - n_abs:
            outcome.reject(OUTSIDE_DELIVERY, n - n_abs)
    else:
        outcome.reject(OUTSIDE_ABSOLUTE, n)
    return table.filter(pc.invert(pc.fill_null(outside, False)))


def plausible_ms(ms: int, now_ms: int | None = None) -> bool:
    """Whether one time (a usage report's session start or end) is inside the absolute bounds."""
    hi = ABSOLUTE_MAX if now_ms is None else min(ABSOLUTE_MAX, now_ms + AFTER_DELIVERY)
    return ABSOLUTE_MIN <= ms <= hi
