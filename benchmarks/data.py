"""Scale data for the harness: the demo's world generator (``generate_scale``), cached on disk.

A world is written once per (writes, sessions, records per file, seed) under the work directory
(``--workdir``, default ``$AUDITCORR_BENCH_DIR`` or ``/tmp/auditcorr-bench``) and reused by later runs;
the marker file is written last, so an interrupted generation is redone.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

DEFAULT_WORKDIR = os.environ.get("AUDITCORR_BENCH_DIR", "/tmp/auditcorr-bench")
MARKER = "_world.json"


def workdir(base: str | None = None) -> Path:
    p = Path(base or DEFAULT_WORKDIR)
    p.mkdir(parents=True, exist_ok=True)
    return p


def scale_world(base: Path, n_writes: int, n_sessions: int, records_per_file: int = 5000,
                seed: int = 7) -> tuple[Any, float | None]:
    """(ScaleWorld, seconds it took to generate, or None when it came from the cache)."""
    from auditcorr_sim import ScaleWorld, generate_scale

    root = base / f"world-{n_writes}-{n_sessions}-{records_per_file}-{seed}"
    marker = root / MARKER
    if marker.exists():
        meta = json.loads(marker.read_text())
        world = ScaleWorld(root=root, cloudtrail_files=[root / p for p in meta["cloudtrail_files"]],
                           sessions_reports=[root / p for p in meta["sessions_reports"]],
                           n_writes=meta["n_writes"], n_sessions=meta["n_sessions"], n_records=meta["n_records"])
        if all(p.exists() for p in world.cloudtrail_files):
            return world, None
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    world = generate_scale(root, n_writes=n_writes, n_sessions=n_sessions, seed=seed,
                           records_per_file=records_per_file)
    took = time.perf_counter() - t0
    marker.write_text(json.dumps({
        "cloudtrail_files": [str(p.relative_to(root)) for p in world.cloudtrail_files],
        "sessions_reports": [str(p.relative_to(root)) for p in world.sessions_reports],
        "n_writes": world.n_writes, "n_sessions": world.n_sessions, "n_records": world.n_records,
    }))
    return world, took
