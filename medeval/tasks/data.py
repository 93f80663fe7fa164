"""Dataset loading: a local mirror (`<data-dir>/<dataset>/<split>.jsonl`) or the hub."""
from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import MedevalError
from ..results.files import iter_jsonl
from ..fields import get_field
from .spec import Task

DATA_ENV = "MEDEVAL_DATA_DIR"


@dataclass
class Items:
    rows: list[dict]
    ids: list[str]
    source: str
    n_total: int
    lines: list[int] | None = None   # line of each row in a local JSONL file
    selection: dict | None = None    # how the rows were chosen (dataset.filter, --limit), for results.json

    def where(self, k: int) -> str:
        """File and line (or hub row) of item k, for error messages."""
        if self.source.startswith("local:") and self.lines:
            return f"{self.source[len('local:'):]}: line {self.lines[k]}"
        return f"{self.source}: row {k + 1}"

    def data_hash(self) -> str:
        return data_hash(self.ids, self.rows)

    def ids_hash(self) -> str:
        return ids_hash(self.ids)


def data_hash(ids: list[str], rows: list[dict]) -> str:
    """Hash of the evaluated items (id and row, in order); `medeval run` and `medeval score` share it."""
    h = hashlib.sha256()
    for i, r in zip(ids, rows):
        h.update(json.dumps([i, r], sort_keys=True, default=str).encode())
    return h.hexdigest()


def ids_hash(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def _local_file(task: Task, data_dir: Path, split: str | None) -> Path:
    rel = Path(task.dataset.local)
    if split and split != task.dataset.split:
        rel = rel.with_name(f"{split}{rel.suffix}")
    return data_dir / rel


def _read_jsonl(path: Path) -> tuple[list[dict], list[int]]:
    """The rows of a local file and the line each came from, in one pass."""
    pairs = list(iter_jsonl(path))
    return [row for _, row in pairs], [n for n, _ in pairs]


def _missing(task: Task, looked: list[str], why: str = "") -> MedevalError:
    d = task.dataset
    lines = [f"no data for task {task.name!r} ({d.access} dataset). Looked in:"]
    lines += [f"  - {p}" for p in looked]
    if why:
        lines.append(f"  ({why})")
    if d.how_to_get:
        lines.append(f"  how to get it: {d.how_to_get.strip()}")
    if d.local:
        lines.append(f"  fix: put it at <data-dir>/{d.local} (JSON Lines) and pass --data-dir <data-dir> "
                     f"or set {DATA_ENV}")
    if d.fields:
        lines.append(f"  each line needs the fields: {', '.join(d.fields)}")
    return MedevalError("\n".join(lines))


def load_rows(task: Task, data_dir: str | Path | None = None, split: str | None = None) -> tuple[list[dict], str]:
    """The split's rows and where they came from (`local:<path>` or `hub:<id>:<config>:<split>`)."""
    rows, source, _ = _load(task, data_dir, split)
    return rows, source


def _load(task: Task, data_dir, split) -> tuple[list[dict], str, list[int] | None]:
    """Rows, source, and for a local file the line of each row (hub rows have none)."""
    d = task.dataset
    data_dir = data_dir or os.environ.get(DATA_ENV)
    looked: list[str] = []
    if data_dir and d.local:
        path = _local_file(task, Path(data_dir).expanduser(), split)
        if path.is_file():
            rows, lines = _read_jsonl(path)
            return rows, f"local:{path.resolve()}", lines
        looked.append(str(path))
    if data_dir or not d.hub or d.access != "public":
        raise _missing(task, looked or ["(no --data-dir given)"],
                       "" if d.hub and d.access == "public" else "this dataset is not downloaded from the hub")
    import datasets

    try:
        ds = datasets.load_dataset(d.hub, d.config, split=split or d.split)
    except Exception as e:  # network, auth, unknown dataset: all end the same way for the user
        where = f"hub: {d.hub}" + (f" (config {d.config})" if d.config else "") + f", split {split or d.split}"
        raise _missing(task, [where],
                       f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    return [dict(r) for r in ds], f"hub:{d.hub}:{d.config or ''}:{split or d.split}", None


def select_rows(task: Task, rows: list[dict], source: str) -> list[int]:
    """Indices of the rows that meet every condition of `dataset.filter` (all rows without one). A filter
    that keeps no row, or names a field that no row has, is an error: it is a typo, not an empty set."""
    conds = task.dataset.filter
    if not conds:
        return list(range(len(rows)))
    for k, c in enumerate(conds):
        if not any(_has(r, c.field) for r in rows):
            raise MedevalError(f"{task.source_file}: field 'dataset.filter.{k}.field': no row of {source} has "
                               f"the field {c.field!r}; check the spelling (dotted paths: a.b)")
    keep = [n for n, r in enumerate(rows) if all(c.keeps(r) for c in conds)]
    if not keep:
        raise MedevalError(f"{task.source_file}: field 'dataset.filter': no row of {source} meets every "
                           f"condition ({len(rows)} rows read); loosen the filter")
    return keep


def _has(row: dict, path: str) -> bool:
    try:
        get_field(row, path)
        return True
    except KeyError:
        return False


def load_items(task: Task, data_dir=None, limit: int | None = None, sample_seed: int | None = None) -> Items:
    """The task's rows: those `dataset.filter` keeps, then the first `limit` of them (or, with
    `sample_seed`, `limit` of them drawn at random with that seed, kept in file order). Item ids are
    the id field, else the row's index in the file (so a filtered or sampled item keeps its id)."""
    rows, source, every = _load(task, data_dir, None)
    if not rows:
        raise MedevalError(f"task {task.name!r}: the dataset at {source} is empty")
    n_split = len(rows)
    keep = select_rows(task, rows, source)
    n_total = len(keep)
    selection = None
    if task.dataset.filter or limit is not None:
        selection = {"rows_in_split": n_split, "filter": [c.describe() for c in task.dataset.filter],
                     "filtered_out": n_split - n_total}
    if limit is not None:
        if sample_seed is None:
            keep = keep[:limit]
        elif limit < len(keep):
            keep = sorted(random.Random(sample_seed).sample(keep, limit))
        selection.update(limit=limit, subset="first" if sample_seed is None else "seeded random",
                         sample_seed=sample_seed)
    lines = [every[k] for k in keep] if every is not None else None
    items = Items([rows[k] for k in keep], [], source, n_total, lines, selection)
    for n, (k, row) in enumerate(zip(keep, items.rows)):
        for f in task.dataset.fields:
            try:
                get_field(row, f)
            except KeyError:
                raise MedevalError(f"{items.where(n)}: missing field {f!r} that task {task.name!r} needs "
                                   f"(fields expected: {', '.join(task.dataset.fields)})") from None
        items.ids.append(str(get_field(row, task.dataset.id_field)) if task.dataset.id_field else str(k))
    if len(set(items.ids)) != len(items.ids):
        raise MedevalError(f"{source}: item ids in field {task.dataset.id_field!r} are not unique; "
                           "set dataset.id_field to a unique field or remove it to use row numbers")
    return items
