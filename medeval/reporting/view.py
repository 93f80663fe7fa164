"""`medeval view`: one self-contained HTML page for a run, or for a gate comparison of two runs.

The page is medeval/templates/view.html (CSS and vanilla JavaScript, no external scripts, fonts
or images; a Content-Security-Policy forbids any network request) with the data embedded as
JSON. Every string from result files reaches the page only through that JSON block (with `<`,
`>` and `&` escaped, so no output can close it) and is put into the DOM with `textContent`.

* `run_page(dir)`: the task table (metrics with intervals, invalid, ambiguous and truncation rates, tokens,
  cost) and, per task, every item (prompt, raw outputs, extracted answers, votes, gold, finish
  reasons, tokens), filterable and paginated in the browser.
* `compare_page(report)`: a `medeval gate` report (reporting.gate.run_gate) as a page: per task the paired
  counts, the test's values, minimum detectable drop and verdict, and the items whose correctness flipped,
  side by side.
Very long prompts (and, on request, outputs) are cut in the middle to keep the file small.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .. import metrics as M
from ..tasks.data import iter_jsonl
from ..results import ResultsError, SampleRecord, read_results
from .gate import GateReport, TaskResult, power_text
from .gate_report import method_text, table_rows, to_json
from .paired import load_samples, metric_options, mismatches, predictions

TEMPLATE = "view.html"
PLACEHOLDER = "/*MEDEVAL_DATA*/null"


def clip(text, limit: int):
    """`text` cut in the middle to about `limit` characters, with a marker saying how much was left out."""
    if not isinstance(text, str) or not limit or len(text) <= limit:
        return text
    head = limit // 3
    tail = limit - head
    left_out = len(text) - head - tail
    return (f"{text[:head]}\n[… {left_out:,} characters left out of this page; "
            f"`medeval view --max-prompt-chars 0` keeps them …]\n{text[-tail:]}")


def _clip_block(block, limit: int):
    if not isinstance(block, dict) or not limit:
        return block
    return {**block, "outputs": [clip(o, limit) for o in block.get("outputs") or []]}


def _item(row: SampleRecord, modes, prompt_chars: int, output_chars: int) -> dict:
    item = row.header()
    item["id"] = row.key
    item["prompt"] = clip(row.prompt, prompt_chars)
    if isinstance(row.prompt, str) and item["prompt"] != row.prompt:
        item["prompt_chars"] = len(row.prompt)
    item["modes"] = {m: _clip_block(row.modes[m], output_chars) for m in modes if isinstance(row.modes.get(m), dict)}
    return item


def _samples(run_dir: Path, task: str, block: dict) -> list[SampleRecord]:
    path = run_dir / block.get("samples_file", f"samples_{task}.jsonl")
    if not path.is_file():
        raise ResultsError(f"{path}: samples file of task {task!r} not found; `medeval view` shows the items "
                           "of the samples_<task>.jsonl files next to results.json")
    return [SampleRecord.from_json(row, f"{path}: line {n}") for n, row in iter_jsonl(path)]


def _task_summary(name: str, t: dict) -> dict:
    keep = ("display_name", "n", "n_total", "primary_metric", "answer_type", "version", "metrics", "invalid",
            "ambiguous", "usage", "skipped", "judge", "adversarial", "extract_fallback", "extract_audit",
            "permutation")
    return {"task": name, **{k: t[k] for k in keep if k in t}, "modes": t.get("modes") or list(t.get("metrics", {}))}


def run_data(path: str | Path, prompt_chars: int = 4000, output_chars: int = 0) -> dict:
    run = read_results(path)
    tasks = []
    for name, t in run.tasks.items():
        modes = t.get("modes") or list(t.get("metrics", {}))
        rows = _samples(run.dir, name, t)
        tasks.append({**_task_summary(name, t), "items": [_item(r, modes, prompt_chars, output_chars) for r in rows]})
    d = run.data
    return {"kind": "run", "title": f"medeval run: {run.model_id}",
            "run": {"dir": str(run.dir), "model": d.get("model") or {}, "created": d.get("created"),
                    "medeval_version": d.get("medeval_version"), "command": d.get("command"),
                    "decoding": d.get("decoding"), "usage": d.get("usage"), "cache": d.get("cache"),
                    "groups": d.get("groups") or {}},
            "tasks": tasks, "limits": {"prompt_chars": prompt_chars, "output_chars": output_chars}}


# ---------------------------------------------------------------- comparison
def _paired(report: GateReport, r: TaskResult):
    """The items the gate compared for task r, and each side's 0/1 per-item outcome with its basis:
    the gated metric's per-item scores where they are 0/1 (accuracy: the McNemar pairs), else the
    samples' `correct` field (e.g. a label task gated on macro-F1), else none."""
    base, cand = report.baseline, report.candidate
    b_rows, c_rows = load_samples(base, r.task), load_samples(cand, r.task)
    _, ids, _ = mismatches(r.task, base.tasks[r.task], cand.tasks[r.task], b_rows, c_rows)
    golds = [b_rows[i].gold for i in ids]
    opts = metric_options(base.tasks[r.task], r.metric)
    sb = M.item_scores(r.metric, predictions(b_rows, ids, r.mode, str(base.dir)), golds, opts)
    sc = M.item_scores(r.metric, predictions(c_rows, ids, r.mode, str(cand.dir)), golds, opts)
    if sb is not None and all(v in (0, 1) for v in list(sb) + list(sc)):
        return ids, b_rows, c_rows, [int(v) for v in sb], [int(v) for v in sc], r.metric
    flags = [[rows[i].block(r.mode).get("correct") for i in ids] for rows in (b_rows, c_rows)]
    if all(isinstance(v, bool) for side in flags for v in side):
        return ids, b_rows, c_rows, [int(v) for v in flags[0]], [int(v) for v in flags[1]], "correct"
    return ids, b_rows, c_rows, None, None, None


def _side(row: SampleRecord, mode: str, output_chars: int) -> dict:
    return _clip_block(row.block(mode), output_chars)


def compare_data(report: GateReport, prompt_chars: int = 4000, output_chars: int = 0) -> dict:
    summary = to_json(report)
    display = {row["Task"]: row for row in table_rows(report)}
    tasks = []
    for r, js in zip(report.results, summary["tasks"]):
        entry = {"task": r.task, "verdict": r.verdict, "display_verdict": js["display_verdict"], "reason": r.reason,
                 "notes": r.notes, "metric": r.metric, "mode": r.mode, "tolerance": r.tolerance, "stats": r.stats,
                 "row": display.get(r.task), "power": r.power, "power_text": power_text(r.power), "counts": None,
                 "items": []}
        if r.stats:
            ids, b_rows, c_rows, sb, sc, basis = _paired(report, r)
            if sb is not None:
                pairs = list(zip(sb, sc))
                entry["counts"] = {"both_right": pairs.count((1, 1)), "to_wrong": pairs.count((1, 0)),
                                   "to_right": pairs.count((0, 1)), "both_wrong": pairs.count((0, 0)),
                                   "n": len(pairs), "basis": basis}
                changed = [(i, "to_wrong" if b else "to_right") for i, b, c in zip(ids, sb, sc) if b != c]
            else:   # no 0/1 per-item scores (e.g. macro-F1 of a label task): list the answers that changed
                changed = [(i, "changed") for i in ids
                           if b_rows[i].block(r.mode).get("pred") != c_rows[i].block(r.mode).get("pred")]
            for i, change in changed:
                b, c = b_rows[i], c_rows[i]
                item = {"id": i, "change": change, "gold": b.gold, "meta": b.meta,
                        "prompt": clip(b.prompt, prompt_chars),
                        "baseline": _side(b, r.mode, output_chars), "candidate": _side(c, r.mode, output_chars)}
                if c.prompt != b.prompt:
                    item["candidate_prompt"] = clip(c.prompt, prompt_chars)
                entry["items"].append(item)
        tasks.append(entry)
    return {"kind": "compare", "title": f"medeval {report.kind}: {report.status}" if report.kind == "gate"
            else "medeval compare", "status": report.status, "gate_kind": report.kind,
            "method": method_text(report), "alpha": report.alpha, "sided": report.sided,
            "baseline": summary["baseline"], "candidate": summary["candidate"], "tasks": tasks,
            "limits": {"prompt_chars": prompt_chars, "output_chars": output_chars}}


# ---------------------------------------------------------------- the page
def embed_json(data) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&` can end it or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(data: dict) -> str:
    page = resources.files("medeval").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    if page.count(PLACEHOLDER) != 1:
        raise RuntimeError(f"medeval/templates/{TEMPLATE} must hold {PLACEHOLDER} exactly once")
    return page.replace(PLACEHOLDER, embed_json(_finite(data)))


def _finite(x):
    """NaN and infinities (not JSON) become None."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def run_page(path: str | Path, prompt_chars: int = 4000, output_chars: int = 0) -> str:
    return render(run_data(path, prompt_chars, output_chars))


def compare_page(report: GateReport, prompt_chars: int = 4000, output_chars: int = 0) -> str:
    return render(compare_data(report, prompt_chars, output_chars))
