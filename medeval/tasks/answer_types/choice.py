"""`choice`: a multiple-choice item; the answer is one shown option letter (A-Z).

One rule reads a row's options and its gold together (docs/tasks.md, "Options and gold"):
the options are shown lettered A, B, C, ... in the source's order (a list: as listed; a dict:
letter keys alphabetically, number keys numerically, other keys as the source orders them), and
the gold is read as the source gives it (a dict's key, a list's position, or an option's text) and
mapped to the letter its option is shown with. An option whose source key differs from its shown
letter carries `key` (the source key as a string), so the pairing can be recorded and undone.
"""
from __future__ import annotations

import re
import string

from ...errors import MedevalError
from ..extract_choice import choice_outcome
from .base import AnswerType, field_value, register

LETTERS = string.ascii_uppercase
MAX_OPTIONS = len(LETTERS)   # A-Z
_NUMBER = re.compile(r"\d+")


def _key_kind(keys: list[str]) -> str:
    """'letter' (single letters, one case), 'number' (whole numbers) or 'other'."""
    if all(len(k) == 1 and k in LETTERS for k in keys) or all(len(k) == 1 and k in string.ascii_lowercase
                                                              for k in keys):
        return "letter"
    if all(_NUMBER.fullmatch(k) for k in keys) and len({int(k) for k in keys}) == len(keys):
        return "number"
    return "other"


def _ordered_keys(raw: dict) -> tuple[list[str], str]:
    keys = [str(k) for k in raw]
    kind = _key_kind(keys)
    if kind == "letter":
        keys = sorted(keys)
    elif kind == "number":
        keys = sorted(keys, key=int)
    return keys, kind


@register
class Choice(AnswerType):
    name = "choice"
    gold_formats = ("letter", "index0", "index1", "text")
    votable = correctness = extract_judged = lettered_options = True
    loglikelihood = ("letters", "texts")

    def check(self, answer):
        if not answer.options:
            raise ValueError("answer.type 'choice' needs answer.options (a field, or a list of fields)")
        if isinstance(answer.options, list) and not (2 <= len(answer.options) <= MAX_OPTIONS
                                                     and all(answer.options)):
            raise ValueError(f"answer.options lists {len(answer.options)} fields; a choice task needs 2 to "
                             f"{MAX_OPTIONS} non-empty field names (or one field holding a list or dict)")
        if answer.labels or answer.aliases:
            raise ValueError("answer.labels and answer.aliases are not used by answer.type 'choice' "
                             "(the option letters are the labels): remove them")

    def options(self, task, row):
        """[{letter, text}] shown A, B, C, ...; `key` (the source key) where it is not the shown letter."""
        spec, where = task.answer.options, "answer.options"
        if spec is None:
            return []
        keys: list[str | None]
        if isinstance(spec, list):
            texts = [field_value(task, row, f, where) for f in spec]
            keys = [None] * len(texts)
        else:
            raw = field_value(task, row, spec, where)
            if isinstance(raw, dict):
                raw = {k: v for k, v in raw.items() if v is not None}   # a hub struct pads absent options with null
                ordered, _ = _ordered_keys(raw)
                by_str = {str(k): v for k, v in raw.items()}
                texts, keys = [by_str[k] for k in ordered], list(ordered)
            elif isinstance(raw, list):
                texts, keys = raw, [None] * len(raw)
            else:
                raise MedevalError(f"{task.source_file}: field '{where}': {spec!r} holds a {type(raw).__name__}; "
                                   "expected a dict of key -> text or a list")
        if not 2 <= len(texts) <= MAX_OPTIONS:
            raise MedevalError(f"{task.source_file}: field '{where}': {len(texts)} options; 2 to {MAX_OPTIONS} "
                               "(A-Z) are supported: drop the extra options from the data or split the item")
        out = []
        for i, (t, k) in enumerate(zip(texts, keys)):
            o = {"letter": LETTERS[i], "text": "" if t is None else str(t)}
            if k is not None and k != LETTERS[i]:
                o["key"] = k
            out.append(o)
        return out

    def gold(self, task, raw, options):
        """The shown letter of the gold option. The gold names the option as the source does: with
        keyed options (a dict whose keys are not the shown letters) a source key (gold_format letter:
        the key itself, a letter in either case; index0/index1: on letter keys the letter at that
        index, on number keys the number itself); otherwise a shown letter or position; with
        gold_format text, the option's text."""
        fmt = task.answer.gold_format
        if fmt == "text":
            return self._by_text(task, raw, options)
        if fmt not in ("letter", "index0", "index1"):
            raise MedevalError(f"{task.source_file}: field 'answer.gold_format': {fmt!r} is not one of "
                               f"{list(self.gold_formats)}")
        keys = [o.get("key", o["letter"]) for o in options]
        keyed = any("key" in o for o in options)
        kind = _key_kind(keys)
        if fmt == "letter":
            key = str(raw).strip()
        else:
            k = self._index(task, raw, fmt, [o["letter"] for o in options])
            if kind == "number":
                key = str(k + (fmt == "index1"))          # number keys: the gold is the key itself
                if any(int(x) == 0 for x in keys) != (fmt == "index0"):   # the keys' own base must be the declared one
                    raise MedevalError(f"{task.source_file}: field 'answer.gold_format': {fmt}, but the option keys "
                                       f"{keys} start at {min(int(x) for x in keys)}; with number keys the gold "
                                       f"is the key itself: use gold_format: {'index1' if fmt == 'index0' else 'index0'}"
                                       " (or letter)")
            elif kind == "letter":
                key = LETTERS[k] if 0 <= k < MAX_OPTIONS else ""
            else:
                raise MedevalError(f"{task.source_file}: field 'answer.gold_format': {fmt} needs options given "
                                   f"as a list or keyed by letters or numbers, but the option keys are {keys}; "
                                   "use gold_format: letter (the gold is then the key itself)")
        letter = shown_letter(options, key)
        if letter is not None:
            return letter
        raise MedevalError(f"{task.source_file}: field 'answer.gold': value {raw!r} (gold_format {fmt}) "
                           f"is not one of the options (their {'source keys' if keyed else 'letters'}: {keys}); fix the "
                           "data or answer.gold_format")

    def _by_text(self, task, raw, options):
        """gold_format text: the one option whose text equals the gold, surrounding whitespace aside."""
        want = str(raw).strip()
        hits = [o["letter"] for o in options if o["text"].strip() == want]
        if len(hits) == 1:
            return hits[0]
        texts = [o["text"] for o in options]
        why = (f"matches {len(hits)} options {hits}" if hits else "is not the text of any option")
        raise MedevalError(f"{task.source_file}: field 'answer.gold': text {raw!r} (gold_format text) {why}; "
                           f"the option texts are {texts} (case and symbols count; only surrounding spaces "
                           "are ignored)")

    @staticmethod
    def _index(task, raw, fmt: str, letters: list[str]) -> int:
        try:
            return int(raw) - (fmt == "index1")
        except (TypeError, ValueError):
            hint = (" the golds look like letters: use gold_format: letter" if str(raw).strip().upper() in letters
                    else " use gold_format letter or text if the golds are not numbers")
            raise MedevalError(f"{task.source_file}: field 'answer.gold_format': {fmt} needs a whole-number "
                               f"index, but the gold is {raw!r};{hint}") from None

    def outcome(self, task, text, row, options, finish_reason=None):
        return choice_outcome(text, options or [], finish_reason)

    def choices(self, task, options):
        """The shown option letters with their texts."""
        return "multiple-choice", [{"key": o["letter"], "text": o["text"]} for o in options]

    def metric_labels(self, task, options_per_item):
        """The shown option letters any item has (A-D, or A-J where some items have ten options)."""
        return sorted({o["letter"] for opts in options_per_item for o in opts}) or None

    def adversarial_wrong(self, options, gold):
        """The first wrong option."""
        return next((o["letter"] for o in options if o["letter"] != gold), None)

    def loglikelihood_choices(self, task, options):
        if task.loglikelihood.choices == "texts":
            return [(o["letter"], o["text"]) for o in options]
        return [(o["letter"], o["letter"]) for o in options]


def shown_letter(options: list[dict], key) -> str | None:
    """The shown letter of the option whose source key is `key` (letter keys in either case, number keys
    as numbers; options without keys are keyed by their shown letters), else None."""
    keys = [o.get("key", o["letter"]) for o in options]
    kind, key = _key_kind(keys), str(key).strip()
    for o, k in zip(options, keys):
        if k == key or (kind == "letter" and k.upper() == key.upper()) or \
                (kind == "number" and _NUMBER.fullmatch(key) and int(k) == int(key)):
            return o["letter"]
    return None


def option_keys(options: list[dict]) -> dict[str, str] | None:
    """Shown letter -> source key of an item whose source keys differ from the shown letters, else None."""
    if not any("key" in o for o in options):
        return None
    return {o["letter"]: o.get("key", o["letter"]) for o in options}
