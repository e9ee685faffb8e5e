"""poll_sessions: the AppStream sessions live now -> the lake (``live_sessions``, ``live_polls``).

Trigger: an EventBridge schedule (every minute by default; a template parameter). One invocation is
one poll: ``DescribeSessions`` for every stack/fleet (configured, or discovered) and every
authentication type, retried with backoff when throttled; a stack that still fails is recorded
as failed and the others are stored. Writes ingested later are attributed against these
observations within minutes, long before the usage report (which stays authoritative).
The poll and its failure policy are in ``auditcorr_aws.appstream``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from auditcorr_aws.appstream import LivePoller

logger = Logger()
tracer = Tracer()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"auditcorr"})

#: stop asking about further stacks when less time than this is left (the poll is then stored)
RESERVE_MS = 15_000

_poller: LivePoller | None = None


def poller() -> LivePoller:
    """Built on first use (AppStream client, lake filesystem and config from the environment)."""
    global _poller
    if _poller is None:
        _poller = LivePoller.from_env(None, logger)
    return _poller


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    p = poller()
    try:
        return p.run(should_stop=lambda: context.get_remaining_time_in_millis() < RESERVE_MS)
    finally:
        p.emit(metrics)
