"""The AppStream poller over a real boto3 client stubbed with botocore's Stubber (moto lacks
AppStream), the fake client, and the poll_sessions handler."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import boto3
import pyarrow as pa
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from auditcorr import live
from auditcorr.config import Config
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr_aws import appstream
from auditcorr_aws.appstream import AUTH_TYPES, Backoff, poll
from auditcorr_sim.fake_appstream import FakeAppStream, FakeSession, poll_fake
from tests.factories import T0
from tests.live.test_live import api_session

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
T = int(T0.timestamp() * 1000)
PAIR = ("analytics", "analytics-single")


@pytest.fixture
def aws_env(monkeypatch):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def client(aws_env):
    return boto3.client("appstream", region_name="us-east-1")


@pytest.fixture
def stub(client):
    with Stubber(client) as s:
        yield s
        s.assert_no_pending_responses()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def expect_sessions(
    stub: Stubber,
    pair: tuple[str, str],
    auth: str,
    sessions: list[dict],
    token_in: str | None = None,
    token_out: str | None = None,
) -> None:
    params = {"StackName": pair[0], "FleetName": pair[1], "AuthenticationType": auth, "Limit": 50}
    if token_in:
        params["NextToken"] = token_in
    resp: dict = {"Sessions": sessions}
    if token_out:
        resp["NextToken"] = token_out
    stub.add_response("describe_sessions", resp, params)


def expect_all(stub: Stubber, pair: tuple[str, str], by_auth: dict[str, list[dict]] | None = None) -> None:
    for auth in AUTH_TYPES:
        expect_sessions(stub, pair, auth, (by_auth or {}).get(auth, []))


# -- authentication types, pagination, empty fleets -------------------------------------------------
def test_every_authentication_type_is_asked_for_explicitly(client, stub):
    api_user = api_session("s-api", user="streaming-url-user", auth="API", ip="10.40.1.1")
    saml_user = api_session("s-saml", user="alice@example.com", auth="SAML", ip="10.40.1.2")
    expect_all(stub, PAIR, {"API": [api_user], "SAML": [saml_user]})
    res = poll(client, [PAIR], sleep=Sleeps())
    # the Stubber checked each call's parameters: API, SAML, USERPOOL, AWS_AD, each named, Limit 50
    assert sorted(s["Id"] for s in res.sessions) == ["s-api", "s-saml"]
    assert {s["AuthenticationType"] for s in res.sessions} == {"API", "SAML"}
    assert res.polled == [PAIR] and res.errors == {}
    assert res.calls == 4


def test_pages_are_followed_with_next_token(client, stub):
    page1 = [api_session(f"s-{i:03d}", ip=f"10.40.2.{i}") for i in range(50)]
    page2 = [api_session(f"s-{i:03d}", ip=f"10.40.2.{i}") for i in range(50, 61)]
    expect_sessions(stub, PAIR, "API", [])
    expect_sessions(stub, PAIR, "SAML", page1, token_out="tok-1")
    expect_sessions(stub, PAIR, "SAML", page2, token_in="tok-1")
    expect_sessions(stub, PAIR, "USERPOOL", [])
    expect_sessions(stub, PAIR, "AWS_AD", [])
    res = poll(client, [PAIR])
    assert len(res.sessions) == 61
    assert res.polled == [PAIR]


def test_empty_fleet_is_polled_with_no_sessions(client, stub):
    expect_all(stub, PAIR)
    res = poll(client, [PAIR])
    assert res.sessions == [] and res.polled == [PAIR] and res.errors == {}


def test_repeated_next_token_fails_the_pair_instead_of_looping(client, stub):
    expect_sessions(stub, PAIR, "API", [api_session("s-1")], token_out="again")
    expect_sessions(stub, PAIR, "API", [], token_in="again", token_out="again")
    res = poll(client, [PAIR])
    assert res.polled == [] and "NextToken repeated" in res.errors[PAIR]
    assert [s["Id"] for s in res.sessions] == ["s-1"]  # what was seen is still reported


# -- throttling and failures ------------------------------------------------------------------------
def test_throttling_is_retried_with_growing_backoff_then_succeeds(client, stub):
    for _ in range(3):
        stub.add_client_error(
            "describe_sessions",
            service_error_code="ThrottlingException",
            service_message="Rate exceeded",
            http_status_code=400,
        )
    expect_all(stub, PAIR, {"API": [api_session("s-1", auth="API")]})
    sleeps = Sleeps()
    res = poll(client, [PAIR], sleep=sleeps)
    assert res.polled == [PAIR] and res.errors == {}
    assert [s["Id"] for s in res.sessions] == ["s-1"]
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2]
    assert res.retries == 3 and res.calls == 7


def test_backoff_bounds_with_jitter():
    b = Backoff(base=0.25, cap=8.0, rng=lambda: 0.0)
    hi = Backoff(base=0.25, cap=8.0, rng=lambda: 1.0)
    assert [b.delay(k) for k in range(4)] == [0.125, 0.25, 0.5, 1.0]
    assert [hi.delay(k) for k in range(4)] == [0.25, 0.5, 1.0, 2.0]
    assert hi.delay(10) == 8.0  # capped


@pytest.mark.parametrize("code", ["RequestLimitExceededException", "TooManyRequestsException", "Throttling"])
def test_other_throttling_codes_are_retried(client, stub, code):
    stub.add_client_error("describe_sessions", service_error_code=code, http_status_code=400)
    expect_all(stub, PAIR)
    sleeps = Sleeps()
    res = poll(client, [PAIR], sleep=sleeps)
    assert res.polled == [PAIR] and len(sleeps) == 1


def test_server_errors_are_retried(client, stub):
    stub.add_client_error(
        "describe_sessions", service_error_code="ServiceUnavailableException", http_status_code=503
    )
    expect_all(stub, PAIR)
    assert poll(client, [PAIR], sleep=Sleeps()).polled == [PAIR]


def test_errors_are_classified_by_code_never_by_message(client, stub):
    stub.add_client_error(
        "describe_sessions",
        service_error_code="InvalidParameterCombinationException",
        service_message="Throttling: rate exceeded, please slow down",
        http_status_code=400,
    )
    sleeps = Sleeps()
    res = poll(client, [PAIR], sleep=sleeps)
    assert sleeps == []
    assert res.errors == {
        PAIR: "DescribeSessions(analytics/analytics-single, API): InvalidParameterCombinationException"
    }


def test_throttling_that_never_ends_fails_the_pair_after_max_attempts(client, stub):
    for _ in range(4):
        stub.add_client_error(
            "describe_sessions", service_error_code="ThrottlingException", http_status_code=400
        )
    sleeps = Sleeps()
    res = poll(client, [PAIR], sleep=sleeps, max_attempts=4)
    assert res.polled == []
    assert res.errors[PAIR].endswith("ThrottlingException after 4 attempts")
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)


def test_one_failing_stack_does_not_stop_the_others(client, stub):
    a, b = ("finance", "finance-fleet"), ("analytics", "analytics-single")
    # sorted order: analytics first, then finance
    expect_all(stub, b, {"SAML": [api_session("s-b", ip="10.40.3.3")]})
    expect_sessions(stub, a, "API", [api_session("s-a", stack=a[0], fleet=a[1], auth="API")])
    stub.add_client_error(
        "describe_sessions", service_error_code="AccessDeniedException", http_status_code=400
    )
    res = poll(client, [a, b], sleep=Sleeps())
    assert res.polled == [b]
    assert set(res.errors) == {a} and "AccessDeniedException" in res.errors[a]
    # the failed pair's sessions seen before the failure are kept: a sighting is a fact
    assert sorted(s["Id"] for s in res.sessions) == ["s-a", "s-b"]


def test_network_errors_are_retried_too():
    class Flaky:
        def __init__(self, inner):
            self.inner, self.fails, self.exceptions = inner, 2, inner.exceptions

        def describe_sessions(self, **kw):
            if self.fails:
                self.fails -= 1
                raise EndpointConnectionError(endpoint_url="https://appstream2.us-east-1.amazonaws.com")
            return self.inner.describe_sessions(**kw)

    fake = FakeAppStream([FakeSession("s-1", "alice", *PAIR, T, T + MIN, "10.40.1.1")])
    fake.now_ms = T
    sleeps = Sleeps()
    res = poll(Flaky(fake), [PAIR], sleep=sleeps)
    assert res.polled == [PAIR] and len(sleeps) == 2 and [s["Id"] for s in res.sessions] == ["s-1"]


def test_out_of_time_pairs_are_recorded_not_polled(client, stub):
    expect_all(stub, ("a", "fa"))
    calls = iter([False, True])
    res = poll(client, [("a", "fa"), ("b", "fb")], should_stop=lambda: next(calls))
    assert res.polled == [("a", "fa")]
    assert res.errors == {("b", "fb"): "not polled: out of time"}


def fleet(name: str, state: str) -> dict:
    return {
        "Name": name,
        "State": state,
        "Arn": f"arn:aws:appstream:us-east-1:111122223333:fleet/{name}",
        "InstanceType": "stream.standard.small",
        "ComputeCapacityStatus": {"Desired": 1},
    }


# -- discovery --------------------------------------------------------------------------------------
def test_discovery_walks_stacks_fleets_and_skips_stopped_fleets(client, stub):
    stub.add_response("describe_stacks", {"Stacks": [{"Name": "analytics"}], "NextToken": "st-2"}, {})
    stub.add_response("describe_stacks", {"Stacks": [{"Name": "finance"}]}, {"NextToken": "st-2"})
    stub.add_response(
        "list_associated_fleets",
        {"Names": ["analytics-single"], "NextToken": "f-2"},
        {"StackName": "analytics"},
    )
    stub.add_response(
        "list_associated_fleets",
        {"Names": ["analytics-multi"]},
        {"StackName": "analytics", "NextToken": "f-2"},
    )
    stub.add_response("list_associated_fleets", {"Names": ["finance-fleet"]}, {"StackName": "finance"})
    stub.add_response(
        "describe_fleets",
        {
            "Fleets": [
                fleet("analytics-single", "RUNNING"),
                fleet("analytics-multi", "STOPPED"),
                fleet("finance-fleet", "RUNNING"),
            ]
        },
        {},
    )
    expect_all(stub, ("analytics", "analytics-single"), {"SAML": [api_session("s-1")]})
    expect_all(stub, ("finance", "finance-fleet"))
    res = poll(client, None, sleep=Sleeps())
    assert res.polled == [
        ("analytics", "analytics-multi"),
        ("analytics", "analytics-single"),
        ("finance", "finance-fleet"),
    ]
    assert res.errors == {} and [s["Id"] for s in res.sessions] == ["s-1"]


def test_discovery_failure_is_recorded_as_a_wildcard_error(client, stub):
    stub.add_client_error("describe_stacks", service_error_code="AccessDeniedException", http_status_code=400)
    res = poll(client, None, sleep=Sleeps())
    assert res.polled == [] and res.errors == {("*", "*"): "DescribeStacks: AccessDeniedException"}


def test_one_stack_failing_discovery_does_not_stop_the_others(client, stub):
    stub.add_response("describe_stacks", {"Stacks": [{"Name": "analytics"}, {"Name": "finance"}]}, {})
    stub.add_client_error(
        "list_associated_fleets",
        service_error_code="ResourceNotFoundException",
        http_status_code=400,
        expected_params={"StackName": "analytics"},
    )
    stub.add_response("list_associated_fleets", {"Names": ["finance-fleet"]}, {"StackName": "finance"})
    stub.add_client_error("describe_fleets", service_error_code="AccessDeniedException", http_status_code=400)
    expect_all(stub, ("finance", "finance-fleet"))
    res = poll(client, [], sleep=Sleeps())
    assert res.polled == [("finance", "finance-fleet")]
    assert res.errors == {("analytics", "*"): "ListAssociatedFleets: ResourceNotFoundException"}


# -- a session ending between two polls, end to end ------------------------------------------------------
def test_session_ending_between_polls_gets_an_observed_window(client, stub):
    s1 = api_session("s-1", start=T0 - timedelta(minutes=5), ip="10.40.4.1")
    s2 = api_session("s-2", user="bob", start=T0 - timedelta(minutes=1), ip="10.40.4.2", auth="API")
    expect_all(stub, PAIR, {"SAML": [s1], "API": [s2]})
    expect_all(stub, PAIR, {"API": [s2]})
    first = poll(client, [PAIR])
    second = poll(client, [PAIR])
    obs = pa.concat_tables(
        [live.snapshot_table(first.sessions, T), live.snapshot_table(second.sessions, T + MIN)]
    )
    polls = {p: [T] for p in first.polled}
    for p in second.polled:
        polls[p].append(T + MIN)
    w = {r["session_id"]: r for r in live.observed_windows(obs, polls, T + MIN, 180_000).to_pylist()}
    assert w["s-1"]["session_start_time"] == T0 - timedelta(minutes=5)
    assert w["s-1"]["session_end_time"] == T0 + timedelta(minutes=1)
    assert w["s-1"]["end_basis"] == "unlisted"
    assert w["s-2"]["end_basis"] == "fresh"


# -- the fake client ---------------------------------------------------------------------------------
def world(n: int = 120) -> list[FakeSession]:
    return [
        FakeSession(
            f"s-{i:04d}",
            f"user{i}",
            *PAIR,
            T + i * 1000,
            T + 3_600_000,
            f"10.40.5.{i % 250}",
            f"i-{i:04x}",
            "SAML" if i % 3 else "API",
        )
        for i in range(n)
    ]


def test_fake_defaults_to_api_users_like_the_real_api():
    fake = FakeAppStream(world(9), clock=lambda: T + MIN)
    default = fake.describe_sessions(StackName=PAIR[0], FleetName=PAIR[1])
    saml = fake.describe_sessions(StackName=PAIR[0], FleetName=PAIR[1], AuthenticationType="SAML")
    assert {s["AuthenticationType"] for s in default["Sessions"]} == {"API"}
    assert len(default["Sessions"]) == 3 and len(saml["Sessions"]) == 6


def test_fake_paginates_with_limit_and_rejects_foreign_tokens():
    fake = FakeAppStream(world(120), clock=lambda: T + 10 * MIN)
    first = fake.describe_sessions(StackName=PAIR[0], FleetName=PAIR[1], AuthenticationType="SAML", Limit=50)
    assert len(first["Sessions"]) == 50 and first["NextToken"]
    second = fake.describe_sessions(
        StackName=PAIR[0],
        FleetName=PAIR[1],
        AuthenticationType="SAML",
        Limit=50,
        NextToken=first["NextToken"],
    )
    assert len(second["Sessions"]) == 30 and "NextToken" not in second
    assert not {s["Id"] for s in first["Sessions"]} & {s["Id"] for s in second["Sessions"]}
    default_page = fake.describe_sessions(StackName=PAIR[0], FleetName=PAIR[1], AuthenticationType="SAML")
    assert len(default_page["Sessions"]) == 20
    with pytest.raises(fake.exceptions.ClientError) as exc:
        fake.describe_sessions(
            StackName=PAIR[0],
            FleetName=PAIR[1],
            AuthenticationType="API",
            NextToken=first["NextToken"],
            Limit=50,
        )
    assert exc.value.response["Error"]["Code"] == "InvalidParameterCombinationException"
    with pytest.raises(fake.exceptions.ClientError):
        fake.describe_sessions(StackName=PAIR[0], FleetName=PAIR[1], UserId="user1")


def test_fake_lists_only_sessions_live_now():
    fake = FakeAppStream([FakeSession("s-1", "alice", *PAIR, T, T + MIN, "10.40.1.1")])
    fake.now_ms = T + MIN - 1
    assert (
        len(
            fake.describe_sessions(StackName=PAIR[0], FleetName=PAIR[1], AuthenticationType="SAML")[
                "Sessions"
            ]
        )
        == 1
    )
    fake.now_ms = T + MIN
    assert (
        fake.describe_sessions(StackName=PAIR[0], FleetName=PAIR[1], AuthenticationType="SAML")["Sessions"]
        == []
    )


def test_poll_over_the_fake_reads_every_type_and_page_and_survives_throttling():
    fake = FakeAppStream(world(120), clock=lambda: T + 10 * MIN, page_size=1)
    fake.fail("DescribeSessions", "ThrottlingException", times=2, AuthenticationType="SAML")
    sleeps = Sleeps()
    res = poll(fake, None, sleep=sleeps)
    assert len(res.sessions) == 120 and res.polled == [PAIR] and len(sleeps) == 2
    asked = [p.get("AuthenticationType") for op, p in fake.calls if op == "DescribeSessions"]
    assert set(asked) == set(AUTH_TYPES) and None not in asked
    assert any(op == "DescribeStacks" for op, _ in fake.calls)


def test_poll_fake_and_from_world_accept_report_shaped_rows():
    rows = [
        {
            "session_id": "s-1",
            "user_id": "alice",
            "stack_name": PAIR[0],
            "fleet_name": PAIR[1],
            "session_start_time": T0,
            "session_end_time": T0 + timedelta(hours=1),
            "eni_private_ip_address": "10.40.1.1",
            "instance_id": "i-1",
            "authentication_type": "SAML",
        }
    ]
    fake = FakeAppStream.from_world(rows)
    fake.now_ms = T + MIN
    sessions, polled = poll_fake(fake)
    assert [s["Id"] for s in sessions] == ["s-1"] and polled == [PAIR]
    assert sessions[0]["NetworkAccessConfiguration"]["EniPrivateIpAddress"] == "10.40.1.1"


def test_parse_stacks():
    assert appstream.parse_stacks("a:fa, b:fb") == [("a", "fa"), ("b", "fb")]
    assert appstream.parse_stacks("") == [] and appstream.parse_stacks(None) == []
    with pytest.raises(ValueError):
        appstream.parse_stacks("a")


# -- the poll_sessions handler ---------------------------------------------------------------------------
class Context:
    function_name = "poll_sessions"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:poll_sessions"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_handler_polls_and_stores_the_observations(client, stub, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "auditcorr")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "poll_sessions")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    from functions.poll_sessions import app

    lake = Lake.open(str(tmp_path / "lake"))
    pipe = Pipeline(lake, Config(), clock=lambda: T)
    monkeypatch.setattr(app, "_poller", appstream.LivePoller(client, pipe, [PAIR], sleep=Sleeps()))
    expect_all(
        stub, PAIR, {"SAML": [api_session("s-1")], "API": [api_session("s-2", auth="API", ip="10.40.1.9")]}
    )
    event = json.loads((ROOT / "events" / "poll_sessions.json").read_text())
    out = app.lambda_handler(event, Context())
    assert out["sessions_observed"] == 2 and out["stacks_failed"] == 0 and out["stacks_polled"] == 1
    stored = lake.read("live_sessions")
    assert sorted(stored.column("session_id").to_pylist()) == ["s-1", "s-2"]
    polls = lake.read("live_polls")
    assert polls.column("sessions_seen").to_pylist() == [2] and polls.column("error").to_pylist() == [None]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    metrics = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"sessions_observed", "stacks_failed"} <= metrics


@pytest.mark.parametrize(
    "op,kwargs",
    [
        ("describe_sessions", {"StackName": PAIR[0], "FleetName": PAIR[1], "AuthenticationType": "SAML"}),
        ("describe_stacks", {}),
        ("describe_fleets", {}),
        ("list_associated_fleets", {"StackName": PAIR[0]}),
    ],
)
def test_fake_answers_have_the_real_output_shapes(op, kwargs):
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("appstream")
    fake = FakeAppStream(world(60), clock=lambda: T + 10 * MIN, page_size=2)
    resp = getattr(fake, op)(**kwargs)
    op_name = "".join(p.title() for p in op.split("_"))
    validate_parameters(resp, model.operation_model(op_name).output_shape)  # raises if not real-shaped
