"""Late and re-ordered deliveries give the answer of the usual order (regressions found by the
order-independence property, tests/property/test_prop_order.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import T0, ct_name, put, report_csv, report_name, saml_logon, session_row, sid
from tests.fixtures.bad.make_corpus import ct
from tests.hardening.util import activity_view, alerts_view, new_pipe

H = timedelta(hours=1)
M = timedelta(minutes=1)
LOGON = ct([saml_logon(T0 - 2 * M, "alice@example.com", event_id="logon-1")])
WRITE = ct([put(T0 + 5 * M, "10.40.0.17", event_id="w-1")])
REPORT = report_csv([session_row(sid(1), "alice@example.com", "10.40.0.17", T0, T0 + H)])
OBJECTS = {"logon": (ct_name(1), LOGON), "write": (ct_name(2), WRITE), "report": (report_name("2026-03-02"), REPORT)}


@pytest.mark.parametrize("order", [("logon", "write", "report"), ("write", "report", "logon"),
                                   ("report", "logon", "write"), ("report", "write", "logon")])
def test_a_logon_delivered_after_the_report_is_still_matched(tmp_path, order):
    pipe = new_pipe(tmp_path / "lake")
    for what in order:
        out = pipe.ingest_object(*OBJECTS[what])
        assert out.error is None
    assert activity_view(pipe.lake, ("logon_event_id",)) == {
        ("w-1", "attributed", sid(1), "alice@example.com", "logon-1")}
    # no open "session without logon": the logon exists, whenever it arrived
    assert {rule for _, rule, status in alerts_view(pipe.lake) if status == "open"} == set()
