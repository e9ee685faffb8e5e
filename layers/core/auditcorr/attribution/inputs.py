"""What the join reads from the lake for a set of write days: the sessions that could explain them
(reports, then live observations no report knows yet), the logons before them, whether the live view
was fresh, which days' reports are in, which claimed ids exist anywhere, and the calls that handed
credentials to a service."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import live
from ..arrow import epoch_ms
from ..completeness import Completeness
from ..config import Config
from ..lake import Lake
from ..timeparse import day_string
from .join import attribute
from .model import DAY_MS, SESSION_COLS, AttributionResult, Coverage

Clock = Callable[[], int]  # epoch milliseconds


class AttributionInputs:
    def __init__(self, lake: Lake, config: Config, clock: Clock) -> None:
        self.lake = lake
        self.config = config
        self.clock = clock

    def attribute(self, writes: pa.Table, now_ms: int) -> AttributionResult:
        """The join over ``writes`` with everything it reads from the lake for their days (the
        pipeline and ``rules replay`` both attribute through here)."""
        days = sorted({int(d) for d in np.unique(epoch_ms(writes.column("event_time")) // DAY_MS)})
        sessions, source = self.session_window(days)
        return attribute(writes, sessions, self.logon_window(days), self.config, self.coverage(), now_ms,
                         known_session=self.known_sessions, session_source=source,
                         live_fresh=self.live_fresh(days), credential_uses=self.credential_uses(days))

    def session_window(self, days: list[int]) -> tuple[pa.Table, pa.Array]:
        """Sessions that could explain writes on ``days``: reports of day-1 .. day+max duration,
        plus live observations of sessions no report knows yet (the report is authoritative).
        Returns the sessions and, per row, ``report`` or ``live``."""
        ahead = math.ceil(self.config.max_session_hours / 24) + 1
        dts = {day_string(d + k) for d in days for k in range(-1, ahead + 1)}
        sessions = self.lake.read("sessions", dts, columns=list(SESSION_COLS))
        source = pa.array(["report"] * sessions.num_rows, pa.string())
        live_dts = {day_string(d + k) for d in days for k in range(-1, 2)}
        observed = self.lake.read("live_sessions", live_dts)
        if observed.num_rows:
            polls = self.lake.read("live_polls", live_dts)
            win = live.observed_windows(observed, polls, self.clock(), self.config.live_freshness_seconds * 1000)
            reported = self.lake.read("sessions", columns=["session_id"], latest=False,
                                      filter=pc.field("session_id").isin(win.column("session_id")))
            win = win.filter(pc.invert(pc.is_in(win.column("session_id"), reported.column("session_id"))))
            if win.num_rows:
                win = win.select(list(SESSION_COLS)).cast(sessions.schema)
                sessions = pa.concat_tables([sessions, win])
                source = pa.concat_arrays([source, pa.array(["live"] * win.num_rows, pa.string())])
        return sessions, source

    def live_fresh(self, days: list[int]) -> Callable[[np.ndarray], np.ndarray]:
        """For which event times was the live AppStream view complete enough (every stack/fleet in
        scope polled without error within the freshness on both sides) to call a claim unknown?"""
        polls = self.lake.read("live_polls", {day_string(d + k) for d in days for k in range(-1, 2)})
        fresh = self.config.live_freshness_seconds * 1000
        now = self.clock()
        stacks = self.config.live_stacks or None

        def check(t: np.ndarray) -> np.ndarray:
            if polls.num_rows == 0:
                return np.zeros(len(t), dtype=bool)
            return live.live_fresh_mask(polls, stacks, t, now, fresh)

        return check

    def logon_window(self, days: list[int]) -> pa.Table:
        """The logons that could open a session explaining writes on ``days``."""
        back = math.ceil((self.config.max_session_hours + self.config.logon_window_hours) / 24) + 2
        return self.lake.read("logons", {day_string(d + k) for d in days for k in range(-back, 2)})

    def credential_uses(self, days: list[int]) -> pa.Table:
        """The calls that started a service's work (``credential_uses``) that could place a service's
        writes on ``days``: the same days and the one before (within ``max_session_hours``)."""
        back = math.ceil(self.config.max_session_hours / 24)
        uses = self.lake.read("credential_uses", {day_string(d + k) for d in days for k in range(-back, 1)})
        return uses.drop_columns(["dt"]) if "dt" in uses.column_names else uses

    def coverage(self) -> Coverage:
        """Which reports are in and how far each scope's data has come (``auditcorr.completeness``)."""
        return Completeness(self.lake).coverage(self.config.report_grace_hours)

    def known_sessions(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` any sessions report or live observation knows."""
        found: set[str] = set()
        for table in ("sessions", "live_sessions"):
            t = self.lake.read(table, columns=["session_id"], latest=False, filter=pc.field("session_id").isin(ids))
            found.update(t.column("session_id").to_pylist())
        return found
