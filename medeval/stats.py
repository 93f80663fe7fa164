"""Statistics, once: bootstrap intervals of a metric, of a mean, clustered, and paired tests of two runs.

Every bootstrap here resamples *units* (items, or whole clusters of items) and recomputes a metric
on the drawn units. How a metric is recomputed is chosen in ONE place, `statistic()`:
- the metric has per-item scores (accuracy, ROUGE, exact match): the mean of the drawn scores;
- it has per-item sufficient statistics (F1 counts) that reproduce `compute` on the full sample:
  `from_stats` of the summed counts, vectorised over all resamples at once;
- otherwise: `metrics.compute` on every resample (about 5 ms each).
`bootstrap_ci` (one run), `bootstrap_mean` (scores that are no registered metric) and `paired_test`
(the regression gate: McNemar's exact test or a paired bootstrap; "worse" follows the metric's
declared `higher_is_better`) are built on it. Intervals are scipy.stats.bootstrap percentile
intervals with a fixed seed, so the same input gives the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats

from .metrics import compute, get, item_scores


@dataclass(frozen=True)
class Statistic:
    """A metric as a function of resampled unit indices: fn(idx) with idx of shape (..., units)."""
    fn: Callable
    units: int
    vectorized: bool
    batch: int | None = None


def cluster_index(clusters: Sequence | None, n: int):
    """(cluster number of each item, number of clusters), or None when every item is its own unit."""
    if clusters is None:
        return None
    if len(clusters) != n:
        raise ValueError(f"{len(clusters)} cluster labels for {n} items")
    _, inv = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    return inv, int(inv.max()) + 1 if n else 0


def _mean_statistic(scores, cl) -> Statistic:
    """The item mean; with clusters: the drawn clusters' score sums over their item counts."""
    if cl is None:
        return Statistic(lambda idx, axis=-1: scores[idx.astype(int)].mean(axis=-1), len(scores), True)
    sums = np.bincount(cl[0], weights=scores, minlength=cl[1])
    sizes = np.bincount(cl[0], minlength=cl[1]).astype(float)

    def fn(idx, axis=-1):
        idx = idx.astype(int)
        return sums[idx].sum(axis=-1) / sizes[idx].sum(axis=-1)

    return Statistic(fn, cl[1], True)


def _counts_statistic(name, preds, golds, options, value, cl) -> Statistic | None:
    """from_stats of summed per-unit counts, where the metric has them and they reproduce `value`."""
    m = get(name)
    if m.stats is None or m.from_stats is None:
        return None
    counts = np.asarray(m.stats(list(preds), list(golds), **(options or {})), dtype=float)   # (n, d)
    if not np.isclose(m.from_stats(counts.sum(axis=0)), value):
        return None
    if cl is not None:   # a cluster's counts are the sums of its items' counts
        counts = np.stack([np.bincount(cl[0], weights=counts[:, j], minlength=cl[1])
                           for j in range(counts.shape[1])], axis=1)

    def fn(idx, axis=-1):
        return m.from_stats(counts[idx.astype(int)].sum(axis=-2))

    return Statistic(fn, len(counts), True, batch=50)


def _recompute_statistic(name, preds, golds, options, cl) -> Statistic:
    members = [np.flatnonzero(cl[0] == c) for c in range(cl[1])] if cl is not None else None

    def fn(idx):
        s = idx.astype(int)
        if members is not None:
            s = np.concatenate([members[c] for c in s])
        return compute(name, [preds[i] for i in s], [golds[i] for i in s], options)

    return Statistic(fn, cl[1] if cl is not None else len(preds), False)


def statistic(name: str, preds: Sequence, golds: Sequence, options: dict | None = None, cl=None,
              scores=None, value: float | None = None) -> Statistic:
    """How to recompute metric `name` on resampled units (the three-way choice of the module docstring).
    `scores` / `value`: the per-item scores and the full-sample value, where already computed."""
    if scores is None:
        scores = item_scores(name, preds, golds, options)
    if scores is not None:
        return _mean_statistic(np.asarray(scores, dtype=float), cl)
    value = compute(name, preds, golds, options) if value is None else value
    return _counts_statistic(name, preds, golds, options, value, cl) or _recompute_statistic(
        name, preds, golds, options, cl)


def _bootstrap(stat: Statistic, rng, n_resamples: int = 1000, confidence: float = 0.95):
    return stats.bootstrap((np.arange(stat.units),), stat.fn, vectorized=stat.vectorized, batch=stat.batch,
                           n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                           random_state=rng)


def _interval(out: dict, scores, cl, make: Callable[[], Statistic], n_resamples, confidence, seed) -> dict:
    """Fill out's ci_low/ci_high (and clusters): none for fewer than two units, a point for constant scores."""
    if cl is not None:
        out["clusters"] = cl[1]
    if out["n"] < 2 or (cl is not None and cl[1] < 2):
        return out
    if scores is not None and np.all(scores == scores[0]):
        out["ci_low"] = out["ci_high"] = float(scores[0])
        return out
    res = _bootstrap(make(), np.random.default_rng(seed), n_resamples, confidence)
    out["ci_low"], out["ci_high"] = (float(v) for v in res.confidence_interval)
    return out


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
    cl = cluster_index(clusters, n)
    make = lambda: statistic(name, preds, golds, options, cl, scores, value)
    return _interval({"value": value, "ci_low": None, "ci_high": None, "n": n}, scores, cl, make,
                     n_resamples, confidence, seed)


def bootstrap_mean(scores: Sequence[float], confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0,
                   clusters: Sequence | None = None) -> dict:
    """Mean of per-item scores in [0, 1] with its percentile-bootstrap interval (clustered if asked);
    for scores that are not a registered metric of (pred, gold): sample accuracy, rubric scores."""
    x = np.asarray(list(scores), dtype=float)
    out = {"value": float(x.mean()) if len(x) else None, "ci_low": None, "ci_high": None, "n": int(len(x))}
    cl = cluster_index(clusters, len(x))
    return _interval(out, x, cl, lambda: _mean_statistic(x, cl), n_resamples, confidence, seed)


# ---------------------------------------------------------------- paired tests (the regression gate)
def _mcnemar(sb, sc, sided: str, higher_is_better: bool = True) -> dict:
    """McNemar's exact test on 0/1 item scores: a binomial test on the discordant pairs."""
    good_b, good_c = (sb, sc) if higher_is_better else (1 - sb, 1 - sc)
    worse = int(np.sum((good_b == 1) & (good_c == 0)))   # baseline right, candidate wrong
    better = int(np.sum((good_b == 0) & (good_c == 1)))
    out = {"test": "mcnemar_exact", "discordant_worse": worse, "discordant_better": better}
    if worse + better:
        alt = "greater" if sided == "one" else "two-sided"
        out["p_value"] = float(stats.binomtest(worse, worse + better, 0.5, alternative=alt).pvalue)
    return out


def _paired_difference(metric, base, cand, golds, options, sb, sc, b_val, c_val) -> Statistic:
    """candidate minus baseline, both recomputed on the same resampled items (both sides the same way)."""
    b = statistic(metric, base, golds, options, scores=sb, value=b_val)
    c = statistic(metric, cand, golds, options, scores=sc, value=c_val)
    if b.vectorized and c.vectorized:
        return Statistic(lambda idx, axis=-1: c.fn(idx) - b.fn(idx), b.units, True, 100 if b.batch else None)
    b, c = (_recompute_statistic(metric, side, golds, options, None) for side in (base, cand))
    return Statistic(lambda idx: c.fn(idx) - b.fn(idx), b.units, False)


def paired_test(metric: str, base: list, cand: list, golds: list, options: dict | None = None,
                sided: str = "one", n_resamples: int = 1000, seed: int = 0,
                higher_is_better: bool | None = None) -> dict:
    """Baseline/candidate values, delta, paired-bootstrap 95% CI of the delta and standard error
    (`delta_se`, from 2 items on), p-value and the test used.

    The p-value is McNemar's exact test where both runs' per-item scores are 0/1, else from the paired
    bootstrap (the resampled deltas shifted to be centred on H0: delta = 0).
    sided="one": H1 is "candidate worse than baseline"; sided="two": any difference. Worse is lower for
    a metric where higher is better, higher for one where lower is better (`higher_is_better`, default:
    the metric's declaration)."""
    higher = get(metric).higher_is_better if higher_is_better is None else higher_is_better
    b_val, c_val = compute(metric, base, golds, options), compute(metric, cand, golds, options)
    delta = c_val - b_val
    out = {"baseline": b_val, "candidate": c_val, "delta": delta, "n": len(golds),
           "ci_low": None, "ci_high": None, "p_value": 1.0}
    sb, sc = item_scores(metric, base, golds, options), item_scores(metric, cand, golds, options)
    binary = sb is not None and np.isin(sb, (0, 1)).all() and np.isin(sc, (0, 1)).all()
    out.update(_mcnemar(sb, sc, sided, higher) if binary else {"test": "paired_bootstrap"})
    if len(golds) < 2:
        return out
    if all(b == c for b, c in zip(base, cand)):  # identical predictions: every resampled delta is 0
        out.update(ci_low=0.0, ci_high=0.0, p_value=1.0, delta_se=0.0)
        return out
    diff = _paired_difference(metric, base, cand, golds, options, sb, sc, b_val, c_val)
    res = _bootstrap(diff, np.random.default_rng(seed), n_resamples)
    dist = np.asarray(res.bootstrap_distribution)
    lo, hi = res.confidence_interval
    out["ci_low"] = float(lo) if np.isfinite(lo) else float(np.min(dist))
    out["ci_high"] = float(hi) if np.isfinite(hi) else float(np.max(dist))
    out["delta_se"] = float(res.standard_error)   # the paired bootstrap's standard error of delta (power)
    if not binary:
        out["p_value"] = _bootstrap_p(dist, delta, sided, higher)
    return out


def _bootstrap_p(dist, delta: float, sided: str, higher_is_better: bool) -> float:
    """p-value from the resampled deltas shifted to be centred on H0 (delta = 0)."""
    shifted = dist - delta
    if sided == "two":
        hits = np.sum(np.abs(shifted) >= abs(delta))
    else:   # one-sided: shifted deltas at least as far as delta in the worse direction
        hits = np.sum(shifted <= delta) if higher_is_better else np.sum(shifted >= delta)
    return float((1 + hits) / (1 + len(dist)))
