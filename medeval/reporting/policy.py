"""The gate's policy file: a default and per-task tolerance, metric, mode, skip and require_power; alpha;
sidedness; the target power of the power analysis."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import metrics as M
from ..results import MODES, ResultsError
from ..safe_yaml import load_mapping

SIDED = ("one", "two")
REQUIRE_POWER = ("off", "warn", "fail")   # what an underpowered pass becomes (medeval.power, gate.py)
TASK_KEYS = ("tolerance", "metric", "mode", "skip", "require_power")


@dataclass
class TaskPolicy:
    tolerance: float = 0.01      # allowed absolute drop, as a fraction (0.01 = 1 percentage point)
    metric: str | None = None    # None: the task's primary_metric
    mode: str | None = None      # None: the task's first mode (greedy; loglikelihood for loglikelihood tasks)
    skip: bool = False
    require_power: str = "off"   # off | warn | fail: an underpowered pass (mdd > tolerance) stays, warns or fails


@dataclass
class Policy:
    default: TaskPolicy = field(default_factory=TaskPolicy)
    tasks: dict = field(default_factory=dict)  # task -> TaskPolicy
    alpha: float | None = None
    sided: str = "one"
    power: float = 0.8           # target power of the minimum detectable drop and the items needed

    def for_task(self, task: str) -> TaskPolicy:
        return self.tasks.get(task, self.default)


def _task_policy(d, base: TaskPolicy, where: str) -> TaskPolicy:
    if not isinstance(d, dict):
        raise ResultsError(f"{where}: must be a mapping of {'/'.join(TASK_KEYS)}")
    unknown = set(d) - set(TASK_KEYS)
    if unknown:
        raise ResultsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(TASK_KEYS)}")
    tp = TaskPolicy(**{**asdict(base), **d})
    tp.require_power = _require_power(tp.require_power, f"{where}.require_power")
    if not isinstance(tp.tolerance, (int, float)) or not 0 <= tp.tolerance < 1:
        raise ResultsError(f"{where}.tolerance must be a fraction in [0, 1) (0.01 = 1 point), got {tp.tolerance!r}")
    if tp.mode not in (None, *MODES):
        raise ResultsError(f"{where}.mode must be one of {', '.join(MODES)}, got {tp.mode!r}")
    if tp.metric is not None and tp.metric not in M.names():
        raise ResultsError(f"{where}.metric {tp.metric!r} is not a medeval metric; known: {', '.join(M.names())}")
    return tp


def _require_power(v, where: str) -> str:
    """true = fail, false = off; else one of REQUIRE_POWER."""
    if v is True:
        v = "fail"
    elif v is False or v is None:
        v = "off"
    if v not in REQUIRE_POWER:
        raise ResultsError(f"{where} must be true (= fail), false (= off), warn or fail, got {v!r}")
    return v


def load_policy(path: str | Path | None) -> Policy:
    if path is None:
        return Policy()
    path = Path(path)
    data = load_mapping(path, "gate policy", ResultsError)
    keys = ("default", "tasks", "alpha", "sided", "require_power", "power")
    unknown = set(data) - set(keys)
    if unknown:
        raise ResultsError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(keys)}")
    top = TaskPolicy(require_power=_require_power(data.get("require_power", False), f"{path}: require_power"))
    default = _task_policy(data.get("default") or {}, top, f"{path}: default")
    tasks = {t: _task_policy(d or {}, default, f"{path}: tasks.{t}") for t, d in (data.get("tasks") or {}).items()}
    alpha = data.get("alpha")
    if alpha is not None and not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ResultsError(f"{path}: alpha must be in (0, 1), got {alpha!r}")
    sided = data.get("sided", "one")
    if sided not in SIDED:
        raise ResultsError(f"{path}: sided must be 'one' (candidate worse) or 'two', got {sided!r}")
    power = data.get("power", 0.8)
    if isinstance(power, bool) or not (isinstance(power, (int, float)) and 0 < power < 1):
        raise ResultsError(f"{path}: power (the target power of the minimum detectable drop) must be in (0, 1), "
                           f"got {power!r}")
    return Policy(default, tasks, alpha, sided, float(power))


def with_metric(policy: Policy, metric: str | None) -> Policy:
    """`gate --metric NAME`: the metric of every task, over the policy file's (a known metric, else an error)."""
    if metric is None:
        return policy
    if metric not in M.names():
        raise ResultsError(f"--metric {metric!r} is not a medeval metric; known: {', '.join(M.names())}")
    from dataclasses import replace

    return replace(policy, default=replace(policy.default, metric=metric),
                   tasks={t: replace(tp, metric=metric) for t, tp in policy.tasks.items()})
