"""medeval.stats: the one choice of how a metric is recomputed on resamples, shared by every interval and test."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from medeval import metrics as M
from medeval import stats as S
from results_factory import DATA

LABELS = ["yes", "no", "maybe"]


def pubmedqa(n):
    """Real PubMedQA gold labels and predictions planted from them (every third one changed, some invalid)."""
    with (DATA / "pubmedqa" / "test.jsonl").open(encoding="utf-8") as f:
        golds = [json.loads(line)["final_decision"] for _, line in zip(range(n), f)]
    preds = [g if i % 3 else (None if i % 2 else LABELS[(LABELS.index(g) + 1) % 3]) for i, g in enumerate(golds)]
    return preds, golds


def test_statistic_chooses_item_mean_counts_or_recompute(monkeypatch):
    preds, golds = pubmedqa(60)
    opts = {"labels": LABELS}
    mean = S.statistic("accuracy", preds, golds)
    counts = S.statistic("macro_f1", preds, golds, opts)
    assert mean.vectorized and mean.batch is None and counts.vectorized and counts.batch
    idx = np.arange(60)[None, :]
    assert mean.fn(idx)[0] == pytest.approx(M.compute("accuracy", preds, golds))
    assert counts.fn(idx)[0] == pytest.approx(M.compute("macro_f1", preds, golds, opts))
    # counts that do not reproduce the metric on the full sample are not used: it is recomputed instead
    m = M.get("macro_f1")
    monkeypatch.setitem(M.REGISTRY, "macro_f1", dataclasses.replace(m, from_stats=lambda sums: sums[..., 0] * 0))
    slow = S.statistic("macro_f1", preds, golds, opts)
    assert not slow.vectorized and slow.fn(np.arange(60)) == pytest.approx(M.compute("macro_f1", preds, golds, opts))


def test_clustered_interval_is_the_same_from_counts_or_recomputed(monkeypatch):
    preds, golds = pubmedqa(90)
    clusters = [i // 3 for i in range(90)]
    fast = S.bootstrap_ci("macro_f1", preds, golds, {"labels": LABELS}, n_resamples=100, clusters=clusters)
    m = M.get("macro_f1")
    monkeypatch.setitem(M.REGISTRY, "macro_f1", dataclasses.replace(m, stats=None, from_stats=None))
    slow = S.bootstrap_ci("macro_f1", preds, golds, {"labels": LABELS}, n_resamples=100, clusters=clusters)
    assert fast["clusters"] == slow["clusters"] == 30 and fast["ci_low"] < fast["value"] < fast["ci_high"]
    assert fast == pytest.approx(slow, rel=1e-12)
