"""The metric registry: `@metric(...)` registers a plain function (preds, golds, **options) -> float.

A registration declares what the rest of medeval needs to know about the metric, so nothing
guesses from its name:
- `higher_is_better`: the direction the regression gate and leaderboards read;
- `answer_types`: the answer types it applies to (None: any);
- `needs_labels`: whether it takes the task's label set as its `labels` option (per-class F1s);
- `run_option`: a run-wide choice it reads (e.g. "bertscore_model", the BERTScore model of
  `--bertscore-model`): a `RunOption` registered under that name says how the choice becomes options;
  `RunOptions` makes each choice once per run and hands it to every task's metrics that read it;
- `item` / `batch_item`: a per-item score whose mean is the corpus value (accuracy, ROUGE, exact match);
- `stats` / `from_stats`: per-item sufficient statistics (n x d counts) and the value computed from
  their sums, so bootstrap resamples of F1-style metrics are vectorised (medeval/stats.py).

Adding a new metric: one function in a module of medeval/metrics/, decorated with
`@metric(name, answer_types=..., higher_is_better=..., needs_labels=...)`; a new module also goes on
the import line of metrics/__init__.py. Then a row in docs/metrics.md. Task files can name it at
once, and spec refuses it on an answer type it does not declare.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[..., float]                  # (preds, golds, **options) -> float
    item: Callable[..., float] | None = None  # (pred, gold, **options) -> float
    doc: str = ""
    batch_item: Callable | None = None        # (preds, golds, **options) -> per-item scores, in one pass
    stats: Callable | None = None             # (preds, golds, **options) -> (n, d) counts
    from_stats: Callable | None = None        # (..., d) summed counts -> (...) values
    higher_is_better: bool = True
    answer_types: frozenset[str] | None = None   # None: any answer type
    needs_labels: bool = False
    run_option: str | None = None                # a run-wide choice it reads (see RunOption)

    def applies_to(self, answer_type: str) -> bool:
        return self.answer_types is None or answer_type in self.answer_types


REGISTRY: dict[str, Metric] = {}   # filled when medeval.metrics imports its metric modules


def metric(name: str, *, item: Callable | None = None, batch_item: Callable | None = None,
           stats: Callable | None = None, from_stats: Callable | None = None, higher_is_better: bool = True,
           answer_types: Sequence[str] | None = None, needs_labels: bool = False, run_option: str | None = None):
    """Decorator: register a corpus-level metric under `name` (see the module docstring)."""

    def wrap(fn):
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        REGISTRY[name] = Metric(name, fn, item, doc, batch_item, stats, from_stats, higher_is_better,
                                frozenset(answer_types) if answer_types is not None else None, needs_labels,
                                run_option)
        return fn

    return wrap


@dataclass(frozen=True)
class RunOption:
    """How a run-wide choice becomes metric options."""
    choose: Callable[[Any], dict]   # the run's value (None: not given) -> options for each metric reading it
    pinned_by: str | None = None    # a task metric option that pins the choice when the run gives no value


RUN_OPTIONS: dict[str, RunOption] = {}   # filled by the metric modules that declare run options


class RunOptions:
    """The run's values of the run-wide choices (`RunOptions(bertscore_model="minilm")`); each is
    chosen at most once per run, when the first metric that reads it is scored."""

    def __init__(self, **values):
        self.values, self._chosen = values, {}

    def options_for(self, m: Metric, task_options: dict) -> dict:
        """The options `m` takes from the run: {} unless it declares a run option the task does not pin."""
        if m.run_option is None:
            return {}
        spec, value = RUN_OPTIONS[m.run_option], self.values.get(m.run_option)
        if not value and spec.pinned_by in task_options:
            return {}
        if m.run_option not in self._chosen:
            self._chosen[m.run_option] = spec.choose(value)
        return dict(self._chosen[m.run_option])


def get(name: str) -> Metric:
    if name not in REGISTRY:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def names() -> list[str]:
    return sorted(REGISTRY)


def compute(name: str, preds: Sequence, golds: Sequence, options: dict | None = None) -> float:
    m = get(name)
    return float(m.fn(list(preds), list(golds), **(options or {})))


def item_scores(name: str, preds: Sequence, golds: Sequence, options: dict | None = None):
    """Per-item scores for mean-decomposable metrics, else None."""
    m = get(name)
    if m.batch_item is not None:
        return np.asarray(m.batch_item(list(preds), list(golds), **(options or {})), dtype=float)
    if m.item is None:
        return None
    return np.array([m.item(p, g, **(options or {})) for p, g in zip(preds, golds)], dtype=float)
