"""``auditcorr ingest`` shows progress on a terminal and stays quiet in a pipe.

The terminal case runs the real command with stderr on a pseudo-terminal (``pty``), so the
decision is the one a user gets, not a flag the test sets.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import T0, ct_name, put, trail

N_FILES = 6
N_PER_FILE = 5


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    for n in range(N_FILES):
        recs = [put(T0 + timedelta(minutes=n, seconds=i), "10.40.0.5", key=f"k/{n}/{i}") for i in range(N_PER_FILE)]
        p = root / ct_name(n)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(trail(recs))
    return root


def _cmd(lake: Path, inbox: Path) -> list[str]:
    code = "import sys; from auditcorr_cli.main import main; sys.exit(main())"
    return [sys.executable, "-c", code, "ingest", "--lake", str(lake), str(inbox)]


def _env() -> dict[str, str]:
    root = Path(__file__).resolve().parents[2]
    paths = [str(root / p) for p in ("layers/core", "cli", "sim", ".")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), COLUMNS="120")


def test_progress_on_a_terminal(tmp_path: Path, inbox: Path) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a real terminal's size
    proc = subprocess.Popen(_cmd(tmp_path / "lake", inbox), stdout=subprocess.PIPE, stderr=follower,
                            stdin=subprocess.DEVNULL, env=_env())
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stdout, _ = proc.communicate(timeout=120)
    os.close(leader)
    assert proc.returncode == 0
    err = b"".join(chunks).decode(errors="replace")
    # files done of total, the records seen, a rate and time left
    assert f"{N_FILES}/{N_FILES}" in err
    assert f"{N_FILES * N_PER_FILE:,} records" in err
    assert re.search(r"[\d,]+ rec/s", err)
    assert re.search(r"<\d\d:\d\d", err), err  # tqdm's "elapsed<left"
    # the summary still goes to stdout, untouched by the bar
    assert b"ingest summary" in stdout and b"\r" not in stdout


def test_quiet_in_a_pipe(tmp_path: Path, inbox: Path) -> None:
    proc = subprocess.run(_cmd(tmp_path / "lake", inbox), capture_output=True, env=_env(), timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    assert b"ingest summary" in proc.stdout
    assert proc.stderr == b""  # no bar, no carriage returns, nothing
    assert f"{N_FILES * N_PER_FILE}".encode() in proc.stdout  # and the files were ingested
