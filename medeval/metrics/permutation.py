"""Metrics over the shown orders of a choice item (`--permute`, issue 26; docs/permutation.md).

A prediction here is one item's list of answers, one per shown order, each mapped back to the original
lettering (copy 0: the original order); the gold is the item's original gold letter. The per-item scores
make every interval a bootstrap over items, never over copies.
"""
from __future__ import annotations

import numpy as np

from .base import metric

NEEDS = "needs one answer per shown order (a list per item): run the task with --permute cyclic or random:N"


def _copies(pred) -> list:
    if not isinstance(pred, (list, tuple)) or not pred:
        raise ValueError(f"a permutation metric {NEEDS}; got {pred!r}")
    return list(pred)


def _circular(pred, gold, **_):
    return float(all(p is not None and p == gold for p in _copies(pred)))


def _permuted(pred, gold, **_):
    got = _copies(pred)
    return float(np.mean([p is not None and p == gold for p in got]))


def _consistent(pred, gold=None, **_):
    got = _copies(pred)
    return float(got[0] is not None and all(p == got[0] for p in got))


def _mean(item):
    def fn(preds, golds, **_):
        return float(np.mean([item(p, g) for p, g in zip(preds, golds)])) if golds else float("nan")
    return fn


@metric("circular_accuracy", item=_circular, answer_types=("choice",))
def circular_accuracy(preds, golds, **_):
    """Share of items answered right under every shown order of their options (OpenCompass's CircularEval)."""
    return _mean(_circular)(preds, golds)


@metric("permuted_accuracy", item=_permuted, answer_types=("choice",))
def permuted_accuracy(preds, golds, **_):
    """Mean over items of the share of an item's shown orders answered right."""
    return _mean(_permuted)(preds, golds)


@metric("permutation_consistency", item=_consistent, answer_types=("choice",))
def permutation_consistency(preds, golds, **_):
    """Share of items where the same option (not its letter) is chosen under every shown order; no answer in
    any order counts as inconsistent."""
    return _mean(_consistent)(preds, golds)


PERMUTATION_METRICS = ("circular_accuracy", "permuted_accuracy", "permutation_consistency")
