"""Per-item side files keyed by item id: stratum labels and adversarial reasoning traces.

BioMed-R1 labels each question reasoning-heavy or knowledge-heavy (`is_reasoning` in
zou-lab/BioMed-R1-Eval) and tests robustness by pre-filling a long wrong reasoning trace. Neither
belongs in the question data itself, so both come from a file (JSONL, a JSON list or {id: {...}}
mapping, or CSV) whose rows carry the task's item id:

* `item_labels` (task field, or `--item-labels FILE` for every task of a run): each label column
  becomes a stratum `item_labels.<column>`; items the file does not list are stratum "(missing)".
* `adversarial` (task field `{field}` or `{file}`, or `--adversarial-file FILE`): the text to
  pre-fill at the start of the reply in `--adversarial` mode, instead of "The answer is X.".
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import logging

from .data import iter_jsonl
from ..errors import MedevalError
from ..fields import get_field

log = logging.getLogger(__name__)
SCALAR = (str, int, float, bool, type(None))


def resolve(path: str, data_dir: str | None, where: str) -> Path:
    """A side file: absolute, else under --data-dir, else relative to the working directory."""
    p = Path(path).expanduser()
    candidates = [p] if p.is_absolute() else ([Path(data_dir) / p] if data_dir else []) + [p]
    for c in candidates:
        if c.is_file():
            return c
    raise MedevalError(f"{where}: file {path!r} not found (looked in: {', '.join(str(c) for c in candidates)}); "
                       "give an existing JSONL, JSON or CSV file")


def read_keyed(path: Path, id_field: str, where: str, task: str | None = None) -> dict[str, dict]:
    """{item id: row} from a JSONL, JSON (list or {id: row}) or CSV file. Rows whose `task` column names
    another task are left out. A row without an id or with a null one, and an id given twice with
    different contents, are one-line errors naming the file and the row."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise MedevalError(f"{path}: not valid JSON ({e}); {where} expects a list of objects or an "
                               "{id: {...}} mapping") from None
        rows = ([{id_field: k, **(v if isinstance(v, dict) else {"value": v})} for k, v in data.items()]
                if isinstance(data, dict) else data)
    else:
        rows = [r for _, r in iter_jsonl(path)]
    if not isinstance(rows, list):
        raise MedevalError(f"{path}: {where} expects a list of objects or an {{id: {{...}}}} mapping")
    out, first = {}, {}
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or id_field not in r:
            raise MedevalError(f"{path}: row {n} has no {id_field!r} field ({where} keys rows by item id); "
                               f"add it or set the id column")
        if r[id_field] is None or isinstance(r[id_field], (dict, list, bool)) or str(r[id_field]).strip() == "":
            raise MedevalError(f"{path}: row {n}: field {id_field!r} is {r[id_field]!r}; give the item's id "
                               "(a string or a number)")
        if task is not None and r.get("task") not in (None, "", task):
            continue
        key = str(r[id_field])
        if key in out and out[key] != r:
            raise MedevalError(f"{path}: row {n}: id {key!r} is also row {first[key]}, with other values; "
                               f"{where} needs one row per item id")
        out[key], first[key] = r, first.get(key, n)
    return out


def _no_match(path: Path, where: str, ids: list, keyed: dict) -> str | None:
    """A warning (logged and recorded) when a side file names ids but none is an item of the task."""
    if not keyed or any(i in keyed for i in ids):
        return None
    text = (f"{path}: none of its {len(keyed)} ids is an item id of this task (file: {sorted(keyed)[:3]}, "
            f"task: {ids[:3]}); {where} applies to no item: check the id format")
    log.warning("%s", text)
    return text


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def attach_labels(task, ids, rows, data_dir, cli_file: str | None):
    """(rows with `item_labels`, extra strata, a record for results.json) or (rows, [], None)."""
    spec = task.item_labels
    if spec is None and cli_file is None:
        return rows, [], None
    where = f"{task.source_file}: field 'item_labels'" if spec is not None and cli_file is None else "--item-labels"
    file = cli_file or spec.file
    id_field = spec.id_field if spec is not None and cli_file is None else "id"
    path = resolve(file, data_dir, where)
    keyed = read_keyed(path, id_field, where, task.name)
    cols = (spec.fields if spec is not None and cli_file is None and spec.fields else
            sorted({c for r in keyed.values() for c in r if c not in (id_field, "task")}))
    if not cols:
        raise MedevalError(f"{path}: no label columns besides {id_field!r}; {where} needs at least one")
    for k, r in keyed.items():
        bad = next((c for c in cols if not isinstance(r.get(c), SCALAR)), None)
        if bad is not None:
            raise MedevalError(f"{path}: id {k!r}: label {bad!r} is {type(r[bad]).__name__} {r[bad]!r:.60}; a label "
                               "must be a string, number, true/false or null")
    out = [{**row, "item_labels": {c: keyed[i][c] for c in cols if c in keyed[i]}} if i in keyed else row
           for i, row in zip(ids, rows)]
    matched = sum(i in keyed for i in ids)
    record = {"file": str(path), "sha256": sha256(path), "columns": cols, "items_labelled": matched,
              "items_without_label": len(ids) - matched}
    warning = _no_match(path, where, ids, keyed)
    if warning:
        record["warning"] = warning
    return out, [f"item_labels.{c}" for c in cols], record


def adversarial_traces(task, ids, rows, data_dir, cli_file: str | None):
    """(per-item pre-fill text or None, a record for results.json), or (None, None) when not configured."""
    spec = task.adversarial
    if spec is None and cli_file is None:
        return None, None
    if cli_file or (spec and spec.file):
        where = "--adversarial-file" if cli_file else f"{task.source_file}: field 'adversarial.file'"
        path = resolve(cli_file or spec.file, data_dir, where)
        keyed = read_keyed(path, "id", where, task.name)
        for k, r in keyed.items():
            if not isinstance(r.get("prefill"), str) or not r["prefill"].strip():
                got = "no 'prefill' field" if "prefill" not in r else f"'prefill' {r['prefill']!r:.40}"
                raise MedevalError(f"{path}: id {k!r}: {got}; each row needs 'prefill', the non-empty text to "
                                   "pre-fill (JSONL {id, prefill})")
        texts = [keyed[i]["prefill"] if i in keyed else None for i in ids]
        source = {"file": str(path), "sha256": sha256(path)}
        warning = _no_match(path, where, ids, keyed)
        if warning:
            source["warning"] = warning
    elif spec and spec.field:
        texts = []
        for row in rows:
            try:
                v = get_field(row, spec.field)
            except KeyError:
                v = None
            texts.append(str(v) if v else None)
        source = {"field": spec.field}
    else:
        raise MedevalError(f"{task.source_file}: field 'adversarial': give `field` (a row field holding the "
                           "trace) or `file` (JSONL {id, prefill})")
    missing = sum(t is None for t in texts)
    return texts, {**source, "items_with_trace": len(ids) - missing, "items_without_trace": missing}
