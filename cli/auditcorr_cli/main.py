"""``auditcorr``: the command-line shell over the core, on the embedded default (local lake + DuckDB)."""

from __future__ import annotations

import csv
import io
import logging
import sys
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import orjson
import pyarrow as pa

from auditcorr import config as cfgmod
from auditcorr.counts import IngestSummary
from auditcorr.lake import Lake
from auditcorr.pipeline import Pipeline
from auditcorr.sources import walk

from .evidence import evidence

DEFAULT_LAKE = "./lake"

#: exit codes (README, "Command line")
EXIT_OK = 0  # everything in / nothing wrong
EXIT_REFUSED = 1  # some input quarantined or records rejected; damaged lake files found
EXIT_USAGE = 2  # usage, configuration or environment error (a bad argument, SQL, config, lake path)
EXIT_INTERNAL = 3  # a bug: one line on stderr, the traceback with -v
EXIT_BUSY = 4  # another run held the lake's lock past --wait


class UserError(click.ClickException):
    """A clear message and exit code 2, without click's usage text."""

    exit_code = EXIT_USAGE


class InternalError(click.ClickException):
    exit_code = EXIT_INTERNAL


class Busy(click.ClickException):
    exit_code = EXIT_BUSY


class Shell(click.Group):
    """The command group: no command ends in a traceback (``-v`` prints it before the message)."""

    def invoke(self, ctx: click.Context) -> Any:
        from auditcorr.lake import LakePathError

        from .lakelock import LakeBusy

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except LakeBusy as exc:
            raise Busy(str(exc)) from exc
        except (LakePathError, OSError) as exc:
            _trace(ctx)
            raise UserError(f"{type(exc).__name__}: {_first_line(exc)}") from exc
        except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, never a traceback
            _trace(ctx)
            raise InternalError(f"internal error ({type(exc).__name__}: {_first_line(exc)}); "
                                "run with -v for the traceback") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def _trace(ctx: click.Context) -> None:
    if ctx.params.get("verbose"):
        traceback.print_exc(file=sys.stderr)


def _config(path: str | None) -> cfgmod.Config:
    try:
        return cfgmod.load(path)
    except cfgmod.ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def _lake(uri: str) -> Lake:
    return Lake.open(uri)


wait_opt = click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=1800.0, show_default=True,
                        help="seconds to wait for another run's lock on the lake (then exit code 4)")


@contextmanager
def _writer(lake: str, command: str, wait_seconds: float) -> Iterator[Lake]:
    """The lake, held for one writing command (a local lake: its lock, ADR 0010)."""
    from .lakelock import lake_lock

    opened = _lake(lake)
    if not opened.is_local:
        yield opened
        return
    with lake_lock(opened.base, command, wait_seconds, on_wait=lambda m: click.echo(m, err=True)):
        yield opened


@contextmanager
def _reader(lake: str) -> Iterator[Lake]:
    yield _lake(lake)


def _warn_damaged(lake: Lake) -> None:
    for path, reason in sorted(lake.damaged.items()):
        click.echo(f"warning: skipped damaged lake file {path}: {reason} (see `auditcorr lake check`)", err=True)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, list):
        return ";".join(_cell(x) for x in v)
    return str(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    try:
        return table.to_pylist()
    except (OverflowError, ValueError, pa.ArrowException):
        # values Python cannot hold (dates past year 9999, ...): show Arrow's own text for them
        import pyarrow.compute as pc

        cols = {n: pc.cast(c, pa.string(), safe=False) if not pa.types.is_string(c.type) else c
                for n, c in zip(table.column_names, table.columns, strict=True)}
        return pa.table(cols).to_pylist()


def render(table: pa.Table, fmt: str, max_width: int = 60) -> str:
    rows = _rows(table)
    cols = table.column_names
    if fmt == "json":
        return orjson.dumps([_jsonable(r) for r in rows], default=str).decode()
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([_cell(r[c]) for c in cols])
        return buf.getvalue().rstrip("\n")
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def summary_text(summary: IngestSummary) -> str:
    lines = ["ingest summary (records: in = written + duplicates + skipped + rejected)"]
    hdr = (f"  {'file type':<20} {'files':>6} {'bad':>4} {'in':>9} {'written':>9} {'dup':>7} {'skipped':>8} "
           f"{'rejected':>8}")
    lines.append(hdr)
    for kind, r in sorted(summary.by_kind().items()):
        lines.append(f"  {kind:<20} {r['files']:>6} {r['files_rejected']:>4} {r['records_in']:>9} {r['written']:>9} "
                     f"{r['duplicates']:>7} {r['skipped']:>8} {r['rejected']:>8}")
    reasons = summary.reasons()
    if reasons:
        lines.append("  reasons:")
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"    {n:>8}  {reason}")
    lines.append(f"  alerts opened: {summary.alerts_opened}, closed: {summary.alerts_closed}; "
                 f"partitions re-attributed: {len(set(summary.recomputed_days))}")
    lines.append(f"  findings opened: {summary.findings_opened}, closed: {summary.findings_closed}")
    conflicts = sum(len(f.conflicts) for f in summary.files)
    if conflicts:
        lines.append(f"  WARNING: {conflicts} duplicate eventID(s) with different content (first kept; "
                     "see the event_id_conflicts table)")
    if not summary.reconciles:
        lines.append("  WARNING: counts do not reconcile (please report a bug)")
    return "\n".join(lines)


def run_ingest(pipe: Pipeline, paths: list[str], summary: IngestSummary | None = None,
               echo: Any = None, progress: bool | None = False) -> IngestSummary:
    """Ingest files or folders in order.  ``progress``: None shows a bar when stderr is a terminal."""
    from .progress import Progress

    summary = summary or IngestSummary()
    files = list(walk(paths))  # the total for the bar; names only, the bytes are read one by one
    bar = Progress(len(files), enabled=progress)
    try:
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                from auditcorr.counts import FileOutcome

                out = FileOutcome(source=str(path), kind="unreadable", error=f"cannot read: {exc.strerror}")
            else:
                out = pipe.ingest_object(str(path), data, summary=summary, metadata=_digest_sidecar(path))
            summary.files.append(out)
            bar.file_done(out)
            if echo and out.error and out.kind != "unreadable":
                (bar.write if bar.enabled else echo)(f"rejected {path}: {out.error}")
    finally:
        bar.close()
    return summary


def _digest_sidecar(path: Any) -> dict[str, Any] | None:
    """A digest's saved ``head-object`` output (``<digest>.metadata.json``), if there is one."""
    from auditcorr.integrity.local import METADATA_SUFFIX, sidecar_document

    if "CloudTrail-Digest" not in str(path):
        return None
    return sidecar_document(path.with_name(path.name + METADATA_SUFFIX))


lake_opt = click.option("--lake", default=DEFAULT_LAKE, show_default=True, help="lake folder (or s3://bucket/prefix)")
config_opt = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                          envvar="AUDITCORR_CONFIG", show_envvar=True,
                          help="TOML configuration (default: $AUDITCORR_CONFIG, else built-in defaults)")
fmt_opt = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                       show_default=True)


@click.group(cls=Shell, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="more log output on stderr")
@click.version_option(package_name="auditcorr")
def main(verbose: int) -> None:
    """Attribute S3 writes made inside Amazon AppStream 2.0 to the user and session behind them."""
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


@main.command()
@lake_opt
@config_opt
@wait_opt
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.pass_context
def ingest(ctx: click.Context, lake: str, config_path: str | None, wait_seconds: float,
           paths: tuple[str, ...]) -> None:
    """Ingest CloudTrail log files and AppStream usage reports (files or folders, in order).

    Exit code 1 when an input was quarantined or a record rejected (the summary says which)."""
    cfg = _config(config_path)
    with _writer(lake, "ingest", wait_seconds) as opened:
        summary = run_ingest(Pipeline(opened, cfg), list(paths), echo=lambda m: click.echo(m, err=True),
                            progress=None)
    click.echo(summary_text(summary))
    _warn_damaged(opened)
    refused = sum(r["files_rejected"] + r["rejected"] for r in summary.by_kind().values())
    if refused or opened.damaged:
        ctx.exit(EXIT_REFUSED)


@main.command()
@lake_opt
@config_opt
@wait_opt
def reattribute(lake: str, config_path: str | None, wait_seconds: float) -> None:
    """Re-check partitions that still hold pending writes (run daily, or after late reports)."""
    cfg = _config(config_path)
    summary = IngestSummary()
    with _writer(lake, "reattribute", wait_seconds) as opened:
        pipe = Pipeline(opened, cfg)
        days = pipe.pending_days()
        pipe.reattribute(days, "recompute-scheduled", summary)
    _warn_damaged(opened)
    click.echo(f"re-attributed {len(days)} partition(s); alerts opened {summary.alerts_opened}, "
               f"closed {summary.alerts_closed}")


def _runner(lake: str) -> Any:
    """A query runner over the lake that skips damaged files and names them on stderr at the end."""
    from .query.engine import LakeRunner

    runner = LakeRunner(_lake(lake))
    ctx = click.get_current_context()

    def done() -> None:
        runner.close()
        _warn_damaged(runner.lake)

    ctx.call_on_close(done)
    return runner


@main.command()
@lake_opt
@fmt_opt
@click.option("--athena", is_flag=True,
              help="run on Amazon Athena instead (awswrangler; database/workgroup from $AUDITCORR_ATHENA_DATABASE"
                   " / $AUDITCORR_ATHENA_WORKGROUP, default auditcorr); --lake is then not used")
@click.argument("sql")
def query(lake: str, fmt: str, sql: str, athena: bool = False) -> None:
    """Run Athena (Trino) SQL over the lake's tables, locally in DuckDB (or on Athena with --athena)."""
    from .query.trino import UnsupportedSQL

    if athena:
        from auditcorr_aws.athena import AthenaQueryError, runner  # lazily: boto3/awswrangler only here

        try:
            click.echo(render(runner()(sql, []), fmt))
        except AthenaQueryError as exc:
            raise UserError(str(exc)) from exc
        return
    from sqlglot.errors import SqlglotError

    try:
        result = _runner(lake)(sql, [])
    except UnsupportedSQL as exc:
        raise UserError(str(exc)) from exc
    except SqlglotError as exc:  # SQL the translator cannot even read (an open quote, ...)
        raise UserError(f"query failed: not valid SQL ({type(exc).__name__}: {_first_line(exc)})") from exc
    except Exception as exc:  # noqa: BLE001 - engine errors are user errors here
        if type(exc).__module__.startswith(("duckdb", "_duckdb")):  # duckdb's errors live in _duckdb
            raise UserError(f"query failed: {exc}") from exc
        raise
    click.echo(render(result, fmt))


@main.command()
@lake_opt
@fmt_opt
@click.option("--status", type=click.Choice(["open", "closed", "all"]), default="open", show_default=True)
@click.option("--rule", default=None, help="only this rule")
@click.option("--suppressed", is_flag=True, help="also show signals a [[suppress]] entry matched")
def alerts(lake: str, fmt: str, status: str, rule: str | None, suppressed: bool) -> None:
    """List alerts, the signals (latest state of each); `findings` groups them."""
    from .query import analyst

    t = analyst.alerts(_runner(lake), None if status == "all" else status, rule, suppressed)
    if fmt == "table":
        t = t.select(["event_time", "severity", "rule", "status", "user_id", "source_ip", "claimed_session_id",
                      "session_id", "bucket", "key", "alert_id"] + (["suppressed_by"] if suppressed else []))
    click.echo(render(t, fmt, max_width=44))


@main.command()
@lake_opt
@fmt_opt
@click.option("--status", type=click.Choice(["open", "closed", "suppressed", "all"]), default="open",
              show_default=True)
@click.option("--rule", default=None, help="only this rule")
@click.option("--suppressed", is_flag=True, help="with --status all: include suppressed findings")
def findings(lake: str, fmt: str, status: str, rule: str | None, suppressed: bool) -> None:
    """List findings (signals grouped by rule, key and dedup window), latest state of each."""
    from .query import analyst

    t = analyst.findings(_runner(lake), None if status == "all" else status, rule, suppressed)
    if fmt == "table":
        t = t.select(["first_event_time", "last_event_time", "severity", "rule", "status", "event_count",
                      "suppressed_count", "group_key", "finding_id"])
    click.echo(render(t, fmt, max_width=44))


@main.command()
@lake_opt
@fmt_opt
@click.option("--bucket", required=True)
@click.option("--key", required=True)
def who(lake: str, fmt: str, bucket: str, key: str) -> None:
    """Who wrote this object: write -> IP and time -> session -> user -> logon."""
    from .query import analyst

    t = analyst.who(_runner(lake), bucket, key)
    if fmt != "table":
        click.echo(render(t, fmt))
        return
    rows = t.to_pylist()
    if not rows:
        click.echo(f"no write of s3://{bucket}/{key} in the lake")
        return
    click.echo("\n".join(analyst.evidence_chain(rows)))


def _time(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    from auditcorr.timeparse import TimeError, parse_ms

    try:
        ms = parse_ms(value if "T" in value or " " in value else value + "T00:00:00Z")
    except TimeError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError) as exc:  # its offset takes it past year 9999 or before year 1
        raise click.BadParameter(f"{value!r} is outside years 1 to 9999 in UTC") from exc


@main.command()
@lake_opt
@fmt_opt
@click.option("--user", required=True, help="the user id (SAML subject)")
@click.option("--since", default=None, help="ISO time or date (UTC); default: 30 days before --until")
@click.option("--until", default=None, help="ISO time or date (UTC); default: now")
def timeline(lake: str, fmt: str, user: str, since: str | None, until: str | None) -> None:
    """A user's logons, sessions, writes and alerts, in order."""
    from .query import analyst

    end = _time(until, datetime.now(UTC) + timedelta(days=1))
    start = _time(since, end - timedelta(days=30) if end > datetime.min.replace(tzinfo=UTC) + timedelta(days=30)
                  else datetime.min.replace(tzinfo=UTC))
    click.echo(render(analyst.timeline(_runner(lake), user, start, end), fmt, max_width=70))


def _report_sessions(folder: str) -> list[dict[str, Any]]:
    """Every session in the sessions reports under ``folder`` (what the simulated API serves)."""
    from auditcorr.ingest.cloudtrail import UnreadableObject
    from auditcorr.ingest.usage import parse_usage_report, report_kind

    rows: list[dict[str, Any]] = []
    for path in walk([folder]):
        if report_kind(str(path)) == "sessions_report":
            try:
                rows += parse_usage_report(path.read_bytes(), str(path)).table.to_pylist()
            except UnreadableObject:
                continue
    return rows


@main.command()
@lake_opt
@config_opt
@click.option("--stack", "stacks", multiple=True, metavar="STACK:FLEET",
              help="stack/fleet pair to poll (repeatable); default: [live] stacks in the config, else discover")
@click.option("--region", default=None, help="AWS region of the AppStream stacks")
@click.option("--account", default=None, help="the AppStream account (default: the caller's, or the fake world's)")
@click.option("--fake-world", type=click.Path(exists=True, file_okay=False), default=None,
              help="poll a simulated AppStream API serving the sessions of a world made by `demo --keep`")
@click.option("--at", "at", default=None, help="with --fake-world: the simulated time of the poll (ISO, UTC)")
def poll(lake: str, config_path: str | None, stacks: tuple[str, ...], region: str | None, account: str | None,
         fake_world: str | None, at: str | None) -> None:
    """Poll the AppStream API (DescribeSessions) once and store the live sessions in the lake."""
    from auditcorr_aws.appstream import LivePoller, parse_stacks

    cfg = _config(config_path)
    pairs = parse_stacks(",".join(stacks)) if stacks else list(cfg.live_stacks)
    if fake_world:
        from auditcorr_sim.fake_appstream import FakeAppStream

        now = _time(at, datetime.now(UTC))
        now_ms = int(now.timestamp() * 1000)
        rows = _report_sessions(fake_world)
        client: Any = FakeAppStream.from_world(rows)
        client.now_ms = now_ms
        pipe = Pipeline(_lake(lake), cfg, clock=lambda: now_ms)
        account = account or next((r.get("aws_account_id") for r in rows if r.get("aws_account_id")), None)
        region = region or next((r.get("region") for r in rows if r.get("region")), None)
    else:
        from auditcorr_aws.appstream import appstream_client, caller_account

        client = appstream_client(region=region)
        pipe = Pipeline(_lake(lake), cfg)
        account = account or caller_account(region)
    with _writer(lake, "poll", 1800.0):
        totals = LivePoller(client, pipe, pairs, account_id=account, region=region).run()
    click.echo(", ".join(f"{k}={v}" for k, v in totals.items()))


@main.command()
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="keep the generated inputs and the lake in this folder")
@click.option("--seed", default=7, show_default=True)
def demo(keep: str | None, seed: int) -> None:
    """Generate a synthetic AppStream world, ingest it in arrival order, show what auditcorr finds."""
    from auditcorr_sim.demo import run_demo

    run_demo(keep, seed, click.echo)


@main.group()
def export() -> None:
    """Export the lake in other formats (ocsf: Amazon Security Lake custom sources)."""


from .export_ocsf import ocsf_command  # noqa: E402 - registered next to its group

export.add_command(ocsf_command)

from .backfill import backfill_command  # noqa: E402 - AWS only; boto3 is imported inside the command

main.add_command(backfill_command)

from .lake_cmd import lake_group  # noqa: E402

main.add_command(lake_group)


@lake_group.command("check")
@lake_opt
@click.option("--move-aside", is_flag=True, help="move each damaged file to <lake>/_damaged/<table>/dt=.../")
@wait_opt
@click.pass_context
def lake_check(ctx: click.Context, lake: str, move_aside: bool, wait_seconds: float) -> None:
    """List table files no reader can use (empty, not Parquet, truncated, another table's, bad pages).

    Exit code 1 when a damaged file is left in place, 0 when there is none (or all were moved)."""
    with _writer(lake, "lake check --move-aside", wait_seconds) if move_aside else _reader(lake) as opened:
        found = opened.check()
        for table, path, reason in found:
            if move_aside:
                click.echo(f"moved {path} -> {opened.move_aside(table, path, reason)}: {reason}")
            else:
                click.echo(f"{path}: {reason}")
    click.echo(f"{len(found)} damaged file(s){' moved aside' if move_aside and found else ''}")
    if found and not move_aside:
        ctx.exit(EXIT_REFUSED)



@main.group()
def rules() -> None:
    """Detection rules: replay a configuration change over the lake's history."""


@rules.command("replay")
@lake_opt
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), required=True,
              help="the NEW configuration (TOML) to evaluate")
@click.option("--since", default=None, help="first day (UTC, YYYY-MM-DD or an ISO time); default: the lake's first")
@click.option("--until", default=None, help="last day (UTC); default: the lake's last")
@click.option("--now", default=None, help="the pipeline clock to evaluate at (default: now)")
@click.option("--examples", default=3, show_default=True, help="example findings shown per rule and change")
def rules_replay(lake: str, config_path: str, since: str | None, until: str | None, now: str | None,
                 examples: int) -> None:
    """What the findings would be under NEW configuration: opened, closed, changed (nothing is written)."""
    from auditcorr.replay import replay

    config = _config(config_path)
    at = _time(now, datetime.now(UTC))
    since_ms = int(_time(since, at).timestamp() * 1000) if since else None
    until_ms = int(_time(until, at).timestamp() * 1000) if until else None
    res = replay(_lake(lake), config, int(at.timestamp() * 1000), since_ms, until_ms)
    span = f"{res.days[0]} .. {res.days[-1]}" if res.days else "no write days"
    click.echo(f"replay of {config_path} over {len(res.days)} day(s) ({span}; {res.writes} writes, "
               f"{res.sessions} sessions) as of {at.strftime('%Y-%m-%dT%H:%M:%SZ')}: nothing is written")
    if res.changed.num_rows == 0:
        click.echo("no finding would change")
        return
    click.echo(f"{'rule':<28} {'open':>6} {'close':>6} {'change':>6} {'suppress':>8}   signals opened / closed")
    for rule in sorted(set(res.per_rule) | set(res.signals)):
        c: Counter[str] = res.per_rule.get(rule, Counter())
        s: Counter[str] = res.signals.get(rule, Counter())
        click.echo(f"{rule:<28} {c.get('open', 0):>6} {c.get('close', 0):>6} {c.get('change', 0):>6} "
                   f"{c.get('suppress', 0):>8}   "
                   f"{s.get('open', 0)} / {s.get('closed', 0)}")
    rows = res.changed.to_pylist()
    for kind, verb in (("open", "would open"), ("close", "would close"), ("change", "would change"),
                       ("suppress", "would be suppressed")):
        picked = [r for r, k in zip(rows, res.change, strict=True) if k == kind]
        if not picked:
            continue
        click.echo(f"\n{verb} ({len(picked)}):")
        shown: dict[str, int] = {}
        for r in sorted(picked, key=lambda x: (x["rule"], x["first_event_time"], x["finding_id"])):
            if shown.get(r["rule"], 0) >= examples:
                continue
            shown[r["rule"]] = shown.get(r["rule"], 0) + 1
            why = f" ({r['status_reason']})" if r.get("status_reason") else ""
            click.echo(f"  {r['rule']:<26} {r['status']:<10} {r['event_count']:>5} signal(s) "
                       f"{r['first_event_time']:%Y-%m-%dT%H:%M:%SZ}  {r['group_key']}{why}")


main.add_command(evidence)  # auditcorr evidence [verify]: cli/auditcorr_cli/evidence.py


if __name__ == "__main__":  # pragma: no cover
    main()
