"""A Lambda that dies mid-way (SIGKILL of the process half-way through streaming a lake object, the way
a timeout, an out-of-memory kill or a runtime crash ends it) leaves nothing a query would read as final:
every object visible under a table is a complete Parquet file, the cut-off upload is not visible, and
the retry SQS then makes gives the tables of a clean run."""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import signal
from typing import Any

import pyarrow.parquet as pq

from auditcorr.schemas import TABLES
from tests.integration import aws
from tests.lambda_hardening import workers
from tests.lambda_hardening.harness import CT, CT_KEYS, REPORT_KEYS, UR, App, differences

#: (function, which lake object to die in): the first and a late one of a five-file CloudTrail batch, and
#: the usage report's first write (the sessions day, replacing an existing one)
KILL_POINTS = [(CT, 1), (CT, 11), (UR, 1)]


def prefix_for(function: str, nth: int) -> str:
    return f"crash-{function[:8].lower()}-{nth}"


def env_for(app: App, function: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "POWERTOOLS_"))}
    return env | app.deployment.function_env(function) | {
        "AUDITCORR_LAKE_URI": f"s3://{aws.LAKE_BUCKET}/{prefix}"}


def invoke(app: App, function: str, prefix: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    _, h = app.load(function, AUDITCORR_LAKE_URI=f"s3://{aws.LAKE_BUCKET}/{prefix}")
    return h(aws.sqs_event(bodies), aws.FakeContext())


def visible_table_objects(app: App, prefix: str) -> dict[str, bytes]:
    s3 = app.deployment.client("s3")
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.LAKE_BUCKET, Prefix=f"{prefix}/"):
        for o in page.get("Contents", []):
            table = o["Key"].split("/")[1]
            if table in TABLES and not o["Key"].endswith("/"):
                out[o["Key"]] = s3.get_object(Bucket=aws.LAKE_BUCKET, Key=o["Key"])["Body"].read()
    return out


def test_a_run_killed_mid_write_leaves_only_complete_files_and_the_retry_heals(app, clean):
    app.stage()
    for prefix in {prefix_for(f, n) for f, n in KILL_POINTS if f == UR}:
        # the report's kill point replaces a day: ingest the CloudTrail first, cleanly
        assert invoke(app, CT, prefix, [app.ct_body(k) for k in CT_KEYS]) == {"batchItemFailures": []}
    ctx = mp.get_context("spawn")
    procs = []
    for function, nth in KILL_POINTS:
        prefix = prefix_for(function, nth)
        bodies = [app.ct_body(k) for k in CT_KEYS] if function == CT else [app.report_body(k) for k in REPORT_KEYS]
        procs.append((function, nth, prefix, bodies, ctx.Process(
            target=workers.die_in_the_middle_of_a_write,
            args=(env_for(app, function, prefix), function, aws.sqs_event(bodies), nth))))
    for *_, p in procs:
        p.start()
    for *_, p in procs:
        p.join(timeout=120)

    s3 = app.deployment.client("s3")
    for function, nth, prefix, bodies, p in procs:
        assert p.exitcode == -signal.SIGKILL, f"{function} #{nth}: exit {p.exitcode} (fewer lake writes?)"
        # the cut-off object was being uploaded: an upload exists, unfinished, and no object for it
        uploads = s3.list_multipart_uploads(Bucket=aws.LAKE_BUCKET, Prefix=f"{prefix}/").get("Uploads", [])
        assert uploads, f"{function} #{nth}: no unfinished upload: the kill did not land mid-write"
        objects = visible_table_objects(app, prefix)
        for u in uploads:
            assert u["Key"] not in objects or function == UR, f"half-written {u['Key']} is visible"
        for key, body in objects.items():  # every visible table file reads whole
            f = pq.ParquetFile(io.BytesIO(body))
            assert f.read().num_rows == f.metadata.num_rows, key
        # SQS re-delivers the whole batch (the invocation never answered), to a new container
        if function == CT:
            assert invoke(app, CT, prefix, bodies) == {"batchItemFailures": []}
        assert invoke(app, UR, prefix, [app.report_body(k) for k in REPORT_KEYS]) == {"batchItemFailures": []}
        assert differences(app.snapshot(prefix), clean, parts=("tables",)) == [], f"{function} #{nth}"
