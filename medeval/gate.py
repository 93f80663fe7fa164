"""Regression gate: paired comparison of a candidate run against a baseline run.

Items are paired by `id` from the samples files. For metrics whose per-item
scores are 0/1 (accuracy, exact match) the p-value is McNemar's exact test
(a binomial test on the discordant pairs); for every other metric it comes
from a paired bootstrap over items (the same resampled indices for both runs)
that recomputes the metric with `medeval.metrics`. The 95% CI of the delta is
always the paired percentile bootstrap. A task fails when the drop exceeds its
tolerance AND the test is significant at alpha.

Exit codes: 0 pass, 1 regression, 2 cannot compare (bad or mismatched input).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import metrics as M
from .data import iter_jsonl
from .leaderboard import ResultsError, Run, _read_yaml, load_run
from .stats import paired_test

PASS, REGRESSION, CANNOT_COMPARE = 0, 1, 2
MODES = ("greedy", "sc", "loglikelihood", "loglikelihood_norm")
SIDED = ("one", "two")


# ---------------------------------------------------------------- policy
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
    data = _read_yaml(path, "gate policy")
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


# ---------------------------------------------------------------- samples
def load_samples(run: Run, task: str) -> dict:
    """id -> samples row for one task of a run."""
    name = str(run.tasks[task].get("samples_file", f"samples_{task}.jsonl"))
    path = run.dir / name
    if Path(name).name != name or not path.resolve().is_relative_to(run.dir.resolve()):
        raise ResultsError(f"{run.file}: tasks.{task}.samples_file {name!r} is not a file inside the run directory "
                           f"{run.dir}; the gate reads samples only from there")
    if not path.is_file():
        raise ResultsError(f"{path}: samples file of task {task!r} not found; the gate needs the samples_<task>.jsonl "
                           "that `medeval run` writes next to results.json")
    rows = {}
    for lineno, row in iter_jsonl(path, ResultsError):
        if "id" not in row or "gold" not in row:
            raise ResultsError(f"{path}: line {lineno}: a samples row needs 'id' and 'gold'")
        key = str(row["id"])
        if key in rows:
            raise ResultsError(f"{path}: line {lineno}: duplicate item id {key!r}")
        rows[key] = row
    return rows


def _preds(rows: dict, ids: list, mode: str, path_hint: str) -> list:
    out = []
    for i in ids:
        m = rows[i].get(mode)
        if not isinstance(m, dict) or "pred" not in m:
            raise ResultsError(f"{path_hint}: item {i!r} has no {mode}.pred (was the run made with that mode?)")
        out.append(m["pred"])
    return out


# ---------------------------------------------------------------- statistics
def _options(task: dict, metric: str) -> dict:
    """tasks.<t>.metric_options: either options for all metrics, or {metric name: options}."""
    opts = task.get("metric_options") or {}
    if isinstance(opts.get(metric), dict):
        return opts[metric]
    return {k: v for k, v in opts.items() if k not in M.names()}


# ---------------------------------------------------------------- the gate
@dataclass
class TaskResult:
    task: str
    verdict: str                 # pass | warn | fail | mismatch | missing | skipped
    reason: str
    metric: str | None = None
    mode: str | None = None
    tolerance: float | None = None
    stats: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


@dataclass
class GateReport:
    baseline: Run
    candidate: Run
    alpha: float
    sided: str
    allow_mismatch: bool
    n_resamples: int
    seed: int
    results: list = field(default_factory=list)
    kind: str = "gate"           # "compare": verdicts report direction only, never fail
    allow_same_model: bool = False

    @property
    def same_model(self) -> bool:
        """Both runs come from one backend identity (model, weights, dtype, template...)."""
        return self.baseline.identity_hash is not None and self.baseline.identity_hash == self.candidate.identity_hash

    @property
    def exit_code(self) -> int:
        if self.kind == "gate" and self.same_model and not self.allow_same_model:
            return CANNOT_COMPARE
        verdicts = {r.verdict for r in self.results}
        if "mismatch" in verdicts or not verdicts & {"pass", "warn", "fail"}:
            return CANNOT_COMPARE
        return REGRESSION if "fail" in verdicts else PASS

    @property
    def status(self) -> str:
        return {PASS: "PASS", REGRESSION: "FAIL", CANNOT_COMPARE: "CANNOT COMPARE"}[self.exit_code]


DATASET_KEYS = ("hub", "config", "split")   # what names the data; `source` is a machine-local path


def _differs(field: str, b, c) -> str:
    return f"field '{field}' differs (baseline {b!r}, candidate {c!r})"


def _mismatches(task: str, bt: dict, ct: dict, b_rows: dict, c_rows: dict) -> tuple[list[str], list, list[str]]:
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
    same_gold = [i for i in common if b_rows[i]["gold"] == c_rows[i]["gold"]]
    if len(same_gold) < len(common):
        issues.append(f"field 'gold' differs on {len(common) - len(same_gold)} common items")
    return issues, same_gold, notes


def compare_task(task: str, base: Run, cand: Run, policy: Policy, alpha: float, allow_mismatch: bool,
                 n_resamples: int, seed: int, sided: str = "one") -> TaskResult:
    tp = policy.for_task(task)
    if tp.skip:
        return TaskResult(task, "skipped", "skipped by the policy")
    for side, run in (("candidate", cand), ("baseline", base)):
        if task not in run.tasks:
            verdict = "missing" if allow_mismatch else "mismatch"
            return TaskResult(task, verdict, f"task missing from the {side} ({run.dir}): no field 'tasks.{task}'")
    bt, ct = base.tasks[task], cand.tasks[task]
    metric = tp.metric or bt.get("primary_metric")
    if not metric:
        raise ResultsError(f"{base.file}: tasks.{task}.primary_metric is missing; name the metric in the policy")
    if metric not in M.names():
        raise ResultsError(f"{base.file}: tasks.{task}: metric {metric!r} is not known to this medeval "
                           f"(known: {', '.join(M.names())}); name another one in the policy")
    b_rows, c_rows = load_samples(base, task), load_samples(cand, task)
    issues, ids, notes = _mismatches(task, bt, ct, b_rows, c_rows)
    mode = tp.mode or (bt.get("modes") or ["greedy"])[0]
    res = TaskResult(task, "pass", "", metric, mode, tp.tolerance)
    if issues and not allow_mismatch:
        res.verdict, res.reason = "mismatch", "; ".join(issues)
        return res
    res.notes += [f"{i} (compared anyway: --allow-mismatch)" for i in issues] + notes
    if not ids:
        res.verdict = "mismatch" if not allow_mismatch else "missing"
        res.reason = (f"no items in common (field 'item_ids_hash' differs: baseline {len(b_rows)} items, "
                      f"candidate {len(c_rows)})")
        return res
    if len(ids) < max(len(b_rows), len(c_rows)) and not notes:
        res.notes.append(f"compared on the {len(ids)} items both runs share")
    if ct.get("primary_metric") != bt.get("primary_metric"):
        res.notes.append(f"primary_metric differs (baseline {bt.get('primary_metric')!r}, "
                         f"candidate {ct.get('primary_metric')!r}); gated on {metric!r}")
    opts = _options(bt, metric)
    if _options(ct, metric) != opts:
        res.notes.append("metric_options differ between the runs; the baseline's are used")
    golds = [b_rows[i]["gold"] for i in ids]
    pb = _preds(b_rows, ids, mode, str(base.dir))
    pc = _preds(c_rows, ids, mode, str(cand.dir))
    try:
        s = paired_test(metric, pb, pc, golds, opts, sided, n_resamples, seed)
    except (TypeError, ValueError, KeyError) as e:
        raise ResultsError(f"task {task}: cannot compute {metric} from the samples' pred/gold ({e})") from None
    res.stats = s
    for side, run, v in (("baseline", base, s["baseline"]), ("candidate", cand, s["candidate"])):
        stored = run.block(task, mode, metric)
        if stored and len(ids) == stored.get("n") and abs(stored["value"] - v) > 1e-6:
            res.notes.append(f"{side}: recomputed {metric} {v:.4f} differs from results.json {stored['value']:.4f}")
    drop, p = -s["delta"], s["p_value"]
    test = "McNemar exact" if s["test"] == "mcnemar_exact" else "paired bootstrap"
    if drop > tp.tolerance + 1e-12 and p < alpha:
        res.verdict = "fail"
        res.reason = f"drop {100 * drop:.2f} pp > tolerance {100 * tp.tolerance:.2f} pp, {test} p = {p:.3g} < {alpha}"
    elif drop > tp.tolerance + 1e-12:
        res.verdict = "warn"
        res.reason = f"drop {100 * drop:.2f} pp > tolerance but not significant ({test} p = {p:.3g} >= {alpha})"
    else:
        res.reason = "no drop" if drop <= 0 else f"drop {100 * drop:.2f} pp within tolerance {100 * tp.tolerance:.2f} pp"
    return res


def run_gate(baseline: str | Path, candidate: str | Path, policy: Policy | None = None, alpha: float | None = None,
             allow_mismatch: bool = False, n_resamples: int = 1000, seed: int = 0, sided: str | None = None,
             kind: str = "gate", allow_same_model: bool = False) -> GateReport:
    policy = policy or Policy()
    alpha = alpha if alpha is not None else (policy.alpha if policy.alpha is not None else 0.05)
    sided = sided or policy.sided
    if sided not in SIDED:
        raise ResultsError(f"sided must be 'one' or 'two', got {sided!r}")
    base, cand = load_run(baseline), load_run(candidate)
    report = GateReport(base, cand, alpha, sided, allow_mismatch, n_resamples, seed, kind=kind,
                        allow_same_model=allow_same_model)
    tasks = list(base.tasks) + [t for t in cand.tasks if t not in base.tasks]
    for task in tasks:
        report.results.append(compare_task(task, base, cand, policy, alpha, allow_mismatch, n_resamples, seed, sided))
    for task in policy.tasks:
        if task not in tasks:
            report.results.append(TaskResult(task, "skipped", "named in the policy but in neither run"))
    return report


# ---------------------------------------------------------------- reports
def _pp(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _p(p) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _verdict(report: GateReport, r: TaskResult) -> str:
    if report.kind != "compare" or not r.stats:
        return r.verdict.upper() if r.verdict == "fail" else r.verdict
    if r.stats["p_value"] < report.alpha and r.stats["delta"] != 0:
        return "worse" if r.stats["delta"] < 0 else "better"
    return "no significant difference"


def table_rows(report: GateReport) -> list[dict]:
    """One display row per task (strings), shared by the markdown and terminal tables."""
    rows = []
    for r in report.results:
        s = r.stats
        ci = "-" if s.get("ci_low") is None else f"[{100 * s['ci_low']:+.2f}, {100 * s['ci_high']:+.2f}]"
        rows.append({"Task": r.task, "Metric": f"{r.metric} ({r.mode})" if r.metric else "-",
                     "n": str(s.get("n", "-")), "Baseline": _pp(s.get("baseline")),
                     "Candidate": _pp(s.get("candidate")),
                     "Δ (pp)": "-" if "delta" not in s else f"{100 * s['delta']:+.2f}",
                     "95% CI of Δ": ci, "p": _p(s.get("p_value")) if s else "-",
                     "Verdict": _verdict(report, r)})
    return rows


def method_text(report: GateReport) -> str:
    side = "one-sided, H1: candidate worse" if report.sided == "one" else "two-sided"
    text = (f"Paired by item id. p-value ({side}): McNemar's exact test for 0/1 per-item metrics, else a paired "
            f"bootstrap. 95% CI of Δ: paired percentile bootstrap, {report.n_resamples} resamples, seed "
            f"{report.seed}.")
    if report.kind == "compare":
        return text + f" better/worse: p < α = {report.alpha}."
    return text + (f" A task fails when its drop exceeds the tolerance AND p < α = {report.alpha}. "
                   "Exit codes: 0 pass, 1 regression, 2 cannot compare.")


def to_markdown(report: GateReport, title: str = "medeval gate") -> str:
    from .leaderboard import md_escape as esc

    icon = {"PASS": "✅", "FAIL": "❌", "CANNOT COMPARE": "⚠️"}[report.status]
    head = f"### {icon} {esc(title)}: {report.status}" if report.kind == "gate" else f"### {esc(title)}"
    lines = [head, "",
             f"Baseline: {esc(report.baseline.model_id)} ({esc(report.baseline.dir)}); "
             f"candidate: {esc(report.candidate.model_id)} ({esc(report.candidate.dir)})", ""]
    if report.same_model:
        lines += [same_model_text(report), ""]
    rows = table_rows(report)
    head = list(rows[0]) if rows else []
    if rows:
        lines += ["| " + " | ".join(head) + " |", "|" + "|".join([" :--- "] * 2 + [" ---: "] * 6 + [" :--- "]) + "|"]
        lines += ["| " + " | ".join(esc(r[h]) for h in head) + " |" for r in rows]
    lines += ["", esc(method_text(report))]
    details = [f"- **{esc(r.task)}** ({r.verdict}): {esc(r.reason)}" for r in report.results if r.reason]
    details += [f"- {esc(r.task)}: {esc(n)}" for r in report.results for n in r.notes]
    if details:
        lines += ["", "<details><summary>Details</summary>", ""] + details + ["", "</details>"]
    return "\n".join(lines) + "\n"


def same_model_text(report: GateReport) -> str:
    ident = report.baseline.identity_hash or ""
    if report.kind == "gate" and not report.allow_same_model:
        return (f"Baseline and candidate come from the same model (identity {ident[:12]}): the gate would compare "
                "a model with itself. Point --candidate at the new checkpoint's run, or pass --allow-same-model "
                "to measure run-to-run noise.")
    return f"Note: baseline and candidate come from the same model (identity {ident[:12]})."


def to_json(report: GateReport) -> dict:
    side = lambda run: {"dir": str(run.dir), "model": run.model_id, "revision": run.revision,
                        "identity_hash": run.identity_hash, "medeval_version": run.data.get("medeval_version")}
    return {"kind": f"medeval-{report.kind}", "version": 1, "status": report.status, "exit_code": report.exit_code,
            "alpha": report.alpha, "sided": report.sided, "n_resamples": report.n_resamples, "seed": report.seed,
            "allow_mismatch": report.allow_mismatch, "same_model": report.same_model,
            "baseline": side(report.baseline),
            "candidate": side(report.candidate), "method": method_text(report),
            "tasks": [asdict(r) | {"display_verdict": _verdict(report, r)} for r in report.results]}
