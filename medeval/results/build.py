"""The one builder and writer of results.json: `task_results` (a task block, from scoring), `run_results`
(the run block around the task blocks) and `write_results` (validate, then write atomically).

Each builder validates its block against medeval/results/schema.py and refuses a field the schema does
not declare, so the file's fields are declared in one place. Keys are written in the schema's order.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import RESULTS_SCHEMA_VERSION, __version__
from .files import atomic_write
from .provenance import git_revision, now_iso, package_versions
from .schema import RunResults, TaskResults


def _undeclared(block, where: str) -> None:
    extra = sorted(block.model_extra or {})
    if extra:
        raise TypeError(f"{where}: field(s) {', '.join(extra)} are not declared in medeval/results/schema.py; "
                        "declare and document them there (and in docs/results.md)")


def task_results(*, task: str, display_name: str, version: int, task_hash: str, prompt_hash: str, template: str,
                 data_hash: str, item_ids_hash: str, dataset: dict, n: int, n_total: int, answer_type: str,
                 primary_metric: str, metric_options: dict, modes: list, metrics: dict, **more) -> dict:
    """A task block (schema.TaskResults) as a plain dict in the schema's key order. Keyword arguments
    beyond the required ones are the block's optional fields (invalid, usage, strata, judge, ...)."""
    fields = dict(task=task, display_name=display_name, version=version, task_hash=task_hash,
                  prompt_hash=prompt_hash, template=template, data_hash=data_hash, item_ids_hash=item_ids_hash,
                  dataset=dataset, n=n, n_total=n_total, answer_type=answer_type, primary_metric=primary_metric,
                  metric_options=metric_options, modes=modes, metrics=metrics, **more)
    block = TaskResults.model_validate(fields)
    _undeclared(block, f"task {task}")
    return block.model_dump(exclude_unset=True)


def run_results(*, command: list, model: dict, decoding: dict, seed, cache: dict, timings: dict, tasks: dict,
                groups: dict, **more) -> dict:
    """The whole results.json (schema.RunResults) as a plain dict in the schema's key order.

    Provenance (schema_version, medeval_version, created, git_revision, packages) is this process's
    unless given (a merge keeps its shards'). Other keyword arguments: usage, shard, merged."""
    fields = {"schema_version": RESULTS_SCHEMA_VERSION, "medeval_version": __version__, "created": now_iso()}
    fields.update(command=command, model=model, decoding=decoding, seed=seed, cache=cache, timings=timings,
                  tasks=tasks, groups=groups, **more)
    if "git_revision" not in fields:
        fields["git_revision"] = git_revision()
    if "packages" not in fields:
        fields["packages"] = package_versions()
    run = RunResults.model_validate(fields)
    _undeclared(run, "results.json")
    for name, block in run.tasks.items():
        _undeclared(block, f"task {name}")
    return run.model_dump(exclude_unset=True)


def write_results(out_dir: Path, results: dict) -> Path:
    """Write `results` (from run_results) to out_dir/results.json, atomically."""
    path = Path(out_dir) / "results.json"
    atomic_write(path, json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return path
