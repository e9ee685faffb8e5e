"""One writer at a time on a local lake (docs/adr/0010-concurrent-local-runs.md).

``auditcorr ingest``, ``reattribute`` and ``poll`` hold an exclusive ``fcntl`` lock on
``<lake>/_lock`` while they run; a second run waits for it (``--wait``), then gives up with exit
code 4 naming the holder.  The kernel drops the lock when its process ends in any way (exit,
crash, ``kill -9``), so a lock is never stale: the file may stay, the lock does not.  The holder's
pid, host and start time are written into the file for the message only.  A lake on S3 takes no
lock here: the Lambda path's rules hold there (ADR 0004).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson

LOCK_NAME = "_lock"
#: how long a run waits for another run's lock by default (seconds)
DEFAULT_WAIT_SECONDS = 1800.0
_POLL_SECONDS = 0.2


class LakeBusy(RuntimeError):
    """Another run holds the lake's lock and did not let go in time."""


def _holder(fd: int) -> str:
    try:
        note = orjson.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, orjson.JSONDecodeError):
        return "another run"
    if not isinstance(note, dict):
        return "another run"
    since = datetime.fromtimestamp(note.get("started_at_ms", 0) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{note.get('command', 'a run')} (pid {note.get('pid')} on {note.get('host')}, since {since})"


@contextmanager
def lake_lock(base: str, command: str, wait_seconds: float = DEFAULT_WAIT_SECONDS,
              on_wait: Callable[[str], None] | None = None,
              clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Hold the lock of the local lake at ``base`` for the block; ``on_wait`` is told once, with
    the holder, when the lock is taken by another run."""
    os.makedirs(base, exist_ok=True)
    fd = os.open(os.path.join(base, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = clock() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock() >= deadline:
                    raise LakeBusy(f"the lake {base} is locked by {_holder(fd)}") from None
                if on_wait is not None and not told:
                    on_wait(f"waiting for the lake's lock, held by {_holder(fd)}")
                    told = True
                time.sleep(_POLL_SECONDS)
        note = orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                             "started_at_ms": int(time.time() * 1000)})
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
