"""Where answers come from: the options of a multiple-choice item and its gold answer,
both in canonical form (a letter, a label, a list of labels, entity spans or text)."""
from __future__ import annotations

import string

from .data import get_field
from .errors import MedevalError
from .spec import Task

LETTERS = string.ascii_uppercase


def options_of(task: Task, row: dict) -> list[dict]:
    """[{letter, text}, ...] for choice tasks, [] otherwise."""
    spec = task.answer.options
    if task.answer.type != "choice" or spec is None:
        return []
    try:
        if isinstance(spec, list):
            texts = [get_field(row, f) for f in spec]
        else:
            raw = get_field(row, spec)
            if isinstance(raw, dict):
                texts = [raw[k] for k in sorted(raw)]
            elif isinstance(raw, list):
                texts = raw
            else:
                raise MedevalError(f"{task.source_file}: field 'answer.options': {spec!r} holds a "
                                   f"{type(raw).__name__}; expected a dict of letter -> text or a list")
    except KeyError as e:
        raise MedevalError(f"{task.source_file}: field 'answer.options': the row has no field {e.args[0]!r}") from None
    if not 2 <= len(texts) <= 10:
        raise MedevalError(f"{task.source_file}: field 'answer.options': {len(texts)} options; 2 to 10 are supported")
    return [{"letter": LETTERS[i], "text": "" if t is None else str(t)} for i, t in enumerate(texts)]


def gold_of(task: Task, row: dict):
    a = task.answer
    try:
        raw = get_field(row, a.gold)
    except KeyError:
        raise MedevalError(f"{task.source_file}: field 'answer.gold': the row has no field {a.gold!r}") from None
    fmt = a.gold_format
    if a.type == "choice":
        letters = [o["letter"] for o in options_of(task, row)]
        if fmt == "letter":
            gold = str(raw).strip().upper()
        elif fmt in ("index0", "index1"):
            try:
                k = int(raw) - (fmt == "index1")
            except (TypeError, ValueError):
                hint = (" the golds look like letters: use gold_format: letter" if str(raw).strip().upper() in letters
                        else " use gold_format letter or text if the golds are not numbers")
                raise MedevalError(f"{task.source_file}: field 'answer.gold_format': {fmt} needs a whole-number "
                                   f"index, but the gold is {raw!r};{hint}") from None
            gold = letters[k] if 0 <= k < len(letters) else None
        elif fmt == "text":
            match = [o["letter"] for o in options_of(task, row) if o["text"] == raw]
            gold = match[0] if match else None
        else:
            gold = None
        if gold not in letters:
            raise MedevalError(f"{task.source_file}: field 'answer.gold': value {raw!r} (gold_format {fmt}) "
                               f"is not one of the options {letters}")
        return gold
    if a.type in ("yesno", "label"):
        gold = str(raw).strip()
        if gold not in a.labels:
            raise MedevalError(f"{task.source_file}: field 'answer.gold': label {gold!r} is outside the label set "
                               f"{a.labels}; add it to answer.labels or fix the data")
        return gold
    if a.type == "multilabel":
        gold = list(raw or [])
        bad = [g for g in gold if g not in a.labels]
        if bad:
            raise MedevalError(f"{task.source_file}: field 'answer.gold': labels {bad} are outside answer.labels")
        return sorted(gold)
    if a.type == "entities":
        return sorted([e["start"], e["end"], e["type"]] for e in raw)
    if a.type == "span":
        return list(raw["text"]) if isinstance(raw, dict) else ([raw] if isinstance(raw, str) else list(raw))
    return raw


def loglikelihood_choices(task: Task, options: list[dict]) -> list[tuple[str, str]]:
    """(answer, text scored after the prompt) per choice of a `scoring: loglikelihood` task."""
    kind = task.loglikelihood.choices
    if kind == "letters":
        return [(o["letter"], o["letter"]) for o in options]
    if kind == "texts":
        return [(o["letter"], o["text"]) for o in options]
    return [(label, label) for label in task.answer.labels]
