"""Poll the AppStream API for the sessions that are live now (``poll_sessions``, ``auditcorr poll``).

- the stack/fleet pairs come from the configuration, or are discovered: ``DescribeStacks`` (all
  pages) -> ``ListAssociatedFleets`` per stack (all pages) -> ``DescribeFleets`` to learn each
  fleet's state; a ``STOPPED`` fleet has no streaming instance, hence no session, and is recorded
  as polled (empty) without asking;
- ``DescribeSessions`` per pair for EVERY authentication type, each asked for explicitly: the API
  defaults to ``API`` (streaming-URL users), so SAML, user-pool and AD users are invisible unless
  named. Every page is read (``NextToken``, ``Limit`` 50);
- throttling, transient 5xx and network errors are retried with exponential backoff and jitter through
  the injected ``sleep``; errors are classified by their code, never by message text;
- a pair whose calls still fail is recorded in ``errors`` (its pages read so far are still
  returned: what was seen is true) and the other pairs go on. A pair counts as ``polled`` only if
  every authentication type was read to the last page: only then may its silence end a session.

The client is created by the caller (:func:`appstream_client` for Lambda, the CLI or a test's
``botocore.stub.Stubber``); :class:`~auditcorr_sim.fake_appstream.FakeAppStream` has the same
methods.  Nothing here needs botocore except its network-error classes (optional, so the fake world
runs without the AWS SDK).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

try:  # the AWS SDK is present wherever a real client is; the fake world does not need it
    from botocore.exceptions import BotoCoreError as _BotoCoreError
    from botocore.exceptions import ConnectionError as _SdkConnectionError
    from botocore.exceptions import HTTPClientError as _HTTPClientError

    #: network failures (connect/read timeouts, resets): retried like throttling
    _NETWORK_ERRORS: tuple[type[BaseException], ...] = (_SdkConnectionError, _HTTPClientError)
    #: any other SDK failure (bad parameters, no credentials): the pair fails at once
    _SDK_ERRORS: tuple[type[BaseException], ...] = (_BotoCoreError,)
except ImportError:  # pragma: no cover - exercised only without botocore installed
    _NETWORK_ERRORS = ()
    _SDK_ERRORS = ()

Pair = tuple[str, str]

#: every value of DescribeSessions' AuthenticationType (the API answers for ONE type per call)
AUTH_TYPES = ("API", "SAML", "USERPOOL", "AWS_AD")
PAGE_LIMIT = 50  # DescribeSessions' maximum page size
MAX_PAGES = 10_000  # a guard against a service that keeps handing out tokens

#: error codes meaning "slow down" (botocore's standard retry list, plus AppStream's own)
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "RequestLimitExceededException",
    "RequestThrottled", "SlowDown", "BandwidthLimitExceeded", "EC2ThrottledException",
    "ProvisionedThroughputExceededException", "PriorRequestNotComplete",
})
#: codes of transient server-side failures, also retried
TRANSIENT_CODES = frozenset({
    "InternalFailure", "InternalError", "InternalServerError", "InternalServiceError",
    "InternalServiceException", "ServiceUnavailable", "ServiceUnavailableException",
    "RequestTimeout", "RequestTimeoutException",
})

#: fleets in this state have no instances, so no sessions
STOPPED_STATES = frozenset({"STOPPED"})


@dataclass
class PollResult:
    sessions: list[dict[str, Any]] = field(default_factory=list)
    polled: list[Pair] = field(default_factory=list)  # pairs read completely (all types, all pages)
    errors: dict[Pair, str] = field(default_factory=dict)  # pair ("*" = all) -> "Operation: Code"
    calls: int = 0
    retries: int = 0


class Backoff:
    """Exponential backoff with "equal jitter": attempt k waits in [d/2, d], d = min(cap, base*2**k).

    Successive waits never shrink (until the cap), and concurrent pollers do not retry in step.
    """

    def __init__(self, base: float = 0.25, cap: float = 8.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = cap
        self.rng = rng

    def delay(self, attempt: int) -> float:
        d = min(self.cap, self.base * (2 ** attempt))
        return d / 2 + self.rng() * d / 2


class _Failed(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def error_code(exc: BaseException) -> str:
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        return str((resp.get("Error") or {}).get("Code") or "")
    return ""


def _http_status(exc: BaseException) -> int:
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        status = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if isinstance(status, int):
            return status
    return 0


def is_retryable(exc: BaseException) -> bool:
    code = error_code(exc)
    return code in THROTTLING_CODES or code in TRANSIENT_CODES or _http_status(exc) in (500, 502, 503, 504)


class _Caller:
    def __init__(self, client: Any, sleep: Callable[[float], None], max_attempts: int, backoff: Backoff,
                 result: PollResult) -> None:
        self.client = client
        self.sleep = sleep
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.result = result
        self.api_errors: tuple[type[BaseException], ...] = (client.exceptions.ClientError,)

    def __call__(self, op: str, label: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self.client, op)
        for attempt in range(self.max_attempts):
            self.result.calls += 1
            try:
                return method(**kwargs)
            except self.api_errors as exc:
                code = error_code(exc) or "ClientError"
                retry = is_retryable(exc)
            except _NETWORK_ERRORS as exc:
                code, retry = type(exc).__name__, True
            except _SDK_ERRORS as exc:
                code, retry = type(exc).__name__, False
            if not retry or attempt == self.max_attempts - 1:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise _Failed(f"{label}: {code}{tries}")
            self.result.retries += 1
            self.sleep(self.backoff.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def pages(self, op: str, label: str, key: str, **kwargs: Any) -> Iterable[list[Any]]:
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            args = dict(kwargs)
            if token:
                args["NextToken"] = token
            resp = self(op, label, **args)
            yield list(resp.get(key) or [])
            token = resp.get("NextToken") or None
            if not token:
                return
            if token in seen:
                raise _Failed(f"{label}: NextToken repeated")
            seen.add(token)
        raise _Failed(f"{label}: more than {MAX_PAGES} pages")


def discover(call: _Caller, result: PollResult) -> tuple[list[Pair], list[Pair]]:
    """(pairs to ask about, pairs known empty because their fleet is stopped)."""
    try:
        stacks = sorted({s["Name"] for page in call.pages("describe_stacks", "DescribeStacks", "Stacks")
                         for s in page if s.get("Name")})
    except _Failed as exc:
        result.errors[("*", "*")] = exc.what
        return [], []
    pairs: list[Pair] = []
    for stack in stacks:
        try:
            pages = call.pages("list_associated_fleets", "ListAssociatedFleets", "Names", StackName=stack)
            fleets = sorted({n for page in pages for n in page if n})
        except _Failed as exc:
            result.errors[(stack, "*")] = exc.what
            continue
        pairs.extend((stack, f) for f in fleets)
    states: dict[str, str] = {}
    if pairs:
        try:
            for page in call.pages("describe_fleets", "DescribeFleets", "Fleets"):
                for f in page:
                    if f.get("Name"):
                        states[f["Name"]] = str(f.get("State") or "")
        except _Failed:
            states = {}  # unknown states: ask about every pair
    stopped = [p for p in pairs if states.get(p[1]) in STOPPED_STATES]
    return [p for p in pairs if p not in stopped], stopped


def poll(client: Any, stacks: Iterable[Pair] | None = None, sleep: Callable[[float], None] = time.sleep,
         max_attempts: int = 6, *, backoff: Backoff | None = None,
         auth_types: Iterable[str] = AUTH_TYPES, should_stop: Callable[[], bool] | None = None) -> PollResult:
    """One poll of the sessions that are live now.

    ``stacks``: the (stack, fleet) pairs to ask about; None or empty: discover them.
    ``sleep``/``backoff``: the retry waits (tests inject both); ``max_attempts`` per call.
    ``should_stop``: checked before each pair (e.g. Lambda time running out); the pairs left are
    recorded in ``errors`` as not polled.
    """
    result = PollResult()
    call = _Caller(client, sleep, max_attempts, backoff or Backoff(), result)
    if stacks:
        pairs = sorted({(str(s), str(f)) for s, f in stacks})
        stopped: list[Pair] = []
    else:
        pairs, stopped = discover(call, result)
    types = tuple(dict.fromkeys(auth_types))
    for pair in pairs:
        if should_stop is not None and should_stop():
            result.errors[pair] = "not polled: out of time"
            continue
        stack, fleet = pair
        seen: dict[str, dict[str, Any]] = {}
        try:
            for auth in types:
                label = f"DescribeSessions({stack}/{fleet}, {auth})"
                for page in call.pages("describe_sessions", label, "Sessions", StackName=stack,
                                       FleetName=fleet, AuthenticationType=auth, Limit=PAGE_LIMIT):
                    for s in page:
                        if isinstance(s, dict) and s.get("Id"):
                            seen.setdefault(s["Id"], s)
        except _Failed as exc:
            result.errors[pair] = exc.what
        else:
            result.polled.append(pair)
        result.sessions.extend(seen.values())
    result.polled.extend(stopped)
    result.polled.sort()
    return result


def parse_stacks(text: str | None) -> list[Pair]:
    """``"stack:fleet,stack2:fleet2"`` (an environment variable) -> pairs; empty -> ``[]`` (discover)."""
    pairs: list[Pair] = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        stack, sep, fleet = item.partition(":")
        if not sep or not stack.strip() or not fleet.strip():
            raise ValueError(f"stack/fleet pair {item!r} is not 'stack:fleet'")
        pairs.append((stack.strip(), fleet.strip()))
    return pairs


def appstream_client(session: Any | None = None, region: str | None = None) -> Any:
    """A boto3 AppStream client without SDK retries: :func:`poll` is the one retry layer (throttling,
    5xx and network errors, with backoff), so the two never multiply."""
    import boto3
    from botocore.config import Config as BotoConfig

    cfg = BotoConfig(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=20)
    return (session or boto3.session.Session()).client("appstream", region_name=region, config=cfg)


def caller_account(region: str | None = None, session: Any | None = None) -> str | None:
    """The account of the credentials in use (STS GetCallerIdentity), or None if it cannot be had."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return str((session or boto3.session.Session()).client("sts", region_name=region)
                   .get_caller_identity()["Account"])
    except (BotoCoreError, ClientError, KeyError):
        return None


class LivePoller:
    """One per Lambda container (``poll_sessions``): the AppStream client and the pipeline are built
    once, on first use; :meth:`run` polls once and stores the observations in the lake."""

    def __init__(self, client: Any, pipeline: Any, stacks: Iterable[Pair] | None = None,
                 sleep: Callable[[float], None] = time.sleep, logger: Any = None, account_id: str | None = None,
                 region: str | None = None) -> None:
        self.client = client
        #: the account and region polled: the scope of the observations (and of its data clock)
        self.account_id = account_id
        self.region = region
        self.pipeline = pipeline
        self.stacks = list(stacks or [])
        self.sleep = sleep
        self.log = logger
        self.totals: dict[str, int] = {}

    @classmethod
    def from_env(cls, env: Any = None, logger: Any = None) -> LivePoller:
        """Settings, lake and configuration from the Lambda environment; the stack/fleet pairs from
        the configuration or ``AUDITCORR_LIVE_STACKS`` (``stack:fleet,...``; empty: discover)."""
        from auditcorr.pipeline import Pipeline, wall_clock

        from . import s3 as s3mod
        from .settings import LIVE_STACKS_ENV, Settings, config_from_env, environment

        env = environment(env)
        settings = Settings.from_env(env)
        config = config_from_env(env)
        stacks = list(config.live_stacks) or parse_stacks(env.get(LIVE_STACKS_ENV))
        lake = s3mod.open_lake(settings.lake_uri, settings.region, env)
        return cls(appstream_client(region=settings.region), Pipeline(lake, config, clock=wall_clock), stacks,
                   logger=logger, account_id=settings.account_id, region=settings.region)

    def run(self, should_stop: Callable[[], bool] | None = None) -> dict[str, int]:
        result = poll(self.client, self.stacks or None, sleep=self.sleep, should_stop=should_stop)
        observed_at = int(self.pipeline.clock())  # after the last call: "listed" = live at or before this
        outcome = self.pipeline.ingest_live(result.sessions, observed_at, result.polled, errors=result.errors,
                                            account_id=self.account_id, region=self.region)
        self.totals = {
            "sessions_observed": int(outcome.observations),
            "stacks_polled": len(result.polled),
            "stacks_failed": len(result.errors),
            "appstream_calls": result.calls,
            "appstream_retries": result.retries,
            "alerts_opened": int(getattr(outcome, "alerts_opened", 0) or 0),
        }
        if self.log is not None:
            # ids and counts only: no user names in the logs
            self.log.info("live poll stored", extra={**self.totals, "observed_at_ms": observed_at})
            for (stack, fleet), what in sorted(result.errors.items()):
                self.log.warning("stack/fleet not polled",
                                 extra={"stack": stack, "fleet": fleet, "error": what})
        return self.totals

    def emit(self, metrics: Any) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        for name, value in self.totals.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
