"""ROUGE with rouge-score's exact tokenizer and formulas, faster.

Same scores as `rouge_score.rouge_scorer.RougeScorer` (tests/test_rouge_fast.py checks
bit-identity on the project's summarization data), three changes:
- tokenizing is memoised per text and the Porter stemmer per word (both are pure
  functions; a task scores each text once per ROUGE type, and bootstrap_ci twice);
- ROUGE-L's longest common subsequence length is computed bit-parallel over Python
  integers (Hyyro 2004), one big-integer step per token of the shorter text, instead
  of rouge-score's quadratic table of Python ints;
- each text is tokenized once for all requested ROUGE types.
rougeLsum (union LCS per sentence) is delegated to rouge-score with the memoised tokenizer.
"""
from __future__ import annotations

import functools
from collections import Counter

from nltk.stem import porter
from rouge_score import rouge_scorer, scoring, tokenize, tokenizers


class _MemoStemmer:
    def __init__(self, maxsize: int = 2**18):
        self.stem = functools.lru_cache(maxsize=maxsize)(porter.PorterStemmer().stem)


class CachedTokenizer(tokenizers.Tokenizer):
    """rouge-score's DefaultTokenizer, memoised per text (bounded) and per stemmed word."""

    def __init__(self, use_stemmer: bool = False, maxsize: int = 4096):
        self._stemmer = _MemoStemmer() if use_stemmer else None
        self._tokens = functools.lru_cache(maxsize=maxsize)(lambda text: tuple(tokenize.tokenize(text, self._stemmer)))

    def tokenize(self, text):
        return list(self._tokens(text))


@functools.lru_cache(maxsize=None)
def shared_tokenizer(use_stemmer: bool) -> CachedTokenizer:
    """One tokenizer per stemming mode for every scorer, so ROUGE types share the memo."""
    return CachedTokenizer(use_stemmer)


def clear_caches() -> None:
    """Forget every memoised text and stem (benchmarks use it to time cold runs)."""
    shared_tokenizer.cache_clear()


def lcs_length(a: list, b: list) -> int:
    """Length of the longest common subsequence of two token lists (bit-parallel)."""
    if len(a) < len(b):
        a, b = b, a                      # bit masks over the longer list, loop over the shorter
    masks: dict = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def _ngrams(tokens: list, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _score_ngrams(target: Counter, prediction: Counter) -> scoring.Score:
    hits = sum(min(c, prediction[g]) for g, c in target.items())
    precision = hits / max(sum(prediction.values()), 1)
    recall = hits / max(sum(target.values()), 1)
    return scoring.Score(precision, recall, scoring.fmeasure(precision, recall))


def _score_lcs(target: list, prediction: list) -> scoring.Score:
    if not target or not prediction:
        return scoring.Score(precision=0, recall=0, fmeasure=0)
    lcs = lcs_length(target, prediction)
    precision, recall = lcs / len(prediction), lcs / len(target)
    return scoring.Score(precision, recall, scoring.fmeasure(precision, recall))


class FastRougeScorer:
    """Drop-in for rouge_scorer.RougeScorer(rouge_types, use_stemmer): .score(target, prediction)."""

    def __init__(self, rouge_types, use_stemmer: bool = False):
        self.rouge_types = list(rouge_types)
        for t in self.rouge_types:
            if t not in ("rougeL", "rougeLsum") and not (t.startswith("rouge") and t[5:].isdigit() and int(t[5:]) > 0):
                raise ValueError(f"invalid rouge type {t!r}: use rouge1..rougeN, rougeL or rougeLsum")
        self.tokenizer = shared_tokenizer(bool(use_stemmer))
        self._lsum = rouge_scorer.RougeScorer(["rougeLsum"], tokenizer=self.tokenizer)

    def score(self, target: str, prediction: str) -> dict:
        plain = [t for t in self.rouge_types if t != "rougeLsum"]
        tt = self.tokenizer.tokenize(target) if plain else None
        pt = self.tokenizer.tokenize(prediction) if plain else None
        out = {}
        for t in self.rouge_types:
            if t == "rougeL":
                out[t] = _score_lcs(tt, pt)
            elif t == "rougeLsum":
                out[t] = self._lsum.score(target, prediction)["rougeLsum"]
            else:
                n = int(t[5:])
                out[t] = _score_ngrams(_ngrams(tt, n), _ngrams(pt, n))
        return out
