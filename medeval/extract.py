"""Answer extraction: raw model text -> canonical answer, or None (invalid).

Rules, in order of precedence, are documented in docs/extraction.md. An output
that matches no rule is invalid: never a crash, never a silent default.
Reasoning blocks (<think>...</think>) are removed before anything else.
"""
from __future__ import annotations

import json
import re
from collections import Counter

from .spec import Task

MAX_CHARS = 20_000  # only the last 20k characters of an enormous output are read
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_NEG = re.compile(r"\b(?:not|isn't|is not|never|neither|nor|no)\s+(?:\w+\s+){0,1}$", re.I)


def strip_think(text: str) -> str:
    text = _THINK.sub(" ", text or "")
    low = text.lower()
    if "</think>" in low:                    # the chat template opened the block in the prompt
        text = text[low.rfind("</think>") + len("</think>"):]
    elif "<think>" in low:                   # reasoning never finished: no answer after it
        text = text[:low.find("<think>")]
    return text.strip()


def _clean(text: str) -> str:
    text = strip_think(text)[-MAX_CHARS:]
    return text.replace("\x00", "")


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s/&-]", " ", s.lower())).strip()


# -- multiple choice ---------------------------------------------------------
def extract_choice(text: str, options: list[dict]) -> str | None:
    letters = [o["letter"] for o in options]
    t = _clean(text)
    if not t:
        return None
    L = "A-Z"
    in_range = lambda x: x if x in letters else None  # an out-of-range letter is invalid, not a fallback

    boxed = re.findall(rf"\\boxed\{{\s*(?:\\text\{{)?\s*\(?([{L}])\b", t)
    if boxed:
        return in_range(boxed[-1])
    phrase = re.findall(rf"\b(?:answer|option|choice)\s*(?:is|would be|:|=)?\s*(?:option|choice)?\s*[:\-]?\s*"
                        rf"[*_]*\(?([{L}])\)?[*_]*(?![A-Za-z0-9])", t, re.I)
    phrase = [p for p in phrase if p.isupper()]
    if phrase:
        return in_range(phrase[-1])
    m = re.fullmatch(rf"\W*([{L}])\W*", t)
    if m:
        return in_range(m.group(1))
    m = re.match(rf"[\s*_(\[]*([{L}])\s*[).:\]]", t)
    if m:
        return in_range(m.group(1))
    bold = set(re.findall(rf"\*\*\(?([{L}])\)?[.:)]?\*\*", t))
    if len(bold) == 1:
        return in_range(bold.pop())
    # the option text alone (the longest matching option wins over one it contains)
    nt = f" {_norm(t)} "
    hits = [o for o in options if _norm(o["text"]) and f" {_norm(o['text'])} " in nt]
    hits = [o for o in hits if not any(o is not p and _norm(o["text"]) in _norm(p["text"]) for p in hits)]
    if len(hits) == 1:
        return hits[0]["letter"]
    return None


# -- labels (yes/no/maybe, classes, multi-label) ------------------------------
def _surfaces(labels: list[str], aliases: dict[str, list[str]]) -> list[tuple[str, str]]:
    pairs = [(_norm(l), l) for l in labels] + [(_norm(a), l) for l, al in aliases.items() for a in al]
    return sorted({p for p in pairs if p[0]}, key=lambda p: -len(p[0]))


def _mentions(text: str, surfaces) -> list[tuple[int, str]]:
    """(position, label) of every non-negated whole-phrase mention."""
    found, taken = [], []
    for surf, label in surfaces:
        for m in re.finditer(rf"(?<![\w-]){re.escape(surf)}(?![\w-])", text):
            if any(a <= m.start() < b for a, b in taken):
                continue  # part of a longer label already matched
            taken.append((m.start(), m.end()))
            if not _NEG.search(text[max(0, m.start() - 25):m.start()]):
                found.append((m.start(), label))
    return sorted(found)


def extract_label(text: str, labels: list[str], aliases: dict | None = None) -> str | None:
    t = _clean(text)
    surfaces = _surfaces(labels, aliases or {})
    candidates = re.findall(r"\\boxed\{(?:\\text\{)?([^{}]*)", t)
    candidates += [m for m in re.findall(r"\banswer\s*(?:is|:)\s*([^\n]*)", t, re.I)][::-1]
    candidates.append(t.split("\n", 1)[0])
    for c in candidates:
        nc = _norm(c)
        if len({label for _, label in _mentions(nc, surfaces)}) > 1:
            continue  # "yes or no", "effect or mechanism": this line does not decide
        for surf, label in surfaces:
            if nc == surf or nc.startswith(surf + " "):
                return label
    distinct = {label for _, label in _mentions(_norm(t), surfaces)}
    return distinct.pop() if len(distinct) == 1 else None


def extract_labels(text: str, labels: list[str], aliases: dict | None = None, none_label: str | None = "none"):
    t = _norm(_clean(text))
    found = sorted({label for _, label in _mentions(t, _surfaces(labels, aliases or {}))})
    if found:
        return found
    if none_label and re.search(rf"(?<!\w){re.escape(_norm(none_label))}(?!\w)", t):
        return []
    return None


# -- dispatch ----------------------------------------------------------------
def extract(task: Task, text: str, row: dict | None = None, options: list[dict] | None = None):
    a = task.answer
    if a.type == "choice":
        return extract_choice(text, options or [])
    if a.type in ("yesno", "label"):
        return extract_label(text, a.labels, a.aliases)
    if a.type == "multilabel":
        return extract_labels(text, a.labels, a.aliases, a.none_label)
    if a.type == "entities":
        from .metrics.ner import align_mentions, parse_entities

        mentions = parse_entities(text)
        if mentions is None:
            return None
        return sorted(list(e) for e in align_mentions(mentions, (row or {}).get("tokens", []), a.labels))
    if a.type == "diagnosis":
        from .metrics.diagnosis import parse_differential

        return parse_differential(text) or None
    t = _clean(text)
    if a.type == "span":
        t = re.sub(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is\s*:?|:)\s*", "", t, flags=re.I).strip().strip('"').strip()
    return t or None


def vote(answers: list):
    """Majority over extracted answers, ignoring invalid ones.

    Ties go to the answer whose first appearance comes earliest among the
    samples (sample order is fixed), so the rule is deterministic. Returns
    (winner or None, {answer: count}).
    """
    keyed = [json.dumps(a, sort_keys=True) for a in answers if a is not None]
    if not keyed:
        return None, {}
    counts = Counter(keyed)
    best = max(counts.values())
    winner = next(k for k in keyed if counts[k] == best)
    return json.loads(winner), {(json.loads(k) if not k.startswith("[") else k): v for k, v in counts.items()}
