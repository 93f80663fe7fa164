"""Answer types: one class per kind of answer, holding everything that depends on it.

A type says which gold formats it accepts, how options and the gold answer are read from a row,
how a model's output becomes an answer (`outcome`), whether answers are voted on and checked for
correctness, which label set per-class metrics get, the wrong answer `--adversarial` pre-fills
and the choices `scoring: loglikelihood` scores. `spec.AnswerType` (the values `answer.type`
accepts), `spec.VOTABLE` and `spec.GOLD_FORMATS` are derived from this registry.

Adding a new answer type (a numeric dose, say):
1. One class in a module of this package: a subclass of `base.AnswerType` with `name`,
   `gold_formats` and the methods that differ from free text (`gold`, `outcome`, ...), decorated
   with `@register`. A new module also goes into the import line below (one line).
2. Docs: a row in docs/answer_types.md and in the `answer.type` row of docs/tasks.md; its rules in
   docs/extraction.md if it has its own.
3. Tests: gold parsing and extraction on real rows; tests/test_answer_types.py adds a type this way.
Metrics say which types they apply to (`answer_types=` in `@metric`); a metric for the new type
names it there.
"""
from __future__ import annotations

import inspect
from functools import lru_cache

from ..extract import Outcome
from . import choice, labels, open_ended  # noqa: F401  (importing a module registers its types, in this order
from .base import REGISTRY, AnswerType, field_value, register  # noqa: F401  (the registry's API)
from .choice import option_keys, shown_letter  # noqa: F401  (shown letter <-> source key of an item's options)


def names() -> tuple[str, ...]:
    """Every answer type, in registration order."""
    return tuple(REGISTRY)


def get(name: str) -> AnswerType:
    return REGISTRY[name]


def of(task) -> AnswerType:
    """The answer type of a task."""
    return REGISTRY[task.answer.type]


def read(task, row: dict) -> tuple[object, list[dict]]:
    """(gold answer, options) of one dataset row, each read once."""
    at = of(task)
    raw = field_value(task, row, task.answer.gold, "answer.gold")
    options = at.options(task, row)
    return at.gold(task, raw, options), options


def outcome(task, text: str, row: dict | None = None, options: list[dict] | None = None,
            finish_reason: str | None = None) -> Outcome:
    """The answer read from `text` for `task`, with its status and the rule that decided. An output cut
    off at the token limit (`finish_reason` "length") counts only through an explicit final answer."""
    at = of(task)
    extra = {"finish_reason": finish_reason} if _takes_finish(type(at)) else {}   # types written before it: not
    return at.outcome(task, text, row, options or [], **extra)


@lru_cache(maxsize=None)
def _takes_finish(cls) -> bool:
    return "finish_reason" in inspect.signature(cls.outcome).parameters


def extract(task, text: str, row: dict | None = None, options: list[dict] | None = None):
    """The answer only (None when the output is invalid or ambiguous)."""
    return outcome(task, text, row, options).answer


__all__ = ["AnswerType", "Outcome", "REGISTRY", "extract", "get", "names", "of", "option_keys", "outcome", "read",
           "register", "shown_letter"]
