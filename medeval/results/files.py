"""Writing result files safely: atomic writes, streamed samples files, names that cannot escape the
output directory."""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from ..errors import MedevalError


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, usual_mode())   # mkstemp makes 0600; results are read by colleagues, as any file they write
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SamplesWriter:
    """Streams samples_<task>.jsonl to a temporary file, renamed into place on close."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, usual_mode())
        self.f = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, row: dict) -> None:
        self.f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)


def usual_mode() -> int:
    """The mode `open()` would give a new file: 0666 less the user's umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def safe_child(directory: Path, name: str) -> Path:
    """A file inside `directory`; refuses names that would escape it."""
    if not re.fullmatch(r"[\w.\-]+", name) or name.startswith("."):
        raise MedevalError(f"refusing to write {name!r}: output file names may hold only letters, digits, '.', '_' and '-'")
    path = (directory / name).resolve()
    if path.parent != directory.resolve():
        raise MedevalError(f"refusing to write {name!r} outside the output directory {directory}")
    return path
