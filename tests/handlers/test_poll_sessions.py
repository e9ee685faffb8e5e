"""poll_sessions through its template handler with ``events/poll_sessions.json``, against moto S3: the
lake (pyarrow on the moto server) is the real one; AppStream, which moto lacks, is the handler's own
boto3 client under a ``botocore.stub.Stubber``, or the project's ``FakeAppStream``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.stub import Stubber

from auditcorr_aws.appstream import AUTH_TYPES, PAGE_LIMIT
from auditcorr_aws.settings import LIVE_STACKS_ENV
from auditcorr_sim.fake_appstream import FakeAppStream
from tests.integration import aws
from tests.integration import scenario as sc

FN = "PollSessionsFunction"
PAYLOAD = "poll_sessions.json"
PAIR = ("analytics", "analytics-single")
MIN = 60_000
T = int(sc.T0.timestamp() * 1000)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def api_session(sid: str, user: str, ip: str, auth: str = "SAML", start_min: int = -10) -> dict:
    """A session as boto3's describe_sessions returns it."""
    start = sc.T0 + timedelta(minutes=start_min)
    return {"Id": sid, "UserId": user, "StackName": PAIR[0], "FleetName": PAIR[1], "State": "ACTIVE",
            "ConnectionState": "CONNECTED", "StartTime": start, "MaxExpirationTime": start + timedelta(hours=16),
            "AuthenticationType": auth, "InstanceId": "i-0aaaaaaaaaaaaaaa1",
            "NetworkAccessConfiguration": {"EniPrivateIpAddress": ip, "EniId": "eni-0123456789abcdef0"}}


def expect_sessions(stub: Stubber, by_auth: dict[str, list[dict]], pair: tuple[str, str] = PAIR) -> None:
    for auth in AUTH_TYPES:
        stub.add_response("describe_sessions", {"Sessions": by_auth.get(auth, [])},
                          {"StackName": pair[0], "FleetName": pair[1], "AuthenticationType": auth,
                           "Limit": PAGE_LIMIT})


@pytest.fixture
def poll_handler(handler):
    """(module, lambda_handler) with LiveStacks = the test pair, the poller built from the template's
    environment (lake on moto), its clock fixed and its backoff sleeps recorded."""

    def load(stacks: str = ":".join(PAIR), at_ms: int = T + 20 * MIN):
        module, h = handler(FN, **{LIVE_STACKS_ENV: stacks})
        poller = module.poller()
        poller.pipeline.clock = lambda: at_ms
        poller.sleep = Sleeps()
        return module, h

    return load


def test_the_payload_polls_every_auth_type_and_stores_the_live_tables(deployment, poll_handler, capsys):
    module, h = poll_handler()
    poller = module.poller()
    assert poller.stacks == [PAIR]  # from the LiveStacks parameter, through the template's environment
    with Stubber(poller.client) as stub:
        expect_sessions(stub, {"SAML": [api_session(sc.S1, "alice", sc.ALICE_IP)],
                               "API": [api_session(sc.S2, "bob", sc.BOB_IP, auth="API")]})
        result = h(sc.payload(PAYLOAD), aws.FakeContext(remaining_ms=50_000))
        stub.assert_no_pending_responses()  # every authentication type asked for, explicitly

    assert result["sessions_observed"] == 2 and result["stacks_polled"] == 1 and result["stacks_failed"] == 0
    lake = deployment.lake()
    live = {r["session_id"]: r for r in lake.read("live_sessions").to_pylist()}
    assert {k: (v["user_id"], v["eni_private_ip_address"], v["authentication_type"]) for k, v in live.items()} == {
        sc.S1: ("alice", sc.ALICE_IP, "SAML"), sc.S2: ("bob", sc.BOB_IP, "API")}
    polls = lake.read("live_polls").to_pylist()
    assert [(p["stack_name"], p["fleet_name"], p["sessions_seen"], p["error"]) for p in polls] == [
        (*PAIR, 2, None)]
    keys = deployment.lake_objects()
    # nothing else of the lake (besides pyarrow's empty "directory" markers) but the data clock it moves
    assert {k.split("/")[1] for k in keys if not k.endswith("/")} == {"live_sessions", "live_polls", "_state"}
    assert [k for k in keys if "/_state/" in k and not k.endswith("/")] == ["lake/_state/clocks.json"]
    metrics = aws.emf_metrics(capsys.readouterr().out)
    assert metrics["sessions_observed"] == 2 and metrics["stacks_failed"] == 0
    assert metrics["appstream_calls"] == len(AUTH_TYPES)


def test_empty_live_stacks_discovers_stacks_and_skips_stopped_fleets(deployment, poll_handler):
    module, h = poll_handler(stacks="")
    fake = FakeAppStream(
        [{"session_id": sc.S1, "user_id": "alice", "stack_name": "analytics", "fleet_name": "analytics-single",
          "start_ms": T - 10 * MIN, "end_ms": T + 150 * MIN, "eni_private_ip_address": sc.ALICE_IP},
         {"session_id": sc.S2, "user_id": "bob", "stack_name": "labs", "fleet_name": "labs-fleet",
          "start_ms": T - 5 * MIN, "end_ms": T + 150 * MIN, "eni_private_ip_address": sc.BOB_IP,
          "authentication_type": "USERPOOL"}],
        stacks={"analytics": ["analytics-single"], "labs": ["labs-fleet", "labs-spare"], "empty": []},
        fleet_states={"labs-spare": "STOPPED"}, page_size=1)
    fake.now_ms = T + 20 * MIN
    module.poller().client = fake

    result = h(sc.payload(PAYLOAD), aws.FakeContext())

    assert result["sessions_observed"] == 2 and result["stacks_polled"] == 3 and result["stacks_failed"] == 0
    ops = {op for op, _ in fake.calls}
    assert ops == {"DescribeStacks", "ListAssociatedFleets", "DescribeFleets", "DescribeSessions"}
    asked = {(p["StackName"], p["FleetName"]) for op, p in fake.calls if op == "DescribeSessions"}
    assert asked == {("analytics", "analytics-single"), ("labs", "labs-fleet")}  # the stopped fleet is not asked
    polls = deployment.lake().read("live_polls").to_pylist()
    assert {(p["stack_name"], p["fleet_name"]): p["sessions_seen"] for p in polls} == {
        ("analytics", "analytics-single"): 1, ("labs", "labs-fleet"): 1, ("labs", "labs-spare"): 0}


def test_throttling_is_retried_with_backoff_and_a_failing_stack_does_not_stop_the_others(
        deployment, poll_handler, capsys):
    module, h = poll_handler(stacks="analytics:analytics-single,labs:labs-fleet")
    poller = module.poller()
    with Stubber(poller.client) as stub:
        # analytics: throttled twice, then answered
        for _ in range(2):
            stub.add_client_error("describe_sessions", "ThrottlingException", "Rate exceeded", 400)
        expect_sessions(stub, {"SAML": [api_session(sc.S1, "alice", sc.ALICE_IP)]})
        # labs: access denied (retrying cannot help)
        stub.add_client_error("describe_sessions", "AccessDeniedException", "no", 400)
        result = h(sc.payload(PAYLOAD), aws.FakeContext())
        stub.assert_no_pending_responses()

    assert result == {"sessions_observed": 1, "stacks_polled": 1, "stacks_failed": 1,
                      "appstream_calls": 2 + len(AUTH_TYPES) + 1, "appstream_retries": 2, "alerts_opened": 0}
    assert len(poller.sleep) == 2 and poller.sleep[1] >= poller.sleep[0] / 2
    polls = {(p["stack_name"], p["fleet_name"]): p for p in deployment.lake().read("live_polls").to_pylist()}
    assert polls[("analytics", "analytics-single")]["error"] is None
    assert polls[("labs", "labs-fleet")]["error"] == "DescribeSessions(labs/labs-fleet, API): AccessDeniedException"
    assert aws.emf_metrics(capsys.readouterr().out)["stacks_failed"] == 1


def test_a_poll_running_out_of_time_stores_what_it_saw_and_names_the_rest(deployment, poll_handler):
    module, h = poll_handler(stacks="analytics:analytics-single")
    module.poller().client = FakeAppStream([], stacks={"analytics": ["analytics-single"]}, clock=lambda: T)
    result = h(sc.payload(PAYLOAD), aws.FakeContext(remaining_ms=module.RESERVE_MS - 1))
    assert result["stacks_polled"] == 0 and result["stacks_failed"] == 1
    (row,) = deployment.lake().read("live_polls").to_pylist()
    assert row["error"] == "not polled: out of time"


def test_a_write_ingested_after_the_polls_is_attributed_live_within_minutes(deployment, poll_handler, handler):
    """The issue's point: CloudTrail lands minutes later, long before the usage report; the write gets
    its user and session from the live observations (session_source = live)."""
    sc.stage_sources(deployment.client("s3"))
    fake = FakeAppStream([{"session_id": sc.S1, "user_id": "alice", "stack_name": PAIR[0],
                           "fleet_name": PAIR[1], "start_ms": T - 10 * MIN, "end_ms": T + 150 * MIN,
                           "eni_private_ip_address": sc.ALICE_IP}])
    for minute in (18, 19, 20, 21, 22):  # one poll a minute around alice's write at T0+20m
        module, h = poll_handler(at_ms=T + minute * MIN)
        fake.now_ms = T + minute * MIN
        module.poller().client = fake
        module.poller().account_id = sc.ACCOUNT  # the poller runs in the AppStream account
        assert h(sc.payload(PAYLOAD), aws.FakeContext())["sessions_observed"] == 1

    ct_module, ct = handler("IngestCloudTrailFunction")
    ct_module.ingestor().pipeline.clock = lambda: T + 26 * MIN
    assert ct(sc.payload("ingest_cloudtrail/s3-notification-via-sqs.json"), aws.FakeContext()) == {
        "batchItemFailures": []}

    (row,) = [r for r in deployment.lake().read("attributed_activity").to_pylist()
              if r["event_id"] == sc.EV["alice_put"]]
    assert (row["user_id"], row["session_id"], row["session_source"]) == ("alice", sc.S1, "live")


def test_the_appstream_client_is_built_lazily_not_at_import(deployment, handler):
    module, _ = handler(FN)
    assert module._poller is None
