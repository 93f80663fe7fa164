"""A gate report (gate.GateReport) as display rows, markdown (a PR comment) and JSON."""
from __future__ import annotations

from dataclasses import asdict

from .. import metrics as M
from .gate import GateReport, TaskResult, power_short, power_text
from .text import md_escape


def _pp(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _p(p) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _mdd(r: TaskResult) -> str:
    p = r.power
    if not p or p.get("detectable") is None:
        return "-"
    return "none" if p["mdd"] is None else f"{100 * p['mdd']:.2f}"


def _verdict(report: GateReport, r: TaskResult) -> str:
    if report.kind != "compare" or not r.stats:
        word = r.verdict.upper() if r.verdict == "fail" else r.verdict
        if r.power.get("underpowered") and (r.verdict in ("pass", "warn") or r.power.get("required")):
            word += f" ({power_short(r.power)})"
        return word
    if r.stats["p_value"] < report.alpha and r.stats["delta"] != 0:
        down_is_worse = M.get(r.metric).higher_is_better
        return "worse" if (r.stats["delta"] < 0) == down_is_worse else "better"
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
                     "MDD (pp)": _mdd(r), "Verdict": _verdict(report, r)})
    return rows


def method_text(report: GateReport) -> str:
    side = "one-sided, H1: candidate worse" if report.sided == "one" else "two-sided"
    text = (f"Paired by item id. p-value ({side}): McNemar's exact test for 0/1 per-item metrics, else a paired "
            f"bootstrap. 95% CI of Δ: paired percentile bootstrap, {report.n_resamples} resamples, seed "
            f"{report.seed}. MDD: the minimum detectable drop (a rise where lower is better), the smallest true "
            f"drop the test catches with {_target(report)} power at α = {report.alpha} on these n items.")
    if report.kind == "compare":
        return text + f" better/worse: p < α = {report.alpha}."
    return text + (f" A task fails when its drop exceeds the tolerance AND p < α = {report.alpha}. "
                   "Exit codes: 0 pass, 1 regression (or an underpowered task under require_power: fail), 2 cannot "
                   "compare.")


def _target(report: GateReport) -> str:
    return next((f"{r.power['power']:.0%}" for r in report.results if r.power), "80%")


def to_markdown(report: GateReport, title: str = "medeval gate") -> str:
    esc = md_escape
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
        lines += ["| " + " | ".join(head) + " |", "|" + "|".join([" :--- "] * 2 + [" ---: "] * 7 + [" :--- "]) + "|"]
        lines += ["| " + " | ".join(esc(r[h]) for h in head) + " |" for r in rows]
    lines += ["", esc(method_text(report))]
    details = [f"- **{esc(r.task)}** ({r.verdict}): {esc(r.reason)}" for r in report.results if r.reason]
    details += [f"- {esc(r.task)}: {esc(n)}" for r in report.results for n in r.notes]
    details += [f"- {esc(r.task)}: {esc(power_text(r.power))}" for r in report.results if r.power]
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
