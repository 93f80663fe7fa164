"""The gate's policy file: a default and per-task tolerance, metric, mode and skip; alpha; sidedness."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import metrics as M
from ..results import MODES, ResultsError
from ..safe_yaml import load_mapping

SIDED = ("one", "two")


@dataclass
class TaskPolicy:
    tolerance: float = 0.01      # allowed absolute drop, as a fraction (0.01 = 1 percentage point)
    metric: str | None = None    # None: the task's primary_metric
    mode: str | None = None      # None: the task's first mode (greedy; loglikelihood for loglikelihood tasks)
    skip: bool = False


@dataclass
class Policy:
    default: TaskPolicy = field(default_factory=TaskPolicy)
    tasks: dict = field(default_factory=dict)  # task -> TaskPolicy
    alpha: float | None = None
    sided: str = "one"

    def for_task(self, task: str) -> TaskPolicy:
        return self.tasks.get(task, self.default)


def _task_policy(d, base: TaskPolicy, where: str) -> TaskPolicy:
    if not isinstance(d, dict):
        raise ResultsError(f"{where}: must be a mapping of tolerance/metric/mode/skip")
    unknown = set(d) - {"tolerance", "metric", "mode", "skip"}
    if unknown:
        raise ResultsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: tolerance, metric, mode, skip")
    tp = TaskPolicy(**{**asdict(base), **d})
    if not isinstance(tp.tolerance, (int, float)) or not 0 <= tp.tolerance < 1:
        raise ResultsError(f"{where}.tolerance must be a fraction in [0, 1) (0.01 = 1 point), got {tp.tolerance!r}")
    if tp.mode not in (None, *MODES):
        raise ResultsError(f"{where}.mode must be one of {', '.join(MODES)}, got {tp.mode!r}")
    if tp.metric is not None and tp.metric not in M.names():
        raise ResultsError(f"{where}.metric {tp.metric!r} is not a medeval metric; known: {', '.join(M.names())}")
    return tp


def load_policy(path: str | Path | None) -> Policy:
    if path is None:
        return Policy()
    path = Path(path)
    data = load_mapping(path, "gate policy", ResultsError)
    unknown = set(data) - {"default", "tasks", "alpha", "sided"}
    if unknown:
        raise ResultsError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed: default, tasks, alpha, sided")
    default = _task_policy(data.get("default") or {}, TaskPolicy(), f"{path}: default")
    tasks = {t: _task_policy(d or {}, default, f"{path}: tasks.{t}") for t, d in (data.get("tasks") or {}).items()}
    alpha = data.get("alpha")
    if alpha is not None and not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ResultsError(f"{path}: alpha must be in (0, 1), got {alpha!r}")
    sided = data.get("sided", "one")
    if sided not in SIDED:
        raise ResultsError(f"{path}: sided must be 'one' (candidate worse) or 'two', got {sided!r}")
    return Policy(default, tasks, alpha, sided)
