"""The leaderboard as one self-contained HTML page: a table sortable by any column (vanilla JavaScript),
the rules and footnotes under it. Every string is HTML-escaped."""
from __future__ import annotations

import html

from .board import Board
from .text import PARTIAL, average_rule, best_values, cell_texts, metric_line, notes, run_lines, values


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
        vals = values(board, row)
        texts = cell_texts(board, row, decimals, ci, best, lambda t: f"\0{t}\1", PARTIAL, lambda t: f"\2{t}\3")
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
    runs = run_lines(board)
    if runs:
        out.append("<h2>Measured runs</h2><ul>" + "".join(f"<li>{e(m)}: {e(d)}</li>" for m, d in runs) + "</ul>")
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out) + "\n"
