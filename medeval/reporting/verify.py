"""The gate decides from outputs, not from flags: each item's `pred` is re-derived from what the model wrote.

A samples row holds the outputs, the answers extracted from them, and the `pred` and `correct` that
follow; anyone can edit the last two. `derived_predictions` gives the gate the predictions that follow
from the outputs, in two steps:

1. When this medeval knows the task (same name, version and task hash) and the data file the run read
   (results.json `tasks.<t>.dataset.source`, a local file) is there, every output is read again with
   `answer_types.outcome` and the item's options, as `medeval run` and `merge` read it.
2. Otherwise from the row's `extracted` answers: greedy takes the first, self-consistency the majority
   (ties to the answer seen first), the rule docs/results.md states.

Items whose stored `pred` differs are counted in a note; the derived predictions are what is compared.
Rows graded by a judge (`judge` in the mode block), loglikelihood modes and rows without outputs keep
their `pred`: nothing here can re-derive them.
"""
from __future__ import annotations

from pathlib import Path

from ..scoring import modes as Modes
from ..results import ResultsError, Run
from .paired import predictions


def _reader(run: Run, task: str):
    """item id -> (task spec, row, options) from the data the run read, or None when that cannot be had."""
    from ..tasks import answer_types
    from ..tasks.data import load_items
    from ..errors import MedevalError
    from ..tasks.spec import Registry

    block = run.tasks[task]
    source = str((block.get("dataset") or {}).get("source") or "")
    try:
        spec = Registry().tasks.get(task)
    except MedevalError:
        return None
    if spec is None or not source.startswith("local:") or spec.version != block.get("version") or \
            (block.get("task_hash") and spec.spec_hash() != block.get("task_hash")):   # the task file changed
        return None
    path, local = Path(source[len("local:"):]), spec.dataset.local
    if not local or not path.is_file() or not path.as_posix().endswith(Path(local).as_posix()):
        return None
    data_dir = path.as_posix()[: -len(Path(local).as_posix())] or "."
    try:
        items = load_items(spec, data_dir)
        out = {}
        for row, item_id in zip(items.rows, items.ids):
            out[item_id] = (spec, row, answer_types.read(spec, row)[1])
    except MedevalError:
        return None
    return out


def derived_predictions(run: Run, task: str, rows: dict, ids: list, mode: str) -> tuple[list, list[str]]:
    """(the predictions that follow from the outputs, notes) for the items `ids` of one side."""
    stored = predictions(rows, ids, mode, str(run.dir))
    if mode not in Modes.BY_NAME or not Modes.get(mode).generates:   # loglikelihood picks: nothing to re-read
        return stored, []
    blocks = [rows[i].block(mode) for i in ids]
    if any("judge" in b or not isinstance(b.get("outputs"), list) for b in blocks):
        return stored, []
    reader = _reader(run, task)
    from ..tasks import answer_types

    derived, how = [], "the outputs" if reader is not None else "the extracted answers"
    for i, b in zip(ids, blocks):
        if reader is not None and i in reader:
            spec, row, options = reader[i]
            prefill = rows[i].adversarial_prefill or ""
            finishes = list(b.get("finish_reasons") or [])
            finishes += [None] * (len(b["outputs"]) - len(finishes))   # as scoring read them: a cut-off output too
            answers = [answer_types.outcome(spec, prefill + (t or ""), row, options, finish_reason=f).answer
                       for t, f in zip(b["outputs"], finishes)]
        elif isinstance(b.get("extracted"), list) and len(b["extracted"]) == len(b["outputs"]):
            answers = b["extracted"]
        else:
            raise ResultsError(f"{run.dir}: task {task}, item {i!r}: {mode}.extracted must be a list with one "
                               f"answer per output; the gate re-derives pred from it")
        derived.append(Modes.get(mode).reduce(answers)[0])   # greedy: the first; sc: the vote
    changed = sum(d != s for d, s in zip(derived, stored))
    notes = ([f"{run.dir}: {changed} of {len(ids)} items' {mode}.pred do not follow from {how} (edited samples?); "
              f"the gate compares the predictions re-derived from {how}"] if changed else [])
    return derived, notes


def permuted_predictions(run: Run, task: str, rows: dict, ids: list, mode: str) -> tuple[list, list[str]]:
    """--permute (issue 26): per item, the answer under each shown order, mapped back to the original letters
    (what circular_accuracy, permuted_accuracy and permutation_consistency are computed from). Generated
    copies are re-read from their outputs with the copy's own options, as `medeval run` reads them, where
    this medeval knows the task and its data; else from each copy's `extracted`; loglikelihood copies keep
    their `pred`."""
    from ..tasks import answer_types
    from ..tasks.permute import order_of, shown, to_original

    blocks = []
    for i in ids:
        perm = rows[i].block(mode).get("permutation")
        if not isinstance(perm, dict) or not isinstance(perm.get("copies"), list) or not perm["copies"]:
            raise ResultsError(f"{run.dir}: task {task}, item {i!r}: no {mode}.permutation block; the permutation "
                               "metrics need a run with --permute cyclic or random:N")
        blocks.append(perm["copies"])
    generates = mode in Modes.BY_NAME and Modes.get(mode).generates
    reader = _reader(run, task) if generates else None
    derived, stored = [], []
    for i, copies in zip(ids, blocks):
        preds = []
        for c in copies:
            stored.append(c.get("pred"))
            order = order_of(c["order"])
            if not generates or not isinstance(c.get("outputs"), list):
                preds.append(c.get("pred"))
                continue
            if reader is not None and i in reader:
                spec, row, options = reader[i]
                opts = shown(options, None, order)[0]
                finishes = list(c.get("finish_reasons") or [])
                finishes += [None] * (len(c["outputs"]) - len(finishes))
                answers = [answer_types.outcome(spec, t or "", row, opts, finish_reason=f).answer
                           for t, f in zip(c["outputs"], finishes)]
            elif isinstance(c.get("extracted"), list) and len(c["extracted"]) == len(c["outputs"]):
                answers = c["extracted"]
            else:
                raise ResultsError(f"{run.dir}: task {task}, item {i!r}: a {mode}.permutation copy has no list of "
                                   "extracted answers; the gate re-derives its pred from it")
            shown_pred = Modes.get(mode).reduce(answers)[0]   # greedy: the first; sc: the vote
            preds.append(to_original(shown_pred, order))
        derived.append(preds)
    changed = sum(d != s for d, s in zip((p for ps in derived for p in ps), stored))
    notes = ([f"{run.dir}: {changed} copies' {mode}.permutation pred do not follow from their outputs (edited "
              "samples?); the gate compares the re-derived predictions"] if changed else [])
    return derived, notes
