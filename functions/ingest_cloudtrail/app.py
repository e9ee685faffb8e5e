"""ingest_cloudtrail: new CloudTrail log files -> the lake (logons, S3 writes, attribution, alerts).

Trigger: the CloudTrail queue (SQS, dead-letter queue + alarm). A message body is an S3 event
notification, an EventBridge "Object Created" event or CloudTrail's own SNS delivery notification;
the same envelopes also work as a direct invocation (``sam local invoke -e events/...``).
Decode -> core pipeline -> batch response; the policy for failures is in
``auditcorr_aws.ingest``.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from auditcorr_aws.ingest import Ingestor, accept_bucket
from auditcorr_aws.lambda_sqs import sqs_lambda

logger = Logger()
tracer = Tracer()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"auditcorr"})

_ingestor: Ingestor | None = None


def ingestor() -> Ingestor:
    """Built on first use (clients, lake filesystem and config from the environment)."""
    global _ingestor
    if _ingestor is None:
        _ingestor = Ingestor.from_env(None, lambda s: accept_bucket(s.cloudtrail_bucket), logger)
    return _ingestor


lambda_handler = sqs_lambda(ingestor, logger, tracer, metrics)
