"""Does the gate's minimum detectable drop (MDD) say what its test can catch? A simulation (issue 28).

    python benchmarks/gate_power.py                 # three scenarios, about 4 minutes on 2 cores
    python benchmarks/gate_power.py --reps 300 --pairs 3

Loopback models whose errors are known: SYNTHETIC predictions planted on real gold answers (MedQA
`answer_idx`, PubMedQA `final_decision`; tests/results_factory.py writes the run directories), so the
true drop of every candidate is known exactly.

For each scenario:
* **reported**: `medeval gate` (medeval.reporting.gate.run_gate, as the CLI runs it) on a few loopback
  pairs written to disk: a candidate of the baseline's quality, and one 3 points worse. Each report's
  `power.mdd` is the MDD the gate states, estimated from that one pair.
* **simulated**: the same test (McNemar's exact test as the gate computes it, `binom.sf(b - 1, b + c,
  1/2) < alpha`, checked against medeval.stats.paired_test; for macro-F1 medeval.stats.paired_test
  itself, the paired bootstrap) on many fresh candidates per true drop; the drop it catches 80% of the
  time is interpolated from the catch rates.

Scenarios (alpha 0.05, one-sided, as the gate's default):
* `medqa400_independent`: 400 MedQA items; the baseline run is wrong on a fixed 30%; a candidate is wrong
  on each item with probability 30% + d, independently of the baseline: the issue's setting, high churn.
* `medqa1273_finetune`: the full MedQA test set (1273); a candidate keeps the baseline's answers except that
  each item flips with a fixed probability: 3% of all items newly right and 3% + d newly wrong on average
  (a checkpoint a few steps later): low churn.
* `pubmedqa500_macro_f1`: 500 PubMedQA items gated on macro-F1 (paired bootstrap); the baseline answers a
  fixed 25% of the items with another label, a candidate each item with probability 25% + e; the true drop
  of a level e is the mean macro-F1 drop over its simulated candidates.

The baseline is one fixed run, as in a gate; the candidates' errors are drawn per item, so a candidate's
accuracy varies around its model's the way a real model's does across item samples (a candidate wrong on
exactly (30% + d) of the items would make the observed drop exactly d, and the test far more powerful than
on any real pair of checkpoints).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

from _common import ROOT, load_str, save, versions

sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from results_factory import DATA, TaskSpec, medqa_golds, preds_from_mask, write_run  # noqa: E402

from medeval.reporting.gate import run_gate  # noqa: E402
from medeval.stats import paired_test  # noqa: E402

ALPHA, TARGET = 0.05, 0.8
LABELS = ["yes", "no", "maybe"]


def drop_at(drops, rates, target=TARGET):
    """The drop at which the catch rate first reaches `target` (linear interpolation between grid points)."""
    for i in range(1, len(drops)):
        if rates[i] >= target > rates[i - 1]:
            return float(drops[i - 1] + (target - rates[i - 1]) * (drops[i] - drops[i - 1]) / (rates[i] - rates[i - 1]))
    return None


def mcnemar_caught(base_ok, cand_ok):
    """(R,) booleans: the gate's one-sided McNemar exact test rejects at ALPHA, for R candidates."""
    b = np.sum(base_ok & ~cand_ok, axis=-1)
    c = np.sum(~base_ok & cand_ok, axis=-1)
    return stats.binom.sf(b - 1, b + c, 0.5) < ALPHA


# ---------------------------------------------------------------- loopback models with known errors
BASE_ACC = 0.7


def baselines(n, rng, reps):
    """Baseline runs: right on each item with probability BASE_ACC."""
    return rng.random((reps, n)) < BASE_ACC


def independent(base_ok, d, rng):
    """Candidates wrong on each item with probability (1 - BASE_ACC) + d, independently of the baseline."""
    return rng.random(base_ok.shape) >= (1 - BASE_ACC) + d


def finetune(base_ok, d, rng, churn=0.03):
    """Candidates that keep the baseline's answers except that, on average, `churn` of all items flip to
    right and churn + d flip to wrong (each item independently)."""
    flip = rng.random(base_ok.shape) < np.where(base_ok, (churn + d) / BASE_ACC, churn / (1 - BASE_ACC))
    return base_ok ^ flip


def fixed_baseline(n, rng):
    """One baseline run, right on exactly round(BASE_ACC * n) random items."""
    ok = np.zeros(n, dtype=bool)
    ok[rng.permutation(n)[: round(BASE_ACC * n)]] = True
    return ok


def mcnemar_scenario(name, n, make, d_grid, reps, pairs, tmp: Path, fixed: bool, seed=0):
    """Catch rates of the gate's McNemar test per true drop, and the MDD the gate reports on a few pairs.
    fixed: one baseline run for every candidate (as in a series of gates against one baseline); else
    both runs are drawn afresh for every simulated gate (items sampled anew: the test's own model)."""
    rng = np.random.default_rng(seed)
    golds = medqa_golds(n)
    one = fixed_baseline(n, rng)
    draw_base = (lambda r: np.tile(one, (r, 1))) if fixed else (lambda r: baselines(n, rng, r))
    # the simulation's test is the gate's: check on a few candidates against medeval.stats.paired_test
    probe_b = draw_base(3)
    for b_ok, c_ok in zip(probe_b, make(probe_b, 0.03, rng)):
        p = paired_test("accuracy", preds_from_mask(golds, b_ok), preds_from_mask(golds, c_ok), golds,
                        n_resamples=100)["p_value"]
        assert (p < ALPHA) == bool(mcnemar_caught(b_ok, c_ok)), "simulated test differs from the gate's"
    t0 = time.perf_counter()
    drops = [float(d) for d in d_grid]
    rates = []
    for d in drops:
        b_ok = draw_base(reps)
        rates.append(float(mcnemar_caught(b_ok, make(b_ok, d, rng)).mean()))
    sim_s = time.perf_counter() - t0
    simulated = drop_at(drops, rates)
    reported = []
    for label, d in (("same quality", 0.0), ("3 points worse", 0.03)):
        for k in range(pairs):
            b_ok = draw_base(1)
            c_ok = make(b_ok, d, rng)[0]
            spec = lambda ok: {"medqa": TaskSpec(golds, preds_from_mask(golds, ok), n_total=1273)}
            base = write_run(tmp / f"{name}_{fixed}_{d}_{k}_b", "loopback/baseline", spec(b_ok[0]))
            cand = write_run(tmp / f"{name}_{fixed}_{d}_{k}_c", "loopback/candidate", spec(c_ok))
            t = run_gate(base, cand, n_resamples=200).results[0]
            reported.append({"candidate": label, "true_drop": d, "observed_delta": t.stats["delta"],
                             "discordant_worse": t.stats["discordant_worse"],
                             "discordant_better": t.stats["discordant_better"], "verdict": t.verdict,
                             "mdd": t.power["mdd"], "items_needed_for_1pp": t.power["items_needed"],
                             "ratio_to_simulated": t.power["mdd"] / simulated if simulated else None})
    return {"scenario": name, "baseline": "fixed" if fixed else "drawn", "n": n, "test": "mcnemar_exact",
            "reps_per_drop": reps, "grid": [{"true_drop": d, "caught": r} for d, r in zip(drops, rates)],
            "simulated_mdd": simulated, "simulation_s": round(sim_s, 2), "reported": reported}


def label_preds(golds, wrong_mask, rng):
    return [LABELS[(LABELS.index(g) + 1 + rng.integers(0, 2)) % 3] if w else g for g, w in zip(golds, wrong_mask)]


def bootstrap_scenario(n, e_grid, reps, pairs, tmp: Path, fixed: bool, resamples=1000, seed=0):
    """As mcnemar_scenario for macro-F1 on PubMedQA (the gate's paired bootstrap, medeval.stats.paired_test)."""
    rng = np.random.default_rng(seed)
    with (DATA / "pubmedqa" / "test.jsonl").open(encoding="utf-8") as f:
        golds = [json.loads(line)["final_decision"] for _, line in zip(range(n), f)]
    opts = {"labels": LABELS}
    one = label_preds(golds, rng.permutation(n) < round(0.25 * n), rng)
    baseline = (lambda: one) if fixed else (lambda: label_preds(golds, rng.random(n) < 0.25, rng))

    def candidate(e):
        return label_preds(golds, rng.random(n) < 0.25 + e, rng)

    t0 = time.perf_counter()
    grid = []
    for e in e_grid:
        deltas, caught = [], []
        for _ in range(reps):
            s = paired_test("macro_f1", baseline(), candidate(e), golds, opts, "one", resamples, int(rng.integers(1 << 30)))
            deltas.append(s["delta"])
            caught.append(s["p_value"] < ALPHA)
        grid.append({"extra_error_rate": float(e), "true_drop": -float(np.mean(deltas)), "caught": float(np.mean(caught))})
    sim_s = time.perf_counter() - t0
    simulated = drop_at([g["true_drop"] for g in grid], [g["caught"] for g in grid])
    spec = dict(primary_metric="macro_f1", metrics=("macro_f1",), metric_options=opts, n_total=500)
    reported = []
    for label, e in (("same quality", 0.0), ("3 points worse", None)):
        if e is None:   # the grid level whose mean macro-F1 drop is closest to 3 points
            e = min(grid, key=lambda g: abs(g["true_drop"] - 0.03))["extra_error_rate"]
        for k in range(pairs):
            base = write_run(tmp / f"pubmedqa_{fixed}_{e}_{k}_b", "loopback/baseline",
                             {"pubmedqa": TaskSpec(golds, baseline(), **spec)})
            cand = write_run(tmp / f"pubmedqa_{fixed}_{e}_{k}_c", "loopback/candidate",
                             {"pubmedqa": TaskSpec(golds, candidate(e), **spec)})
            t = run_gate(base, cand, n_resamples=resamples).results[0]
            reported.append({"candidate": label, "extra_error_rate": e, "observed_delta": t.stats["delta"],
                             "delta_se": t.stats["delta_se"], "verdict": t.verdict, "mdd": t.power["mdd"],
                             "items_needed_for_1pp": t.power["items_needed"],
                             "ratio_to_simulated": t.power["mdd"] / simulated if simulated else None})
    return {"scenario": "pubmedqa500_macro_f1", "baseline": "fixed" if fixed else "drawn", "n": n,
            "test": "paired_bootstrap", "reps_per_drop": reps, "resamples": resamples, "grid": grid,
            "simulated_mdd": simulated, "simulation_s": round(sim_s, 1), "reported": reported}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=4000, help="simulated candidates per true drop (McNemar)")
    ap.add_argument("--boot-reps", type=int, default=150, help="simulated candidates per level (bootstrap)")
    ap.add_argument("--pairs", type=int, default=5, help="loopback pairs gated per candidate kind")
    ap.add_argument("--quiet-wait", default="0", help="accepted for run_all.py; this benchmark measures no time")
    a = ap.parse_args()
    load_before = load_str()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="gate_power_") as tmp:
        tmp = Path(tmp)
        out = []
        for fixed in (False, True):
            out += [mcnemar_scenario("medqa400_independent", 400, independent, np.arange(0, 0.1601, 0.005), a.reps,
                                     a.pairs, tmp, fixed),
                    mcnemar_scenario("medqa1273_finetune", 1273, finetune, np.arange(0, 0.0601, 0.0025), a.reps,
                                     a.pairs, tmp, fixed),
                    bootstrap_scenario(500, np.arange(0, 0.1401, 0.02), a.boot_reps, a.pairs, tmp, fixed)]
            print(f"baseline {'fixed' if fixed else 'drawn'} done ({time.time() - t0:.0f} s)", flush=True)
    for s in out:
        ratios = [r["ratio_to_simulated"] for r in s["reported"]]
        s["summary"] = {"simulated_mdd": s["simulated_mdd"], "reported_mdd_median": float(np.median([r["mdd"] for r in s["reported"]])),
                        "ratio_min": min(ratios), "ratio_max": max(ratios),
                        "all_within_20pct": all(abs(x - 1) <= 0.2 for x in ratios)}
        print(f"{s['scenario']} (baseline {s['baseline']}): simulated {100 * s['simulated_mdd']:.2f} pp; reported "
              + ", ".join(f"{100 * r['mdd']:.2f}" for r in s["reported"]) + f" pp; ratios {min(ratios):.3f}..{max(ratios):.3f}")
    save("gate_power", {"settings": {"alpha": ALPHA, "power": TARGET, "sided": "one", "reps": a.reps,
                                     "boot_reps": a.boot_reps, "pairs": a.pairs},
                        "versions": versions(), "load_before": load_before, "load_after": load_str(),
                        "seconds": round(time.time() - t0, 1), "scenarios": out})


if __name__ == "__main__":
    main()
