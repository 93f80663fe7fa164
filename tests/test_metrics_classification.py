"""Classification metrics on real DDI and HoC labels from ../shared/data, against scikit-learn and
against a per-class count written out here; invalid (None) predictions must count as wrong."""
from __future__ import annotations


import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from medeval import metrics

from conftest import DATA, read_rows
DDI_LABELS = ["false", "mechanism", "effect", "advise", "int"]
DDI_POSITIVE = ["mechanism", "effect", "advise", "int"]


def rows(dataset: str) -> list[dict]:
    return read_rows(dataset)


def per_class_f1(preds, golds, label) -> float:
    tp = sum(p == label and g == label for p, g in zip(preds, golds))
    fp = sum(p == label and g != label for p, g in zip(preds, golds))
    fn = sum(p != label and g == label for p, g in zip(preds, golds))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


@pytest.fixture(scope="module")
def ddi():
    golds = [r["label"] for r in rows("ddi")]
    rng = np.random.default_rng(0)
    # A noisy classifier: right 60% of the time, else a random label or (10%) an invalid output.
    preds = [g if rng.random() < 0.6 else (None if rng.random() < 0.1 else str(rng.choice(DDI_LABELS)))
             for g in golds]
    assert None in preds
    return preds, golds


def test_macro_f1_equals_sklearn_on_ddi(ddi):
    preds, golds = ddi
    ours = metrics.compute("macro_f1", preds, golds, {"labels": DDI_LABELS})
    reference = f1_score(golds, [p if p is not None else "<none>" for p in preds], labels=DDI_LABELS,
                         average="macro", zero_division=0)
    assert ours == pytest.approx(reference, abs=1e-12)
    assert ours == pytest.approx(np.mean([per_class_f1(preds, golds, l) for l in DDI_LABELS]), abs=1e-12)


def test_macro_f1_positive_on_ddi_excludes_false(ddi):
    preds, golds = ddi
    options = {"labels": DDI_LABELS, "negative": "false"}
    positive = metrics.compute("macro_f1_positive", preds, golds, options)
    assert positive == pytest.approx(np.mean([per_class_f1(preds, golds, l) for l in DDI_POSITIVE]), abs=1e-12)
    assert positive != pytest.approx(metrics.compute("macro_f1", preds, golds, {"labels": DDI_LABELS}))
    micro = metrics.compute("micro_f1_positive", preds, golds, options)
    reference = f1_score(golds, [p or "<none>" for p in preds], labels=DDI_POSITIVE, average="micro")
    assert micro == pytest.approx(reference, abs=1e-12)


def test_invalid_predictions_count_as_wrong(ddi):
    _, golds = ddi
    assert metrics.compute("macro_f1", [None] * len(golds), golds, {"labels": DDI_LABELS}) == 0.0
    assert metrics.compute("accuracy", [golds[0], None], golds[:2]) == 0.5
    # Replacing right answers by None lowers the score: None never matches the gold class.
    preds = list(golds)
    preds[: len(golds) // 2] = [None] * (len(golds) // 2)
    assert metrics.compute("macro_f1", preds, golds, {"labels": DDI_LABELS}) < 1.0


def test_multilabel_macro_f1_equals_sklearn_on_hoc():
    data = rows("hoc")
    golds = [r["labels"] for r in data]
    labels = sorted({l for g in golds for l in g})
    assert len(labels) == 10 and [] in golds  # abstracts with no hallmark are part of the set
    rng = np.random.default_rng(1)
    preds = []
    for g in golds:
        roll = rng.random()
        if roll < 0.05:
            preds.append(None)  # invalid output = the empty set
        elif roll < 0.5:
            preds.append(list(g))
        else:
            preds.append([str(l) for l in rng.choice(labels, size=rng.integers(0, 3), replace=False)])
    ours = metrics.compute("multilabel_macro_f1", preds, golds, {"labels": labels})
    mlb = MultiLabelBinarizer(classes=labels)
    reference = f1_score(mlb.fit_transform(golds), mlb.transform([p or [] for p in preds]),
                         average="macro", zero_division=0)
    assert ours == pytest.approx(reference, abs=1e-12)
    by_hand = np.mean([per_class_f1([l in (p or []) for p in preds], [l in g for g in golds], True)
                       for l in labels])
    assert ours == pytest.approx(by_hand, abs=1e-12)
    assert metrics.compute("multilabel_macro_f1", golds, golds, {"labels": labels}) == 1.0


def test_bootstrap_counts_reproduce_sklearn_on_real_ddi():
    """The vectorised bootstrap statistic equals sklearn's F1 on the full sample and on resamples."""
    import json
    import numpy as np
    from sklearn.metrics import f1_score
    from medeval.metrics import get

    rows = [json.loads(l) for l in open(DATA / "ddi" / "validation.jsonl")][:400]
    golds = [r["label"] for r in rows]
    labels = ["false", "mechanism", "effect", "advise", "int"]
    rng = np.random.default_rng(3)
    preds = [None if rng.random() < 0.1 else labels[rng.integers(5)] for _ in golds]
    P = ["<x>" if p is None else p for p in preds]
    for name, neg, avg in (("macro_f1", None, "macro"), ("macro_f1_positive", "false", "macro"),
                           ("micro_f1_positive", "false", "micro")):
        m = get(name)
        counts = m.stats(preds, golds, labels=labels, negative=neg)
        labs = [l for l in labels if l != neg]
        assert abs(m.from_stats(counts.sum(0)) - f1_score(golds, P, labels=labs, average=avg, zero_division=0)) < 1e-12
        idx = rng.integers(0, len(golds), len(golds))
        want = f1_score([golds[i] for i in idx], [P[i] for i in idx], labels=labs, average=avg, zero_division=0)
        assert abs(m.from_stats(counts[idx].sum(0)) - want) < 1e-12
