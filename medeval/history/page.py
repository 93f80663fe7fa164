"""`medeval history page`: the trend page, one self-contained HTML file (medeval/templates/trend.html).

Rendered on this side, in a sandboxed Jinja environment with autoescaping, so the page holds no script at
all: a Content-Security-Policy forbids every request and every script, the charts are inline SVG, and each
ledger item opens (a <details> element) to show its prompt and every checkpoint's outputs, read from the
samples rows the store keeps. Per task:

* a chart of the primary metric (main mode) across the runs in the order they were added, each point with
  its 95% interval, and the same numbers as a table;
* the item ledger (query.ledger): flips between consecutive checkpoints, items never right, items whose
  self-consistency samples disagree.
"""
from __future__ import annotations

import re
from importlib import resources

from jinja2.sandbox import SandboxedEnvironment

from ..results import ResultsError
from .query import ledger, primary_series
from .store import Store

TEMPLATE = "trend.html"
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 720, 260, 56, 24, 16, 44


def clip(text, limit: int):
    """`text` cut in the middle to about `limit` characters, with a marker saying how much was left out."""
    if not isinstance(text, str) or not limit or len(text) <= limit:
        return text
    head, tail = limit // 3, limit - limit // 3
    return (f"{text[:head]}\n[… {len(text) - limit:,} characters left out of this page; "
            f"`medeval history page --max-prompt-chars 0` keeps them …]\n{text[-tail:]}")


def chart(series: list[dict]) -> dict:
    """Coordinates of the SVG trend chart: points with interval bars, y ticks in percent."""
    lows = [r["ci_low"] if r["ci_low"] is not None else r["value"] for r in series if r["value"] is not None]
    highs = [r["ci_high"] if r["ci_high"] is not None else r["value"] for r in series if r["value"] is not None]
    lo, hi = (min(lows), max(highs)) if lows else (0.0, 1.0)
    span = max(hi - lo, 0.05)
    lo, hi = max(0.0, lo - 0.1 * span), min(1.0, hi + 0.1 * span)
    if hi - lo < 1e-9:
        lo, hi = max(0.0, lo - 0.05), min(1.0, hi + 0.05)
    n = len(series)
    xs = [PAD_L + (W - PAD_L - PAD_R) * ((i + 0.5) / n) for i in range(n)]

    def y(v):
        return PAD_T + (H - PAD_T - PAD_B) * (1 - (v - lo) / (hi - lo))

    points = []
    for x, r in zip(xs, series):
        if r["value"] is None:
            continue
        points.append({"x": round(x, 1), "y": round(y(r["value"]), 1), "name": r["name"], "run_id": r["run_id"],
                       "value": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "n": r["n"],
                       "y_lo": round(y(r["ci_low"]), 1) if r["ci_low"] is not None else None,
                       "y_hi": round(y(r["ci_high"]), 1) if r["ci_high"] is not None else None})
    ticks = [{"y": round(y(lo + (hi - lo) * k / 4), 1), "label": f"{100 * (lo + (hi - lo) * k / 4):.1f}"}
             for k in range(5)]
    return {"w": W, "h": H, "left": PAD_L, "right": W - PAD_R, "top": PAD_T, "bottom": H - PAD_B,
            "points": points, "ticks": ticks, "line": " ".join(f"{p['x']},{p['y']}" for p in points)}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)


def _items(store: Store, task: str, led: dict, wanted: list[str], prompt_chars: int, anchor) -> list[dict]:
    """Prompt, gold and every checkpoint's outcome and outputs of the ledger's items."""
    rows_by_run = {r["run_id"]: {str(row["id"]): row for row in store.sample_rows(r["run_id"], task, wanted)}
                   for r in led["runs"]}
    out = []
    for iid in wanted:
        prompt, per_run = None, []
        for r in led["runs"]:
            row = rows_by_run[r["run_id"]].get(iid)
            if row is None:
                continue
            prompt = row.get("prompt") if prompt is None else prompt
            correct, pred = led["outcome"][r["run_id"]].get(iid, (None, None))
            modes = [{"mode": m, "outputs": [clip(o, prompt_chars) for o in (row[m].get("outputs") or [])],
                      "pred": row[m].get("pred"), "correct": row[m].get("correct")}
                     for m in sorted(k for k, v in row.items() if isinstance(v, dict) and "outputs" in v)]
            per_run.append({"run_id": r["run_id"], "name": r["name"], "correct": correct, "pred": pred,
                            "modes": modes})
        out.append({"id": iid, "anchor": anchor(iid), "gold": led["gold"].get(iid),
                    "prompt": clip(prompt if isinstance(prompt, str) else str(prompt), prompt_chars),
                    "runs": per_run})
    return out


def trend_page(store: Store, tasks: list[str] | None = None, prompt_chars: int = 4000) -> str:
    runs = store.runs()
    if not runs:
        raise ResultsError(f"history store {store.label} holds no run; add some with `medeval history add RUN_DIR`")
    stored_tasks = sorted({r["task"] for r in store.task_results()})
    for t in tasks or []:
        if t not in stored_tasks:
            raise ResultsError(f"--task {t}: not in the history store {store.label} (tasks: {', '.join(stored_tasks)})")
    gates = {g["run_id"]: g["status"] for g in store.gates()}
    sections = []
    for ti, task in enumerate(tasks or stored_tasks):
        metric, mode, series = primary_series(store, task)
        led = ledger(store, task)
        slug = f"t{ti}-{_slug(task)}"
        anchors: dict[str, str] = {}

        def anchor(iid, _a=anchors, _s=slug):
            return _a.setdefault(iid, f"{_s}-item-{len(_a)}")

        flipped = [i for f in led["flips"] for i in f["lost"] + f["gained"]]
        wanted = list(dict.fromkeys(flipped + led["never_right"] + [u["item_id"] for u in led["unstable"]]))
        for i in wanted:
            anchor(i)
        sections.append({"task": task, "slug": slug, "metric": metric, "mode": mode,
                         "version": series[0]["version"], "chart": chart(series), "series": series,
                         "ledger": led, "anchors": anchors,
                         "ledger_items": _items(store, task, led, wanted, prompt_chars, anchor)})
    env = SandboxedEnvironment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.2f}"
    template = env.from_string(resources.files("medeval").joinpath("templates", TEMPLATE).read_text(encoding="utf-8"))
    return template.render(store=store.label, runs=runs, gates=gates, sections=sections)
