"""Reading the reporting commands' own YAML inputs (column presets, reported tables, gate policies):
yaml.safe_load, bounded in size and in alias expansion, each failure a one-line ResultsError."""
from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import MedevalError
from ..results import ResultsError
from ..spec import MAX_YAML_BYTES, _count_values


def read_yaml(path: Path, what: str) -> dict:
    """A small YAML mapping (preset, reported table, gate policy), bounded in size and alias expansion."""
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ResultsError(f"{path}: larger than {MAX_YAML_BYTES} bytes; a {what} is a few kilobytes")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ResultsError(f"{path}: cannot read {what} ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ResultsError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: a {what} must be a YAML mapping")
    try:
        _count_values(data, path)   # a YAML alias bomb expands when the values are used
    except MedevalError as e:
        raise ResultsError(str(e)) from None
    return data
