"""The atheris fuzz target (fuzz/fuzz_parsers.py) cannot rot: its entry point runs on the seeds,
the regressions (inputs that once crashed a parser) and the bad-input corpus, with or without atheris."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_target():
    spec = importlib.util.spec_from_file_location("fuzz_parsers", ROOT / "fuzz" / "fuzz_parsers.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_parsers", module)
    spec.loader.exec_module(module)
    return module


TARGET = load_target()
INPUTS = TARGET.seeds() + sorted(p for p in (ROOT / "tests" / "fixtures" / "bad").rglob("*")
                                 if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts)


def test_there_are_seeds_and_regressions():
    names = {p.parent.name for p in TARGET.seeds()}
    assert names == {"seeds", "regressions"}


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_target_accepts_every_seed(path):
    data = path.read_bytes()
    TARGET.TestOneInput(data)  # only UnreadableObject may escape the parsers: anything else fails here
    for cut in (len(data) // 3, len(data) // 2, len(data) - 1):  # and their truncations
        TARGET.TestOneInput(data[: max(cut, 0)])


def test_target_flags_a_parser_bug(monkeypatch):
    # the harness really checks: a parser raising anything but UnreadableObject is reported
    import auditcorr.ingest.cloudtrail as ct

    def broken(*a, **k):
        raise KeyError("bug")

    monkeypatch.setattr(TARGET, "parse_cloudtrail", broken)
    with pytest.raises(KeyError):
        TARGET.TestOneInput(b"{}")
    assert ct.parse_cloudtrail is not broken
