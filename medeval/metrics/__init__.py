"""Metrics: plain functions from (predictions, references) to a number.

Each metric is registered by name so that task YAML files, `medeval score` and
the regression gate can all look it up. A metric registered with `item=` has a
per-item score whose mean is the corpus value (accuracy, ROUGE, exact match);
the others (F1 variants) are recomputed on each bootstrap resample.

Predictions that could not be extracted are `None`; every metric counts them
as wrong rather than dropping them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats

from . import classification, diagnosis, ner, rubric, text  # noqa: F401  (importing a metric module registers it)
from .base import REGISTRY, Metric, compute, get, item_scores, metric, names  # noqa: F401  (the registry's API)


def _cluster_index(clusters: Sequence | None, n: int):
    """(cluster number of each item, number of clusters), or None when every item is its own unit."""
    if clusters is None:
        return None
    if len(clusters) != n:
        raise ValueError(f"{len(clusters)} cluster labels for {n} items")
    _, inv = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    return inv, int(inv.max()) + 1 if n else 0


def bootstrap_ci(name: str, preds: Sequence, golds: Sequence, options: dict | None = None,
                 n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                 clusters: Sequence | None = None) -> dict:
    """Point value, 95% percentile-bootstrap interval (scipy.stats.bootstrap) and n.

    `clusters` (one label per item): items with the same label are resampled together (a clustered
    bootstrap), for data sets that hold several copies of one question (GPQA-medical: 5 each)."""
    preds, golds = list(preds), list(golds)
    n = len(preds)
    scores = item_scores(name, preds, golds, options) if n else None
    # mean-decomposable metrics: the value is the mean of the item scores already computed
    value = float(np.mean(scores)) if scores is not None else compute(name, preds, golds, options)
    out = {"value": value, "ci_low": None, "ci_high": None, "n": n}
    cl = _cluster_index(clusters, n)
    if cl is not None:
        out["clusters"] = cl[1]
    if n < 2 or (cl is not None and cl[1] < 2):
        return out
    rng = np.random.default_rng(seed)
    m = get(name)
    kw = dict(n_resamples=n_resamples, confidence_level=confidence, method="percentile", random_state=rng)
    if scores is None and m.stats is not None:
        counts = np.asarray(m.stats(preds, golds, **(options or {})), dtype=float)   # (n, d)
        if cl is not None:   # a cluster's counts are the sums of its items' counts
            counts = np.stack([np.bincount(cl[0], weights=counts[:, j], minlength=cl[1])
                               for j in range(counts.shape[1])], axis=1)

        def stat(idx, axis=-1):  # idx: (..., units) resampled unit indices
            return m.from_stats(counts[idx.astype(int)].sum(axis=-2))

        res = stats.bootstrap((np.arange(len(counts)),), stat, vectorized=True, batch=50, **kw)
    elif scores is not None:
        if np.all(scores == scores[0]):
            out["ci_low"] = out["ci_high"] = float(scores[0])
            return out
        if cl is not None:
            res = _cluster_mean_bootstrap(scores, cl, kw)
        else:
            res = stats.bootstrap((scores,), np.mean, vectorized=True, **kw)
    else:
        members = [np.flatnonzero(cl[0] == c) for c in range(cl[1])] if cl is not None else None

        def stat(sample):
            s = sample.astype(int)
            if members is not None:
                s = np.concatenate([members[c] for c in s])
            return compute(name, [preds[i] for i in s], [golds[i] for i in s], options)

        res = stats.bootstrap((np.arange(cl[1] if cl is not None else n),), stat, vectorized=False, **kw)
    lo, hi = res.confidence_interval
    out["ci_low"], out["ci_high"] = float(lo), float(hi)
    return out


def _cluster_mean_bootstrap(scores, cl, kw):
    """The item mean, resampling whole clusters: sum of the drawn clusters' scores / their item count."""
    sums = np.bincount(cl[0], weights=scores, minlength=cl[1])
    sizes = np.bincount(cl[0], minlength=cl[1]).astype(float)

    def stat(idx, axis=-1):
        idx = idx.astype(int)
        return sums[idx].sum(axis=-1) / sizes[idx].sum(axis=-1)

    return stats.bootstrap((np.arange(cl[1]),), stat, vectorized=True, **kw)


def bootstrap_mean(scores: Sequence[float], confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0,
                   clusters: Sequence | None = None) -> dict:
    """Mean of per-item scores in [0, 1] with its percentile-bootstrap interval (clustered if asked);
    for scores that are not a registered metric of (pred, gold): sample accuracy, rubric scores."""
    x = np.asarray(list(scores), dtype=float)
    out = {"value": float(x.mean()) if len(x) else None, "ci_low": None, "ci_high": None, "n": int(len(x))}
    cl = _cluster_index(clusters, len(x))
    if cl is not None:
        out["clusters"] = cl[1]
    if len(x) < 2 or (cl is not None and cl[1] < 2):
        return out
    if np.all(x == x[0]):
        out["ci_low"] = out["ci_high"] = float(x[0])
        return out
    kw = dict(n_resamples=n_resamples, confidence_level=confidence, method="percentile",
              random_state=np.random.default_rng(seed))
    res = (_cluster_mean_bootstrap(x, cl, kw) if cl is not None
           else stats.bootstrap((x,), np.mean, vectorized=True, **kw))
    out["ci_low"], out["ci_high"] = (float(v) for v in res.confidence_interval)
    return out
