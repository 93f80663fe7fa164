"""The leaderboard's inputs besides runs: column presets (leaderboard/presets/*.yaml or the user's own
YAML) and reported rows (published scores with a cited source), and the protocol names of cells."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..results import GENERATION_MODES as MODES
from ..results import ResultsError
from ..paths import bundled_dir
from ..safe_yaml import load_mapping
from ..scoring import modes

MARKERS = "†‡§¶"


@dataclass
class Column:
    name: str
    task: str
    metric: str | None = None  # None: each run's primary_metric for the task
    group: bool = False        # a group's score (results.json `groups`): shown, not part of the Average


@dataclass
class Preset:
    name: str
    title: str
    columns: list[Column]
    mode: str | None = None    # the decoding this layout is meant for (the CLI's --mode default)
    note: str | None = None    # printed under the table (e.g. the protocol of the source's columns)


def _preset_dirs() -> list[Path]:
    return [bundled_dir("leaderboard/presets")]


def load_preset(name_or_path: str) -> Preset:
    """A preset by name (leaderboard/presets/<name>.yaml) or by path to the user's own YAML."""
    path = Path(name_or_path)
    if not path.is_file():
        found = [d / f"{name_or_path}.yaml" for d in _preset_dirs() if (d / f"{name_or_path}.yaml").is_file()]
        if not found:
            known = sorted({f.stem for d in _preset_dirs() if d.is_dir() for f in d.glob("*.yaml")})
            raise ResultsError(f"preset {name_or_path!r}: no such file or named preset "
                               f"(known: {', '.join(known) or 'none'})")
        path = found[0]
    data = load_mapping(path, "preset", ResultsError)
    cols = data.get("columns")
    if not isinstance(cols, list) or not cols:
        raise ResultsError(f"{path}: 'columns' must be a non-empty list of {{name, task, metric?}}")
    columns = []
    for i, c in enumerate(cols):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(c.get("task"), str):
            raise ResultsError(f"{path}: columns[{i}] needs string fields 'name' and 'task'")
        columns.append(Column(c["name"], c["task"], c.get("metric")))
    if len({c.name for c in columns}) != len(columns):
        raise ResultsError(f"{path}: column names must be unique")
    mode = data.get("mode")
    if mode not in (None, *MODES, "both"):
        raise ResultsError(f"{path}: 'mode' must be one of greedy, sc, both, got {mode!r}")
    note = data.get("note")
    return Preset(str(data.get("name") or path.stem), str(data.get("title") or "Leaderboard"), columns,
                  mode, None if note is None else " ".join(str(note).split()))


def auto_preset(runs: list, reported: list | None = None) -> Preset:
    """The columns of what was run (no --preset): one per group scored in the runs, then one per task,
    each group's members in its order, then the other tasks by name. Display names come from results.json
    (a task's display_name; a name two tasks share falls back to the task names). Without runs, the
    tasks of the reported files."""
    groups: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for run in runs:
        for g, block in sorted((run.data.get("groups") or {}).items()):
            groups.setdefault(g, list((block or {}).get("tasks") or []))
        for t, block in run.tasks.items():
            names.setdefault(t, str(block.get("display_name") or t))
    if not names:
        names = {t: t for rep in reported or [] for r in rep.rows for t in r["scores"]}
    order = [t for g in sorted(groups) for t in groups[g] if t in names]
    order = list(dict.fromkeys(order + sorted(names)))
    shown = [names[t] for t in order]
    columns = [Column(g, g, group=True) for g in sorted(groups)]
    columns += [Column(names[t] if shown.count(names[t]) == 1 and names[t] not in groups else t, t) for t in order]
    if not columns:
        raise ResultsError("no task in the given runs: pass result directories written by `medeval run`")
    return Preset("auto", "Leaderboard", columns)


@dataclass
class Reported:
    marker: str
    citation: str
    rows: list[dict]  # {"name", "scores": {task: fraction}, "n": {task: int}, "average": float|None,
                      #  "tolerance": how far a printed average may be from the mean of its printed cells}
    verified: bool
    mode: str
    metric: str
    protocol: str | None = None   # how the source measured its numbers (prompt, decoding, samples)
    label: str = ""               # the protocol's short name (generate-greedy, loglikelihood-0shot, ...)


def _half_unit(v) -> float:
    """Half a unit of the last printed digit of a number as YAML read it (79.0 -> 0.05, 80.46 -> 0.005)."""
    text = repr(float(v))
    return 0.5 if "e" in text else 0.5 * 10.0 ** -len(text.split(".")[1])


def load_reported(path: str | Path, marker: str) -> Reported:
    """Published scores from a YAML file, or by the name of one medeval ships (`neeto_card`, ...)."""
    path = Path(path)
    shipped = bundled_dir("leaderboard/reported") / f"{path}.yaml"
    if not path.is_file() and path.name == str(path) and shipped.is_file():
        path = shipped
    data = load_mapping(path, "reported-results", ResultsError)
    src = data.get("source")
    if not isinstance(src, dict) or not (src.get("title") or src.get("url")):
        raise ResultsError(f"{path}: 'source' with a 'title' or 'url' is required: reported numbers must cite "
                           "where they come from")
    citation = ", ".join(str(src[k]) for k in ("title", "url", "revision", "retrieved") if src.get(k))
    scale = data.get("scale", "percent")
    if scale not in ("percent", "fraction"):
        raise ResultsError(f"{path}: 'scale' must be 'percent' or 'fraction', got {scale!r}")
    div = 100.0 if scale == "percent" else 1.0
    rows = []
    for i, m in enumerate(data.get("models") or []):
        if not isinstance(m, dict) or not m.get("name") or not isinstance(m.get("scores"), dict):
            raise ResultsError(f"{path}: models[{i}] needs 'name' and a 'scores' mapping of task -> value")
        scores = {}
        for task, v in m["scores"].items():
            if v is None:
                continue
            if not isinstance(v, (int, float)) or not 0 <= v / div <= 1:
                raise ResultsError(f"{path}: models[{i}].scores.{task} = {v!r} is not a {scale} value")
            scores[task] = v / div
        avg = m.get("average")
        if avg is not None and not isinstance(avg, (int, float)):
            raise ResultsError(f"{path}: models[{i}].average = {avg!r} is not a number")
        cells = [v for v in m["scores"].values() if v is not None]
        # printed cells are rounded: their mean is known to +-(mean half unit), the printed average to its own
        tol = (float(np.mean([_half_unit(v) for v in cells])) if cells else 0.0) + (
            _half_unit(avg) if avg is not None else 0.0)
        rows.append({"name": str(m["name"]), "scores": scores, "n": dict(m.get("n") or {}),
                     "average": None if avg is None else float(avg) / div, "tolerance": tol / div})
    protocol = data.get("protocol")
    if isinstance(protocol, dict):
        protocol = "; ".join(f"{k}: {v}" for k, v in protocol.items())
    mode = str(data.get("mode", "greedy"))
    return Reported(marker, citation, rows, bool(data.get("verified", False)), mode,
                    str(data.get("metric", "accuracy")), None if protocol is None else " ".join(str(protocol).split()),
                    str(data.get("protocol_label") or default_protocol(mode)))


def default_protocol(mode: str, task: dict | None = None) -> str:
    """The short name of how a mode's numbers were made, when a results file or reported table does not
    name it (the leaderboard flags a column whose rows differ in it)."""
    if task and (task.get("protocols") or {}).get(mode):
        return task["protocols"][mode]
    return modes.protocol(mode)   # without shots or k: generate-greedy, generate-sc, the loglikelihood mode's name
