"""The leaderboard's model: `build()` turns runs (results.json, read by medeval.results), a column preset
and optional reported rows into a `Board` of rows and cells, one row per model, sorted by Average.
Rendering is elsewhere: markdown.py, html.py, charts.py (text shared by them: text.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..results import ResultsError, Run
from .presets import Preset, Reported, default_protocol


@dataclass
class Cell:
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    protocol: str = ""   # how the number was made: generate-greedy, generate-sc10, loglikelihood-0shot, ...
    n_total: int | None = None   # items in the task's split (after its filter); None: unknown

    @property
    def partial(self) -> bool:
        """Computed on fewer items than the task's split (a --limit or --shard run)."""
        return self.n is not None and self.n_total is not None and self.n < self.n_total


@dataclass
class Row:
    label: str
    cells: dict  # (column name, mode) -> Cell | None
    averages: dict = field(default_factory=dict)  # mode -> (value | None, columns used)
    partial: dict = field(default_factory=dict)   # mode -> how many of the averaged cells are partial
    reported: Reported | None = None
    runs: list = field(default_factory=list)


@dataclass
class Board:
    preset: Preset
    modes: tuple
    average: str
    rows: list[Row]
    reported: list[Reported]
    metrics: dict  # column name -> set of metric names seen
    dropped: list = field(default_factory=list)  # labels of rows with no cell in these columns and modes

    @property
    def averaged(self) -> list:
        """The columns the Average is taken over: the tasks (a group's score would count its tasks twice)."""
        return [c for c in self.preset.columns if not c.group]


def _average(cells: list[Cell | None], how: str) -> tuple[float | None, int]:
    got = [c for c in cells if c is not None]
    if not got:
        return None, 0
    if how == "weighted":
        if any(c.n is None for c in got):
            return None, len(got)
        return float(np.average([c.value for c in got], weights=[c.n for c in got])), len(got)
    return float(np.mean([c.value for c in got])), len(got)


def build(runs: list[Run], preset: Preset, modes=("greedy",), average: str = "mean",
          reported: list[Reported] = ()) -> Board:
    if average not in ("mean", "weighted"):
        raise ResultsError(f"--average must be 'mean' or 'weighted', got {average!r}")
    metrics = {c.name: set() for c in preset.columns}
    tasks = {c.task for c in preset.columns}
    groups: list[tuple[tuple, list[Run]]] = []  # runs of one model merge into a row when their tasks are disjoint
    for run in runs:
        key, mine = (run.model_id, run.revision), tasks & set(run.tasks)
        group = next((g for k, g in groups if k == key and all(not mine & set(r.tasks) for r in g)), None)
        if group is None:
            groups.append((key, [run]))
        else:
            group.append(run)
    ids = [k[0] for k, _ in groups]
    rows = []
    for (model, rev), group in groups:
        cells = {}
        for run in group:
            for col in preset.columns:
                for mode in modes:
                    if col.group:
                        cell = _group_cell(run, col.task, mode)
                        if cell is not None:
                            cells[(col.name, mode)] = cell
                            metrics[col.name].add(None)
                        continue
                    b = run.block(col.task, mode, col.metric)
                    if b is not None:
                        t = run.tasks[col.task]
                        cells[(col.name, mode)] = Cell(b["value"], b.get("ci_low"), b.get("ci_high"), b.get("n"),
                                                       default_protocol(mode, t), t.get("n_total"))
                        metrics[col.name].add(col.metric or t.get("primary_metric"))
        label = model if ids.count(model) == 1 else f"{model} ({'+'.join(r.dir.name for r in group)})"
        rows.append(Row(label, cells, runs=group))
    for rep in reported:
        for r in rep.rows:
            cells = {}
            for col in preset.columns:
                if col.task in r["scores"] and (col.metric or rep.metric) == rep.metric:
                    for mode in modes:
                        if mode == rep.mode:
                            cells[(col.name, mode)] = Cell(r["scores"][col.task], n=r["n"].get(col.task),
                                                           protocol=rep.label)
            rows.append(Row(r["name"], cells, reported=rep))
    for row in rows:
        for mode in modes:
            cells = [row.cells.get((c.name, mode)) for c in preset.columns if not c.group]
            row.averages[mode] = _average(cells, average)
            row.partial[mode] = sum(c is not None and c.partial for c in cells)
    key = modes[0]
    rows.sort(key=lambda r: (r.averages[key][0] is None, -(r.averages[key][0] or 0.0), r.label))
    kept = [r for r in rows if r.cells]
    dropped = [r.label + (f" {r.reported.marker}" if r.reported else "") for r in rows if not r.cells]
    return Board(preset, tuple(modes), average, kept, list(reported), metrics, dropped)


def _group_cell(run: Run, group: str, mode: str) -> Cell | None:
    """A group's score in a run (results.json `groups`), with the items of its member tasks as n / n_total."""
    block = (run.data.get("groups") or {}).get(group) or {}
    got = block.get(mode)
    if not isinstance(got, dict) or not isinstance(got.get("value"), (int, float)):
        return None
    members = [run.tasks.get(t) or {} for t in block.get("tasks") or []]
    n = [m.get("n") for m in members]
    n_total = [m.get("n_total") for m in members]
    known = members and all(isinstance(x, int) for x in n + n_total)
    return Cell(float(got["value"]), n=sum(n) if known else None, n_total=sum(n_total) if known else None,
                protocol=default_protocol(mode))
