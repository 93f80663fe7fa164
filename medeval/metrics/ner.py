"""Named-entity recognition: read a model's entity list, align it to the sentence's tokens, and
score entity-level F1 (a predicted entity counts only with the exact token span and type).

Entities are (start, end, type) in token offsets, end exclusive, as in the `entities` field of
ncbi_disease / bc5cdr (dicts with start, end, type are accepted too). A `None` prediction
(malformed output) is the empty set: every gold entity of that sentence is missed.
"""
from __future__ import annotations

import ast
import json
import re
from collections import Counter, defaultdict

from .base import metric

ENTITIES = ("entities",)

_TOKEN = re.compile(r"\w+|[^\w\s]")  # the data's tokenisation: word runs, each punctuation mark alone
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE = re.compile(r"```[\w-]*\n?(.*?)```", re.S)
_NONE = re.compile(r"^(none|no entities( found)?|n/?a)\.?$", re.I)


def tokenize(text: str) -> list[str]:
    """Split like the data: "ataxia-telangiectasia" -> ["ataxia", "-", "telangiectasia"]."""
    return _TOKEN.findall(text)


def _loads(chunk: str):
    for load in (json.loads, ast.literal_eval):  # literal_eval: Python-style single quotes
        try:
            return load(chunk)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return None


def _entity(obj) -> dict | None:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str) and isinstance(obj.get("type"), str):
        if obj["text"].strip() and obj["type"].strip():
            return {"text": obj["text"].strip(), "type": obj["type"].strip()}
    return None


def _from_json(value) -> list[dict] | None:
    if isinstance(value, dict):
        value = value["entities"] if isinstance(value.get("entities"), list) else [value]
    if not isinstance(value, (list, tuple)):
        return None
    found = [e for e in map(_entity, value) if e]
    return found if found or not value else None  # "[]" is a valid empty answer


def parse_entities(output_text: str | None) -> list[dict] | None:
    """Entities {"text", "type"} from a model output: JSON lines (one object per line), a JSON array,
    or {"entities": [...]}, possibly inside code fences, after prose or a <think> block.
    Returns [] for an explicit empty answer ("[]", "None", "No entities") and None when nothing
    parses, the output is blank or a <think> block never closes (malformed: the caller counts it)."""
    if output_text is None:
        return None
    text = _THINK.sub("", output_text).rsplit("</think>", 1)[-1]  # also a block opened in the prompt
    if "<think>" in text.lower():
        return None  # the reasoning never finished: no answer
    fenced = _FENCE.findall(text)
    text = ("\n".join(fenced) if fenced else text).strip()
    if not text:
        return None
    if _NONE.match(text):
        return []
    found = _from_json(_loads(text))
    start, end = text.find("["), text.rfind("]")
    if found is None and 0 <= start < end:
        found = _from_json(_loads(text[start:end + 1]))
    if found is not None:
        return found
    found = []
    for line in text.splitlines():
        start, end = line.find("{"), line.rfind("}")
        if 0 <= start < end:
            chunk = line[start:end + 1]
            value = _loads(chunk)
            found += _from_json(value if value is not None else _loads(f"[{chunk}]")) or []
    return found or None


def align_mentions(mentions, tokens, allowed_types, counts: Counter | None = None) -> list[tuple]:
    """Map mention strings to token spans (start, end, type), deterministically.

    A mention is tokenised like the data and matched case-insensitively against the token
    sequence; EVERY occurrence is tagged (the gold annotation marks every mention of an entity).
    Overlapping matches are resolved longest first, then leftmost, then earliest mention, so
    the result is flat like the IOB data ("cancer" inside a tagged "breast cancer" is dropped).
    The type is matched case-insensitively to `allowed_types`; other types are dropped.
    `counts`, if given, gets "unknown_type" and "not_found" (mention absent from the sentence).
    """
    counts = counts if counts is not None else Counter()
    canonical = {t.casefold(): t for t in allowed_types}
    low = [t.casefold() for t in tokens]
    candidates = set()
    for order, mention in enumerate(mentions):
        typ = canonical.get(str(mention["type"]).strip().casefold())
        if typ is None:
            counts["unknown_type"] += 1
            continue
        needle = [t.casefold() for t in tokenize(mention["text"])]
        n = len(needle)
        hits = [s for s in range(len(low) - n + 1) if n and low[s:s + n] == needle]
        if not hits:
            counts["not_found"] += 1
        candidates.update((s, s + n, typ, order) for s in hits)
    spans: list[tuple] = []
    for s, e, typ, _ in sorted(candidates, key=lambda c: (c[0] - c[1], c[0], c[3])):
        if all(e <= a or s >= b for a, b, _ in spans):
            spans.append((s, e, typ))
    return sorted(spans)


def predict_entities(output_text, tokens, allowed_types, counts: Counter | None = None) -> list | None:
    """parse_entities then align_mentions; None (and counts["malformed"] += 1) if malformed."""
    mentions = parse_entities(output_text)
    if mentions is None:
        if counts is not None:
            counts["malformed"] += 1
        return None
    return align_mentions(mentions, tokens, allowed_types, counts)


def _spans(entities) -> set[tuple]:
    try:
        return {(int(e["start"]), int(e["end"]), str(e["type"])) if isinstance(e, dict)
                else (int(e[0]), int(e[1]), str(e[2])) for e in entities or ()}
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"an entity must be (start, end, type) or a dict with start, end, type; "
                         f"got {entities!r:.120}") from exc


def entity_counts(preds, golds, types=None) -> dict[str, tuple[int, int, int]]:
    """Per type (true positives, false positives, false negatives) over the corpus."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for pred, gold in zip(preds, golds):
        p, g = _spans(pred), _spans(gold)
        for group, slot in ((p & g, 0), (p - g, 1), (g - p, 2)):
            for *_, typ in group:
                counts[typ][slot] += 1
    keep = list(types) if types else sorted(counts)
    return {t: tuple(counts[t]) for t in keep}


def _micro(preds, golds, types) -> tuple[int, int, int]:
    per_type = entity_counts(preds, golds, types).values()
    return tuple(sum(c[i] for c in per_type) for i in range(3))


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


@metric("entity_micro_f1", answer_types=ENTITIES)
def entity_micro_f1(preds, golds, types=None, **_):
    """Entity-level micro F1: 2TP / (2TP + FP + FN) with TP/FP/FN summed over types (exact span and type)."""
    return _f1(*_micro(preds, golds, types))


metric("entity_f1", answer_types=ENTITIES)(entity_micro_f1)  # the CoNLL / seqeval convention: micro


@metric("entity_macro_f1", answer_types=ENTITIES)
def entity_macro_f1(preds, golds, types=None, **_):
    """Entity-level macro F1: the plain mean over types (`types`, else those seen) of per-type F1."""
    per_type = entity_counts(preds, golds, types)
    return sum(_f1(*c) for c in per_type.values()) / len(per_type) if per_type else 0.0


@metric("entity_precision", answer_types=ENTITIES)
def entity_precision(preds, golds, types=None, **_):
    """Entity-level micro precision: TP / (TP + FP), 0 when nothing is predicted."""
    tp, fp, _fn = _micro(preds, golds, types)
    return tp / (tp + fp) if tp + fp else 0.0


@metric("entity_recall", answer_types=ENTITIES)
def entity_recall(preds, golds, types=None, **_):
    """Entity-level micro recall: TP / (TP + FN), 0 when there is no gold entity."""
    tp, _fp, fn = _micro(preds, golds, types)
    return tp / (tp + fn) if tp + fn else 0.0
