"""A fake AppStream client for the demo, the CLI's ``poll --fake-world`` and tests.

Pure (no AWS SDK).  It answers the calls the poller makes, with the real API's shapes and its
traps: ``DescribeSessions`` lists only the sessions live *now* (the clock), one authentication type
per call, ``API`` when none is named (so SAML users are missed unless asked for), ``Limit`` pages
(default 20, at most 50) chained by an opaque ``NextToken``; ``DescribeStacks``,
``DescribeFleets`` and ``ListAssociatedFleets`` are paginated too.  Errors are raised as
:class:`FakeClientError`, shaped like botocore's ``ClientError`` (``response["Error"]["Code"]``)
and exposed as ``client.exceptions.ClientError`` like on a real client; :meth:`FakeAppStream.fail`
queues errors (throttling, ...) for the next matching calls.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

AUTH_TYPES = ("API", "SAML", "USERPOOL", "AWS_AD")
DEFAULT_AUTH_TYPE = "API"
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
REGION = "us-east-1"
ACCOUNT = "111122223333"


class FakeClientError(Exception):
    """Shaped like ``botocore.exceptions.ClientError``: ``response`` and ``operation_name``."""

    def __init__(self, code: str, message: str, operation_name: str, status: int = 400) -> None:
        super().__init__(f"An error occurred ({code}) when calling the {operation_name} operation: {message}")
        self.response = {"Error": {"Code": code, "Message": message},
                         "ResponseMetadata": {"HTTPStatusCode": status}}
        self.operation_name = operation_name


class _Exceptions:
    ClientError = FakeClientError


@dataclass(frozen=True)
class FakeSession:
    session_id: str
    user_id: str
    stack_name: str
    fleet_name: str
    start_ms: int
    end_ms: int  # exclusive: listed while start_ms <= now < end_ms
    eni_private_ip_address: str | None = None
    instance_id: str | None = None
    authentication_type: str = "SAML"
    max_expiration_ms: int | None = None
    connected: bool = True


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        # epoch milliseconds (anything after 1973 in ms); small numbers are epoch seconds
        return int(value) if abs(value) >= 100_000_000_000 else int(value * 1000)
    if isinstance(value, str):
        return _ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return None


def _get(rec: Any, *names: str) -> Any:
    for n in names:
        v = rec.get(n) if isinstance(rec, Mapping) else getattr(rec, n, None)
        if v is not None and v != "":
            return v
    return None


def as_session(rec: Any) -> FakeSession:
    """A :class:`FakeSession` from a dict or object using the report's, the API's or short names."""
    if isinstance(rec, FakeSession):
        return rec
    start = _ms(_get(rec, "start_ms", "session_start_time", "start", "StartTime"))
    end = _ms(_get(rec, "end_ms", "session_end_time", "end", "EndTime"))
    sid = _get(rec, "session_id", "user_session_id", "Id", "id")
    if sid is None or start is None or end is None:
        raise ValueError("a fake session needs an id, a start and an end")
    net = _get(rec, "NetworkAccessConfiguration") or {}
    return FakeSession(
        session_id=str(sid),
        user_id=str(_get(rec, "user_id", "UserId", "user") or ""),
        stack_name=str(_get(rec, "stack_name", "StackName", "stack") or ""),
        fleet_name=str(_get(rec, "fleet_name", "FleetName", "fleet") or ""),
        start_ms=start,
        end_ms=end,
        eni_private_ip_address=_get(rec, "eni_private_ip_address", "ip", "EniPrivateIpAddress")
        or (net.get("EniPrivateIpAddress") if isinstance(net, Mapping) else None),
        instance_id=_get(rec, "instance_id", "InstanceId", "instance"),
        authentication_type=str(_get(rec, "authentication_type", "AuthenticationType", "auth_type")
                                or "SAML"),
        max_expiration_ms=_ms(_get(rec, "max_expiration_ms", "max_expiration_time", "MaxExpirationTime")),
    )


def _present(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class FakeAppStream:
    """The AppStream API over a list of sessions and a clock (epoch ms).

    ``stacks``: stack -> associated fleet names (default: from the sessions); ``fleet_states``:
    fleet -> state (default ``RUNNING``); ``page_size``: page size of the describe/list calls other
    than DescribeSessions (small values exercise pagination).  ``now_ms`` can be set directly
    (the demo does) or follows ``clock``.  ``calls`` records every call (operation, parameters).
    """

    exceptions = _Exceptions

    def __init__(self, sessions: Iterable[Any] = (), clock: Callable[[], int] | None = None,
                 stacks: Mapping[str, Iterable[str]] | None = None,
                 fleet_states: Mapping[str, str] | None = None, page_size: int = 25) -> None:
        self.sessions = [as_session(s) for s in sessions]
        self._clock = clock
        self._now: int | None = None
        if stacks is None:
            derived: dict[str, set[str]] = {}
            for s in self.sessions:
                derived.setdefault(s.stack_name, set()).add(s.fleet_name)
            stacks = derived
        self.stacks = {k: sorted(set(v)) for k, v in stacks.items()}
        fleets = {f for fl in self.stacks.values() for f in fl}
        self.fleet_states = {f: "RUNNING" for f in fleets} | dict(fleet_states or {})
        self.page_size = max(1, page_size)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._faults: list[tuple[str, dict[str, Any], str, int]] = []

    @classmethod
    def from_world(cls, sessions: Iterable[Any], clock: Callable[[], int] | None = None,
                   **kw: Any) -> FakeAppStream:
        """From a synthetic world's sessions (report-shaped dicts or objects; see :func:`as_session`)."""
        return cls(sessions, clock=clock, **kw)

    # -- clock ----------------------------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        if self._now is not None:
            return self._now
        if self._clock is None:
            raise RuntimeError("FakeAppStream has no clock: pass clock= or set now_ms")
        return self._clock()

    @now_ms.setter
    def now_ms(self, value: int) -> None:
        self._now = int(value)

    # -- fault injection ------------------------------------------------------------------------
    def fail(self, operation: str, code: str = "ThrottlingException", times: int = 1, status: int = 400,
             **match: Any) -> None:
        """The next ``times`` calls of ``operation`` (e.g. ``"DescribeSessions"``) whose parameters
        include ``match`` raise ``code``."""
        for _ in range(times):
            self._faults.append((operation, match, code, status))

    def _enter(self, operation: str, params: dict[str, Any]) -> None:
        self.calls.append((operation, dict(params)))
        for i, (op, match, code, status) in enumerate(self._faults):
            if op == operation and all(params.get(k) == v for k, v in match.items()):
                del self._faults[i]
                raise FakeClientError(code, f"injected {code}", operation, status)

    # -- pagination -----------------------------------------------------------------------------
    @staticmethod
    def _digest(query: dict[str, Any]) -> str:
        return hashlib.sha256(orjson.dumps(query, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def _token(self, query: dict[str, Any], offset: int) -> str:
        """Opaque, and bound to the query: a token from another query is rejected."""
        return base64.urlsafe_b64encode(orjson.dumps({"q": self._digest(query), "o": offset})).decode()

    def _page(self, operation: str, items: list[Any], query: dict[str, Any], token: str | None,
              limit: int) -> tuple[list[Any], str | None]:
        offset = 0
        if token is not None:
            try:
                decoded = orjson.loads(base64.urlsafe_b64decode(token.encode()))
                ok = decoded["q"] == self._digest(query)
                offset = int(decoded["o"])
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
                ok = False
            if not ok or offset < 0:
                raise FakeClientError("InvalidParameterCombinationException", "invalid NextToken", operation)
        page = items[offset:offset + limit]
        nxt = offset + limit
        return page, (self._token(query, nxt) if nxt < len(items) else None)

    # -- API ------------------------------------------------------------------------------------
    def describe_sessions(self, *, StackName: str, FleetName: str, UserId: str | None = None,
                          NextToken: str | None = None, Limit: int | None = None,
                          AuthenticationType: str | None = None, InstanceId: str | None = None
                          ) -> dict[str, Any]:
        params = _present(StackName=StackName, FleetName=FleetName, UserId=UserId, NextToken=NextToken,
                          Limit=Limit, AuthenticationType=AuthenticationType, InstanceId=InstanceId)
        self._enter("DescribeSessions", params)
        if UserId is not None and AuthenticationType is None:
            raise FakeClientError("InvalidParameterCombinationException",
                                  "UserId requires AuthenticationType", "DescribeSessions")
        if AuthenticationType is not None and AuthenticationType not in AUTH_TYPES:
            raise FakeClientError("ValidationException", "invalid AuthenticationType", "DescribeSessions")
        if Limit is not None and Limit < 1:
            raise FakeClientError("ValidationException", "Limit must be at least 1", "DescribeSessions")
        auth = AuthenticationType or DEFAULT_AUTH_TYPE
        limit = min(Limit or DEFAULT_LIMIT, MAX_LIMIT)
        now = self.now_ms
        live = sorted((s for s in self.sessions
                       if s.stack_name == StackName and s.fleet_name == FleetName
                       and s.authentication_type == auth and s.start_ms <= now < s.end_ms
                       and (UserId is None or s.user_id == UserId)
                       and (InstanceId is None or s.instance_id == InstanceId)),
                      key=lambda s: (s.start_ms, s.session_id))
        query = {"op": "DescribeSessions", "s": StackName, "f": FleetName, "a": auth, "u": UserId,
                 "i": InstanceId, "l": limit}
        page, nxt = self._page("DescribeSessions", live, query, NextToken, limit)
        out: dict[str, Any] = {"Sessions": [self._describe(s) for s in page]}
        if nxt:
            out["NextToken"] = nxt
        return out

    @staticmethod
    def _describe(s: FakeSession) -> dict[str, Any]:
        d: dict[str, Any] = {
            "Id": s.session_id,
            "UserId": s.user_id,
            "StackName": s.stack_name,
            "FleetName": s.fleet_name,
            "State": "ACTIVE",
            "ConnectionState": "CONNECTED" if s.connected else "NOT_CONNECTED",
            "StartTime": _dt(s.start_ms),
            "MaxExpirationTime": _dt(s.max_expiration_ms if s.max_expiration_ms is not None
                                     else s.start_ms + 16 * 3_600_000),
            "AuthenticationType": s.authentication_type,
            "InstanceDrainStatus": "NOT_APPLICABLE",
        }
        if s.eni_private_ip_address:
            eni = "eni-" + hashlib.sha256(s.session_id.encode()).hexdigest()[:17]
            d["NetworkAccessConfiguration"] = {"EniPrivateIpAddress": s.eni_private_ip_address, "EniId": eni}
        if s.instance_id:
            d["InstanceId"] = s.instance_id
        return d

    def describe_stacks(self, *, Names: list[str] | None = None,
                        NextToken: str | None = None) -> dict[str, Any]:
        self._enter("DescribeStacks", _present(Names=Names, NextToken=NextToken))
        names = sorted(self.stacks)
        if Names:
            missing = [n for n in Names if n not in self.stacks]
            if missing:
                raise FakeClientError("ResourceNotFoundException", "stack not found", "DescribeStacks")
            names = [n for n in names if n in Names]
        page, nxt = self._page("DescribeStacks", names, {"op": "DescribeStacks", "n": Names}, NextToken,
                               self.page_size)
        arn = f"arn:aws:appstream:{REGION}:{ACCOUNT}:stack/"
        out: dict[str, Any] = {"Stacks": [{"Name": n, "Arn": arn + n} for n in page]}
        if nxt:
            out["NextToken"] = nxt
        return out

    def describe_fleets(self, *, Names: list[str] | None = None,
                        NextToken: str | None = None) -> dict[str, Any]:
        self._enter("DescribeFleets", _present(Names=Names, NextToken=NextToken))
        names = sorted(self.fleet_states)
        if Names:
            if any(n not in self.fleet_states for n in Names):
                raise FakeClientError("ResourceNotFoundException", "fleet not found", "DescribeFleets")
            names = [n for n in names if n in Names]
        page, nxt = self._page("DescribeFleets", names, {"op": "DescribeFleets", "n": Names}, NextToken,
                               self.page_size)
        out: dict[str, Any] = {"Fleets": [{"Name": n, "State": self.fleet_states[n],
                                           "Arn": f"arn:aws:appstream:{REGION}:{ACCOUNT}:fleet/{n}",
                                           "InstanceType": "stream.standard.medium",
                                           "ComputeCapacityStatus": {"Desired": 1}}
                                          for n in page]}
        if nxt:
            out["NextToken"] = nxt
        return out

    def list_associated_fleets(self, *, StackName: str, NextToken: str | None = None
                               ) -> dict[str, Any]:
        self._enter("ListAssociatedFleets", _present(StackName=StackName, NextToken=NextToken))
        names = self.stacks.get(StackName, [])
        page, nxt = self._page("ListAssociatedFleets", names, {"op": "ListAssociatedFleets", "s": StackName},
                               NextToken, self.page_size)
        out: dict[str, Any] = {"Names": list(page)}
        if nxt:
            out["NextToken"] = nxt
        return out


def poll_fake(fake: FakeAppStream, stacks: Iterable[tuple[str, str]] | None = None
              ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Run the real poller over ``fake`` (no waiting between retries): ``(sessions, polled pairs)``."""
    from auditcorr_aws.appstream import poll

    result = poll(fake, stacks, sleep=lambda _s: None)
    return result.sessions, result.polled
