"""The base class of an answer type: everything medeval does that depends on the kind of answer.

A subclass sets the class attributes that differ and overrides the methods that differ; the
defaults fit a free-text answer. One instance of each type is registered by `@register`.
"""
from __future__ import annotations

from typing import ClassVar

from ...errors import MedevalError
from ..extract import INVALID, Outcome, clean
from ...fields import get_field

REGISTRY: dict[str, AnswerType] = {}   # name -> the type, in registration order (the spec lists them so)


def register(cls: type[AnswerType]) -> type[AnswerType]:
    """Class decorator: make `cls` the answer type named `cls.name`."""
    REGISTRY[cls.name] = cls()
    return cls


class AnswerType:
    name: ClassVar[str]
    gold_formats: ClassVar[tuple[str, ...]] = ("text",)   # answer.gold_format values; the first is the default
    votable: ClassVar[bool] = False       # self-consistency on by default: a majority over answers makes sense
    correctness: ClassVar[bool] = False   # samples get `correct` (is_correct) and sc mode sample_accuracy
    needs_labels: ClassVar[bool] = False  # the task must give answer.labels
    default_labels: ClassVar[tuple[str, ...]] = ()   # answer.labels when the task gives none
    loglikelihood: ClassVar[tuple[str, ...]] = ()    # the loglikelihood.choices kinds it can be scored with
    lettered_options: ClassVar[bool] = False   # items show lettered options: --permute may reorder them and
    #                                             `medeval score` takes answers as the source's option keys
    grader: ClassVar[str | None] = None   # the grader of each final answer (graders/registry.py GRADERS), or None
    extract_judged: ClassVar[bool] = False   # invalid outputs may be read by --extract-judge and by the model's
    #                                          own answer (--extract-fallback self, --extract-audit): see `choices`

    def check(self, answer) -> None:
        """Type-specific checks of a task's `answer` block (spec.Answer); raise ValueError with the fix."""
        if answer.options is not None:
            raise ValueError(f"answer.options is only used by answer.type 'choice', not {self.name!r}: remove it")

    # -- reading a dataset row ------------------------------------------------------------------------
    def options(self, task, row: dict) -> list[dict]:
        """[{letter, text}, ...] of a multiple-choice item; [] for every other type."""
        return []

    def gold(self, task, raw, options: list[dict]):
        """The canonical gold answer from the raw value of the `answer.gold` field."""
        return raw

    # -- reading a model's output ---------------------------------------------------------------------
    def outcome(self, task, text: str, row: dict | None, options: list[dict],
                finish_reason: str | None = None) -> Outcome:
        """The answer `text` states, with its status ("answer", "invalid", "ambiguous") and rule;
        `finish_reason` "length": the output was cut off (types with answer rules read it strictly)."""
        t = clean(text)
        return Outcome(t, "answer") if t else INVALID

    def choices(self, task, options: list[dict]) -> tuple[str, list[dict]]:
        """(kind, [{key, text}]): the allowed answers an `extract_judged` type's output is mapped to; the
        kind names them in the extraction judge's prompt."""
        raise NotImplementedError(f"answer type {self.name!r} has no closed set of answers")

    # -- scoring --------------------------------------------------------------------------------------
    def is_correct(self, answer, gold) -> bool:
        """Whether an extracted answer is right (read only when `correctness` is set): equal to the gold."""
        return answer is not None and answer == gold

    def metric_labels(self, task, options_per_item: list[list[dict]]) -> list | None:
        """The label set given to metrics that declare `needs_labels` (per-class F1s); None: none."""
        return list(task.answer.labels) or None

    def adversarial_wrong(self, options: list[dict], gold):
        """The misleading answer `--adversarial` pre-fills (None: the type has no such answer)."""
        return None

    def adversarial_prefill(self, options: list[dict], gold) -> str:
        """The start of the assistant turn in adversarial mode: the wrong answer stated as the answer."""
        wrong = self.adversarial_wrong(options, gold)
        return f"The answer is {wrong}. " if wrong else ""

    def loglikelihood_choices(self, task, options: list[dict]) -> list[tuple[str, str]]:
        """(answer, text scored after the prompt) per choice of a `scoring: loglikelihood` task."""
        return [(label, label) for label in task.answer.labels]


def field_value(task, row: dict, path: str, spec_field: str):
    """row[path] (dotted), or a one-line error naming the task file and its field."""
    try:
        return get_field(row, path)
    except KeyError:
        raise MedevalError(f"{task.source_file}: field '{spec_field}': the row has no field {path!r}") from None
