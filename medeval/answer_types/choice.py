"""`choice`: a multiple-choice item; the answer is one option letter (A-J)."""
from __future__ import annotations

import string

from ..errors import MedevalError
from ..extract_choice import choice_outcome
from .base import AnswerType, field_value, register

LETTERS = string.ascii_uppercase


@register
class Choice(AnswerType):
    name = "choice"
    gold_formats = ("letter", "index0", "index1", "text")
    votable = correctness = True
    loglikelihood = ("letters", "texts")

    def check(self, answer):
        if not answer.options:
            raise ValueError("answer.type 'choice' needs answer.options (a field, or a list of fields)")
        if isinstance(answer.options, list) and not (2 <= len(answer.options) <= 10 and all(answer.options)):
            raise ValueError(f"answer.options lists {len(answer.options)} fields; a choice task needs 2 to 10 "
                             "non-empty field names (or one field holding a list or dict)")
        if answer.labels or answer.aliases:
            raise ValueError("answer.labels and answer.aliases are not used by answer.type 'choice' "
                             "(the option letters are the labels): remove them")

    def options(self, task, row):
        spec, where = task.answer.options, "answer.options"
        if spec is None:
            return []
        if isinstance(spec, list):
            texts = [field_value(task, row, f, where) for f in spec]
        else:
            raw = field_value(task, row, spec, where)
            if isinstance(raw, dict):
                texts = [raw[k] for k in sorted(raw)]
            elif isinstance(raw, list):
                texts = raw
            else:
                raise MedevalError(f"{task.source_file}: field '{where}': {spec!r} holds a {type(raw).__name__}; "
                                   "expected a dict of letter -> text or a list")
        if not 2 <= len(texts) <= 10:
            raise MedevalError(f"{task.source_file}: field '{where}': {len(texts)} options; 2 to 10 are supported")
        return [{"letter": LETTERS[i], "text": "" if t is None else str(t)} for i, t in enumerate(texts)]

    def gold(self, task, raw, options):
        fmt, letters = task.answer.gold_format, [o["letter"] for o in options]
        if fmt == "letter":
            gold = str(raw).strip().upper()
        elif fmt in ("index0", "index1"):
            gold = self._index(task, raw, fmt, letters)
        elif fmt == "text":
            gold = next((o["letter"] for o in options if o["text"] == raw), None)
        else:
            gold = None
        if gold not in letters:
            raise MedevalError(f"{task.source_file}: field 'answer.gold': value {raw!r} (gold_format {fmt}) "
                               f"is not one of the options {letters}")
        return gold

    @staticmethod
    def _index(task, raw, fmt: str, letters: list[str]):
        try:
            k = int(raw) - (fmt == "index1")
        except (TypeError, ValueError):
            hint = (" the golds look like letters: use gold_format: letter" if str(raw).strip().upper() in letters
                    else " use gold_format letter or text if the golds are not numbers")
            raise MedevalError(f"{task.source_file}: field 'answer.gold_format': {fmt} needs a whole-number "
                               f"index, but the gold is {raw!r};{hint}") from None
        return letters[k] if 0 <= k < len(letters) else None

    def outcome(self, task, text, row, options, finish_reason=None):
        return choice_outcome(text, options or [], finish_reason)

    def metric_labels(self, task, options_per_item):
        """The option letters any item has (A-D, or A-J where some items have ten options)."""
        return sorted({o["letter"] for opts in options_per_item for o in opts}) or None

    def adversarial_wrong(self, options, gold):
        """The first wrong option."""
        return next((o["letter"] for o in options if o["letter"] != gold), None)

    def loglikelihood_choices(self, task, options):
        if task.loglikelihood.choices == "texts":
            return [(o["letter"], o["text"]) for o in options]
        return [(o["letter"], o["letter"]) for o in options]
