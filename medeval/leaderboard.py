"""Leaderboard: a model-card style table built only from result directories.

`build()` turns runs (results.json), a column preset and optional published
("reported") rows into a `Board`; `to_markdown`, `to_html` and `write_charts`
render it. Every string that comes from a results or YAML file is escaped for
the format it lands in (markdown, HTML, matplotlib text).
"""
from __future__ import annotations

import html
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .errors import MedevalError
from .results import ResultsError, read_results

MODES = ("greedy", "sc")
MARKERS = "†‡§¶"
PARTIAL = "*"


# ---------------------------------------------------------------- reading runs
@dataclass
class Run:
    dir: Path
    data: dict

    @property
    def file(self) -> Path:
        return self.dir / "results.json"

    @property
    def model_id(self) -> str:
        return str((self.data.get("model") or {}).get("id") or self.dir.name)

    @property
    def identity_hash(self) -> str | None:
        """Hash of the backend identity that produced the run (None for runs written before it existed)."""
        return (self.data.get("model") or {}).get("identity_hash")

    @property
    def revision(self) -> str | None:
        rev = (self.data.get("model") or {}).get("revision")
        return str(rev) if rev else None

    @property
    def tasks(self) -> dict:
        return self.data["tasks"]

    def block(self, task: str, mode: str, metric: str | None) -> dict | None:
        """The metric block {value, ci_low, ci_high, n}, or None where the run lacks it."""
        t = self.tasks.get(task)
        if t is None:
            return None
        metric = metric or t.get("primary_metric")
        b = ((t.get("metrics") or {}).get(mode) or {}).get(metric)
        if b is None:
            return None
        v = b.get("value") if isinstance(b, dict) else None
        if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ResultsError(f"{self.file}: tasks.{task}.metrics.{mode}.{metric}.value must be a number "
                               f"in [0, 1], got {v!r}; re-run `medeval score` to rewrite the file")
        return b


def load_run(path: str | Path) -> Run:
    """Read and check a result directory (or its results.json)."""
    file, data = read_results(path)
    return Run(file.parent, data)


# ---------------------------------------------------------------- escaping
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md_escape(s) -> str:
    """Make any string safe inside a markdown table cell: one line, no pipes, no HTML, no code spans."""
    s = " ".join(str(s).splitlines())
    return html.escape(_MD_SPECIAL.sub(r"\\\1", s), quote=False)


def mpl_escape(s) -> str:
    """Matplotlib treats $...$ as mathtext; escape dollar signs and keep one line."""
    return " ".join(str(s).splitlines()).replace("$", r"\$")


# ---------------------------------------------------------------- presets and reported rows
@dataclass
class Column:
    name: str
    task: str
    metric: str | None = None  # None: each run's primary_metric for the task


@dataclass
class Preset:
    name: str
    title: str
    columns: list[Column]
    mode: str | None = None    # the decoding this layout is meant for (the CLI's --mode default)
    note: str | None = None    # printed under the table (e.g. the protocol of the source's columns)


def _preset_dirs() -> list[Path]:
    return [Path(__file__).resolve().parents[1] / "leaderboard" / "presets",
            Path(sys.prefix) / "share" / "medeval" / "leaderboard" / "presets"]


def _read_yaml(path: Path, what: str) -> dict:
    from .spec import MAX_YAML_BYTES, _count_values

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
    data = _read_yaml(path, "preset")
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
    path = Path(path)
    data = _read_yaml(path, "reported-results file")
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
    return {"greedy": "generate-greedy", "sc": "generate-sc"}.get(mode, mode)


# ---------------------------------------------------------------- the board
@dataclass
class Cell:
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    protocol: str = ""   # how the number was made: generate-greedy, generate-sc10, loglikelihood-0shot, ...


@dataclass
class Row:
    label: str
    cells: dict  # (column name, mode) -> Cell | None
    averages: dict = field(default_factory=dict)  # mode -> (value | None, columns used)
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
                    b = run.block(col.task, mode, col.metric)
                    if b is not None:
                        cells[(col.name, mode)] = Cell(b["value"], b.get("ci_low"), b.get("ci_high"), b.get("n"),
                                                       default_protocol(mode, run.tasks[col.task]))
                        metrics[col.name].add(col.metric or run.tasks[col.task].get("primary_metric"))
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
            row.averages[mode] = _average([row.cells.get((c.name, mode)) for c in preset.columns], average)
    key = modes[0]
    rows.sort(key=lambda r: (r.averages[key][0] is None, -(r.averages[key][0] or 0.0), r.label))
    kept = [r for r in rows if r.cells]
    dropped = [r.label + (f" {r.reported.marker}" if r.reported else "") for r in rows if not r.cells]
    return Board(preset, tuple(modes), average, kept, list(reported), metrics, dropped)


# ---------------------------------------------------------------- shared formatting
def pct(v: float | None, d: int) -> str:
    """A fraction as a percentage; round(…, 9) drops float noise first (0.54375 * 100 = 54.374999…)."""
    return "-" if v is None else f"{round(100 * v, 9):.{d}f}"


def _values(board: Board, row: Row) -> dict:
    """(column, mode) -> value or None, with the Average under column 'Average'."""
    vals = {(c.name, m): getattr(row.cells.get((c.name, m)), "value", None)
            for c in board.preset.columns for m in board.modes}
    vals.update({("Average", m): row.averages[m][0] for m in board.modes})
    return vals


def best_values(board: Board, d: int) -> dict:
    """(column, mode) -> the best value as displayed; every cell that displays it is bold (ties too)."""
    best: dict = {}
    for row in board.rows:
        for k, v in _values(board, row).items():
            if v is not None and (k not in best or float(pct(v, d)) > float(best[k])):
                best[k] = pct(v, d)
    return best


def average_rule(board: Board, esc=str) -> str:
    how = ("unweighted mean of the column scores" if board.average == "mean"
           else "mean of the column scores weighted by each column's number of items (n)")
    rule = (f"Average: {how}. A row with missing columns is averaged over the columns it has; such an Average "
            f"is marked {esc(PARTIAL)} and is not directly comparable with complete rows. A cell showing "
            f"{esc('-')} was not evaluated. Best value per column in bold.")
    if board.average == "weighted":
        rule += f" Rows without item counts (published rows, usually) show {esc('-')} as their weighted Average."
    return rule


def metric_line(board: Board, esc=str) -> str:
    parts = [f"{esc(c.name)} = {esc('/'.join(sorted(m for m in board.metrics[c.name] if m)) or c.metric or 'primary metric')}"
             for c in board.preset.columns]
    protocols = sorted({cell.protocol for row in board.rows for cell in row.cells.values() if cell and cell.protocol})
    return (f"Scores in % ({' / '.join(board.modes)} decoding); with --ci, the 95% bootstrap interval follows "
            "each score. Metric per column: " + ", ".join(parts) + "."
            + (f" Protocol: {esc(', '.join(protocols))}." if protocols else ""))


def mixed_protocols(board: Board, esc=str) -> list[str]:
    """One line per column whose cells were made with different protocols, naming which row used which."""
    out = []
    for c in board.preset.columns:
        for m in board.modes:
            by: dict[str, list[str]] = {}
            for row in board.rows:
                cell = row.cells.get((c.name, m))
                if cell is not None:
                    by.setdefault(cell.protocol or "unknown", []).append(row.label)
            if len(by) > 1:
                parts = "; ".join(f"{esc(p)}: {esc(', '.join(rows))}" for p, rows in sorted(by.items()))
                out.append(f"Column {esc(c.name)} ({esc(m)}) mixes protocols, so its rows are not directly "
                           f"comparable: {parts}.")
    return out


def notes(board: Board, esc=str) -> list[str]:
    """Footnotes: one per reported source, columns that mix protocols, and printed averages that disagree
    with the rule above."""
    out = mixed_protocols(board, esc)
    for rep in board.reported:
        line = (f"{rep.marker} Reported, not measured by medeval: {esc(rep.citation)} "
                f"({esc(rep.mode)} decoding, {esc(rep.metric)}).")
        if rep.protocol:
            line += f" Protocol: {esc(rep.protocol.rstrip('.'))}."
        if not rep.verified:
            line += " Transcribed from a stored copy of the source; not yet checked against the live page."
        out.append(line)
    if board.preset.note:
        out.append(esc(board.preset.note))
    for row in board.rows:
        src = next((r for r in (row.reported.rows if row.reported else []) if r["name"] == row.label), None)
        printed = src and src["average"]
        mine, k = row.averages[board.modes[0]]
        if printed is not None and mine is not None and board.average == "mean" and abs(printed - mine) > \
                max(src.get("tolerance", 0.0), 5e-5):
            cells = [c.value for c in (row.cells.get((col.name, board.modes[0])) for col in board.preset.columns)
                     if c is not None]
            out.append(f"{esc(row.label)}: the source prints Average {100 * printed:.2f}; this table recomputes "
                       f"{100 * mine:.2f} from the same cells with the rule above "
                       f"({' + '.join(f'{100 * v:g}' for v in cells)} = {100 * sum(cells):.2f}, / {k} = "
                       f"{100 * mine:.2f}). The printed Average does not match its cells: rounding of the printed "
                       f"cells explains at most {100 * src.get('tolerance', 0.0):.3f}.")
    if board.dropped:
        out.append(f"Not shown (no score for these columns in {' / '.join(board.modes)} decoding): "
                   + ", ".join(esc(d) for d in board.dropped) + ".")
    return out


def _texts(board: Board, row: Row, d: int, ci: bool, best: dict, bold, partial: str, small=lambda t: t) -> list[str]:
    """Display text of the Average and each column of one row (format-neutral except `bold`)."""
    n_cols = len(board.preset.columns)
    out = []
    for col in ["Average"] + [c.name for c in board.preset.columns]:
        parts = []
        for m in board.modes:
            if col == "Average":
                v, k = row.averages[m]
                cell = None
            else:
                cell = row.cells.get((col, m))
                v, k = getattr(cell, "value", None), n_cols
            t = pct(v, d)
            if v is not None and best.get((col, m)) == t:
                t = bold(t)
            if v is not None and k < n_cols:
                t += partial
            if ci and cell is not None and cell.ci_low is not None and cell.ci_high is not None:
                t += " " + small(f"({pct(cell.ci_low, d)}–{pct(cell.ci_high, d)})")
            parts.append(t)
        out.append(" / ".join(parts))
    return out


def _run_lines(board: Board) -> list[tuple[str, str]]:
    """(model label, description) of every measured run, for provenance."""
    out = []
    for row in board.rows:
        for run in row.runs:
            items = ", ".join(f"{c.task} {run.tasks[c.task].get('n', '?')}/{run.tasks[c.task].get('n_total', '?')}"
                              for c in board.preset.columns if c.task in run.tasks)
            out.append((row.label, f"{run.dir} (medeval {run.data.get('medeval_version')}, "
                                   f"{run.data.get('created', 'no date')}); items evaluated/in split: {items or 'none'}"))
    return out


# ---------------------------------------------------------------- markdown
def to_markdown(board: Board, decimals: int = 2, ci: bool = False, charts: dict | None = None) -> str:
    best = best_values(board, decimals)
    head = ["Model", "Average"] + [c.name for c in board.preset.columns]
    lines = [f"# {md_escape(board.preset.title)}", "",
             "| " + " | ".join(md_escape(h) for h in head) + " |",
             "| :--- | " + " | ".join("---:" for _ in head[1:]) + " |"]
    for row in board.rows:
        label = md_escape(row.label) + (f" {row.reported.marker}" if row.reported else "")
        cells = _texts(board, row, decimals, ci, best, lambda t: f"**{t}**", "\\" + PARTIAL)
        lines.append("| " + " | ".join([label] + cells) + " |")
    lines += ["", average_rule(board, md_escape), "", metric_line(board, md_escape)]
    for note in notes(board, md_escape):
        lines += ["", note]
    runs = _run_lines(board)
    if runs:
        lines += ["", "## Measured runs", ""] + [f"- {md_escape(m)}: {md_escape(desc)}" for m, desc in runs]
    if charts:
        lines += ["", "## Charts", ""] + [f"![{md_escape(name)}]({path})" for name, path in charts.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTML
_JS = """
document.querySelectorAll('#board th').forEach(function (th, i) {
  th.addEventListener('click', function () {
    var body = document.querySelector('#board tbody');
    var desc = th.getAttribute('aria-sort') !== 'descending';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[i].getAttribute('data-v'), y = b.cells[i].getAttribute('data-v');
      if (i === 0) { return desc ? y.localeCompare(x) : x.localeCompare(y); }
      x = x === '' ? -Infinity : parseFloat(x); y = y === '' ? -Infinity : parseFloat(y);
      return desc ? y - x : x - y;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    document.querySelectorAll('#board th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
  });
});
"""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; } div.wrap { overflow-x: auto; }
th, td { padding: .35em .7em; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { cursor: pointer; background: #f3f3f3; user-select: none; }
th[aria-sort=descending]::after { content: " \\25BE"; } th[aria-sort=ascending]::after { content: " \\25B4"; }
tr.reported td { color: #555; font-style: italic; }
p.note { color: #444; max-width: 60em; }
small.ci { color: #777; }
"""


def to_html(board: Board, decimals: int = 2, ci: bool = False) -> str:
    e = html.escape
    best = best_values(board, decimals)
    head = ["Model", "Average"] + [c.name for c in board.preset.columns]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(board.preset.title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(board.preset.title)}</h1>", '<div class="wrap"><table id="board"><thead><tr>']
    out += [f'<th scope="col" data-col="{e(h)}">{e(h)}</th>' for h in head]
    out.append("</tr></thead><tbody>")
    first = board.modes[0]
    for row in board.rows:
        vals = _values(board, row)
        texts = _texts(board, row, decimals, ci, best, lambda t: f"\0{t}\1", PARTIAL, lambda t: f"\2{t}\3")
        label = e(row.label) + (f" {row.reported.marker}" if row.reported else "")
        cls = ' class="reported"' if row.reported else ""
        tds = [f'<td data-v="{e(row.label)}">{label}</td>']
        for col, text in zip(head[1:], texts):
            v = vals[(col, first)]
            body = (e(text).replace("\0", "<strong>").replace("\1", "</strong>")
                    .replace("\2", '<small class="ci">').replace("\3", "</small>"))
            tds.append(f'<td data-v="{"" if v is None else f"{v:.6f}"}">{body}</td>')
        out.append(f"<tr{cls}>" + "".join(tds) + "</tr>")
    out.append("</tbody></table></div>")
    for p in [average_rule(board, e), metric_line(board, e)] + notes(board, e):
        out.append(f'<p class="note">{p}</p>')
    runs = _run_lines(board)
    if runs:
        out.append("<h2>Measured runs</h2><ul>" + "".join(f"<li>{e(m)}: {e(d)}</li>" for m, d in runs) + "</ul>")
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- charts
def write_charts(board: Board, out_dir: str | Path) -> dict[str, Path]:
    """One horizontal bar chart (PNG) per column that has data, models sorted by that column; returns name -> file."""
    from matplotlib.figure import Figure  # Figure.savefig draws with Agg: no pyplot, no display needed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    colors = {"greedy": "#1f77b4", "sc": "#ff7f0e"}
    written = {}
    for col in board.preset.columns:
        def score(r):
            return max((getattr(r.cells.get((col.name, m)), "value", None) or -1.0) for m in board.modes)

        rows = sorted((r for r in board.rows if score(r) >= 0), key=score)  # best at the top
        if not rows:
            continue
        k = len(board.modes)
        fig = Figure(figsize=(7.5, 0.35 * len(rows) * k + 1.5))
        ax = fig.add_subplot()
        h = 0.8 / k
        for j, mode in enumerate(board.modes):
            for reported in (False, True):
                pts = [(i + (j - (k - 1) / 2) * h, r.cells[(col.name, mode)]) for i, r in enumerate(rows)
                       if (col.name, mode) in r.cells and bool(r.reported) == reported]
                if not pts:
                    continue
                label = "reported" if reported else mode
                ax.barh([y for y, _ in pts], [100 * c.value for _, c in pts], height=h,
                        color="#c7c7c7" if reported else colors[mode], hatch="//" if reported else None,
                        label=label if label not in ax.get_legend_handles_labels()[1] else None)
                ci = [(y, c) for y, c in pts if c.ci_low is not None and c.ci_high is not None]
                if ci:
                    ax.errorbar([100 * c.value for _, c in ci], [y for y, _ in ci], fmt="none", ecolor="black",
                                capsize=3, xerr=[[100 * max(c.value - c.ci_low, 0) for _, c in ci],
                                                 [100 * max(c.ci_high - c.value, 0) for _, c in ci]])
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([mpl_escape(r.label) + (f" {r.reported.marker}" if r.reported else "") for r in rows])
        ax.set_xlim(0, 100)
        ax.set_xlabel("score (%); error bars: 95% bootstrap CI")
        ax.set_title(mpl_escape(f"{col.name} ({col.task})"))
        ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        path = out_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", col.task) + ".png")
        fig.savefig(path, dpi=100)
        written[col.name] = path
    return written
