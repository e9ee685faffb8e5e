"""A small lake with every attribution status, logons and alerts, built through the real pipeline
(synthetic CloudTrail records and usage reports from tests/factories.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from auditcorr.config import Config
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from tests.factories import T0, put, report_csv, report_name, saml_logon, session_row, sid, trail

H = timedelta(hours=1)
M = timedelta(minutes=1)
D = timedelta(days=1)
IP_ALICE, IP_MULTI, IP_NOBODY, IP_LATE = "10.40.0.17", "10.40.0.30", "10.40.0.99", "10.40.0.50"
OUTSIDE = "203.0.113.9"
#: "now" for the pipeline: the 03-02 and 03-03 reports are in, the 03-04 report is not yet due
NOW = T0 + 30 * H

WRITES = [
    put(T0 + 5 * M, IP_ALICE, key="data/alice.csv", event_id="w-attributed"),
    put(T0 + 10 * M, IP_MULTI, key="data/shared.csv", event_id="w-ambiguous"),
    put(T0 + 10 * M, IP_NOBODY, key="data/ghost.csv", event_id="w-unattributed"),
    put(T0 + 20 * M, OUTSIDE, key="data/replay.csv", event_id="w-external", vpcEndpointId=None),
    put(T0 + D, IP_LATE, key="data/late.csv", event_id="w-pending"),
]
LOGONS = [saml_logon(T0 - 2 * M, "alice@example.com", event_id="logon-alice"),
          saml_logon(T0 - 3 * M, "bob@example.com", ip="198.51.100.8", event_id="logon-bob")]
REPORT_0302 = [
    session_row(sid(1), "alice@example.com", IP_ALICE, T0, T0 + H),
    session_row(sid(2), "bob@example.com", IP_MULTI, T0, T0 + H, fleet="analytics-multi", multi=True),
    session_row(sid(3), "carol@example.com", IP_MULTI, T0, T0 + H, fleet="analytics-multi", multi=True),
]
REPORT_0303 = [session_row(sid(4), "dave@example.com", "10.40.0.60", T0 + D - H, T0 + D)]
#: delivered late: the session that held the pending write's address ended on 03-04
REPORT_0304 = [session_row(sid(5), "erin@example.com", IP_LATE, T0 + D - H, T0 + D + 17 * H)]


def clock_at(t):
    ms = int(t.timestamp() * 1000)
    return lambda: ms


def build(path: Path) -> Pipeline:
    """The lake before the late report: w-pending is pending."""
    pipe = Pipeline(Lake.open(str(path)), Config(), clock=clock_at(NOW))
    ct = "cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/111122223333_CloudTrail_us-east-1_"
    for i, recs in enumerate([LOGONS, WRITES]):
        # delivered at the end of 03-03: the 03-03 write is a plausible event of the file
        out = pipe.ingest_object(f"{ct}20260303T23{i:02d}Z_{i:016d}.json.gz", trail(recs))
        assert out.error is None, out.error
    for day, rows in (("2026-03-02", REPORT_0302), ("2026-03-03", REPORT_0303)):
        out = pipe.ingest_object(report_name(day), report_csv(rows))
        assert out.error is None, out.error
    return pipe


def deliver_late_report(path: Path) -> Pipeline:
    """The 03-04 report arrives (a day later): the pending write is re-attributed to erin."""
    pipe = Pipeline(Lake.open(str(path)), Config(), clock=clock_at(NOW + D))
    out = pipe.ingest_object(report_name("2026-03-04"), report_csv(REPORT_0304))
    assert out.error is None, out.error
    return pipe
