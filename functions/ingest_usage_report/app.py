"""ingest_usage_report: new AppStream usage reports -> the lake (sessions, applications, re-attribution).

Trigger: the usage-report queue (SQS, dead-letter queue + alarm), fed by an EventBridge rule on the
AppStream logs buckets (``AppStreamLogsBucketNames``: one per account and region; AppStream creates
them, so no SAM S3 event can target them; other accounts forward their events) for keys under
``sessions/`` and ``applications/``; an EventBridge event also works as a direct invocation.
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

#: AppStream writes its reports at the root of its bucket under these prefixes
REPORT_PREFIXES = ("sessions/", "applications/")

_ingestor: Ingestor | None = None


def ingestor() -> Ingestor:
    """Built on first use (clients, lake filesystem and config from the environment)."""
    global _ingestor
    if _ingestor is None:
        _ingestor = Ingestor.from_env(
            None, lambda s: accept_bucket(s.appstream_logs_buckets, REPORT_PREFIXES), logger)
    return _ingestor


lambda_handler = sqs_lambda(ingestor, logger, tracer, metrics)
