"""The one shape of every SQS-triggered handler: Powertools logging, tracing and metrics around a
worker, partial batch responses (one bad message never fails the others), and the same envelopes
accepted as a direct invocation (``sam local invoke -e events/...``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from .envelopes import is_sqs_batch


class Worker(Protocol):
    def start(self, lambda_context: Any = None) -> None: ...

    def handle(self, message: Any) -> Any: ...

    def emit(self, metrics: Metrics) -> None: ...


def sqs_lambda(worker: Callable[[], Worker], logger: Logger, tracer: Tracer,
               metrics: Metrics) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A ``lambda_handler`` that hands each message body to ``worker()`` (built on first use)."""
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    @tracer.capture_method(capture_response=False)
    def record_handler(record: SQSRecord) -> None:
        logger.set_correlation_id(record.message_id)
        try:
            worker().handle(record.body)
        except Exception:
            logger.exception("message failed: left to SQS for a retry (dead-letter queue after the last)")
            raise

    @logger.inject_lambda_context(correlation_id_path="Records[0].messageId || id", clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        w = worker()
        w.start(context)
        try:
            if is_sqs_batch(event):
                return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                                context=context)
            w.handle(event)
            return {"batchItemFailures": []}
        finally:
            w.emit(metrics)

    return lambda_handler
