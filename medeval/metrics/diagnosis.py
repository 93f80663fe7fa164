"""Differential-diagnosis scoring: top-K accuracy from ranks, a differential parser and a
lexical matcher used instead of an LLM judge (`--judge none`).

A rank is the 1-based position of the first differential entry that matches the
final diagnosis, or None when none matches (or the output was unusable).
"""
from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np

from .base import metric

MAX_DIFFERENTIAL = 5
MATCH_THRESHOLD = 0.6  # Dice overlap of content-token sets needed for a lexical match
_STOP = frozenset("a an the of and or with without to in on by for from due secondary s".split())
_NUMERIC = re.compile(r"^(\d+|i|ii|iii|iv|v|vi|vii|viii|ix|x)$")  # stage/type numbers must agree
_QUALIFIER = re.compile(r"\(|,|;|\b(?:with|due to|secondary to|complicated by|caused by|associated with)\b", re.I)
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_NUMBERED = re.compile(r"^\s*[#*\s]*\(?\d{1,2}[.):]\s*(.+)$")
_BULLET = re.compile(r"^\s*[-*\u2022]\s+(.+)$")
_TAIL = re.compile(r"\s[-\u2013\u2014]\s|:\s")  # "Sarcoidosis - most likely because ..."


def _rank_ok(rank) -> bool:
    if rank is None:
        return False
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise ValueError(f"a diagnosis rank must be an integer >= 1 or None (no match), got {rank!r}")
    return True


def topk_accuracy(ranks, k: int) -> float:
    """Fraction of items whose rank is not None and <= k (None = the diagnosis was not listed)."""
    if not len(ranks):
        return float("nan")
    return float(np.mean([_rank_ok(r) and r <= k for r in ranks]))


def _register_topk(k: int):
    def item(pred, gold=None, **_):
        return float(_rank_ok(pred) and pred <= k)

    def corpus(preds, golds=None, **_):
        return topk_accuracy(preds, k)

    corpus.__doc__ = f"Top-{k} accuracy: fraction of items whose diagnosis rank (the prediction) is <= {k}; gold unused."
    metric(f"top{k}_accuracy", item=item, answer_types=("diagnosis",))(corpus)
    return corpus


top1_accuracy, top2_accuracy, top3_accuracy, top4_accuracy, top5_accuracy = (
    _register_topk(k) for k in range(1, 6))


def parse_differential(text: str | None, limit: int = MAX_DIFFERENTIAL) -> list[str]:
    """Up to `limit` diagnoses from a numbered list ("1. X", "2) X"), else a bulleted list, else the
    non-empty lines that are not headers (ending in ":"). <think> blocks, markdown emphasis and
    trailing explanations (" - ...", ": ...") are removed. Returns [] when nothing is left or a
    <think> block never closes."""
    if not text:
        return []
    text = _THINK.sub("", text).rsplit("</think>", 1)[-1]  # also a block opened in the prompt
    if "<think>" in text.lower():
        return []  # the reasoning never finished: no answer
    lines = [l for l in text.splitlines() if l.strip()]
    items = [m.group(1) for m in map(_NUMBERED.match, lines) if m]
    items = items or [m.group(1) for m in map(_BULLET.match, lines) if m]
    items = items or [l for l in lines if not l.rstrip().endswith(":")]  # no list: lines, minus headers
    out = []
    for item in items:
        item = _TAIL.split(item.replace("**", "").replace("__", ""), maxsplit=1)[0].strip(" *_.`")
        if item:
            out.append(item)
    return out[:limit]


@functools.cache
def _tokenizer():
    from rouge_score.tokenizers import DefaultTokenizer  # lower-case, [a-z0-9] runs, Porter stems
    return DefaultTokenizer(use_stemmer=True)


@functools.lru_cache(maxsize=4096)
def _tokens(text: str) -> frozenset:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return frozenset(t for t in _tokenizer().tokenize(ascii_text) if t not in _STOP)


def _dice(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    num_a, num_b = {t for t in a if _NUMERIC.match(t)}, {t for t in b if _NUMERIC.match(t)}
    if num_a and num_b and num_a != num_b:
        return 0.0  # "type 1" vs "type 2", "stage II" vs "stage III"
    return 2 * len(a & b) / (len(a) + len(b))


def lexical_match(candidate: str, final_diagnosis: str) -> float:
    """Best Dice overlap of stemmed content tokens between the candidate and either the whole final
    diagnosis or its head (the text before the first "(", ",", "with", "due to", "secondary to" ...)."""
    cand = _tokens(candidate)
    head = _QUALIFIER.split(final_diagnosis, maxsplit=1)[0]
    return max(_dice(cand, _tokens(final_diagnosis)), _dice(cand, _tokens(head)))


def lexical_rank(differential: list[str], final_diagnosis: str,
                 threshold: float = MATCH_THRESHOLD) -> int | None:
    """1-based position of the first differential entry whose lexical_match with the final diagnosis
    is >= threshold (default 0.6), or None."""
    for i, candidate in enumerate(differential, start=1):
        if lexical_match(candidate, final_diagnosis) >= threshold:
            return i
    return None
