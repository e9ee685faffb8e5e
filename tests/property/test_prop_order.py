"""Input order, batch boundaries and re-delivery never change the result of the join.

For a generated world, two independent delivery plans (different splits of the CloudTrail records
into objects, duplicate deliveries, different arrival orders of objects and reports) end with the
same ``attributed_activity`` (event_id, status, session_id, user_id, logon_event_id) and the same
alerts (alert_id, rule, status; an alert raised before a late report and closed by it is history
that another order need not have: closed and absent are the same answer, open alerts match
exactly).  Ingesting everything again -- the same objects, or the same records in new objects --
changes nothing.
"""
from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening.util import activity_view, assert_same_alerts, new_pipe, snapshot
from tests.property.worlds import World, deliveries, worlds

#: a few examples per CI run (each is two or three full ingests); AUDITCORR_PROPERTY_EXAMPLES=200 to hunt
SETTINGS = settings(max_examples=int(os.environ.get("AUDITCORR_PROPERTY_EXAMPLES", "20")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def run(world: World, plan: list[tuple[str, bytes]], lake_dir: str):
    pipe = new_pipe(lake_dir, now_ms=world.now_ms)
    for name, data in plan:
        out = pipe.ingest_object(name, data)
        assert out.error is None, (name, out.error)
        assert out.reconciles, out.as_dict()
    return pipe


@SETTINGS
@given(data=st.data(), world=worlds())
def test_order_and_batches_do_not_change_the_result(data, world):
    plan_a = data.draw(deliveries(world), label="plan A")
    plan_b = data.draw(deliveries(world), label="plan B")
    with tempfile.TemporaryDirectory() as tmp:
        a = run(world, plan_a, f"{tmp}/a")
        b = run(world, plan_b, f"{tmp}/b")
        # the evidence too: the matched logon must not depend on whether it arrived before the report
        assert activity_view(b.lake, ("logon_event_id",)) == activity_view(a.lake, ("logon_event_id",))
        assert_same_alerts(a.lake, b.lake)
        n_writes = len({r["eventID"] for r in world.records if r["eventName"] == "PutObject"})
        assert a.lake.read("s3_writes").num_rows == n_writes


@SETTINGS
@given(data=st.data(), world=worlds())
def test_ingesting_twice_equals_ingesting_once(data, world):
    plan = data.draw(deliveries(world), label="plan")
    again = data.draw(deliveries(world), label="the same records in other objects")
    with tempfile.TemporaryDirectory() as tmp:
        pipe = run(world, plan, f"{tmp}/lake")
        once = snapshot(pipe.lake)
        for name, blob in plan:  # the very same objects (a retried notification, a re-run)
            out = pipe.ingest_object(name, blob)
            assert out.written == 0 and out.reconciles
        assert snapshot(pipe.lake) == once
        for name, blob in again:  # the same records in new objects (reports: the same objects)
            out = pipe.ingest_object(name, blob)
            assert out.reconciles and out.written == 0, out.as_dict()
        assert snapshot(pipe.lake) == once
