"""The style corpus: every family at >= 99% intended, and never a confident wrong answer,
an answer read from an unreadable output, or a hedge credited. The corpus itself can fail:
an extractor that finds the gold anywhere loses the wrong-answer pass."""
import json
import re

import pytest

from medeval.extract import INVALID, Outcome, norm
from medeval.testing import extraction_corpus as corpus
from medeval.testing.extraction_corpus import (LABEL_SETS, all_cases, holdout_cases,
                                               real_cases, score_corpus)

SETS = {"corpus": all_cases(), "held-out": holdout_cases(), "embedded-model": real_cases()}


def test_the_corpus_is_large_and_covers_2_to_10_options_yesno_and_labels():
    cases = SETS["corpus"]
    assert len({(c.family, c.style) for c in cases}) >= 250
    assert {len(c.choices) for c in cases if c.task == "choice"} == set(range(2, 11))
    assert {c.choices for c in cases if c.task == "label"} >= {("yes", "no", "maybe"), *map(tuple, LABEL_SETS)}
    passes = {}
    for c in cases:
        if c.kind == "answer" and c.family != "label":   # label sets enumerate every label instead
            passes.setdefault((c.family, c.style, c.choices), set()).add(c.wrong_pass)
    assert passes and all(p == {False, True} for p in passes.values())   # gold pass and wrong pass, every style
    assert {c.kind for c in cases} == {"answer", "ambiguous", "invalid"}


@pytest.mark.parametrize("name", SETS)
def test_every_family_is_read_as_intended_and_never_confidently_wrong(name):
    fams, misses = score_corpus(SETS[name])
    for fam, c in fams.items():
        assert c.get("confident_wrong", 0) == 0, (fam, [m for m in misses if m[0].family == fam][:5])
        assert c.get("invalid_guessed", 0) == 0, (fam, misses[:5])
        assert c.get("hedge_credited", 0) == 0, (fam, misses[:5])
        assert c["intended"] / c["n"] >= 0.99, (fam, c, [m for m in misses if m[0].family == fam][:5])


def test_an_extractor_that_finds_the_gold_anywhere_fails_the_wrong_pass():
    """A deliberately bad extractor (a test fake): the first option letter that appears as a word."""
    def first_letter_anywhere(case):
        if case.task != "choice":
            return INVALID
        m = re.search(r"\b([A-J])\b", case.text)
        return Outcome(m.group(1), "answer") if m else INVALID

    fams, _ = score_corpus([c for c in SETS["corpus"] if c.task == "choice"], first_letter_anywhere)
    assert sum(f.get("confident_wrong", 0) for f in fams.values()) > 500
    assert fams["hedge"].get("hedge_credited", 0) > 100


def _option_sets(data_dir, name, n):
    split = "validation" if name == "medmcqa" else "test"
    rows = [json.loads(l) for l in (data_dir / name / f"{split}.jsonl").read_text().splitlines()[:n]]
    if name == "medmcqa":
        return [[r[k] for k in ("opa", "opb", "opc", "opd")] for r in rows]
    return [[r["options"][k] for k in sorted(r["options"])] for r in rows]


@pytest.mark.parametrize("name", ["medqa", "medxpertqa", "medbullets_op5", "medmcqa"])
def test_the_styles_on_real_option_sets(data_dir, name, monkeypatch):
    """Every MCQ style, both passes, hedges and invalid outputs, on the options of real items
    (read from the data mirror at test time: MedXpertQA's 10 options hold the "A chest X-ray ..." kind)."""
    monkeypatch.setattr(corpus, "OPTION_SETS", _option_sets(data_dir, name, 12))
    cases = [c for c in corpus.mcq_cases(seed=3)   # an invalid output that quotes an option's text is not invalid
             if c.kind != "invalid" or not any(norm(t) in norm(c.text) for t in c.choices if norm(t))]
    fams, misses = score_corpus(cases)
    assert sum(f.get("confident_wrong", 0) + f.get("invalid_guessed", 0) + f.get("hedge_credited", 0)
               for f in fams.values()) == 0, misses[:5]
    assert sum(f["intended"] for f in fams.values()) / len(cases) >= 0.99, misses[:5]
