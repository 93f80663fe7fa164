"""`yesno`, `label` and `multilabel`: answers from the task's label set (answer.labels)."""
from __future__ import annotations

from ...errors import MedevalError
from ..extract import INVALID, Outcome, extract_labels, label_outcome
from .base import AnswerType, register


@register
class YesNo(AnswerType):
    """One of yes / no / maybe (PubMedQA), or the task's own labels."""
    name = "yesno"
    gold_formats = ("label",)
    votable = correctness = extract_judged = True
    default_labels = ("yes", "no", "maybe")
    loglikelihood = ("labels",)

    def gold(self, task, raw, options):
        gold = str(raw).strip()
        if gold not in task.answer.labels:
            raise MedevalError(f"{task.source_file}: field 'answer.gold': label {gold!r} is outside the label set "
                               f"{task.answer.labels}; add it to answer.labels or fix the data")
        return gold

    def choices(self, task, options):
        """The task's labels."""
        return "classification", [{"key": label, "text": ""} for label in task.answer.labels]

    def outcome(self, task, text, row, options, finish_reason=None):
        return label_outcome(text, task.answer.labels, task.answer.aliases, finish_reason)


@register
class Label(YesNo):
    """One label of a class set (relation types, specialties, ...)."""
    name = "label"
    needs_labels = True
    default_labels = ()


@register
class MultiLabel(AnswerType):
    """A set of labels (possibly empty: the task's none_label), kept sorted."""
    name = "multilabel"
    gold_formats = ("labels",)
    votable = correctness = needs_labels = True

    def gold(self, task, raw, options):
        gold = list(raw or [])
        bad = [g for g in gold if g not in task.answer.labels]
        if bad:
            raise MedevalError(f"{task.source_file}: field 'answer.gold': labels {bad} are outside answer.labels")
        return sorted(gold)

    def outcome(self, task, text, row, options, finish_reason=None):
        a = task.answer
        found = extract_labels(text, a.labels, a.aliases, a.none_label)
        return Outcome(found, "answer") if found is not None else INVALID
