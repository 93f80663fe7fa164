"""Pairing two runs' items for the gate and the comparison page: the samples of a task by item id, what
keeps two task blocks from being compared, the predictions of a mode, the options a metric was run with."""
from __future__ import annotations

from ..results import ResultsError, Run, SampleRecord
from ..results.samples import read_samples


def load_samples(run: Run, task: str) -> dict[str, SampleRecord]:
    """id -> samples row (results.SampleRecord) for one task of a run."""
    return read_samples(run, task, "the gate")


def predictions(rows: dict[str, SampleRecord], ids: list, mode: str, path_hint: str) -> list:
    out = []
    for i in ids:
        if not rows[i].has_pred(mode):
            raise ResultsError(f"{path_hint}: item {i!r} has no {mode}.pred (was the run made with that mode?)")
        out.append(rows[i].block(mode)["pred"])
    return out


def metric_options(task: dict, metric: str) -> dict:
    """The options `metric` was computed with: tasks.<t>.metric_options, which the results reader
    normalises to {metric name: options}."""
    return (task.get("metric_options") or {}).get(metric) or {}


DATASET_KEYS = ("hub", "config", "split")   # what names the data; `source` is a machine-local path


def _differs(field: str, b, c) -> str:
    return f"field '{field}' differs (baseline {b!r}, candidate {c!r})"


def mismatches(task: str, bt: dict, ct: dict, b_rows: dict, c_rows: dict) -> tuple[list[str], list, list[str]]:
    """What keeps the two sides of a task from being compared (each naming the field that differs),
    the ids both sides can be scored on, and notes. Different item sets are compared on the items in
    common when the task version, prompt and data agree."""
    issues, notes = [], []
    for key in ("version", "prompt_hash"):
        if bt.get(key) != ct.get(key):
            issues.append(_differs(key, bt.get(key), ct.get(key)))
    bd, cd = bt.get("dataset") or {}, ct.get("dataset") or {}
    for key in DATASET_KEYS:
        if key in bd and key in cd and bd[key] != cd[key]:
            issues.append(_differs(f"dataset.{key}", bd[key], cd[key]))
    common = [i for i in b_rows if i in c_rows]
    if set(b_rows) == set(c_rows):
        if bt.get("data_hash") and ct.get("data_hash") and bt["data_hash"] != ct["data_hash"]:
            issues.append(_differs("data_hash", bt["data_hash"], ct["data_hash"]) + ": same item ids, other data")
    elif common:
        notes.append(f"field 'item_ids_hash' differs (baseline {len(b_rows)} items, candidate {len(c_rows)}): "
                     f"compared on the {len(common)} items both runs share")
    same_gold = [i for i in common if b_rows[i].gold == c_rows[i].gold]
    if len(same_gold) < len(common):
        issues.append(f"field 'gold' differs on {len(common) - len(same_gold)} common items")
    return issues, same_gold, notes
