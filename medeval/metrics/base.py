"""The metric registry: `@metric(...)` registers a plain function (preds, golds, **options) -> float.

A registration declares what the rest of medeval needs to know about the metric, so nothing
guesses from its name:
- `higher_is_better`: the direction the regression gate and leaderboards read;
- `answer_types`: the answer types it applies to (None: any);
- `needs_labels`: whether it takes the task's label set as its `labels` option (per-class F1s);
- `item` / `batch_item`: a per-item score whose mean is the corpus value (accuracy, ROUGE, exact match);
- `stats` / `from_stats`: per-item sufficient statistics (n x d counts) and the value computed from
  their sums, so bootstrap resamples of F1-style metrics are vectorised (medeval/stats.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

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

    def applies_to(self, answer_type: str) -> bool:
        return self.answer_types is None or answer_type in self.answer_types


REGISTRY: dict[str, Metric] = {}   # filled when medeval.metrics imports its metric modules


def metric(name: str, *, item: Callable | None = None, batch_item: Callable | None = None,
           stats: Callable | None = None, from_stats: Callable | None = None, higher_is_better: bool = True,
           answer_types: Sequence[str] | None = None, needs_labels: bool = False):
    """Decorator: register a corpus-level metric under `name` (see the module docstring)."""

    def wrap(fn):
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        REGISTRY[name] = Metric(name, fn, item, doc, batch_item, stats, from_stats, higher_is_better,
                                frozenset(answer_types) if answer_types is not None else None, needs_labels)
        return fn

    return wrap


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
