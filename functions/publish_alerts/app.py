"""publish_alerts: changed finding rows -> SNS (open once, throttled updates, close once) and
Security Hub (ASFF, one finding per ``finding_id``).

Trigger: the alerts queue (SQS, dead-letter queue + alarm), fed by an EventBridge rule on the lake
bucket for ``<prefix>/findings/dt=*/*.parquet``; ``compact-*`` files (rows already announced) are
skipped. The idempotency (DynamoDB) and the Security Hub switch are in
``auditcorr_aws.alerts``.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from auditcorr_aws.alerts import AlertPublisher
from auditcorr_aws.lambda_sqs import sqs_lambda

logger = Logger()
tracer = Tracer()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"auditcorr"})

_publisher: AlertPublisher | None = None


def publisher() -> AlertPublisher:
    """Built on first use (clients, idempotency store and settings from the environment)."""
    global _publisher
    if _publisher is None:
        _publisher = AlertPublisher.from_env(None, logger)
    return _publisher


lambda_handler = sqs_lambda(publisher, logger, tracer, metrics)
