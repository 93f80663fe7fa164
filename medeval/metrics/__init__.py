"""Metrics: plain functions from (predictions, references) to a number.

Each metric is registered by name so that task YAML files, `medeval score` and
the regression gate can all look it up. A metric registered with `item=` has a
per-item score whose mean is the corpus value (accuracy, ROUGE, exact match);
the others (F1 variants) are recomputed on each bootstrap resample.

Predictions that could not be extracted are `None`; every metric counts them
as wrong rather than dropping them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[..., float]                  # (preds, golds, **options) -> float
    item: Callable[..., float] | None = None  # (pred, gold, **options) -> float
    doc: str = ""
    batch_item: Callable | None = None        # (preds, golds, **options) -> per-item scores, in one pass
    # F1-style metrics: per-item sufficient statistics (n x d counts) and the value
    # computed from their sums, vectorised over bootstrap resamples (..., d) -> (...)
    stats: Callable | None = None
    from_stats: Callable | None = None


REGISTRY: dict[str, Metric] = {}


def metric(name: str, item: Callable | None = None, batch_item: Callable | None = None,
           stats: Callable | None = None, from_stats: Callable | None = None):
    """Decorator: register a corpus-level metric under `name`."""

    def wrap(fn):
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        REGISTRY[name] = Metric(name, fn, item, doc, batch_item, stats, from_stats)
        return fn

    return wrap


def get(name: str) -> Metric:
    _load_all()
    if name not in REGISTRY:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def names() -> list[str]:
    _load_all()
    return sorted(REGISTRY)


def _load_all() -> None:
    # Importing the modules registers their metrics.
    from . import classification, diagnosis, ner, text  # noqa: F401


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


def bootstrap_ci(name: str, preds: Sequence, golds: Sequence, options: dict | None = None,
                 n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Point value, 95% percentile-bootstrap interval (scipy.stats.bootstrap) and n."""
    preds, golds = list(preds), list(golds)
    n = len(preds)
    scores = item_scores(name, preds, golds, options) if n else None
    # mean-decomposable metrics: the value is the mean of the item scores already computed
    value = float(np.mean(scores)) if scores is not None else compute(name, preds, golds, options)
    out = {"value": value, "ci_low": None, "ci_high": None, "n": n}
    if n < 2:
        return out
    rng = np.random.default_rng(seed)
    m = get(name)
    if scores is None and m.stats is not None:
        counts = np.asarray(m.stats(preds, golds, **(options or {})), dtype=float)   # (n, d)

        def stat(idx, axis=-1):  # idx: (..., n) resampled item indices
            return m.from_stats(counts[idx.astype(int)].sum(axis=-2))

        res = stats.bootstrap((np.arange(n),), stat, n_resamples=n_resamples, confidence_level=confidence,
                              method="percentile", random_state=rng, vectorized=True, batch=50)
    elif scores is not None:
        if np.all(scores == scores[0]):
            out["ci_low"] = out["ci_high"] = float(scores[0])
            return out
        res = stats.bootstrap((scores,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                              method="percentile", random_state=rng, vectorized=True)
    else:
        idx = np.arange(n)

        def stat(sample):
            s = sample.astype(int)
            return compute(name, [preds[i] for i in s], [golds[i] for i in s], options)

        res = stats.bootstrap((idx,), stat, n_resamples=n_resamples, confidence_level=confidence,
                              method="percentile", random_state=rng, vectorized=False)
    lo, hi = res.confidence_interval
    out["ci_low"], out["ci_high"] = float(lo), float(hi)
    return out
