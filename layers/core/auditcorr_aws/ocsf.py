"""``export_ocsf``: keep the OCSF objects in Amazon Security Lake current (docs/adr/0009).

One scheduled run:

1. reads its state from the lake (``_state/ocsf_export/state.json``) and looks at the lake's files:
   the days whose files changed since the last look (with an overlap), plus the days a previous run
   left, are the days to export, newest first -- remembered before anything is exported;
2. assumes each custom source's provider role (``sts:AssumeRole`` with the external id the source
   was registered with) and writes through pyarrow's S3 filesystem with those credentials; the role
   may only PUT, so the export compares against the digests of what it wrote (kept in the state)
   instead of reading Security Lake back, and never deletes (``incremental.WriteOnlyOutput``);
3. exports one whole UTC day at a time (``auditcorr.ocsf.export.export_ocsf``), saving the state
   after each day; stops starting days when the invocation's time runs short (the rest stays for
   the next run). A day that fails (S3 or STS refused, throttled beyond the retries) stays in the
   state and the invocation fails at the end, after the other days (Errors alarm).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.fs as pafs

from auditcorr.lake import Lake
from auditcorr.ocsf.export import SOURCES, ExportResult, export_ocsf
from auditcorr.ocsf.incremental import ExportState, WriteOnlyOutput

from . import s3 as s3mod
from .settings import OcsfSettings, Settings, environment

STATE = ("ocsf_export", "state.json")
#: look back this far before the previous look: longer than an ingest function may take to write a
#: file it began uploading before the look (their timeout, 300 s), plus clock skew
OVERLAP_MS = 15 * 60_000
#: start no further day with less time left than this (or twice the longest day so far)
RESERVE_MS = 60_000
SESSION_NAME = "auditcorr-ocsf-export"


class ExportIncomplete(RuntimeError):
    """Some days could not be exported (they stay in the state for the next run)."""


@dataclass
class ExportTotals:
    """What one run did (emitted as EMF metrics)."""

    days_exported: int = 0
    days_failed: int = 0
    days_left: int = 0
    records: int = 0
    records_rejected: int = 0
    files_written: int = 0
    files_unchanged: int = 0
    files_retired: int = 0

    def add(self, result: ExportResult) -> None:
        self.days_exported += 1
        for r in result.sources.values():
            self.records += r.records
            self.records_rejected += sum(r.rejected.values())
            self.files_written += len(r.written)
            self.files_unchanged += len(r.unchanged)
            self.files_retired += len(r.deleted)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def assume_role(sts: Any, role_arn: str, external_id: str) -> Mapping[str, str]:
    """Temporary credentials of ``role_arn`` (one hour: longer than any invocation)."""
    resp = sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME, ExternalId=external_id)
    creds: Mapping[str, str] = resp["Credentials"]
    return creds


def provider_filesystem(creds: Mapping[str, str], region: str, env: Mapping[str, str]) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem signing with a provider role's credentials. (STS is called through
    boto3 rather than pyarrow's own ``role_arn=``/``external_id=``: boto3 honours the endpoint and retry
    settings of the other clients, so the same code runs against a local S3/STS in the tests.)"""
    kwargs: dict[str, Any] = {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                              "session_token": creds["SessionToken"], "region": region,
                              "allow_bucket_creation": False, "allow_bucket_deletion": False}
    endpoint = s3mod.endpoint_from_env(env)
    if endpoint:
        kwargs["endpoint_override"], kwargs["scheme"] = endpoint
    return pafs.S3FileSystem(**kwargs)


def _day_bounds(day: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


class OcsfExporter:
    """One per Lambda container (``export_ocsf``): lake, STS client and settings built once."""

    def __init__(self, lake: Lake, sts: Any, settings: Settings, ocsf: OcsfSettings,
                 env: Mapping[str, str], clock: Callable[[], int], logger: Any = None) -> None:
        self.lake = lake
        self.sts = sts
        self.settings = settings
        self.ocsf = ocsf
        self.env = env
        self.clock = clock
        self.log = logger
        self.overlap_ms = OVERLAP_MS
        self.totals = ExportTotals()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, logger: Any = None) -> OcsfExporter:
        env = environment(env)
        settings = Settings.from_env(env)
        ocsf = OcsfSettings.from_env(env)
        lake = s3mod.open_lake(settings.lake_uri, settings.region, env)
        return cls(lake, s3mod.client("sts"), settings, ocsf, env, lambda: int(time.time() * 1000), logger)

    # -- outputs ----------------------------------------------------------------------------------
    def outputs(self, state: ExportState) -> dict[str, WriteOnlyOutput]:
        """Each source's output: the Security Lake bucket through its provider role (a role shared
        by several sources is assumed once), with the digests of what was written there before."""
        filesystems: dict[str, pafs.S3FileSystem] = {}
        out = {}
        for source in SOURCES:
            arn = self.ocsf.roles[source]
            if arn not in filesystems:
                creds = assume_role(self.sts, arn, self.ocsf.external_id)
                filesystems[arn] = provider_filesystem(creds, self.settings.region, self.env)
            root = f"{self.ocsf.bucket}/ext/{source}"
            out[source] = WriteOnlyOutput(filesystems[arn], self.ocsf.bucket,
                                          manifest=state.written.setdefault(root, {}))
        return out

    # -- one run ----------------------------------------------------------------------------------
    def run(self, remaining_ms: Callable[[], int]) -> dict[str, int]:
        self.totals = t = ExportTotals()
        path = self.lake.state_path(*STATE)
        state = ExportState.from_json(self.lake.get_json(path))
        todo = state.plan(self.lake, self.clock(), self.overlap_ms)
        self.lake.put_json(path, state.to_json())  # the changed days are remembered first
        failed: list[str] = []
        outputs: dict[str, WriteOnlyOutput] | None = None
        longest_ms = 0
        for day in todo:
            if remaining_ms() < max(RESERVE_MS, 2 * longest_ms):
                break
            if outputs is None:  # the roles are assumed only when a day is exported
                outputs = self.outputs(state)
            started = time.monotonic()
            since, until = _day_bounds(day)
            try:
                result = export_ocsf(self.lake, outputs[SOURCES[0]], since, until, outputs=outputs,
                                     fallback_account=self.settings.account_id,
                                     fallback_region=self.settings.region)
            except OSError as exc:  # pyarrow's S3 errors (access denied, throttled, 5xx)
                failed.append(day)
                t.days_failed += 1
                if self.log is not None:
                    self.log.warning("OCSF export of a day failed; kept for the next run",
                                     extra={"day": day, "error": type(exc).__name__, "detail": str(exc)[:300]})
                continue
            longest_ms = max(longest_ms, int((time.monotonic() - started) * 1000))
            t.add(result)
            state.done(day)
            self.lake.put_json(path, state.to_json())
            if self.log is not None:  # counts only: no user names in the logs
                self.log.info("OCSF day exported", extra={"day": day, **{
                    s: {"records": r.records, "written": len(r.written), "unchanged": len(r.unchanged),
                        "retired": len(r.deleted), "rejected": dict(r.rejected)}
                    for s, r in result.sources.items()}})
        t.days_left = len(state.todo)
        if failed:
            raise ExportIncomplete(f"{len(failed)} day(s) not exported, kept for the next run: {', '.join(failed)}")
        return t.as_dict()

    def emit(self, metrics: Any) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        for name, value in self.totals.as_dict().items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
