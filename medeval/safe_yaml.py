"""Reading a small YAML file safely, for task files and the reporting commands' inputs (presets,
reported tables, gate policies): `yaml.safe_load`, bounded in size and in alias expansion (a
"billion laughs" file expands to billions of values), and every failure one line naming the file."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import MedevalError

MAX_YAML_BYTES = 1_000_000     # these files are a few kilobytes
MAX_YAML_VALUES = 100_000      # values after expanding aliases


def load_mapping(path: Path, what: str, error: type[MedevalError] = MedevalError) -> dict:
    """The mapping at the top of `path`, a `what` file ("task", "gate policy", ...), or `error`."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise error(f"{path}: {size} bytes; {what} files are limited to {MAX_YAML_BYTES}")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what} file ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}:{where}: malformed YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    _count_values(data, path, error)
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of fields (a {what} file), got {type(data).__name__}")
    return data


def _count_values(data, path: Path, error: type[MedevalError]) -> None:
    """Walk the loaded structure as JSON would (aliases expanded), giving up past MAX_YAML_VALUES."""
    budget, stack = MAX_YAML_VALUES, [data]
    while stack:
        x = stack.pop()
        budget -= 1
        if budget < 0:
            raise error(f"{path}: more than {MAX_YAML_VALUES} values once YAML aliases (*name) are "
                        "expanded; write the values out instead of nesting aliases")
        if isinstance(x, dict):
            stack += [*x.keys(), *x.values()]
        elif isinstance(x, (list, tuple)):
            stack += x
