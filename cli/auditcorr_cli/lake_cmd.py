"""``auditcorr lake ...``: the lake's own housekeeping.  ``lake migrate`` brings a lake written by an
earlier version up to date (auditcorr/pipeline/migration.py says what needs doing and why)."""

from __future__ import annotations

from collections import Counter

import click
import pyarrow.parquet as pq

from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr.pipeline.migration import legacy_report_days, migrate_legacy_reports
from auditcorr.schemas import CATALOG, schema_version


def file_versions(lake: Lake) -> dict[str, Counter[int]]:
    """Per table, how many files carry each schema version (footers only)."""
    out: dict[str, Counter[int]] = {}
    for name in CATALOG:
        counts: Counter[int] = Counter()
        for path in lake.files(name):
            with lake.fs.open_input_file(path) as fh:
                counts[schema_version(pq.read_schema(fh))] += 1
        if counts:
            out[name] = counts
    return out


@click.group("lake")
def lake_group() -> None:
    """The lake's housekeeping (migration between versions)."""


@lake_group.command("migrate")
@click.option("--lake", "lake_uri", default="./lake", show_default=True, help="lake folder (or s3://bucket/prefix)")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, envvar="AUDITCORR_CONFIG",
              help="TOML configuration (the [[fleets]] decide the scopes)")
@click.option("--reattribute", "reattribute_days", is_flag=True,
              help="also re-attribute the days that hold v1 activity (fills account_id and region now "
                   "rather than at the next recomputation)")
@click.option("--dry-run", is_flag=True, help="say what would change, change nothing")
def migrate_command(lake_uri: str, config_path: str | None, reattribute_days: bool, dry_run: bool) -> None:
    """Bring a lake written by an earlier version up to date.  Safe to run again."""
    from auditcorr.counts import IngestSummary

    from .main import _config

    lake = Lake.open(lake_uri)
    versions = file_versions(lake)
    for name, counts in sorted(versions.items()):
        shown = ", ".join(f"v{v}: {n}" for v, n in sorted(counts.items()))
        click.echo(f"{name}: {sum(counts.values())} file(s) ({shown}; current v{CATALOG[name].version})")
    days = legacy_report_days(lake)
    old_activity = sorted({dt for dt in lake.partitions("attributed_activity")
                           if any(_version(lake, p) < CATALOG["attributed_activity"].version
                                  for p in lake.files("attributed_activity", dt))})
    click.echo(f"v1 sessions reports to split by account and region: {len(days)} day(s)")
    click.echo(f"days with v1 activity (account_id/region empty until re-attributed): {len(old_activity)}")
    click.echo("older files are read as they are (missing columns read as null): nothing else is required")
    if dry_run:
        return
    pipe = Pipeline(lake, _config(config_path))
    done = migrate_legacy_reports(lake, pipe.scopes, pipe.completeness)
    for dt, scopes in sorted(done.items()):
        click.echo(f"  sessions {dt}: split into {', '.join(scopes) or 'nothing (no rows)'}")
    if reattribute_days and old_activity:
        summary = IngestSummary()
        pipe.reattribute(old_activity, "recompute-migrate", summary)
        click.echo(f"re-attributed {len(old_activity)} day(s); alerts opened {summary.alerts_opened}, "
                   f"closed {summary.alerts_closed}")
    click.echo("done")


def _version(lake: Lake, path: str) -> int:
    with lake.fs.open_input_file(path) as fh:
        return schema_version(pq.read_schema(fh))
