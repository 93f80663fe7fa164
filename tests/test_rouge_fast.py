"""medeval.metrics.rouge_fast gives rouge-score's scores bit for bit, on the project's summarization data."""
import json
import random
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from medeval.metrics.rouge_fast import FastRougeScorer, lcs_length

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def _rows(name):
    return [json.loads(line) for line in (DATA / name / "test.jsonl").read_text(encoding="utf-8").splitlines()]


def _pairs(n_iu, n_pm):
    """(reference, prediction): iu_xray impression vs findings; pubmed_summ abstract vs the article's lead
    (a lead summary of about 150 words, newlines kept for rougeLsum), every other pair reversed."""
    iu = [(r["impression"], r["findings"]) for r in _rows("iu_xray")[:n_iu]]
    pm = [(r["abstract"], r["article"][:1000]) for r in _rows("pubmed_summ")[:n_pm]]
    return iu, [p if k % 2 else p[::-1] for k, p in enumerate(pm)]


# the project's tasks use the stemmer; without it is checked on a smaller sample (keeps the test in seconds)
@pytest.mark.parametrize("use_stemmer,n_iu,n_pm", [(True, 600, 60), (False, 200, 12)])
def test_identical_to_rouge_score_on_summarization_data(use_stemmer, n_iu, n_pm):
    ref = rouge_scorer.RougeScorer(TYPES, use_stemmer=use_stemmer)
    fast = FastRougeScorer(TYPES, use_stemmer=use_stemmer)
    for name, pairs in zip(("iu_xray", "pubmed_summ"), _pairs(n_iu, n_pm)):
        for target, pred in pairs:
            want, got = ref.score(target, pred), fast.score(target, pred)
            for t in TYPES:
                assert got[t] == want[t], (name, t, target[:60], pred[:60], got[t], want[t])
    # the pairs are not trivial: some overlap, and not all perfect
    f = [fast.score(t, p)["rougeL"].fmeasure for t, p in _pairs(0, n_pm)[1]]
    assert 0 < min(f) and max(f) < 1


def test_lcs_length_matches_the_dynamic_programme():
    rng = random.Random(7)
    for _ in range(300):
        vocab = rng.randint(1, 6)
        a = [rng.randrange(vocab) for _ in range(rng.randint(0, 150))]
        b = [rng.randrange(vocab) for _ in range(rng.randint(0, 150))]
        want = rouge_scorer._lcs_table(a, b)[-1][-1] if a and b else 0
        assert lcs_length(a, b) == want == lcs_length(b, a)


def test_edge_cases_and_bad_types():
    fast, ref = FastRougeScorer(TYPES, use_stemmer=True), rouge_scorer.RougeScorer(TYPES, use_stemmer=True)
    for target, pred in [("", ""), ("", "a b"), ("no effusion.", ""), ("!!!", "???"), ("Normal.", "normal")]:
        assert fast.score(target, pred) == ref.score(target, pred)
    with pytest.raises(ValueError, match="rouge0"):
        FastRougeScorer(["rouge0"])
