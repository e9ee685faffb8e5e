"""Rules of the organisation round (issue 15): credentials used through a service, and a usage report
that never came.  Pure: the attribution result in, ALERT_IN rows out (``rules.reconcile`` merges them).

``fleet_credentials_via_service`` (HIGH)
    a write signed by an attributed role whose source is a service name (``*.amazonaws.com``) or
    ``AWS Internal``, and no service claims the call (no ``userIdentity.invokedBy``).  Fleet
    instance credentials taken off an AppStream instance have been seen in CloudTrail exactly so,
    with ``sourceIPAddress`` ``appstream.amazonaws.com`` (DOMAIN.md).  When ``invokedBy`` names a
    service (Athena writing query results with the caller's credentials, CloudFormation, ...), the
    call is ordinary and raises nothing here: the join places it at the fleet address its access key
    was used from (``match`` ``credentials``; judged from there like any fleet write), or, where the
    key was seen from no fleet address, gives it status ``via_service``.  Anything else that is not an address (a
    comma list, anonymised garbage) is never matched and raises nothing here.
``usage_report_missing`` (MEDIUM)
    one per (scope, day) whose sessions report is overdue (``Coverage.overdue``: a report two or more
    days later is in and the scope's CloudTrail has moved the grace past the day) while fleet writes
    of that day wait for it.  The writes stay ``pending``: never one alert per write.  Its subject is
    ``report:<scope>|<day>``; the report arriving after all closes it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..attribution import DAY_MS, EXTERNAL, AttributionResult
from ..config import Config
from ..timeparse import day_string
from .base import ALERT_IN, ALERTS, OPEN, Rule, alert_id, conform
from .writes import WriteFacts, write_alerts

#: a ``sourceIPAddress`` that names an AWS service rather than an address
SERVICE_SOURCE = r"^(?:[a-z0-9-]+\.)+amazonaws\.com$|^AWS Internal$"

def fleet_credentials_via_service(f: WriteFacts) -> np.ndarray:
    """A write by an attributed role from a service name or ``AWS Internal`` that no service claims."""
    act = f.res.activity
    service = pc.fill_null(pc.match_substring_regex(act.column("source_ip"), SERVICE_SOURCE), False)
    return (f.status == EXTERNAL) & service.to_numpy(zero_copy_only=False) & ~f.res.invoked_by


def usage_report_missing(f: WriteFacts) -> np.ndarray:
    """A fleet write waiting for its own day's sessions report, which is overdue (per write; the alert
    is one per scope and day)."""
    return np.asarray(f.res.report_overdue, dtype=bool)


DEFINITIONS: tuple[Rule, ...] = (
    Rule(
        "fleet_credentials_via_service", "scope", "HIGH",
        "Fleet role credentials used through an AWS service that does not claim the call",
        "{event_name} s3://{bucket}/{key} by {principal_arn} came from '{source_ip}', a service and not an "
        "address, and no service claims the call (no invokedBy): fleet instance credentials used outside the "
        "fleet through a service.",
        group_by=("principal_arn", "source_ip"),
        waits_for="nothing: the CloudTrail record alone shows it",
        asff_types=("TTPs/Credential Access", "Unusual Behaviors/User"),
        predicate=fleet_credentials_via_service,
    ),
    Rule(
        "usage_report_missing", "scope", "MEDIUM",
        "AppStream usage report missing: fleet writes cannot be attributed",
        "No AppStream sessions report for {day} in account {account_id} ({region}) although later reports and "
        "CloudTrail have arrived: {count} fleet write(s) of that day stay pending until it comes.",
        group_by=("event_id",),
        waits_for="a report two or more days later and the scope's CloudTrail past the day's end plus the grace",
        asff_types=("Software and Configuration Checks/AWS Security Best Practices",),
        predicate=usage_report_missing,
    ),
)
RULE_IDS: tuple[str, ...] = tuple(r.id for r in DEFINITIONS)
RULES = RULE_IDS
TITLES = {r.id: r.title for r in DEFINITIONS}
TITLES_SEVERITY = {r.id: r.severity for r in DEFINITIONS}


def report_subject(scope: str, day: int) -> str:
    return f"report:{scope}|{day_string(day)}"


def via_service_alerts(res: AttributionResult, config: Config) -> pa.Table:
    """``fleet_credentials_via_service`` signals: one per write, like the write rules' (ALERTS schema)."""
    return write_alerts(res, config, tuple(r for r in DEFINITIONS if r.id == "fleet_credentials_via_service"))


def report_missing_alerts(res: AttributionResult, config: Config) -> pa.Table:
    rule = "usage_report_missing"
    act = res.activity
    if act.num_rows == 0 or not config.rule_enabled(rule):
        return ALERT_IN.empty_table()
    overdue = usage_report_missing(WriteFacts(res, config))
    if not overdue.any():
        return ALERT_IN.empty_table()
    rows_idx = np.nonzero(overdue)[0]
    t = pa.table({
        "scope": res.scope.take(pa.array(rows_idx)),
        "day": pa.array(act.column("event_time").take(pa.array(rows_idx)).cast(pa.int64()).to_numpy(
            zero_copy_only=False) // DAY_MS),
        "account_id": act.column("account_id").take(pa.array(rows_idx)),
        "region": act.column("region").take(pa.array(rows_idx)),
    })
    groups = t.group_by(["scope", "day", "account_id", "region"]).aggregate([("scope", "count")])
    rows = []
    for scope, day, account, region, n in zip(*(groups.column(c).to_pylist() for c in
                                                ("scope", "day", "account_id", "region", "scope_count")),
                                              strict=True):
        subject = report_subject(scope, day)
        rows.append({
            "alert_id": alert_id(rule, subject), "rule": rule,
            "severity": config.severity.get(rule, TITLES_SEVERITY[rule]), "status": OPEN, "event_id": subject,
            "event_time": int(day) * DAY_MS, "account_id": account, "region": region, "title": TITLES[rule],
            "description": (f"No AppStream sessions report for {day_string(day)} in account {account} "
                            f"({scope.split('|', 1)[1]}), although later reports and CloudTrail have arrived: "
                            f"{n} fleet write(s) of that day stay pending until it comes."),
        })
    out = pa.Table.from_pylist(rows, schema=pa.schema([f if f.name != "event_time" else pa.field("event_time",
                                                       pa.int64()) for f in ALERT_IN]))
    out = out.set_column(out.schema.get_field_index("event_time"), "event_time",
                         out.column("event_time").cast(ALERTS.field("event_time").type))
    return conform(out, ALERT_IN)


def report_subjects(res: AttributionResult) -> list[str]:
    """The ``usage_report_missing`` subjects the writes of ``res`` belong to (every (scope, day) of
    its fleet writes): the scope of reconciling that rule, so a report that arrives closes it."""
    act = res.activity
    if act.num_rows == 0:
        return []
    days = act.column("event_time").cast(pa.int64()).to_numpy(zero_copy_only=False) // DAY_MS
    t = pa.table({"scope": res.scope, "day": pa.array(days)}).group_by(["scope", "day"]).aggregate([])
    return [report_subject(s, d) for s, d in zip(t.column("scope").to_pylist(), t.column("day").to_pylist(),
                                                 strict=True) if s is not None]
