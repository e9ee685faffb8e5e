"""Code that runs in child processes (each one a separate "Lambda container"), kept small so that a
spawned child imports little besides the handler itself."""

from __future__ import annotations

import os
import signal
from typing import Any


def _load(function: str, env: dict[str, str]) -> tuple[Any, Any]:
    os.environ.update(env)
    from tests.integration import aws

    aws.quiet_moto_logs()
    return aws.load_handler(function)


def invoke_after_barrier(env: dict[str, str], function: str, event: dict[str, Any], barrier: Any,
                         results: Any) -> None:
    """Run one batch; an ingest holds its first lake write until every worker is there (so all of them
    have read the lake's state before any writes), a publisher holds its start."""
    from tests.integration import aws

    module, h = _load(function, env)
    if hasattr(module, "ingestor"):
        lake = module.ingestor().pipeline.lake
        real = lake.write_file
        waited: list[bool] = []

        def write_file(*args: Any, **kwargs: Any) -> Any:
            if not waited:
                waited.append(True)
                barrier.wait(timeout=60)
            return real(*args, **kwargs)

        lake.write_file = write_file
    else:
        barrier.wait(timeout=60)
    try:
        results.put(h(event, aws.FakeContext()))
    except BaseException as exc:  # noqa: BLE001 - report anything, never leave the parent waiting
        results.put({"error": repr(exc)})


def die_in_the_middle_of_a_write(env: dict[str, str], function: str, event: dict[str, Any], nth: int) -> None:
    """Run one batch and SIGKILL this process half-way through streaming the ``nth`` lake object (the
    bytes before it are in the upload, the rest never come): what a Lambda killed on timeout, out of
    memory or by a crash of the runtime leaves behind."""
    from tests.integration import aws

    module, h = _load(function, env)
    lake = module.ingestor().pipeline.lake
    count = [0]
    real = lake.put_bytes

    def put_bytes(path: str, data: bytes) -> None:
        count[0] += 1
        if count[0] < nth:
            return real(path, data)
        lake.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        out = lake.fs.open_output_stream(path, compression=None)
        out.write(data[: max(1, len(data) // 2)])
        out.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    lake.put_bytes = put_bytes
    h(event, aws.FakeContext())
    os._exit(3)  # fewer writes than nth: the parent sees the exit code
