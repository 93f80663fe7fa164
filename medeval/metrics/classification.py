"""Single-label and multi-label classification metrics (scikit-learn)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from .base import metric

LABELLED = ("choice", "yesno", "label")   # one answer from a closed set: per-class F1 applies

INVALID = "<invalid>"


def _labels(preds, golds, labels):
    if labels:
        return list(labels)
    return sorted({g for g in golds if g is not None})


def _exact(pred, gold, **_):
    return float(pred is not None and pred == gold)


@metric("accuracy", item=_exact, answer_types=("choice", "yesno", "label", "multilabel"))
def accuracy(preds, golds, **_):
    """Fraction of items whose extracted answer equals the gold answer (invalid = wrong)."""
    if not golds:
        return float("nan")
    return float(np.mean([_exact(p, g) for p, g in zip(preds, golds)]))


def _class_counts(preds, golds, labels=None, negative=None, **_):
    """Per item, one-hot true-positive, false-positive and false-negative counts per class (n x 3K)."""
    labs = [l for l in _labels(preds, golds, labels) if l != negative]
    index = {l: k for k, l in enumerate(labs)}
    K = len(labs)
    out = np.zeros((len(golds), 3 * K))
    for i, (p, g) in enumerate(zip(preds, golds)):
        if p == g and g in index:
            out[i, index[g]] = 1                 # tp
        else:
            if p in index:
                out[i, K + index[p]] = 1         # fp for the predicted class
            if g in index:
                out[i, 2 * K + index[g]] = 1     # fn for the gold class
    return out


def _f1_from_counts(sums, average="macro"):
    """Macro (mean of per-class F1) or micro F1 from summed counts; 0 where undefined, like zero_division=0."""
    K = sums.shape[-1] // 3
    tp, fp, fn = sums[..., :K], sums[..., K:2 * K], sums[..., 2 * K:]
    if average == "micro":
        tp, fp, fn = tp.sum(-1), fp.sum(-1), fn.sum(-1)
        den = 2 * tp + fp + fn
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0).mean(-1)


_micro = lambda sums: _f1_from_counts(sums, "micro")


@metric("macro_f1", stats=_class_counts, from_stats=_f1_from_counts, answer_types=LABELLED, needs_labels=True)
def macro_f1(preds, golds, labels=None, **_):
    """Unweighted mean of per-class F1 over the task's label set (sklearn average='macro').

    Invalid predictions are a separate value that is not in `labels`, so they
    count as a miss for the gold class and never as a hit for any class.
    """
    labs = _labels(preds, golds, labels)
    p = [x if x is not None else INVALID for x in preds]
    return float(f1_score(golds, p, labels=labs, average="macro", zero_division=0))


@metric("macro_f1_positive", stats=_class_counts, from_stats=_f1_from_counts, answer_types=LABELLED,
        needs_labels=True)
def macro_f1_positive(preds, golds, labels=None, negative=None, **_):
    """Macro-F1 over the positive classes only: the label set minus `negative` (DDI's 'false')."""
    labs = [l for l in _labels(preds, golds, labels) if l != negative]
    p = [x if x is not None else INVALID for x in preds]
    return float(f1_score(golds, p, labels=labs, average="macro", zero_division=0))


@metric("micro_f1_positive", stats=_class_counts, from_stats=_micro, answer_types=LABELLED, needs_labels=True)
def micro_f1_positive(preds, golds, labels=None, negative=None, **_):
    """Micro-F1 over the positive classes only (the convention of the BLURB DDI leaderboard)."""
    labs = [l for l in _labels(preds, golds, labels) if l != negative]
    p = [x if x is not None else INVALID for x in preds]
    return float(f1_score(golds, p, labels=labs, average="micro", zero_division=0))


@metric("multilabel_macro_f1", answer_types=("multilabel",), needs_labels=True)
def multilabel_macro_f1(preds, golds, labels=None, **_):
    """Label-wise macro-F1 for multi-label tasks: F1 per label over items, then the plain mean.

    Each prediction and gold is a list of labels (possibly empty); an invalid
    prediction counts as the empty set.
    """
    labs = list(labels) if labels else sorted({l for g in golds for l in g})
    mlb = MultiLabelBinarizer(classes=labs)
    mlb.fit([labs])
    y_true = mlb.transform([[l for l in g if l in labs] for g in golds])
    y_pred = mlb.transform([[l for l in (p or []) if l in labs] for p in preds])
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))
