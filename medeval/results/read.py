"""The one reader of results.json: `read_results(dir)` -> a checked `Run` (leaderboard, gate, view, merge).

The file is checked against medeval/results/schema.py (each failure one line naming the file, the field
and the fix), and normalised once: `tasks.<t>.metric_options` is always {metric name: options}, whether
the file holds that or one options dict for all metrics (hand-made or older files).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from .. import RESULTS_SCHEMA_VERSION
from ..errors import MedevalError
from .schema import RunResults


class ResultsError(MedevalError, ValueError):
    """A result, samples, preset or policy file that cannot be used (CLI exit code 2)."""


@dataclass
class Run:
    """A result directory and its results.json (as read by `read_results`)."""
    dir: Path
    data: dict

    @property
    def file(self) -> Path:
        return self.dir / "results.json"

    @property
    def model_id(self) -> str:
        return str((self.data.get("model") or {}).get("id") or self.dir.name)

    @property
    def identity_hash(self) -> str | None:
        """Hash of the backend identity that produced the run (None for runs written before it existed)."""
        return (self.data.get("model") or {}).get("identity_hash")

    def check_identity(self) -> None:
        """For the gate's same-model refusal: the file has a `model` block, and an `identity_hash` there is
        the hash of the `identity` beside it (provenance.identity_hash, as `Identity.key()` computes it). A run
        written before identities existed, or by `medeval score`, has neither and passes."""
        from .provenance import identity_hash

        model = self.data.get("model")
        if not isinstance(model, dict) or not model.get("id"):
            raise ResultsError(f"{self.file}: field 'model' is missing or has no 'id'; the gate needs to know which "
                               "model a run belongs to: use the results.json that `medeval run` wrote")
        ident, claimed = model.get("identity"), model.get("identity_hash")
        if claimed is None and ident is None:
            return
        if not isinstance(ident, dict) or not isinstance(claimed, str):
            raise ResultsError(f"{self.file}: field 'model.identity' and 'model.identity_hash' must come together "
                               "(one is missing); use the results.json that `medeval run` wrote")
        if identity_hash(ident) != claimed:
            raise ResultsError(f"{self.file}: field 'model.identity_hash' ({claimed[:12]}) is not the hash of "
                               "'model.identity': the file was edited; use the results.json that `medeval run` wrote")

    @property
    def revision(self) -> str | None:
        rev = (self.data.get("model") or {}).get("revision")
        return str(rev) if rev else None

    @property
    def tasks(self) -> dict:
        return self.data["tasks"]

    def block(self, task: str, mode: str, metric: str | None) -> dict | None:
        """The metric block {value, ci_low, ci_high, n}, or None where the run lacks it."""
        t = self.tasks.get(task)
        if t is None:
            return None
        metric = metric or t.get("primary_metric")
        b = ((t.get("metrics") or {}).get(mode) or {}).get(metric)
        if b is None:
            return None
        v = b.get("value") if isinstance(b, dict) else None
        if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ResultsError(f"{self.file}: tasks.{task}.metrics.{mode}.{metric}.value must be a number "
                               f"in [0, 1], got {v!r}; re-run `medeval score` to rewrite the file")
        return b


def metric_names(task: dict) -> set[str]:
    """The metrics a task block reports (in any mode) or names as its primary metric."""
    names = {m for block in (task.get("metrics") or {}).values() if isinstance(block, dict) for m in block}
    return names | ({task["primary_metric"]} if task.get("primary_metric") else set())


def normalise_metric_options(task: dict) -> dict:
    """{metric: options}: per-metric entries as they are; flat entries (options for all metrics) go to
    every metric of the task that has no entry of its own."""
    opts = task.get("metric_options") or {}
    per = {k: v for k, v in opts.items() if isinstance(v, dict)}
    flat = {k: v for k, v in opts.items() if not isinstance(v, dict)}
    if not flat:
        return per
    return {**{m: dict(flat) for m in sorted(metric_names(task)) if m not in per}, **per}


def _load(file: Path) -> dict:
    if not file.is_file():
        raise ResultsError(f"{file}: not found; pass a directory written by `medeval run` (it holds results.json)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or "schema_version" not in data or "medeval_version" not in data:
        raise ResultsError(f"{file}: not a medeval results file (no 'schema_version'/'medeval_version'); "
                           "pass the --output-dir of `medeval run` or `medeval score`")
    if data["schema_version"] != RESULTS_SCHEMA_VERSION:
        raise ResultsError(f"{file}: schema_version {data['schema_version']!r} is not supported (this medeval "
                           f"reads {RESULTS_SCHEMA_VERSION}); re-score the samples with `medeval score` or use a "
                           "matching medeval version")
    return data


def _check(file: Path, data: dict) -> None:
    """The schema's types, and what every reader needs: tasks, each with a metrics object
    (metric_options normalised first)."""
    if not isinstance(data.get("tasks"), dict):
        raise ResultsError(f"{file}: field 'tasks' must be an object of task name -> task results")
    for name, t in data["tasks"].items():
        if not isinstance(t, dict) or not isinstance(t.get("metrics"), dict):
            raise ResultsError(f"{file}: tasks.{name}.metrics is missing or not an object")
        if isinstance(t.get("metric_options"), dict):
            t["metric_options"] = normalise_metric_options(t)
    try:
        RunResults.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        raise ResultsError(f"{file}: field '{where}': {err['msg'].lower()} (got {err.get('input')!r:.60}); "
                           "rewrite the file with `medeval run` or `medeval score`") from None


def read_results(path: str | Path) -> Run:
    """Read and check a result directory (or its results.json); metric_options normalised."""
    p = Path(path)
    file = p / "results.json" if p.is_dir() else p
    data = _load(file)
    _check(file, data)
    return Run(file.parent, data)
