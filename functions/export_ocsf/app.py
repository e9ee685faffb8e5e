"""export_ocsf: the lake's changed days -> OCSF objects in Amazon Security Lake's custom sources.

Trigger: an EventBridge schedule (every 15 minutes by default; a template parameter), deployed only
when the Security Lake parameters are set. One invocation exports the days whose lake files changed
since the last run, newest first, through each custom source's provider role; days it could not
reach stay in its state for the next run (docs/adr/0009-ocsf-export-schedule.md). The run and its
failure policy are in ``auditcorr_aws.ocsf``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from auditcorr_aws.ocsf import OcsfExporter

logger = Logger()
tracer = Tracer()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"auditcorr"})

_exporter: OcsfExporter | None = None


def exporter() -> OcsfExporter:
    """Built on first use (lake filesystem, STS client and settings from the environment)."""
    global _exporter
    if _exporter is None:
        _exporter = OcsfExporter.from_env(None, logger)
    return _exporter


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    e = exporter()
    try:
        return e.run(remaining_ms=context.get_remaining_time_in_millis)
    finally:
        e.emit(metrics)
