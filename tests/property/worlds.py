"""Hypothesis strategies: small AppStream worlds and the ways they can be delivered.

A world is sessions (a few fleet IPs, IP reuse after short gaps, concurrent sessions on a
multi-session host, sessions crossing midnight) and S3 writes placed around the window edges
(exactly at start/end, +-1 s, at the tolerance, one second past it), with honest, disguised and
fabricated session-id claims, writes from outside the fleet and by roles out of scope, plus logons.
A delivery plan splits the CloudTrail records into objects (batch boundaries, duplicate deliveries)
and orders those objects and the daily reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tests.factories import T0, ct_name, put, report_csv, report_name, saml_logon, session_row, sid
from tests.fixtures.bad.make_corpus import ct

FLEET_IPS = ["10.40.0.10", "10.40.0.11", "10.40.0.12"]
OUTSIDE_IP = "203.0.113.5"
USERS = ["alice@example.com", "bob@example.com", "carol@example.com"]
TOL = 60  # Config().tolerance_seconds
EDGE_OFFSETS = [-TOL - 1, -TOL, -1, 0, 1, TOL, TOL + 1]
S = timedelta(seconds=1)


@dataclass
class Session:
    n: int
    user: str
    ip: str
    start: datetime
    end: datetime
    multi: bool = False


@dataclass
class World:
    sessions: list[Session]
    records: list[dict[str, Any]]  # CloudTrail records (writes and logons), each once
    now_ms: int
    notes: list[str] = field(default_factory=list)

    def reports(self) -> list[tuple[str, bytes]]:
        """One sessions report per day a session ENDS on (that is where AppStream lists it)."""
        by_day: dict[str, list[dict[str, str]]] = {}
        for s in self.sessions:
            by_day.setdefault(s.end.strftime("%Y-%m-%d"), []).append(
                session_row(sid(s.n), s.user, s.ip, s.start, s.end, multi=s.multi,
                            fleet="analytics-multi" if s.multi else "analytics-single",
                            instance=f"i-{s.ip.replace('.', '')}"))
        return [(report_name(day), report_csv(rows)) for day, rows in sorted(by_day.items())]


@st.composite
def sessions(draw: st.DrawFn) -> list[Session]:
    out: list[Session] = []
    n = 0
    for ip in draw(st.lists(st.sampled_from(FLEET_IPS), min_size=1, max_size=3, unique=True)):
        t = T0 + draw(st.integers(0, 20 * 60)) * 60 * S  # up to 20:00: some sessions cross midnight
        for _ in range(draw(st.integers(1, 2))):  # a second session reuses the IP after a short gap
            n += 1
            dur = draw(st.sampled_from([5 * 60, 30 * 60, 2 * 3600, 6 * 3600])) * S
            out.append(Session(n, draw(st.sampled_from(USERS)), ip, t, t + dur))
            t = t + dur + draw(st.sampled_from([20, 90, 1800])) * S
        if draw(st.booleans()) and draw(st.booleans()):  # a concurrent session: multi-session host
            first = [s for s in out if s.ip == ip][0]
            n += 1
            first.multi = True
            out.append(Session(n, draw(st.sampled_from(USERS)), ip, first.start + 60 * S,
                               first.end + 120 * S, multi=True))
    return out


@st.composite
def worlds(draw: st.DrawFn) -> World:
    sess = draw(sessions())
    records: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 7))):
        anchor = draw(st.sampled_from(sess))
        at = draw(st.sampled_from([anchor.start, anchor.end])) + draw(st.sampled_from(EDGE_OFFSETS)) * S
        kind = draw(st.sampled_from(["fleet", "fleet", "fleet", "outside", "other-role", "idle-ip"]))
        ip = {"fleet": anchor.ip, "outside": OUTSIDE_IP, "other-role": anchor.ip, "idle-ip": "10.40.9.9"}[kind]
        claim = draw(st.sampled_from(["none", "own", "other", "fabricated"]))
        session_name = {"none": "AppStream2.0", "own": sid(anchor.n),
                        "other": sid(draw(st.sampled_from(sess)).n), "fabricated": sid(900 + i)}[claim]
        records.append(put(at, ip, key=f"k/{i}", event_id=f"w-{i}", session_name=session_name,
                           role="BatchJobRole" if kind == "other-role" else "AppStreamFleetRole"))
    for user in sorted({s.user for s in sess}):
        if draw(st.booleans()):
            first = min(s.start for s in sess if s.user == user)
            records.append(saml_logon(first - 120 * S, user, event_id=f"logon-{user}"))
    # "now": long after (every report is due) or the same evening (late reports are still pending)
    now = draw(st.sampled_from([T0 + timedelta(days=5), T0 + timedelta(hours=14)]))
    return World(sess, records, int(now.timestamp() * 1000))


@st.composite
def deliveries(draw: st.DrawFn, world: World, duplicates: bool = True) -> list[tuple[str, bytes]]:
    """The world's objects: records split into 1..4 CloudTrail objects (some records delivered
    twice), plus its reports, in a random arrival order."""
    recs = world.records
    n_files = draw(st.integers(1, min(4, len(recs))))
    files: list[list[dict[str, Any]]] = [[] for _ in range(n_files)]
    for r in recs:
        files[draw(st.integers(0, n_files - 1))].append(r)
        if duplicates and draw(st.integers(0, 4)) == 0:  # the same record delivered again elsewhere
            files[draw(st.integers(0, n_files - 1))].append(r)
    tag = draw(st.integers(0, 10**6))  # distinct object names per plan
    objs = [(ct_name(tag * 10 + k), ct(f)) for k, f in enumerate(files) if f]
    objs += world.reports()
    return draw(st.permutations(objs))
