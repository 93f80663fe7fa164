"""`medeval score`: run medeval's extraction and metrics on outputs produced elsewhere.

The predictions file is JSONL, one item per line: {"id": ..., "output": text},
{"id": ..., "outputs": [text, ...]}, or for multiple-choice tasks {"id": ..., "key": k} / {"keys": [...]}
(answers already read, as the data set's own option keys); docs/score.md documents it with an example.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..tasks import answer_types
from ..tasks.data import iter_jsonl
from ..errors import MedevalError
from .config import RunConfig
from .prepare import prepare
from ..scoring import modes as M
from ..scoring.inputs import ScoringInput
from .tail import evaluate
from ..tasks.spec import Registry


def read_predictions(path: Path) -> dict[str, list[str]]:
    """id -> outputs. A line with `key`/`keys` (answers given as the source's option keys) maps to
    {"keys": [...], "line": n} instead; `source_keys_to_outputs` turns those into shown letters."""
    if not path.is_file():
        raise MedevalError(f"{path}: predictions file not found")
    preds: dict = {}
    for n, row in iter_jsonl(path):
        given = {"output", "outputs", "key", "keys"} & set(row)
        if "output" in row and "outputs" in row:
            raise MedevalError(f"{path}: line {n}: has both 'output' and 'outputs'; give one ('output': a text, "
                               "'outputs': a list of texts voted as self-consistency)")
        if "id" not in row or len(given) != 1:
            raise MedevalError(f"{path}: line {n}: each line needs 'id' and exactly one of 'output' (text), "
                               "'outputs' (list), 'key' or 'keys' (the source's option keys; docs/score.md)")
        if str(row["id"]) in preds:
            raise MedevalError(f"{path}: line {n}: id {row['id']!r} appears twice")
        if given & {"key", "keys"}:
            keys = row["keys"] if "keys" in row else [row["key"]]
            if not isinstance(keys, list) or not keys or not all(isinstance(k, (str, int)) and not isinstance(k, bool)
                                                                 for k in keys):
                raise MedevalError(f"{path}: line {n}: 'key' must be a string or number and 'keys' a non-empty "
                                   "list of them (the option keys as the data set gives them)")
            preds[str(row["id"])] = {"keys": keys, "line": n}
            continue
        outs = row["outputs"] if "outputs" in row else [row["output"]]
        if not isinstance(outs, list) or not all(isinstance(o, str) for o in outs) or not outs:
            raise MedevalError(f"{path}: line {n}: 'output' must be a string and 'outputs' a non-empty list of strings")
        preds[str(row["id"])] = outs
    if not preds:
        raise MedevalError(f"{path}: no predictions")
    return preds


def source_keys_to_outputs(path: Path, task, items, preds: dict) -> dict[str, list[str]]:
    """Answers given as the source's option keys -> the shown letters they name, as outputs. The
    mapping is the one samples record as `option_keys`; a key the item does not have is an error."""
    by_id = {it.id: it for it in items}
    out = {}
    for i, p in preds.items():
        if isinstance(p, list):
            out[i] = p
            continue
        if not answer_types.of(task).lettered_options:
            raise MedevalError(f"{path}: line {p['line']}: 'key'/'keys' are for multiple-choice tasks; task "
                               f"{task.name!r} is {task.answer.type!r}: give 'output' (the model's text)")
        opts = by_id[i].options
        letters = [answer_types.shown_letter(opts, k) for k in p["keys"]]
        if None in letters:
            bad = p["keys"][letters.index(None)]
            have = [o.get("key", o["letter"]) for o in opts]
            raise MedevalError(f"{path}: line {p['line']}: key {bad!r} is not an option key of item {i!r} "
                               f"(its keys: {have}); give the key as the data set's options field does")
        out[i] = letters
    return out


def score_file(task_name: str, predictions: Path, output_dir: Path, model_name: str,
               data_dir=None, task_dirs=(), argv=(), extract_judge: str | None = None,
               extract_judge_base_url: str | None = None, cache_dir: str | None = None) -> dict:
    """Score `predictions` for one task; one output per id is 'greedy', several are also voted as 'sc'."""
    t0 = time.time()
    from .config import writable_dir

    writable_dir(output_dir, "--output-dir")
    preds = read_predictions(Path(predictions))
    registry = Registry([Path(d) for d in task_dirs], strict=False)
    task = registry.resolve([task_name])[0]
    grader = answer_types.of(task).grader
    if grader is not None:   # its answers mean nothing until a grader model grades them (AnswerType.grader)
        raise MedevalError(f"task {task.name!r}: its {task.answer.type!r} answers are graded by the {grader} grader "
                           "(--judge), which `medeval score` does not run: evaluate the model with `medeval run "
                           "--judge MODEL`")
    cfg = RunConfig(tasks=[task.name], data_dir=str(data_dir) if data_dir else None, cache_dir=cache_dir,
                    extract_judge=extract_judge, extract_judge_base_url=extract_judge_base_url)
    p = prepare(task, cfg)
    unknown = sorted(set(preds) - set(p.ids))
    if unknown:
        what = (f"the dataset's {task.dataset.id_field!r} field" if task.dataset.id_field else
                f"the row index as a string, \"0\" to \"{p.n_total - 1}\"")
        raise MedevalError(f"{predictions}: {len(unknown)} ids are not items of task {task.name!r} "
                           f"(first: {unknown[:3]}); ids are {what} (see docs/score.md)")
    p = p.select(set(preds))   # the items scored, hashed as `run` hashes them
    preds = source_keys_to_outputs(Path(predictions), task, p.items, preds)
    # the first output of each id is greedy's answer; several outputs of a votable task are voted as sc
    many = task.votable and any(len(v) > 1 for v in preds.values())
    modes = [m for m in (M.GREEDY, M.SC) if not m.voted or many]
    texts = {m.name: {i: preds[i] if m.voted else preds[i][:1] for i in p.ids} for m in modes}
    inputs = {task.name: ScoringInput.of_texts([m.name for m in modes], texts)}
    from ..graders.registry import Graders

    graders = Graders(cfg)   # the extraction judge only: tasks a grader grades were refused above

    def missing(p, block: dict) -> None:
        block["missing_predictions"] = p.n_total - len(p.ids)
        if block["missing_predictions"]:
            block["warnings"] = [f"{predictions}: predictions for {len(p.ids)} of {p.n_total} items of task "
                                 f"{task.name!r}; {block['missing_predictions']} items are missing and not scored, "
                                 f"so the metrics cover only the {len(p.ids)} predicted items"]

    def fields(task_results: dict) -> dict:
        return dict(command=list(argv),
                    model={"id": model_name, "backend": "external", "predictions": str(Path(predictions).resolve())},
                    decoding={"external": True}, seed=None, cache={"hits": 0, "misses": 0, "dir": None},
                    timings={"total_s": time.time() - t0})

    return evaluate([p], inputs, Path(output_dir), graders, fields, task_extra=missing)
