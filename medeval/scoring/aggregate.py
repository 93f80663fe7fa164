"""Per-item predictions -> a task's numbers: each metric with its bootstrap interval, per stratum, the
bootstrap unit (items or clusters), sample accuracy, and the adversarial mode's recovery rates.

`scoring.score_items` reads the outputs item by item; this module computes everything that needs all
items at once. Intervals come from medeval/stats.py.
"""
from __future__ import annotations

from collections import defaultdict

from ..tasks import answer_types
from .. import stats
from . import modes as M
from ..errors import MedevalError
from ..fields import get_field


def task_metrics(task, preds: dict, golds: list, opts: dict, modes, hits: dict, clusters) -> dict:
    """mode -> metric -> {value, ci_low, ci_high, n}, plus sample_accuracy in sc mode."""
    return {m: {**{name: stats.bootstrap_ci(name, preds[m], golds, opts[name], clusters=clusters)
                   for name in task.metrics}, **sample_accuracy(m, hits[m], clusters)} for m in modes}


def sample_accuracy(mode, hits, clusters) -> dict:
    """sc mode: the mean share of correct samples per item (the accuracy of one sampled answer)."""
    if not M.get(mode).voted or not hits:
        return {}
    return {"sample_accuracy": stats.bootstrap_mean(hits, clusters=clusters)}


def clusters_of(task, items) -> list | None:
    """The bootstrap unit of each item: its `bootstrap_cluster` value (None: every item is its own)."""
    if not task.bootstrap_cluster:
        return None
    try:
        return [str(get_field(it.row, task.bootstrap_cluster)) for it in items]
    except KeyError:
        raise MedevalError(f"{task.source_file}: field 'bootstrap_cluster': a row has no field "
                           f"{task.bootstrap_cluster!r}; add it to the data or remove bootstrap_cluster") from None


def bootstrap_note(task, clusters) -> dict:
    """results.json's `bootstrap`: what one resample draws."""
    if clusters is None:
        return {"unit": "item", "method": "percentile bootstrap, 1000 resamples of items"}
    return {"unit": "cluster", "field": task.bootstrap_cluster, "clusters": len(set(clusters)),
            "method": f"clustered percentile bootstrap: 1000 resamples of whole {task.bootstrap_cluster} groups "
                      "(copies of one question are resampled together, so they do not narrow the interval)"}


def stratum(row, field):
    """An item's value of a strata field, as a JSON scalar ("(missing)" when the row lacks it)."""
    try:
        v = get_field(row, field)
    except KeyError:
        return "(missing)"
    return v if isinstance(v, (str, int, float, bool)) else str(v)


def strata(task, items, preds, golds, opts, modes, hits=None, clusters=None) -> dict:
    """field -> value -> {n, mode -> metrics}: the task's metrics on each stratum's items."""
    out = {}
    pick = lambda xs, idx: None if xs is None else [xs[k] for k in idx]
    for field in task.strata:
        groups = defaultdict(list)
        for k, it in enumerate(items):
            groups[str(stratum(it.row, field))].append(k)
        out[field] = {
            value: {"n": len(idx), **task_metrics(task, {m: pick(preds[m], idx) for m in modes}, pick(golds, idx),
                                                  opts, modes, {m: pick((hits or {}).get(m) or None, idx)
                                                                for m in modes}, pick(clusters, idx))}
            for value, idx in sorted(groups.items())}
    return out


def recovery(p, preds, modes) -> dict:
    """Adversarial mode: how often the final answer is right (recovered) or the pre-filled wrong one (misled)."""
    kind = answer_types.of(p.task)
    wrong = [kind.adversarial_wrong(it.options, it.gold) for it in p.items]
    out = {"prefill": "the first wrong option, stated as the answer at the start of the reply"}
    if "adversarial_traces" in p.notes:   # a trace file or field was read (some items may have none)
        # the trace's own conclusion is the answer it pushes; items without a trace keep the short pre-fill
        wrong = [answer_types.extract(p.task, it.trace, it.row, it.options) if it.trace else w
                 for it, w in zip(p.items, wrong)]
        out = {"prefill": "a per-item wrong reasoning trace (see adversarial_traces); items without one: the "
                          "first wrong option stated as the answer",
               "trace_without_answer": sum(it.trace is not None and w is None for it, w in zip(p.items, wrong))}
    n = max(len(p.items), 1)
    for m in modes:
        out[m] = {"recovery_rate": sum(x == it.gold for x, it in zip(preds[m], p.items)) / n,
                  "misled_rate": sum(x is not None and x == w for x, w in zip(preds[m], wrong)) / n}
    return out
