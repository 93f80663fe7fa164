"""Where medeval keeps its files: the home directory (MEDEVAL_HOME), the generation cache and
converted models. One place, so no module reaches into a backend to find a directory."""
from __future__ import annotations

import os
from pathlib import Path


def medeval_home() -> Path:
    """$MEDEVAL_HOME, default ~/.cache/medeval."""
    return Path(os.environ.get("MEDEVAL_HOME", Path.home() / ".cache" / "medeval"))


def default_cache_dir() -> Path:
    """The generation cache unless --cache-dir / MEDEVAL_CACHE_DIR says otherwise."""
    return medeval_home() / "cache"


def models_dir() -> Path:
    """Converted models (the embedded GGUF dequantized once)."""
    return medeval_home() / "models"


def bundled_dir(kind: str) -> Path:
    """A folder medeval ships: "tasks", "prompts", "leaderboard/presets" or "leaderboard/reported".

    An installed medeval (a wheel, in any prefix) carries them inside the package as
    medeval/_bundled/<kind> (setup.py); a source checkout or editable install reads the repository's own."""
    inside = Path(__file__).resolve().parent / "_bundled" / kind
    if inside.is_dir():
        return inside
    return Path(__file__).resolve().parent.parent / kind
