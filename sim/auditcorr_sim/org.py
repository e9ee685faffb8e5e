"""The organisation world through the pipeline: its ``[[fleets]]`` configuration and the orders a
backfill or a live deployment feeds its files in.  SYNTHETIC DATA (see ``world.py``).

Orders (:func:`feed_order`), each with the clock a pipeline would have then:

``live``              every file at its own arrival time, the clock at that time;
``replay``            the history ingested later (a backfill run today): each day's CloudTrail files
                      (by delivery day), then that day's usage reports; the clock far past the data;
``cloudtrail_first``  all CloudTrail in arrival order, then all reports; the clock far past the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from auditcorr.config import Config, from_mapping
from auditcorr.counts import IngestSummary
from auditcorr.pipeline import Pipeline

from .common import FLEET_ROLE_NAME, KIND_CLOUDTRAIL, KIND_DIGEST, Arrival, Tenant, World

ORDERS = ("live", "replay", "cloudtrail_first")
#: the fleets' subnet in every tenant (VPCs reuse private ranges)
FLEET_CIDR = "10.40.0.0/16"
#: how long after the data a backfill runs (the wall clock of a replay)
BACKFILL_LAG = timedelta(days=40)


def org_mapping(tenants: Iterable[Tenant], **attribution: Any) -> dict[str, Any]:
    """The configuration (as a TOML mapping) of an organisation: one ``[[fleets]]`` per account,
    listing its regions, fleet role, subnet and VPC endpoints."""
    groups: dict[str, dict[str, Any]] = {}
    for t in tenants:
        g = groups.setdefault(t.account, {"account": t.account, "regions": [], "cidrs": [FLEET_CIDR],
                                          "roles": [t.fleet_role_arn], "vpc_endpoints": []})
        g["regions"].append(t.region)
        g["vpc_endpoints"].append(t.vpce_id)
    data: dict[str, Any] = {"fleets": list(groups.values())}
    if attribution:
        data["attribution"] = dict(attribution)
    return data


def org_config(tenants: Iterable[Tenant], **attribution: Any) -> Config:
    return from_mapping(org_mapping(tenants, **attribution))


def flat_config(account: str, **attribution: Any) -> Config:
    """Today's single-account configuration (``[attribution]`` only)."""
    return from_mapping({"attribution": {"roles": [f"arn:aws:iam::{account}:role/{FLEET_ROLE_NAME}"],
                                         "fleet_cidrs": [FLEET_CIDR], **attribution}})


def _data_day(world: World, a: Arrival) -> str:
    """A CloudTrail file's delivery day (from its key), a report's day (from its name)."""
    parts = a.path.relative_to(world.root).parts
    if a.kind in (KIND_CLOUDTRAIL, KIND_DIGEST):
        i = parts.index("CloudTrail" if a.kind == KIND_CLOUDTRAIL else "CloudTrail-Digest")
        return "-".join(parts[i + 2:i + 5])
    return a.path.name[-14:-4]


def feed_order(world: World, order: str) -> tuple[list[Arrival], int | None]:
    """(the files in ``order``, the fixed clock in epoch ms, or None: each file's arrival time)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}")
    if order == "live":
        return list(world.arrivals), None
    later = int((world.arrivals[-1].at + BACKFILL_LAG).timestamp() * 1000)
    is_ct = {a.path: a.kind in (KIND_CLOUDTRAIL, KIND_DIGEST) for a in world.arrivals}
    if order == "cloudtrail_first":
        return sorted(world.arrivals, key=lambda a: not is_ct[a.path]), later
    return sorted(world.arrivals, key=lambda a: (_data_day(world, a), not is_ct[a.path])), later


def feed(world: World, pipe: Pipeline, clock: Any, order: str,
         on_file: Callable[[Arrival], None] | None = None) -> IngestSummary:
    """Ingest every file of ``world`` in ``order`` (``clock``: a settable ``SimClock``)."""
    files, fixed = feed_order(world, order)
    summary = IngestSummary()
    for a in files:
        clock.ms = fixed if fixed is not None else int(a.at.timestamp() * 1000)
        summary.files.append(pipe.ingest_object(a.path.relative_to(world.root).as_posix(), a.path.read_bytes(),
                                                summary=summary))
        if on_file is not None:
            on_file(a)
    return summary


def per_account(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """account -> status -> count of ``attributed_activity`` rows."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        acc = out.setdefault(str(r["account_id"]), {})
        acc[str(r["status"])] = acc.get(str(r["status"]), 0) + 1
    return out


ORG_DEMO_SQL = """
SELECT a.account_id, a.region, count(*) AS writes,
       count(*) FILTER (WHERE a.status = 'attributed') AS attributed,
       count(*) FILTER (WHERE a.status = 'pending') AS pending,
       count(*) FILTER (WHERE a.session_id IS NOT NULL AND s.aws_account_id <> a.account_id) AS other_account
FROM attributed_activity_latest a
LEFT JOIN sessions s ON s.session_id = a.session_id
GROUP BY a.account_id, a.region
ORDER BY a.account_id, a.region
"""


def run_org_demo(work: Any, seed: int, echo: Callable[[str], None]) -> None:
    """The demo's organisation part: two accounts in two regions, both fleets in 10.40.0.0/16, one
    organisation trail, the second account's reports half a day late and one of them missing."""
    from auditcorr.lake import Lake
    from auditcorr_cli.query.engine import LocalEngine

    from .demo import SimClock
    from .world import ORG_TENANTS, generate_org_world

    world = generate_org_world(work / "org" / "inputs", tenants=(ORG_TENANTS[0], ORG_TENANTS[2]), seed=seed,
                               n_users=8, report_delays=(0.0, 14.0))
    lake = Lake.open(str(work / "org" / "lake"))
    clock = SimClock()
    config = org_config(world.tenants, report_grace_hours=12)
    echo(f"\n== organisation: {len(world.tenants)} accounts whose fleets share {FLEET_CIDR}, one organisation "
         f"trail, {len(world.arrivals)} files ==")
    echo("  [[fleets]]: " + "; ".join(f"{g.account} {'/'.join(g.regions)}" for g in config.fleets))
    feed(world, Pipeline(lake, config, clock=clock), clock, "live")
    eng = LocalEngine(lake)
    for r in eng.query(ORG_DEMO_SQL, []).to_pylist():
        echo(f"account {r['account_id']} {r['region']}: {r['writes']} writes, {r['attributed']} attributed to its "
             f"own users, {r['pending']} pending, {r['other_account']} to another account's session")
    for r in eng.query("SELECT rule, account_id, region, title FROM alerts_latest WHERE status = 'open' AND rule IN "
                       "('usage_report_missing', 'fleet_credentials_via_service') ORDER BY rule, event_time",
                       []).to_pylist():
        echo(f"alert {r['rule']} ({r['account_id']} {r['region']}): {r['title']}")
    svc = eng.query("SELECT count(*) FILTER (WHERE match = 'credentials') AS placed, "
                    "count(*) FILTER (WHERE status = 'via_service') AS unplaced FROM attributed_activity_latest "
                    "WHERE source_ip = 'athena.amazonaws.com'", []).to_pylist()[0]
    echo(f"Athena result writes (invokedBy, no address): {svc['placed']} placed at their session through the "
         f"query's StartQueryExecution, {svc['unplaced']} via_service (key never seen from the fleet), no alert")
    eng.close()
