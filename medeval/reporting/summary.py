"""The terminal summary of a results file that `medeval run`, `score` and `merge` print: one row per task
and metric (greedy and sc, or loglikelihood and loglikelihood_norm, with 95% intervals), invalid,
ambiguous and truncated shares, tokens and cost, the judges' notes and the group scores."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..results.schema import MODES
from ..scoring import modes as Modes


def _scores_choices(mode: str) -> bool:
    """A loglikelihood mode (choices scored, no text); an unknown mode counts as generated."""
    return mode in Modes.BY_NAME and not Modes.get(mode).generates


def summary(results: dict, out: Console | None = None) -> None:
    """Print a run's results: one row per task and metric, then usage, judges, clusters and groups."""
    out = out or Console()
    table = Table(title=f"{results['model'].get('id')}  ({results['model'].get('backend')})")
    kinds = {_scores_choices(r["modes"][0]) for r in results["tasks"].values()}   # the first mode names the kind
    first, second = {frozenset({False}): ("greedy [95% CI]", "SC"), frozenset({True}): ("acc [95% CI]", "acc_norm")}.get(
        frozenset(kinds), ("greedy | acc [95% CI]", "SC | acc_norm"))   # generation tasks, loglikelihood, or both
    for col in ("task", "n", "metric", first, second, "invalid", "ambiguous", "truncated"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    for name, r in results["tasks"].items():
        modes = r["modes"]  # greedy[, sc] for generated answers; loglikelihood, loglikelihood_norm otherwise
        ll = _scores_choices(modes[0])
        names = list(dict.fromkeys(m for mode in modes for m in r["metrics"].get(mode, {})))
        for k, metric in enumerate(names):   # sc adds sample_accuracy
            cells = []
            for mode in (modes + [None])[:2]:
                m = r["metrics"].get(mode, {}).get(metric) if mode else None
                if m is None:
                    cells.append("-")
                elif m["ci_low"] is None:
                    cells.append(f"{100 * m['value']:.1f}")
                else:
                    cells.append(f"{100 * m['value']:.1f} [{100 * m['ci_low']:.1f}, {100 * m['ci_high']:.1f}]")
            inv = " / ".join(f"{100 * r['invalid'][m]['rate']:.0f}%" for m in modes) if k == 0 and not ll else ""
            amb = " / ".join(f"{100 * r.get('ambiguous', {}).get(m, {}).get('rate', 0):.0f}%"
                             for m in modes) if k == 0 and not ll else ""
            trunc = _truncation_cell(r) if k == 0 and not ll else ""
            label = f"{metric} (loglikelihood)" if ll else metric
            table.add_row(name if k == 0 else "", str(r["n"]) if k == 0 else "", label, *cells, inv, amb, trunc)
    # not a terminal (a CI log, a pipe): rich would wrap the eight columns at 80 characters
    (out if out.is_terminal else Console(width=160)).print(table)
    usage_line = _usage_line(results.get("usage"))
    if usage_line:
        out.print(usage_line, highlight=False)
    for name, r in results["tasks"].items():
        xj = r.get("extract_judge")
        if xj:
            vals = _beside_rules(r, xj, r["modes"])
            answered = sum(c["answered"] for c in xj["outputs"].values())
            asked = sum(sum(c.values()) for c in xj["outputs"].values())
            out.print(f"{name} with --extract-judge {xj['judge']}: {vals}; it answered {answered} of {asked} "
                      "invalid outputs", markup=False)
        fb = r.get("extract_fallback")
        if fb:
            vals = _beside_rules(r, fb, fb["metrics"])
            answered = sum(c["answered"] for c in fb["outputs"].values())
            invalid = sum(c["invalid"] for c in fb["outputs"].values())
            out.print(f"{name} with --extract-fallback self: {vals}; the model answered {answered} of {invalid} "
                      "invalid outputs", markup=False)
        au = r.get("extract_audit")
        if au:
            vals = ", ".join(f"{m} {a['agree']}/{a['compared']}" + (f" ({100 * a['rate']:.0f}%)" if a["compared"] else "")
                             for m, a in au.items() if isinstance(a, dict))
            out.print(f"{name} --extract-audit: the model's own answer agrees with the rules' on {vals} outputs",
                      markup=False)
        pm = r.get("permutation")
        if pm:   # --permute (issue 26): the position-bias table in one line per mode
            out.print(f"{name}: {permutation_line(pm)}", markup=False)
        b = r.get("bootstrap") or {}
        if b.get("unit") == "cluster":
            out.print(f"{name}: intervals by clustered bootstrap over {b['field']} ({b['clusters']} clusters)")
        j = r.get("judge") or {}
        if "criteria_graded" in j:
            out.print(f"{name}: graded by {j['judge']} at {j['base_url']}; {j['unparseable']} of "
                      f"{j['criteria_graded']} criterion verdicts unparseable (counted as not met)")
    for g, block in results.get("groups", {}).items():
        vals = ", ".join(f"{m} {100 * block[m]['value']:.1f}" for m in MODES if m in block)
        how = block["rule"] + (f"; {block['metric']}" if block.get("metric") else "")
        out.print(f"group {g}: {vals} ({how})")


def _truncation_cell(r: dict) -> str:
    """Share of samples stopped by the token limit, per mode ('-' where the backend gave no reasons)."""
    usage = r.get("usage") or {}
    cells = []
    for m in r["modes"]:
        u = usage.get(m)
        known = u and sum(v for f, v in u["finish_reasons"].items() if f != "unknown")
        cells.append(f"{100 * u['truncation_rate']:.0f}%" if known else "-")
    return " / ".join(cells)


def _usage_line(usage: dict | None) -> str | None:
    if not usage:
        return None
    g = usage["generation"]
    text = f"tokens: {g.get('prompt_tokens', 0):,} prompt + {g.get('completion_tokens', 0):,} completion"
    if g.get("cost_usd") is not None:
        text += f", estimated cost ${g['cost_usd']:.4f}"
    for name, j in usage.get("judge", {}).items():
        text += f"; judge {escape(name)}: {j.get('prompt_tokens', 0):,} + {j.get('completion_tokens', 0):,} tokens"
        if j.get("cost_usd") is not None:
            text += f" (${j['cost_usd']:.4f})"
    return text


def _beside_rules(r: dict, block: dict, modes) -> str:
    """Per mode: the primary metric with a fallback's answers, the rules-only value, the invalid rate left."""
    pm = r["primary_metric"]
    return ", ".join(f"{m} {pm} {100 * block['metrics'][m][pm]['value']:.1f} (rules only "
                     f"{100 * r['metrics'][m][pm]['value']:.1f}), invalid {100 * block['invalid'][m]['rate']:.0f}%"
                     for m in modes)


def permutation_line(pm: dict) -> str:
    """--permute: where the answers sat against where the golds sat, and the chi-square test, per mode."""
    if not pm.get("applied"):
        return f"--permute {pm.get('permute')} did not apply ({pm.get('reason')})"
    parts = []
    for mode, pb in (pm.get("position_bias") or {}).items():
        shares = " ".join(f"{row['position']} {100 * (row['predicted_share'] or 0):.0f}%" for row in pb["table"])
        golds = " ".join(f"{100 * (row['gold_share'] or 0):.0f}%" for row in pb["table"])
        cs = pb.get("chi_square") or {}
        test = f"chi-square p = {cs['p_value']:.3g}" if cs.get("p_value") is not None else cs.get("note", "")
        parts.append(f"{mode}: predicted {shares} (golds {golds}; {test})")
    return f"position bias under --permute {pm.get('permute')}, {pm.get('copies')} copies: " + "; ".join(parts)
