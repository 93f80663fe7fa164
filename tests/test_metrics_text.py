"""ROUGE, BERTScore, SQuAD EM / token F1 and the diagnosis scorers, checked against the reference
libraries (rouge-score, bert-score) on real data from ../shared/data and against hand-computed cases."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medeval import metrics
from medeval.metrics import diagnosis, text

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def rows(dataset: str, n: int | None = None) -> list[dict]:
    path = DATA / dataset / "test.jsonl"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    with path.open() as f:
        out = [json.loads(line) for line in f]
    return out[:n] if n else out


@pytest.fixture(scope="module")
def xray():
    return [r for r in rows("iu_xray", 40) if r["findings"].strip() and r["impression"].strip()][:20]


# --- ROUGE ------------------------------------------------------------------

def test_rouge_equals_rouge_score_on_iu_xray(xray):
    from rouge_score import rouge_scorer
    preds, golds = [r["findings"] for r in xray], [r["impression"] for r in xray]
    reference = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=True)
    expected = [reference.score(g, p) for p, g in zip(preds, golds)]
    for t in ROUGE_TYPES:
        want = np.array([e[t].fmeasure for e in expected])
        assert np.allclose(metrics.item_scores(t, preds, golds), want, atol=1e-12)
        assert metrics.compute(t, preds, golds) == pytest.approx(want.mean(), abs=1e-12)
        assert 0 < want.mean() < 1


def test_rouge_hand_computed():
    assert metrics.compute("rouge1", ["the cat sat"], ["the cat ran"]) == pytest.approx(2 / 3)
    assert metrics.compute("rouge2", ["the cat sat"], ["the cat ran"]) == pytest.approx(1 / 2)
    assert metrics.compute("rougeL", ["the cat sat"], ["the cat ran"]) == pytest.approx(2 / 3)
    # Stemming: cats/cat and running/runs share Porter stems; without the stemmer nothing matches.
    assert metrics.compute("rouge1", ["cats running"], ["cat runs"]) == 1.0
    assert metrics.compute("rouge1", ["cats running"], ["cat runs"], {"use_stemmer": False}) == 0.0
    # rougeLsum splits on newlines (union LCS per reference sentence); rougeL does not.
    assert metrics.compute("rougeL", ["a b\nc d"], ["c d\na b"]) == pytest.approx(0.5)
    assert metrics.compute("rougeLsum", ["a b\nc d"], ["c d\na b"]) == pytest.approx(1.0)
    # Mean of per-item scores; an invalid (None) prediction scores 0.
    assert metrics.compute("rouge1", ["the cat sat", None], ["the cat ran", "x"]) == pytest.approx(1 / 3)


def test_rouge_rejects_non_text_gold_and_reuses_one_scorer():
    with pytest.raises(TypeError, match="gold must be a string"):
        metrics.compute("rouge1", ["a"], [["a"]])
    assert text._rouge_scorer("rougeL", True) is text._rouge_scorer("rougeL", True)


# --- BERTScore ----------------------------------------------------------------

@pytest.fixture(scope="module")
def minilm():
    return text.bertscore_default_model()


def test_bertscore_default_model_is_the_bundled_minilm(minilm):
    config = json.loads((Path(minilm["model_type"]) / "config.json").read_text())
    assert minilm["num_layers"] == config["num_hidden_layers"] == 6  # the last layer
    assert "all-MiniLM-L6-v2" in minilm["source"]
    assert text.ONLINE_DEFAULT == {"model_type": "roberta-large", "num_layers": 17,
                                   "source": text.ONLINE_DEFAULT["source"]}


def test_bertscore_equals_bert_score(xray, minilm):
    import bert_score
    preds, golds = [r["findings"] for r in xray[:6]], [r["impression"] for r in xray[:6]]
    p, r, f = bert_score.score(preds, golds, model_type=minilm["model_type"], num_layers=6)
    ours = text.bertscore_prf(preds, golds)
    assert np.allclose(ours, np.stack([p.numpy(), r.numpy(), f.numpy()]), atol=1e-6)
    assert metrics.compute("bertscore_f1", preds, golds) == pytest.approx(float(f.mean()), abs=1e-6)
    assert metrics.compute("bertscore_recall", preds, golds) == pytest.approx(float(r.mean()), abs=1e-6)
    assert np.allclose(text.bertscore_item_scores(preds, golds, "precision"), p.numpy(), atol=1e-6)
    assert len(text._SCORERS) == 1  # one cached scorer served every call


def test_bertscore_invalid_prediction_scores_zero(minilm):
    preds = ["No acute disease.", None, "   ", "Normal."]
    golds = ["No acute cardiopulmonary process.", "Normal.", "Normal.", ""]
    scores = text.bertscore_item_scores(preds, golds)
    assert scores[0] > 0.5 and scores[1:].tolist() == [0.0, 0.0, 0.0]  # blank reference too
    assert scores[0] == pytest.approx(text.bertscore_item_scores(preds[:1], golds[:1])[0], abs=1e-6)


def test_bertscore_unknown_model_needs_num_layers():
    with pytest.raises(ValueError, match="num_layers"):
        text.bertscore_prf(["a"], ["a"], model_type="/nonexistent/local-model")


@pytest.mark.slow
def test_bertscore_runs_offline(xray, minilm):
    preds, golds = [r["findings"] for r in xray[:3]], [r["impression"] for r in xray[:3]]
    code = ("import json, sys; from medeval import metrics; a = json.load(sys.stdin); "
            "print(metrics.compute('bertscore_f1', a[0], a[1]))")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")  # any network use fails
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps([preds, golds]), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split()[-1]) == pytest.approx(metrics.compute("bertscore_f1", preds, golds), abs=1e-6)


# --- Extractive QA ------------------------------------------------------------

def test_squad_normalisation_and_hand_cases():
    assert text.normalize_answer("The  Cat, sat!") == "cat sat"
    assert metrics.compute("exact_match", ["The Cat!"], ["cat"]) == 1.0
    assert metrics.compute("exact_match", ["cat sat"], ["cat"]) == 0.0
    assert metrics.compute("token_f1", ["The cat sat."], ["a cat sat down"]) == pytest.approx(0.8)
    assert metrics.compute("token_f1", ["cat"], [["dog", "cat sat"]]) == pytest.approx(2 / 3)  # max over golds
    assert metrics.compute("exact_match", ["dog"], [["cat", "the dog"]]) == 1.0
    assert metrics.compute("token_f1", ["the"], ["cat"]) == 0.0  # empty after normalisation
    assert metrics.compute("token_f1", [""], [[]]) == 1.0  # unanswerable, empty answer: right (SQuAD v2)
    assert metrics.compute("token_f1", [None], ["cat"]) == 0.0 and metrics.compute("exact_match", [None], [""]) == 0.0
    with pytest.raises(TypeError, match="gold answer"):
        metrics.compute("token_f1", ["a"], [[1]])


def test_squad_metrics_on_covidqa_answers():
    data = rows("covidqa", 40)
    golds = [r["answers"]["text"] for r in data]
    firsts = [g[0] for g in golds]
    assert metrics.compute("exact_match", firsts, golds) == 1.0
    assert metrics.compute("token_f1", [f"The {a}." for a in firsts], golds) == 1.0
    # Answer plus the next three words of the context: precision n/(n+k), recall 1.
    longer, want = [], []
    for r, a in zip(data, firsts):
        start = r["answers"]["answer_start"][0]
        extra = " ".join(r["context"][start + len(a):].split()[:3])
        n, k = (len(text.normalize_answer(s).split()) for s in (a, extra))
        longer.append(f"{a} {extra}")
        want.append(2 * n / (2 * n + k))
    assert np.allclose(metrics.item_scores("token_f1", longer, golds), want)
    assert metrics.compute("exact_match", longer, golds) == pytest.approx(np.mean([w == 1 for w in want]))


# --- Diagnosis ------------------------------------------------------------------

def test_topk_accuracy_from_ranks():
    ranks = [1, 2, None, 5, 3]
    assert [diagnosis.topk_accuracy(ranks, k) for k in (1, 2, 3, 4, 5)] == [0.2, 0.4, 0.6, 0.6, 0.8]
    assert metrics.compute("top3_accuracy", ranks, [None] * 5) == 0.6
    assert metrics.item_scores("top1_accuracy", ranks, [None] * 5).tolist() == [1, 0, 0, 0, 0]
    for bad in (0, "1", True, 1.5):
        with pytest.raises(ValueError, match="rank"):
            diagnosis.topk_accuracy([bad], 1)


@pytest.mark.parametrize("output, expected", [
    ("1. Sarcoidosis\n2. Tuberculosis\n3. Lymphoma", ["Sarcoidosis", "Tuberculosis", "Lymphoma"]),
    ("<think>1. Gout</think>\nMy differential:\n1) **Sarcoidosis** - most likely\n2) TB: less likely",
     ["Sarcoidosis", "TB"]),
    ("**1. Sarcoidosis**\n**2. Hodgkin lymphoma (classical)**", ["Sarcoidosis", "Hodgkin lymphoma (classical)"]),
    ("- Sarcoidosis\n* Tuberculosis\n\u2022 Ataxia-telangiectasia", ["Sarcoidosis", "Tuberculosis", "Ataxia-telangiectasia"]),
    ("Differential:\nSarcoidosis\nTuberculosis", ["Sarcoidosis", "Tuberculosis"]),
    ("\n".join(f"{i}. D{i}" for i in range(1, 9)), ["D1", "D2", "D3", "D4", "D5"]),
    ("<think>still thinking 1. Gout", []),
    ("", []),
    (None, []),
])
def test_parse_differential(output, expected):
    assert diagnosis.parse_differential(output) == expected


def test_lexical_rank_hand_cases():
    final = "Primary adrenal insufficiency due to previous tuberculosis infection"
    assert diagnosis.lexical_rank(["Sarcoidosis", "Adrenal insufficiency"], final) == 2  # head: Dice 0.8
    assert diagnosis.lexical_rank(["Kaposi sarcoma"], "Kaposi's sarcoma") == 1
    assert diagnosis.lexical_rank(["Sjogren syndrome"], "Sj\u00f6gren's syndrome with neuropathy") == 1
    assert diagnosis.lexical_rank(["Multiple sclerosis"], "Multiple myeloma") is None  # Dice 0.5 < 0.6
    assert diagnosis.lexical_rank(["Type 2 diabetes mellitus"], "Type 1 diabetes mellitus") is None
    assert diagnosis.lexical_match("Lymphoma", "Classical Hodgkin lymphoma") == pytest.approx(0.5)
    assert diagnosis.lexical_rank(["Lymphoma"], "Classical Hodgkin lymphoma", threshold=0.5) == 1
    assert diagnosis.lexical_rank([], "Gout") is None


def test_lexical_rank_on_cupcase_diagnoses():
    finals = [r["final_diagnosis"] for r in rows("cupcase")]
    assert all(diagnosis.lexical_rank(["Ankle sprain", "Common cold", f], f) == 3 for f in finals)
