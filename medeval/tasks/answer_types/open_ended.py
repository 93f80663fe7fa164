"""Answers read as text: `entities` (NER spans), `text`, `span`, `diagnosis` and `rubric`."""
from __future__ import annotations

import re

from ..extract import INVALID, Outcome, clean
from ...metrics.diagnosis import parse_differential
from ...metrics.ner import align_mentions, parse_entities
from .base import AnswerType, register


def _answer(value) -> Outcome:
    return Outcome(value, "answer") if value is not None else INVALID


@register
class Entities(AnswerType):
    """Typed entity mentions aligned to the row's tokens: [[start, end, type], ...]."""
    name = "entities"
    gold_formats = ("entities",)
    needs_labels = True

    def gold(self, task, raw, options):
        return sorted([e["start"], e["end"], e["type"]] for e in raw)

    def outcome(self, task, text, row, options, finish_reason=None):
        mentions = parse_entities(text)
        if mentions is None:
            return INVALID
        return _answer(sorted(list(e) for e in align_mentions(mentions, (row or {}).get("tokens", []),
                                                              task.answer.labels)))

    def metric_labels(self, task, options_per_item):
        return None   # entity metrics take their types from metric_options, not the label set


@register
class Text(AnswerType):
    """Free text (summaries, reports), scored against a reference text."""
    name = "text"
    gold_formats = ("text", "texts")


@register
class Span(AnswerType):
    """A short extracted answer (extractive QA), scored against the gold answers' texts."""
    name = "span"
    gold_formats = ("texts", "text")

    def gold(self, task, raw, options):
        return list(raw["text"]) if isinstance(raw, dict) else ([raw] if isinstance(raw, str) else list(raw))

    def outcome(self, task, text, row, options, finish_reason=None):
        t = re.sub(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is\s*:?|:)\s*", "", clean(text), flags=re.I)
        return _answer(t.strip().strip('"').strip() or None)


@register
class Diagnosis(AnswerType):
    """A ranked differential diagnosis; a judge ranks it against the final diagnosis."""
    name = "diagnosis"
    grader = "diagnosis"

    def outcome(self, task, text, row, options, finish_reason=None):
        return _answer(parse_differential(text) or None)


@register
class Rubric(AnswerType):
    """A free reply graded by a model against physician rubrics (HealthBench)."""
    name = "rubric"
    gold_formats = ("rubric",)
    grader = "rubric"
