"""Alert merge: the signals a computation raised, reconciled with the previous versions of the
signals on the same events (new ones opened, vanished ones closed with a reason, nothing deleted),
then the findings they belong (or belonged) to recomputed from their signals' latest rows."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import findings, rules
from ..arrow import one_array
from ..attribution import DAY_MS
from ..config import Config
from ..counts import IngestSummary
from ..lake import Lake, keep_latest
from ..schemas import ALERTS, TABLES, conform
from ..timeparse import day_string, dt_column
from .compaction import Compactor
from .load import FileColumns


class AlertMerge:
    def __init__(self, lake: Lake, columns: FileColumns, compactor: Compactor, config: Config | None = None) -> None:
        self.lake = lake
        self.columns = columns
        self.compactor = compactor
        self.config = config or Config()

    def merge(self, raised: pa.Table, scope: list[str] | pa.ChunkedArray | pa.Array, rules_in_scope: list[str],
              dts: pa.Array, name: str, now: int, summary: IngestSummary | None, whole_days: bool = False,
              closed_reason: str | None = None) -> None:
        """Write what changed in the alerts of the events in ``scope`` (``whole_days``: every event of
        the days of ``dts``) for the rules in ``rules_in_scope``, then compact those days."""
        # only the previous versions of the alerts on these events matter (alert_id = H(rule, event),
        # so every version of a raised alert carries its event_id): reading the whole day's alerts
        # for every file made a day quadratic
        ids = None if whole_days else pc.unique(pa.concat_arrays([
            _strings(scope if isinstance(scope, pa.Array | pa.ChunkedArray) else pa.array(scope, pa.string())),
            _strings(raised.column("event_id"))]))
        days = pc.unique(dts).to_pylist()
        prev = self.lake.read("alerts", days) if ids is None else self.read_where_in("alerts", days, "event_id", ids)
        prev = prev.drop_columns(["dt"]) if "dt" in prev.column_names else prev
        raised = findings.assign(conform(raised, ALERTS), self.config)
        changed = rules.reconcile(prev, raised, scope, now, rules_in_scope=rules_in_scope, closed_reason=closed_reason)
        if changed.num_rows:
            self.lake.write_partitioned("alerts", name, changed, dt_column(changed.column("event_time")))
            if summary is not None:
                summary.alerts_opened += int(pc.sum(pc.equal(changed.column("status"), rules.OPEN)).as_py() or 0)
                summary.alerts_closed += int(pc.sum(pc.equal(changed.column("status"), rules.CLOSED)).as_py() or 0)
        # every finding these signals belong or belonged to, recomputed from its signals (state, not
        # increments: a retry after a crash between the two writes repairs the findings)
        touched = pa.concat_tables([conform(prev, ALERTS), raised])
        self.update_findings(touched, name, now, summary)
        for dt in days:
            self.compactor.maybe_compact("alerts", dt)

    def update_findings(self, touched: pa.Table, name: str, now: int, summary: IngestSummary | None) -> None:
        """Recompute the findings of the ``touched`` signals (ALERTS rows: their ``finding_id``,
        ``rule`` and ``event_time`` say which findings and which days hold their signals)."""
        touched = touched.filter(pc.is_valid(touched.column("finding_id")))
        if touched.num_rows == 0:
            return
        ids = pc.unique(_strings(touched.column("finding_id")))
        starts = findings.window_starts(touched, self.config).to_numpy(zero_copy_only=False)
        ends = starts + np.array([self.config.dedup_ms(r) for r in touched.column("rule").to_pylist()],
                                 dtype=np.int64) - 1
        signal_days = sorted({day_string(d) for lo, hi in {(int(a) // DAY_MS, int(b) // DAY_MS)
                                                              for a, b in zip(starts, ends, strict=True)}
                              for d in range(lo, hi + 1)})
        have = set(self.lake.partitions("alerts"))
        signals = self.read_where_in("alerts", [d for d in signal_days if d in have], "finding_id", ids)
        state = findings.aggregate(signals.drop_columns(["dt"]), self.config)
        # a finding's partition is its window's start day: under this configuration, or (a signal
        # regrouped by a configuration change) under an earlier one -- the event's day or the one before
        ev_days = {int(d) for d in np.unique(touched.column("event_time").cast(pa.int64())
                                             .to_numpy(zero_copy_only=False) // DAY_MS)}
        finding_days = sorted({day_string(int(a) // DAY_MS) for a in set(starts.tolist())}
                              | {day_string(d + k) for d in ev_days for k in (-1, 0)})
        have = set(self.lake.partitions("findings"))
        prev = self.read_where_in("findings", [d for d in finding_days if d in have], "finding_id", ids)
        changed = findings.merge(prev.drop_columns(["dt"]), state, now)
        if changed.num_rows == 0:
            return
        self.lake.write_partitioned("findings", name, changed, dt_column(changed.column("window_start")))
        if summary is not None:
            opened = pc.and_(pc.equal(changed.column("status"), rules.OPEN),
                             pc.fill_null(pc.not_equal(changed.column("previous_status"), rules.OPEN), True))
            summary.findings_opened += int(pc.sum(opened).as_py() or 0)
            summary.findings_closed += int(pc.sum(pc.equal(changed.column("status"), rules.CLOSED)).as_py() or 0)
        for dt in pc.unique(dt_column(changed.column("window_start"))).to_pylist():
            self.compactor.maybe_compact("findings", dt)

    def read_where_in(self, table: str, dts: Iterable[str], column: str, values: pa.Array) -> pa.Table:
        """``lake.read(table, dts, filter=pc.field(column).isin(values))`` (the same rows, in the same
        order, latest per key), reading every column only of the row groups that hold a match: the
        dataset filter decodes every column of every row group first, and a day's alerts are read
        for every CloudTrail file."""
        full = TABLES[table].append(pa.field("dt", pa.string()))
        parts = []
        for dt in sorted(set(dts)):
            for f in self.lake.listing(table, dt)[0]:
                hit = pc.is_in(self.columns.column(table, f, column), value_set=values)
                pos = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
                if not len(pos):
                    continue
                with self.lake.fs.open_input_file(f.path) as fh:
                    pf = pq.ParquetFile(fh)
                    starts = np.cumsum([0] + [pf.metadata.row_group(i).num_rows
                                              for i in range(pf.metadata.num_row_groups)])
                    groups = np.unique(np.searchsorted(starts, pos, side="right") - 1).tolist()
                    t = pf.read_row_groups(groups) if 2 * len(groups) <= pf.metadata.num_row_groups else pf.read()
                t = t.filter(pc.is_in(t.column(column), value_set=values))
                t = conform(t.append_column("dt", pa.array([dt] * t.num_rows, pa.string())), full)
                parts.append(t)
        if not parts:
            return full.empty_table()
        return keep_latest(pa.concat_tables(parts) if len(parts) > 1 else parts[0], table)


def _strings(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return one_array(col.cast(pa.string()))
