"""The leaderboard as PNG bar charts, one per column (matplotlib's Agg canvas: no display needed)."""
from __future__ import annotations

import re
from pathlib import Path

from .board import Board
from .text import mpl_escape


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
        ax.set_yticklabels([mpl_escape(r.label) + (f" {r.reported.marker}" if r.reported else "")
                            + _items(r, col.name, board.modes) for r in rows])
        ax.set_xlim(0, 100)
        ax.set_xlabel("score (%); error bars: 95% bootstrap CI")
        ax.set_title(mpl_escape(f"{col.name} ({col.task})"))
        ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        path = out_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", col.task) + ".png")
        fig.savefig(path, dpi=100)
        written[col.name] = path
    return written


def _items(row, column: str, modes) -> str:
    """' (n/N)' when the row's cell in this column is computed on fewer items than the task's split."""
    cell = next((row.cells[(column, m)] for m in modes if (column, m) in row.cells), None)
    return f" ({cell.n}/{cell.n_total})" if cell is not None and cell.partial else ""
