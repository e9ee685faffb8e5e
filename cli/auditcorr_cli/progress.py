"""Progress of a long ``auditcorr ingest`` (a backfill): files done of total, records per second,
time left.  Shown on stderr only when stderr is a terminal; in a pipe, a log file or CI it stays
silent, so scripts read the same output as before.  The bar is tqdm's (docs/adr/0011-backfill.md).
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from auditcorr.counts import FileOutcome


def wants_progress(stream: IO[str] | None = None) -> bool:
    """A bar only on an interactive stderr (a pipe, a file or a closed stream: none)."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or the stream is closed
        return False


class Progress:
    """Files done of total (the bar, with tqdm's rate and time left) and records per second."""

    def __init__(self, total_files: int, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        stream = stream if stream is not None else sys.stderr
        self.enabled = wants_progress(stream) if enabled is None else enabled
        self.records = 0
        self._t0 = time.monotonic()
        self._bar: Any = None
        if self.enabled:
            from tqdm import tqdm  # imported only when a bar is shown: pipes never pay for it

            self._bar = tqdm(total=total_files, unit="file", file=stream, dynamic_ncols=True,
                             desc="ingest", mininterval=0.5, smoothing=0.1)

    def file_done(self, outcome: FileOutcome) -> None:
        self.records += outcome.records_in
        if self._bar is None:
            return
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        self._bar.set_postfix_str(f"{self.records:,} records, {self.records / elapsed:,.0f} rec/s", refresh=False)
        self._bar.update(1)

    def write(self, message: str) -> None:
        """A message that must not be torn by the bar (a rejected file)."""
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
