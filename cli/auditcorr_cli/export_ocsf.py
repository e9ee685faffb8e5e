"""``auditcorr export ocsf``: the click shell over ``export.export_ocsf``."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from auditcorr.lake import Lake
from auditcorr.ocsf.export import Output, export_ocsf
from auditcorr.timeparse import TimeError, parse_ms


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        ms = parse_ms(value if "T" in value or " " in value else value + "T00:00:00Z")
    except TimeError as exc:
        raise click.BadParameter(str(exc)) from exc
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@click.command("ocsf")
@click.option("--lake", required=True, help="lake folder (or s3://bucket/prefix)")
@click.option("--out", "out", required=True, help="output folder or s3://bucket/prefix (the Security Lake bucket)")
@click.option("--since", default=None, help="first UTC day (ISO time or date; whole days are exported)")
@click.option("--until", default=None, help="end (ISO time or date, exclusive at a day boundary)")
@click.option("--account", "account", default=None,
              help="account id for rows that carry none (the lake's tables have no account column for every row)")
@click.option("--region", "region", default=None, help="region for rows that carry none")
@click.option("--no-validate", is_flag=True, help="skip validating every record against the OCSF 1.6.0 schema")
def ocsf_command(lake: str, out: str, since: str | None, until: str | None, account: str | None,
                 region: str | None, no_validate: bool) -> None:
    """Write the lake as OCSF 1.6.0 Parquet in the Security Lake custom-source layout
    (DIR/ext/<source>/region=/accountId=/eventDay=/)."""
    try:
        result = export_ocsf(Lake.open(lake), Output.open(out), _when(since), _when(until),
                             fallback_account=account, fallback_region=region, validate=not no_validate)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo("\n".join(result.lines()))
