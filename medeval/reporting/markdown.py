"""The leaderboard as markdown (a model card's table, the rules and footnotes under it, charts linked)."""
from __future__ import annotations

from .board import Board
from .text import PARTIAL, average_rule, best_values, cell_texts, md_escape, metric_line, notes, run_lines


def to_markdown(board: Board, decimals: int = 2, ci: bool = False, charts: dict | None = None) -> str:
    best = best_values(board, decimals)
    head = ["Model", "Average"] + [c.name for c in board.preset.columns]
    lines = [f"# {md_escape(board.preset.title)}", "",
             "| " + " | ".join(md_escape(h) for h in head) + " |",
             "| :--- | " + " | ".join("---:" for _ in head[1:]) + " |"]
    for row in board.rows:
        label = md_escape(row.label) + (f" {row.reported.marker}" if row.reported else "")
        cells = cell_texts(board, row, decimals, ci, best, lambda t: f"**{t}**", "\\" + PARTIAL)
        lines.append("| " + " | ".join([label] + cells) + " |")
    lines += ["", average_rule(board, md_escape), "", metric_line(board, md_escape)]
    for note in notes(board, md_escape):
        lines += ["", note]
    runs = run_lines(board)
    if runs:
        lines += ["", "## Measured runs", ""] + [f"- {md_escape(m)}: {md_escape(desc)}" for m, desc in runs]
    if charts:
        lines += ["", "## Charts", ""] + [f"![{md_escape(name)}]({path})" for name, path in charts.items()]
    return "\n".join(lines) + "\n"
