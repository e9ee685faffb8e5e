"""Alert merge: the alerts a computation raised, reconciled with the previous versions of the alerts
on the same events (new ones opened, vanished ones closed with a reason, nothing deleted)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import rules
from ..arrow import one_array
from ..counts import IngestSummary
from ..lake import Lake, keep_latest
from ..schemas import TABLES, conform
from ..timeparse import dt_column
from .compaction import Compactor
from .load import FileColumns


class AlertMerge:
    def __init__(self, lake: Lake, columns: FileColumns, compactor: Compactor) -> None:
        self.lake = lake
        self.columns = columns
        self.compactor = compactor

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
        changed = rules.reconcile(prev, raised, scope, now, rules_in_scope=rules_in_scope, closed_reason=closed_reason)
        if changed.num_rows:
            self.lake.write_partitioned("alerts", name, changed, dt_column(changed.column("event_time")))
            if summary is not None:
                summary.alerts_opened += int(pc.sum(pc.equal(changed.column("status"), rules.OPEN)).as_py() or 0)
                summary.alerts_closed += int(pc.sum(pc.equal(changed.column("status"), rules.CLOSED)).as_py() or 0)
        for dt in days:
            self.compactor.maybe_compact("alerts", dt)

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
