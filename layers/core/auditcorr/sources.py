"""Local input discovery: files or folders (walked recursively, in a stable order)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

#: names that are never inputs (editor droppings, OS metadata, our own quarantine notes)
_IGNORE_SUFFIXES = (".reason.json", ".DS_Store", "~")


def walk(paths: list[str]) -> Iterator[Path]:
    """Yield input files in the order given; a folder yields its files sorted by path."""
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if name.startswith(".") or name.endswith(_IGNORE_SUFFIXES):
                        continue
                    yield Path(root) / name
        else:
            yield path
