"""``auditcorr backfill``: onboard an existing trail and report history on AWS (the objects are
enqueued into the ingest queues in delivery order; the Lambdas do the ingesting).  The AWS code is
``auditcorr_aws.backfill``; this is the shell around it."""

from __future__ import annotations

import sys
from datetime import date
from typing import Any

import click
import orjson


def _date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from exc


@click.command("backfill")
@click.option("--trail", "trails", multiple=True, metavar="S3_URI",
              help="the trail's bucket and prefix, e.g. s3://org-trail/ or s3://bucket/cloudtrail/ (repeatable)")
@click.option("--reports", "reports", multiple=True, metavar="S3_URI",
              help="an AppStream report bucket, s3://appstream-logs-<region>-<account>-<id>/ (repeatable)")
@click.option("--since", required=True, help="first day (UTC, YYYY-MM-DD)")
@click.option("--until", required=True, help="last day, included (UTC, YYYY-MM-DD)")
@click.option("--queue-cloudtrail", default=None, help="URL of the CloudTrail ingest queue (stack output)")
@click.option("--queue-reports", default=None, help="URL of the usage-report ingest queue (stack output)")
@click.option("--region", default=None, help="region written into the messages (default: the session's)")
@click.option("--dry-run", is_flag=True, help="list and count, send nothing")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def backfill_command(trails: tuple[str, ...], reports: tuple[str, ...], since: str, until: str,
                     queue_cloudtrail: str | None, queue_reports: str | None, region: str | None,
                     dry_run: bool, fmt: str) -> None:
    """Enqueue an existing trail's log files and AppStream usage reports for ingestion, in delivery order.

    Safe to run again or over days already ingested: every object is ingested once (manifests)."""
    from auditcorr_aws import backfill as bf
    from auditcorr_aws import s3 as s3mod

    if not trails and not reports:
        raise click.UsageError("give at least one --trail or --reports location")
    first, last = _date(since, "--since"), _date(until, "--until")
    queues = {k: v for k, v in (("cloudtrail", queue_cloudtrail), ("report", queue_reports)) if v}
    if not dry_run:
        if trails and "cloudtrail" not in queues:
            raise click.UsageError("--trail needs --queue-cloudtrail (or use --dry-run)")
        if reports and "report" not in queues:
            raise click.UsageError("--reports needs --queue-reports (or use --dry-run)")
    try:
        trail_locs = [bf.Location.parse(u) for u in trails]
        report_locs = [bf.Location.parse(u) for u in reports]
        s3 = s3mod.client("s3")
        sqs = None if dry_run else s3mod.client("sqs")
        region = region or s3.meta.region_name or "us-east-1"
        progress: Any = None
        if not dry_run and sys.stderr.isatty():
            from tqdm import tqdm

            progress = tqdm(unit="msg", desc="enqueue", file=sys.stderr)
        try:
            result, _found = bf.backfill(s3, sqs, trail_locs, report_locs, first, last, queues, region,
                                         dry_run=dry_run, on_batch=progress.update if progress else None)
        finally:
            if progress is not None:
                progress.close()
    except bf.BackfillError as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "json":
        click.echo(orjson.dumps(result.as_dict()).decode())
        return
    verb = "would enqueue" if dry_run else "enqueued"
    counts = result.found if dry_run else result.sent
    click.echo(f"{verb} {counts.get('cloudtrail', 0)} CloudTrail file(s) and {counts.get('report', 0)} "
               f"report(s) ({result.bytes_found / 1e6:.1f} MB) for {first}..{last}; "
               f"{result.prefixes_listed} day prefix(es) listed")
    if result.first_delivery:
        click.echo(f"delivery order from {result.first_delivery:%Y-%m-%dT%H:%MZ} "
                   f"to {result.last_delivery:%Y-%m-%dT%H:%MZ}")
