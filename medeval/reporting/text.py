"""Display text shared by the leaderboard's renderers: escaping for markdown and matplotlib, percentages,
best values, the average rule, the metric line, footnotes, each row's cell texts and run provenance.
Every string that comes from a results or YAML file is escaped for the format it lands in."""
from __future__ import annotations

import html
import re

from .. import metrics
from .board import Board, Row

PARTIAL = "*"

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md_escape(s) -> str:
    """Make any string safe inside a markdown table cell: one line, no pipes, no HTML, no code spans."""
    s = " ".join(str(s).splitlines())
    return html.escape(_MD_SPECIAL.sub(r"\\\1", s), quote=False)


def mpl_escape(s) -> str:
    """Matplotlib treats $...$ as mathtext; escape dollar signs and keep one line."""
    return " ".join(str(s).splitlines()).replace("$", r"\$")


def pct(v: float | None, d: int) -> str:
    """A fraction as a percentage; round(…, 9) drops float noise first (0.54375 * 100 = 54.374999…)."""
    return "-" if v is None else f"{round(100 * v, 9):.{d}f}"


def values(board: Board, row: Row) -> dict:
    """(column, mode) -> value or None, with the Average under column 'Average'."""
    vals = {(c.name, m): getattr(row.cells.get((c.name, m)), "value", None)
            for c in board.preset.columns for m in board.modes}
    vals.update({("Average", m): row.averages[m][0] for m in board.modes})
    return vals


def lower_is_better(board: Board, column: str) -> bool:
    """Whether a column's metric declares `higher_is_better=False` (an error rate, say). A column whose
    runs report several metrics, an unregistered one, and the Average count as higher-is-better."""
    names = board.metrics.get(column) or set()
    return len(names) == 1 and all(n in metrics.REGISTRY and not metrics.get(n).higher_is_better for n in names)


def best_values(board: Board, d: int) -> dict:
    """(column, mode) -> the best value as displayed (the highest, or the lowest where the column's metric
    is lower-is-better); every cell that displays it is bold (ties too)."""
    best: dict = {}
    for row in board.rows:
        for k, v in values(board, row).items():
            sign = -1.0 if lower_is_better(board, k[0]) else 1.0
            if v is not None and (k not in best or sign * float(pct(v, d)) > sign * float(best[k])):
                best[k] = pct(v, d)
    return best


def average_rule(board: Board, esc=str) -> str:
    how = ("unweighted mean of the column scores" if board.average == "mean"
           else "mean of the column scores weighted by each column's number of items (n)")
    rule = (f"Average: {how}. A row with missing columns is averaged over the columns it has; such an Average "
            f"is marked {esc(PARTIAL)} and is not directly comparable with complete rows. A cell showing "
            f"{esc('-')} was not evaluated. Best value per column in bold. A cell computed on fewer items than "
            f"its task's split shows (n/N) after the score; an Average over such cells says how many of its "
            f"cells are partial.")
    if any(c.group for c in board.preset.columns):
        rule += " Group columns show the group's own score (results.json) and are not part of the Average."
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
            cells = [c.value for c in (row.cells.get((col.name, board.modes[0])) for col in board.averaged)
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


def cell_texts(board: Board, row: Row, d: int, ci: bool, best: dict, bold, partial: str, small=lambda t: t) -> list[str]:
    """Display text of the Average and each column of one row (format-neutral except `bold`)."""
    n_cols = len(board.averaged)
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
            if cell is not None and cell.partial:
                t += f" ({cell.n}/{cell.n_total})"
            if col == "Average" and v is not None and row.partial.get(m):
                t += f" ({row.partial[m]} of {k} partial)"
            if ci and cell is not None and cell.ci_low is not None and cell.ci_high is not None:
                t += " " + small(f"({pct(cell.ci_low, d)}–{pct(cell.ci_high, d)})")
            parts.append(t)
        out.append(" / ".join(parts))
    return out


def run_lines(board: Board) -> list[tuple[str, str]]:
    """(model label, description) of every measured run, for provenance."""
    out = []
    for row in board.rows:
        for run in row.runs:
            items = ", ".join(f"{c.task} {run.tasks[c.task].get('n', '?')}/{run.tasks[c.task].get('n_total', '?')}"
                              for c in board.preset.columns if c.task in run.tasks)
            out.append((row.label, f"{run.dir} (medeval {run.data.get('medeval_version')}, "
                                   f"{run.data.get('created', 'no date')}); items evaluated/in split: {items or 'none'}"))
    return out
