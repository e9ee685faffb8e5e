"""``auditcorr demo``: a synthetic AppStream world, ingested in arrival order into a temporary lake.

Shows the attribution summary, the alerts, ``who`` for a disguised write, a live attribution
turning into a report attribution, and one SQL query -- everything a new user needs to see what
the tool does, in well under a minute.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc

from auditcorr.config import Config
from auditcorr.counts import IngestSummary
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr_cli.query import analyst
from auditcorr_cli.query.engine import LocalEngine

from .common import ACCOUNT, REGION
from .world import World, generate_world

#: the demo polls the (fake) AppStream API every POLL_EVERY-th CloudTrail delivery (about every
#: 15 minutes of simulated time); the live view counts as fresh for that long
POLL_EVERY = 3
DEMO_CONFIG = Config(live_freshness_seconds=20 * 60)

DEMO_SQL = """
SELECT user_id, count(*) AS writes, count(DISTINCT session_id) AS sessions,
       min(event_time) AS first_write, max(event_time) AS last_write
FROM attributed_activity_latest
WHERE status = 'attributed'
GROUP BY user_id
ORDER BY writes DESC, user_id
LIMIT 8
"""


class SimClock:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> int:
        return self.ms


def ingest_world(world: World, pipe: Pipeline, clock: SimClock, poll: Callable[[int], None] | None = None,
                 summary: IngestSummary | None = None) -> IngestSummary:
    """Feed every file of ``world`` in arrival order, the clock set to each arrival time."""
    summary = summary or IngestSummary()
    deliveries = 0
    for arrival in world.arrivals:
        clock.ms = int(arrival.at.timestamp() * 1000)
        if poll is not None and arrival.kind == "cloudtrail":
            if deliveries % POLL_EVERY == 0:
                poll(clock.ms)
            deliveries += 1
        source = arrival.path.relative_to(world.root).as_posix()
        summary.files.append(pipe.ingest_object(source, arrival.path.read_bytes(), summary=summary))
    return summary


def world_scope(world: World) -> tuple[str, str]:
    """The account and region the world's AppStream runs in (what a poller there would know)."""
    first = world.sessions[0] if world.sessions else {}
    return str(first.get("aws_account_id", ACCOUNT)), str(first.get("region", REGION))


def make_poller(world: World, pipe: Pipeline) -> Callable[[int], None]:
    """Poll the fake AppStream API (the world's sessions as of the clock) into the pipeline."""
    from .fake_appstream import FakeAppStream, poll_fake

    fake = FakeAppStream.from_world(world.sessions)
    account, region = world_scope(world)

    def poll(now_ms: int) -> None:
        fake.now_ms = now_ms
        sessions, polled = poll_fake(fake)
        pipe.ingest_live(sessions, now_ms, polled, account_id=account, region=region)

    return poll


def run_demo(keep: str | None, seed: int, echo: Callable[[str], None]) -> None:
    t_start = time.perf_counter()
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="auditcorr-demo-"))
    try:
        world = generate_world(work / "inputs", seed=seed)
        lake = Lake.open(str(work / "lake"))
        clock = SimClock()
        pipe = Pipeline(lake, DEMO_CONFIG, clock=clock)
        echo(f"auditcorr demo: {len(world.users)} users, {len(world.sessions)} AppStream sessions on "
             f"2 fleets, {len(world.truth)} S3 writes, {len(world.arrivals)} files arriving over "
             f"{_span(world)}.")
        echo(f"  inputs: {world.root}")
        echo(f"  lake:   {lake.base}")
        summary = ingest_world(world, pipe, clock, poll=make_poller(world, pipe))
        from auditcorr_cli.main import render, summary_text

        echo("")
        echo(summary_text(summary))
        eng = LocalEngine(lake)
        run = eng.query
        echo("\n== attribution (each write once, latest status) ==")
        echo(render(analyst.status_summary(run), "table"))
        live_to_report = run(
            "SELECT count(*) AS n FROM attributed_activity WHERE previous_session_source = 'live' "
            "AND session_source = 'report'", []).column("n")[0].as_py()
        echo(f"writes first attributed from the live AppStream API, then confirmed by the usage report: "
             f"{live_to_report}")
        echo("\n== open findings (signals grouped by rule, key and dedup window) ==")
        fi = analyst.findings(run, "open")
        echo(render(fi.select(["first_event_time", "severity", "rule", "event_count", "group_key"]), "table",
                    max_width=60))
        n_signals = int(pc.sum(fi.column("event_count")).as_py() or 0)
        echo(f"{fi.num_rows} open finding(s) from {n_signals} open signal(s); "
             "`auditcorr alerts` lists the signals, `auditcorr findings` the findings")
        al = analyst.alerts(run, "open")
        mismatch = [r for r in al.to_pylist() if r["rule"] == "session_id_mismatch"]
        if mismatch:
            m = mismatch[0]
            echo(f"\n== auditcorr who --bucket {m['bucket']} --key '{m['key']}' ==")
            echo("\n".join(analyst.evidence_chain(analyst.who(run, m["bucket"], m["key"]).to_pylist())))
        echo("\n== auditcorr query (Athena SQL, run locally by DuckDB) ==")
        echo(DEMO_SQL.strip())
        echo(render(run(DEMO_SQL, []), "table"))
        from auditcorr.ocsf.export import Output, export_ocsf

        echo("\n" + export_ocsf(lake, Output.open(str(work / "ocsf"))).line())

        from .org import run_org_demo

        run_org_demo(work, seed, echo)
        echo(f"\ndone in {time.perf_counter() - t_start:.1f}s.")
        if keep:
            echo(f"Try: auditcorr query --lake {lake.base} "
                 f"\"SELECT status, count(*) FROM attributed_activity_latest GROUP BY status\"")
        else:
            echo("The demo lake was temporary: `auditcorr demo --keep DIR` keeps it to query, e.g.\n"
                 "  auditcorr query --lake DIR/lake "
                 "\"SELECT status, count(*) FROM attributed_activity_latest GROUP BY status\"")
        eng.close()
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _span(world: World) -> str:
    first = world.arrivals[0].at
    last = world.arrivals[-1].at
    hours = (last - first) / timedelta(hours=1)
    return f"{hours:.0f} h ({first.astimezone(UTC):%Y-%m-%d} .. {last.astimezone(UTC):%Y-%m-%d})"


__all__ = ["run_demo", "ingest_world", "SimClock", "DEMO_CONFIG", "datetime"]
