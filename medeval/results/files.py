"""Writing result files safely: atomic writes, streamed samples files, names that cannot escape the
output directory."""
from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import weakref
from pathlib import Path

from ..errors import MedevalError


def iter_jsonl(path: Path, error: type[Exception] = MedevalError):
    """(line number, object) for each non-blank line; `error` names the file and line of bad input."""
    try:
        with Path(path).open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise error(f"{path}: line {n}: not valid JSON ({e.msg}); each line must be one JSON object") from None
                if not isinstance(row, dict):
                    raise error(f"{path}: line {n}: expected a JSON object, got {type(row).__name__}")
                yield n, row
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 (byte offset {e.start}); convert the file to UTF-8") from None


def write_failed(path: Path, err: OSError) -> MedevalError:
    """One line naming the file and its directory for a write that failed (a full disk, a read-only or
    missing directory), instead of a traceback naming a temporary file."""
    why = err.strerror or str(err)
    hint = ("free space there or write elsewhere" if err.errno in (errno.ENOSPC, errno.EDQUOT)
            else "choose a directory you can write to")
    return MedevalError(f"{path}: cannot write it ({why}) in the directory {path.parent}; {hint}")


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory, renamed into place; on any
    failure the temporary file is removed and an OSError becomes one line naming `path` and its directory."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, usual_mode())   # mkstemp makes 0600; results are read by colleagues, as any file they write
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise write_failed(path, e) from None
        raise


class SamplesWriter:
    """Streams samples_<task>.jsonl to a temporary file, renamed into place on close. A failed write
    removes the temporary file and raises one line naming the file and its directory (`write_failed`);
    `abort()` removes it too."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = self.f = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.fchmod(fd, usual_mode())
            self.f = os.fdopen(fd, "w", encoding="utf-8")
        except OSError as e:
            self.abort()
            raise write_failed(path, e) from None
        # a writer dropped without close() (an error while scoring) leaves no temporary file behind
        self._cleanup = weakref.finalize(self, _drop, self.f, self.tmp)

    def write(self, row: dict) -> None:
        try:
            self.f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        except OSError as e:
            self.abort()
            raise write_failed(self.path, e) from None

    def close(self) -> None:
        try:
            self.f.flush()
            os.fsync(self.f.fileno())
            self.f.close()
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.abort()
            raise write_failed(self.path, e) from None
        self._cleanup.detach()

    def abort(self) -> None:
        """Drop the temporary file (nothing replaces the previous samples file)."""
        if self.f is not None:
            try:
                self.f.close()
            except OSError:   # the buffered rest cannot be flushed: the disk is full
                pass
        if self.tmp is not None:
            Path(self.tmp).unlink(missing_ok=True)


def _drop(f, tmp) -> None:
    try:
        f.close()
    except OSError:
        pass
    Path(tmp).unlink(missing_ok=True)


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
