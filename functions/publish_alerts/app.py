"""publish_alerts: changed alert rows -> SNS (once per alert and status) and Security Hub (ASFF).

Trigger: the alerts queue (SQS, dead-letter queue + alarm), fed by an EventBridge rule on the lake
bucket for ``<prefix>/alerts/dt=*/*.parquet``; ``compact-*`` files (rows already announced) are
skipped. The idempotency (DynamoDB) and the Security Hub switch are in
``auditcorr_aws.alerts``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from auditcorr_aws.alerts import AlertPublisher
from auditcorr_aws.envelopes import is_sqs_batch

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
copy_config_to_registered_loggers(source_logger=logger, include={"auditcorr"})

_publisher: AlertPublisher | None = None


def publisher() -> AlertPublisher:
    """Built on first use (clients, idempotency store and settings from the environment)."""
    global _publisher
    if _publisher is None:
        _publisher = AlertPublisher.from_env(None, logger)
    return _publisher


@tracer.capture_method(capture_response=False)
def record_handler(record: SQSRecord) -> None:
    logger.set_correlation_id(record.message_id)
    try:
        publisher().handle(record.body)
    except Exception:
        logger.exception("message failed: left to SQS for a retry (dead-letter queue after the last)")
        raise


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId || id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    pub = publisher()
    pub.start(context)
    try:
        if is_sqs_batch(event):
            return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                            context=context)
        pub.handle(event)
        return {"batchItemFailures": []}
    finally:
        pub.emit(metrics)
