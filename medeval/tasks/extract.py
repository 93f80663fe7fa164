"""Answer extraction rules: raw model text -> canonical answer, invalid, or ambiguous.

This module holds the shared text helpers (`clean`, `norm`, `boxed_contents`, `Outcome`), the
label rules (`label_outcome`, `extract_labels`) and the majority `vote`; the multiple-choice rules
live in medeval/tasks/extract_choice.py, which builds on the helpers here. Each answer type
(medeval/tasks/answer_types/) picks its rules: `answer_types.outcome(task, text, row, options, finish_reason)` returns an
`Outcome(answer, status, rule)` where status is "answer", "invalid" (nothing readable) or
"ambiguous" (two different answers in the final-answer position: a hedge such as "B or C");
`answer_types.extract()` returns only the answer (None unless "answer"). The rules and their
precedence are documented in docs/extraction.md. Nothing is ever guessed: an output that matches
no rule is invalid, never a crash or a default. Reasoning blocks (<think>...</think>) are removed first.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache
from typing import NamedTuple

from ..accounting import TRUNCATED

MAX_CHARS = 20_000  # only the last 20k characters of an enormous output are read
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
# a negation just before a label: "not yes", "isn't maybe", "neither yes nor no"
_NEG = re.compile(r"\b(?:not|isn't|is not|never|neither|nor|without|cannot be|can't be)\s+(?:,\s+)?(?:\w+\s+){0,1}$", re.I)
_HEDGE_JOIN = r"\s*(?:,\s*(?:or\s+|and/or\s+)?|/|\bor\b|\band/or\b|\band\b|&|\bvs\.?)\s*(?:,\s*)?"


class Outcome(NamedTuple):
    answer: object          # canonical answer, or None
    status: str             # "answer" | "invalid" | "ambiguous"
    rule: str | None = None  # which rule decided (for debugging and the benchmark)


INVALID = Outcome(None, "invalid")


def strip_think(text: str) -> str:
    text = _THINK.sub(" ", text or "")
    low = text.lower()
    if "</think>" in low:                    # the chat template opened the block in the prompt
        text = text[low.rfind("</think>") + len("</think>"):]
    elif "<think>" in low:                   # reasoning never finished: no answer after it
        text = text[:low.find("<think>")]
    return text.strip()


def clean(text: str) -> str:
    text = strip_think(text)[-MAX_CHARS:]
    return text.replace("\x00", "")


@lru_cache(maxsize=8192)
def norm(s: str) -> str:
    """Lower case, punctuation to spaces (keeps / & -), single spaces."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s/&-]", " ", s.lower())).strip()


def lnorm(s: str) -> str:
    """norm() for label matching, keeping sentence punctuation as a "," token ("no, the ..." is
    the answer no; "no difference" is not)."""
    s = re.sub(r"[.,;:!?—–()\[\]\"“”]", " , ", s.lower())
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s/&,-]", " ", s)).strip()


def boxed_contents(t: str) -> list[str]:
    r"""The contents of every \boxed{...} (balanced braces), LaTeX commands and braces removed."""
    return [c for _, c in boxed_spans(t)]


def boxed_spans(t: str) -> list[tuple[int, str]]:
    r"""(position, contents) of every \boxed{...}, as boxed_contents reads them."""
    out = []
    for m in list(re.finditer(r"\\boxed\s*\{", t))[-20:]:   # the last 20, each read up to 2,000 characters
        depth, i, end = 1, m.end(), min(len(t), m.end() + 2000)
        while i < end and depth:
            depth += {"{": 1, "}": -1}.get(t[i], 0)
            i += 1
        inner = t[m.end():i - 1] if depth == 0 else t[m.end():end]
        out.append((m.start(), re.sub(r"[{}$]", "", re.sub(r"\\[A-Za-z]+\s*", "", inner)).strip()))
    return out


# -- labels (yes/no/maybe, classes, multi-label) ------------------------------
def _surfaces(labels: list[str], aliases: dict[str, list[str]]) -> list[tuple[str, str]]:
    pairs = [(lnorm(l), l) for l in labels] + [(lnorm(a), l) for l, al in aliases.items() for a in al]
    return sorted({p for p in pairs if p[0]}, key=lambda p: -len(p[0]))


def _mentions(text: str, surfaces) -> list[tuple[int, int, str]]:
    """(start, end, label) of every non-negated whole-phrase mention in normalised text.
    "no" followed by a word is the determiner ("no difference"), not the label."""
    found, taken = [], []
    for surf, label in surfaces:
        edge = r"[A-Za-z0-9_\u00c0-\u024f-]" if surf.isascii() else r"[\w-]"   # "yesです" is yes; "答案是否" holds no 是
        for m in re.finditer(rf"(?<!{edge}){re.escape(surf)}(?!{edge})", text):
            if any(a <= m.start() < b for a, b in taken):
                continue  # part of a longer label already matched
            taken.append((m.start(), m.end()))
            if surf == "no" and re.match(r"\s+(?!or\b|and\b|nor\b)\w", text[m.end():]):
                continue
            if not _NEG.search(text[max(0, m.start() - 25):m.start()]):
                found.append((m.start(), m.end(), label))
    return sorted(found)


def _label_hedge(text: str, mentions) -> bool:
    """Two different labels joined by or / and / a comma: "yes or no", "effect/mechanism"."""
    for (s1, e1, l1), (s2, _, l2) in zip(mentions, mentions[1:]):
        if l1 != l2 and re.fullmatch(_HEDGE_JOIN + r"(?:maybe\s+|possibly\s+)?", text[e1:s2]):
            return True
    return False


def _read_label_span(span: str, surfaces, whole_sentence: bool = True) -> Outcome | None:
    """The label a span starts with, or (whole_sentence) the one label its first sentence names."""
    first = lnorm(re.split(r"[.;!?\n]", span.strip(), maxsplit=1)[0] if span.strip() else "")
    if not first:
        return None
    ments = _mentions(first, surfaces)
    if re.search(r"\b(?:if|unless|when|whenever|provided)\b", first):
        return None   # a conditional ("the answer would be no if ...") states no answer
    if ments and ments[0][0] == 0:
        if _label_hedge(first, ments):
            return Outcome(None, "ambiguous")
        return Outcome(ments[0][2], "answer")
    if not whole_sentence:
        return None
    if _label_hedge(first, ments):
        return Outcome(None, "ambiguous")
    distinct = {m[2] for m in ments}
    return Outcome(distinct.pop(), "answer") if len(distinct) == 1 else None


_LABEL_PHRASE = re.compile(
    r"\b(?:(?:final\s+|my\s+|the\s+)?(?:answer|decision|conclusion|verdict|label|classification|category|"
    r"specialty|relation(?:ship)?|prediction|class|response)(?:\s+(?:to|for)\s+(?:this|the)\s+question)?"
    r"(?:\s*\([^()\n]{0,80}\))?\s*[*_]*\s*(?:[:=]|[-–—]+>?|\b(?:is|would\s+be|will\s+be|should\s+be)\b:?|\*\*\s*\n)"
    r"|\bI\s*(?:would|will|'d|’d|'ll|’ll)?\s*(?:say|answer|choose|go\s+with)\b:?"
    r"|\b(?:(?:la\s+)?respuesta|(?:a\s+)?resposta|(?:la\s+)?r[ée]ponse|(?:die\s+)?antwort|(?:la\s+)?risposta)"
    r"(?:\s+(?:correcta|correta|final|finale|correcte|richtige|corretta))?\s*(?:[:=]|\b(?:es|é|est|ist|è|lautet)\b:?)"
    r"|(?:最终|最終)?(?:答案|答え|回答|结论|結論)(?:是|为|は|：|:))", re.I)
# "Maybe. Actually, yes": a revision, read only when a label starts what follows it
_LABEL_REVISION = re.compile(r"(?:^|(?<=[\s.;!?—–-]))(?:(?:actually|wait|on\s+(?:second\s+thought|reflection)|correction|"
                             r"no,\s+wait|scratch\s+that|rather|revised(?:\s+answer)?|(?:revise|change)\s+(?:it|that|"
                             r"my\s+answer)\s+to)\b|(?:after|upon|on)\s+(?:reviewing|considering|re-?reading|looking\s+(?:again|"
                             r"closer|more\s+closely))[^,.;\n]{0,60},)[\s,:—–-]*", re.I)
# "yes/no cannot be determined": the labels it names are not stated as the answer (neither is "maybe")
_UNDETERMINED = re.compile(r"(?:^|(?<=[.;!?\n]))[^.;!?\n]*?\b(?:cannot|can\s*not|can't|could\s+not|couldn't|unable\s+to)\s+(?:be\s+)?"
                           r"(?:determined?|decided?|answered?|concluded?|established?|said|say|inferred?|tell|known?)\b[^.;!?\n,]*|"
                           r"(?:^|(?<=[.;!?\n]))[^.;!?\n]*?\b(?:undetermined|indeterminate|not\s+determinable|"
                           r"(?:insufficient|not\s+enough)(?:\s+\w+){0,2}\s+to\s+(?:decide|determine|say|answer|tell|conclude)|"
                           r"(?:unclear|uncertain|not\s+clear)\s+whether|no\s+(?:firm\s+|clear\s+)?conclusion\s+can\s+be\s+drawn|no\s+(?:way|basis)\s+to\s+(?:decide|determine|tell)|"
                           r"(?:a\s+)?(?:clear\s+|definite\s+|definitive\s+)?yes[\s/-]*(?:or|/)[\s/-]*no\s+(?:answer|question|response)|"
                           r"remains?\s+(?:to\s+be\s+(?:determined|seen|established)|unclear|unknown|uncertain|undetermined)|"
                           r"(?:not\s+possible|impossible)\s+to\s+(?:say|tell|determine|decide|conclude|know))\b[^.;!?\n,]*", re.I)
# Yes / no / maybe in the languages of the answer phrases above (only where the label set holds them)
_YESNO_WORDS = {"yes": ["sí", "sim", "oui", "ja", "是", "是的", "はい"],
                "no": ["não", "nao", "non", "nein", "否", "不是", "いいえ"],
                "maybe": ["quizás", "quizá", "tal vez", "talvez", "peut-être", "vielleicht", "可能", "也许", "たぶん"]}


def label_outcome(text: str, labels: list[str], aliases: dict | None = None,
                  finish_reason: str | None = None) -> Outcome:
    """The label `text` answers. An output cut off at the token limit (`finish_reason` "length") is
    read only through `\\boxed{}` and answer phrases (docs/extraction.md)."""
    t = clean(text)
    if not t:
        return INVALID
    t = _UNDETERMINED.sub(lambda m: " " * len(m.group(0)), t)
    t = re.sub(r"(?<!\w)(['‘\"“])\s*(\w[\w -]{0,30}?)\s*(['’\"”])(?!\w)", r"\2 ,", t)   # "a 'no' answer": the quoted word is the label
    aliases = dict(aliases or {})
    for lab, words in _YESNO_WORDS.items():
        if lab in labels:
            aliases[lab] = list(aliases.get(lab, [])) + words
    surfaces = _surfaces(labels, aliases)
    for span in reversed(boxed_contents(t)):
        if (r := _read_label_span(span, surfaces)):
            return r._replace(rule="boxed")
    phrases = [(m.end(), True) for m in _LABEL_PHRASE.finditer(t)] + \
              [(m.end(), not m.group(0).lower().startswith("rather")) for m in _LABEL_REVISION.finditer(t)
               if m.start() > 0]
    for end, whole in sorted(phrases, reverse=True)[:200]:   # the last final statement wins (the last 200 read)
        # after an answer phrase or a revision marker ("on second thought, it's yes") the first sentence may name
        # its one label anywhere; after "rather" only a label that starts it counts ("yes, rather than no")
        if (r := _read_label_span(t[end:end + 300].lstrip(" *_:\n.,;!—–-"), surfaces, whole)):
            return r._replace(rule="answer-phrase")
    if finish_reason == TRUNCATED:
        return Outcome(None, "invalid", "truncated")
    if (r := _read_label_span(t.lstrip(" *_#>\"'(["), surfaces)):
        return r._replace(rule="first-sentence")
    last = t.rstrip().rsplit("\n", 1)[-1]
    if (r := _read_label_span(last.lstrip(" *_#>\"'(["), surfaces)):
        return r._replace(rule="last-line")
    nt = lnorm(t)
    ments = _mentions(nt, surfaces)
    distinct = {m[2] for m in ments}
    if len(distinct) == 1:
        return Outcome(distinct.pop(), "answer", "only-label")
    if _label_hedge(nt, ments):
        return Outcome(None, "ambiguous", "hedge")
    return INVALID


def extract_label(text: str, labels: list[str], aliases: dict | None = None) -> str | None:
    return label_outcome(text, labels, aliases).answer


def extract_labels(text: str, labels: list[str], aliases: dict | None = None, none_label: str | None = "none"):
    t = lnorm(clean(text))
    found = sorted({label for *_, label in _mentions(t, _surfaces(labels, aliases or {}))})
    if found:
        return found
    if none_label and re.search(rf"(?<!\w){re.escape(lnorm(none_label))}(?!\w)", t):
        return []
    return None


# -- votes ---------------------------------------------------------------------
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
