"""The end every evaluation shares (`medeval run`, `merge`, `score`): each task's outputs (a
scoring.inputs.ScoringInput) scored with the run's graders, then the group scores, then results.json.

What differs between the three commands is what they know about the run (model, decoding, cache,
timings, shard or merge records): each passes that as `fields`, a function of the task blocks that
returns the other keyword arguments of `results.run_results`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..progress import Phase
from ..results import MODES, run_results, write_results
from ..scoring import modes as M
from ..scoring.inputs import ScoringInput
from ..scoring.score import score_items


def evaluate(prepared: list, inputs: dict[str, ScoringInput], out_dir: Path, graders,
             fields: Callable[[dict], dict], *, run_options=None, self_check=None, k: int | None = None,
             registry=None, tasks=(), task_extra: Callable | None = None,
             progress: bool = False) -> dict:
    """Score each prepared task from `inputs[task name]` into `out_dir` (its samples file), close the
    `graders` (graders/registry.Graders), and write results.json; returns the results.

    `k`: the run's self-consistency k, recorded in each mode's protocol (None: no protocols, as for
    external predictions). `registry` and `tasks`: the groups to score (None: no groups).
    `task_extra(p, block)`: what a command adds to a task's block after scoring."""
    task_results = {}
    with Phase("scoring tasks", len(prepared), progress, remaining=False) as advance:
        for p in prepared:
            block = score_items(p, inputs[p.task.name], Path(out_dir), judge=graders.for_task(p.task),
                                extract_judge=graders.extract_for(p.task), run_options=run_options,
                                self_check=self_check)
            if k is not None:
                shots = p.task.fewshot.n if p.task.fewshot else 0
                block["protocols"] = {m: M.get(m).protocol(shots, k) for m in inputs[p.task.name].modes}
            if task_extra is not None:
                task_extra(p, block)
            task_results[p.task.name] = block
            advance()
    graders.close()
    groups = group_scores(registry, tasks, task_results) if registry is not None else {}
    results = run_results(tasks=task_results, groups=groups, **fields(task_results))
    write_results(Path(out_dir), results)
    return results


def group_scores(registry, tasks: list, task_results: dict) -> dict:
    out = {}
    for g in registry.groups_for(tasks):
        members = [t.name for t in registry.resolve(g.tasks)]
        block = {"tasks": members, "rule": "mean of task scores" if g.aggregate == "mean" else "weighted by n"}
        if g.metric:
            block["metric"] = (f"{g.metric} where a task reports it in that mode (sc), else the task's primary "
                               "metric (greedy: one sample, so the same quantity)")
        for mode in MODES:
            vals = []
            for name in members:
                r = task_results[name]
                got = r["metrics"].get(mode, {})
                m = got.get(g.metric) if g.metric and g.metric in got else got.get(r["primary_metric"])
                if m is None:
                    break
                vals.append((m["value"], r["n"]))
            else:
                if g.aggregate == "mean":
                    block[mode] = {"value": sum(v for v, _ in vals) / len(vals)}
                else:
                    block[mode] = {"value": sum(v * n for v, n in vals) / sum(n for _, n in vals)}
        out[g.group] = block
    return out
