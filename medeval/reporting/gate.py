"""Regression gate: paired comparison of a candidate run against a baseline run.

Items are paired by `id` from the samples files (paired.py). The gated metric is recomputed from each
side's `pred` and `gold`, and tested with medeval.stats.paired_test: McNemar's exact test where the
per-item scores are 0/1, else a paired bootstrap over items; the 95% CI of the delta is always the paired
percentile bootstrap. Which way is worse comes from the metric's declared `higher_is_better`. A task fails
when the candidate is worse by more than its tolerance AND the test is significant at alpha. Every compared
task also gets a power analysis (medeval.power): the minimum detectable drop at the run's n and the items
needed to detect a drop of the tolerance; a pass whose minimum detectable drop exceeds the tolerance is
underpowered, which the policy's `require_power` may turn into a warn or a fail. The report's renderings
(markdown, JSON, table rows) are in gate_report.py.

Exit codes: 0 pass, 1 regression, 2 cannot compare (bad or mismatched input).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import metrics as M
from ..power import MAX_ITEMS, analyse
from ..results import ResultsError, Run, read_results
from ..scoring import modes as Modes
from ..stats import paired_test
from .paired import load_samples, metric_options, mismatches
from .verify import derived_predictions, permuted_predictions
from ..metrics.permutation import PERMUTATION_METRICS   # --permute (issue 26)
from .policy import SIDED, Policy

PASS, REGRESSION, CANNOT_COMPARE = 0, 1, 2


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
    power: dict = field(default_factory=dict)   # medeval.power.analyse of the test, plus `direction` (drop | rise)


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
    issues, ids, notes = mismatches(task, bt, ct, b_rows, c_rows)
    mode = tp.mode or (bt.get("modes") or [Modes.GREEDY.name])[0]   # the task's first mode
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
    opts = metric_options(bt, metric)
    if metric_options(ct, metric) != opts:
        res.notes.append("metric_options differ between the runs; the baseline's are used")
    golds = [b_rows[i].gold for i in ids]
    if metric in PERMUTATION_METRICS:   # --permute (issue 26): each item's answers under every shown order
        for side, t in (("baseline", bt), ("candidate", ct)):
            perm = t.get("permutation") or {}
            if perm.get("applied") is not True:   # not a run with --permute, or it did not apply to this task
                why = (f"--permute {perm.get('permute')} did not apply ({perm.get('reason')})" if perm
                       else "the run was made without --permute")
                res.verdict = "mismatch"
                res.reason = (f"{side}: tasks.{task} has no {metric}: {why}; gate this task on another metric "
                              f"(a policy naming {metric} only for the permuted tasks)")
                return res
        shown = [(t.get("permutation") or {}).get("permute") for t in (bt, ct)]
        if shown[0] != shown[1]:
            if not allow_mismatch:
                res.verdict = "mismatch"
                res.reason = (f"field 'permutation.permute' differs (baseline {shown[0]!r}, candidate {shown[1]!r}): "
                              f"{metric} is compared over the same shown orders")
                return res
            res.notes.append(f"permute differs ({shown[0]!r} vs {shown[1]!r}); compared anyway: --allow-mismatch")
        pb, derived_b = permuted_predictions(base, task, b_rows, ids, mode)
        pc, derived_c = permuted_predictions(cand, task, c_rows, ids, mode)
    else:
        pb, derived_b = derived_predictions(base, task, b_rows, ids, mode)   # from the outputs, not editable flags
        pc, derived_c = derived_predictions(cand, task, c_rows, ids, mode)
    res.notes += derived_b + derived_c
    try:
        s = paired_test(metric, pb, pc, golds, opts, sided, n_resamples, seed)
    except (TypeError, ValueError, KeyError) as e:
        raise ResultsError(f"task {task}: cannot compute {metric} from the samples' pred/gold ({e})") from None
    res.stats = s
    res.notes += _stored_differences(task, mode, metric, base, cand, s, len(ids))
    _decide(res, s, tp.tolerance, alpha, M.get(metric).higher_is_better)
    res.power = analyse(s, tp.tolerance, alpha, sided, policy.power, bt.get("n_total")) | {
        "direction": "drop" if M.get(metric).higher_is_better else "rise"}
    return res


def _pp(v: float) -> str:
    return f"{100 * v:.2f} pp"


def power_short(p: dict) -> str:
    """The verdict's qualifier of an underpowered task: 'underpowered: could only detect >= 6.1 pp'."""
    if p.get("detectable") is False:
        return f"underpowered: no {p['direction']} is detectable on {p['n']} items"
    return f"underpowered: could only detect ≥ {100 * p['mdd']:.1f} pp"


def power_text(p: dict) -> str:
    """The power analysis in one sentence: what the test could detect, and the items a drop of the tolerance needs."""
    if not p or p.get("detectable") is None:
        return f"power: {p['note']}" if p else ""
    word, n, target = p["direction"], p["n"], f"{p['power']:.0%}"
    side = "one-sided" if p["sided"] == "one" else "two-sided"
    basis = (f"McNemar's exact test, with the churn seen here: {100 * p['churn']:.1f}% of items flipping each way"
             if p["method"] == "mcnemar_exact" else f"paired bootstrap as a normal test, per-item SD of Δ "
                                                     f"{100 * p['sd']:.1f} pp")
    seen = (f"a {word} of ≥ {_pp(p['mdd'])}" if p["mdd"] is not None else f"no {word} at all")
    text = f"power: at {target} power and α = {p['alpha']} ({side}) these {n} items detect {seen} ({basis})"
    tol, need, total = p["tolerance"], p["items_needed"], p.get("n_total")
    if not tol:
        return text + "; a tolerance of 0 cannot be targeted by a sample size"
    if need is None:
        return text + f"; a {word} of the tolerance, {_pp(tol)}, would need more than {MAX_ITEMS:,} items"
    text += f"; a {word} of the tolerance, {_pp(tol)}, needs about {need:,} items"
    if total:
        text += (f" (the data set has {total:,}: run at least {need:,})" if need <= total
                 else f", more than the data set's {total:,}: a larger tolerance or a larger set")
    return text


def apply_power_rule(res: TaskResult, rule: str) -> None:
    """The policy's `require_power`: an underpowered pass or warn stays (off), warns, or fails."""
    if rule == "off" or res.verdict not in ("pass", "warn") or not res.power.get("underpowered"):
        return
    res.power["required"] = rule
    res.reason = (f"{power_short(res.power)}, tolerance {_pp(res.power['tolerance'])} (require_power: {rule}); "
                  + res.reason)
    res.verdict = rule


def _stored_differences(task, mode, metric, base: Run, cand: Run, s: dict, n: int) -> list[str]:
    """Notes where a recomputed value differs from the one in results.json (same items only)."""
    out = []
    for side, run, v in (("baseline", base, s["baseline"]), ("candidate", cand, s["candidate"])):
        stored = run.block(task, mode, metric)
        if stored and n == stored.get("n") and abs(stored["value"] - v) > 1e-6:
            out.append(f"{side}: recomputed {metric} {v:.4f} differs from results.json {stored['value']:.4f}")
    return out


def _decide(res: TaskResult, s: dict, tolerance: float, alpha: float, higher_is_better: bool) -> None:
    """The verdict: fail when the candidate is worse by more than the tolerance and p < alpha. Worse is a
    drop for a metric where higher is better, a rise for one where lower is better."""
    worse, word = (-s["delta"], "drop") if higher_is_better else (s["delta"], "rise")
    p = s["p_value"]
    test = "McNemar exact" if s["test"] == "mcnemar_exact" else "paired bootstrap"
    if worse > tolerance + 1e-12 and p < alpha:
        res.verdict = "fail"
        res.reason = f"{word} {100 * worse:.2f} pp > tolerance {100 * tolerance:.2f} pp, {test} p = {p:.3g} < {alpha}"
    elif worse > tolerance + 1e-12:
        res.verdict = "warn"
        res.reason = f"{word} {100 * worse:.2f} pp > tolerance but not significant ({test} p = {p:.3g} >= {alpha})"
    else:
        res.reason = (f"no {word}" if worse <= 0
                      else f"{word} {100 * worse:.2f} pp within tolerance {100 * tolerance:.2f} pp")


def run_gate(baseline: str | Path, candidate: str | Path, policy: Policy | None = None, alpha: float | None = None,
             allow_mismatch: bool = False, n_resamples: int = 1000, seed: int = 0, sided: str | None = None,
             kind: str = "gate", allow_same_model: bool = False) -> GateReport:
    policy = policy or Policy()
    alpha = alpha if alpha is not None else (policy.alpha if policy.alpha is not None else 0.05)
    sided = sided or policy.sided
    if sided not in SIDED:
        raise ResultsError(f"sided must be 'one' or 'two', got {sided!r}")
    base, cand = read_results(baseline), read_results(candidate)
    if kind == "gate":   # the same-model refusal rests on these: an edited model block is refused
        base.check_identity()
        cand.check_identity()
    report = GateReport(base, cand, alpha, sided, allow_mismatch, n_resamples, seed, kind=kind,
                        allow_same_model=allow_same_model)
    tasks = list(base.tasks) + [t for t in cand.tasks if t not in base.tasks]
    for task in tasks:
        res = compare_task(task, base, cand, policy, alpha, allow_mismatch, n_resamples, seed, sided)
        if kind == "gate":
            apply_power_rule(res, policy.for_task(task).require_power)
        report.results.append(res)
    for task in policy.tasks:
        if task not in tasks:
            report.results.append(TaskResult(task, "skipped", "named in the policy but in neither run"))
    return report
