"""ingest_usage_report: new AppStream usage reports -> the lake (sessions, applications, re-attribution).

Trigger: the usage-report queue (SQS, dead-letter queue + alarm), fed by an EventBridge rule on the
AppStream logs bucket (AppStream creates that bucket, so no SAM S3 event can target it) for keys
under ``sessions/`` and ``applications/``; an EventBridge event also works as a direct invocation.
Decode -> core pipeline -> batch response; the policy for failures is in
``auditcorr_aws.ingest``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from auditcorr_aws.envelopes import is_sqs_batch
from auditcorr_aws.ingest import Ingestor, accept_bucket

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
copy_config_to_registered_loggers(source_logger=logger, include={"auditcorr"})

#: AppStream writes its reports at the root of its bucket under these prefixes
REPORT_PREFIXES = ("sessions/", "applications/")

_ingestor: Ingestor | None = None


def ingestor() -> Ingestor:
    """Built on first use (clients, lake filesystem and config from the environment)."""
    global _ingestor
    if _ingestor is None:
        _ingestor = Ingestor.from_env(
            None, lambda s: accept_bucket(s.appstream_logs_bucket, REPORT_PREFIXES), logger)
    return _ingestor


@tracer.capture_method(capture_response=False)
def record_handler(record: SQSRecord) -> None:
    logger.set_correlation_id(record.message_id)
    try:
        ingestor().handle(record.body)
    except Exception:
        logger.exception("message failed: left to SQS for a retry (dead-letter queue after the last)")
        raise


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId || id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ing = ingestor()
    ing.start()
    try:
        if is_sqs_batch(event):
            return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                            context=context)
        ing.handle(event)
        return {"batchItemFailures": []}
    finally:
        ing.emit(metrics)
