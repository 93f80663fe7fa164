"""The sequential gate (medeval.sequential, issue 25) against the fixed-size gate: a simulation.

    python benchmarks/sequential_gate.py                  # 2000 replays per setting, about a minute on 2 cores
    python benchmarks/sequential_gate.py --reps 500

SYNTHETIC paired outcomes with a known true drop δ (accuracy points), drawn per item in a random order:
* `medqa1273_finetune`: the full MedQA test size (1273); a candidate keeps the baseline's answers except
  that 3% of the items become right and 3% + δ become wrong (a checkpoint a few steps later: low churn);
* `medqa1273_independent`: baseline right on each item with probability 0.70, candidate with 0.70 − δ,
  independently (high churn).

Per replay, the sequential gate looks after every chunk of 50 items (medeval.sequential.decide, alpha 0.05
for a false alarm, beta 0.05 for passing a drop of the tolerance or more, tolerance 1 point as the gate's
default) and stops at the first decisive look; the fixed gate evaluates all items and fails on McNemar's
exact one-sided test at alpha 0.05 with an observed drop above the tolerance (medeval gate's rule).
Reported per δ: the rate of "regression" verdicts (δ = 0: the false-alarm rate), of "pass" verdicts, and
the mean items the sequential gate evaluated.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import stats

from _common import ROOT, save, versions

sys.path.insert(0, str(ROOT))
from medeval.sequential import decide  # noqa: E402

N, CHUNK, ALPHA, BETA, TOL = 1273, 50, 0.05, 0.05, 0.01
DROPS = (0.0, 0.02, 0.05, 0.10)


def draw(setting: str, delta: float, rng) -> np.ndarray:
    """Per-item differences d = candidate − baseline (0/1 scores) of one replay."""
    if setting == "medqa1273_finetune":
        u = rng.random(N)
        return np.where(u < 0.03, 1.0, np.where(u < 0.06 + delta, -1.0, 0.0))
    base = rng.random(N) < 0.70
    cand = rng.random(N) < 0.70 - delta
    return cand.astype(float) - base.astype(float)


def fixed_gate(d: np.ndarray) -> bool:
    b, c = int((d < 0).sum()), int((d > 0).sum())
    p = stats.binom.sf(b - 1, b + c, 0.5) if b + c else 1.0
    return p < ALPHA and -d.mean() > TOL


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.time()
    looks = list(range(CHUNK, N, CHUNK)) + [N]
    out = {}
    for setting in ("medqa1273_finetune", "medqa1273_independent"):
        rng = np.random.default_rng(a.seed)
        rows = {}
        for delta in DROPS:
            seq = [decide(d, TOL, ALPHA, BETA, looks) for d in (draw(setting, delta, rng) for _ in range(a.reps))]
            rng_f = np.random.default_rng(a.seed + 1)
            fixed = np.mean([fixed_gate(draw(setting, delta, rng_f)) for _ in range(a.reps)])
            used = np.array([s["n_used"] for s in seq])
            rows[f"{delta:.2f}"] = {
                "seq_regression_rate": float(np.mean([s["verdict"] == "regression" for s in seq])),
                "seq_pass_rate": float(np.mean([s["verdict"] == "pass" for s in seq])),
                "seq_undecided_rate": float(np.mean([s["verdict"] == "undecided" for s in seq])),
                "seq_mean_items": float(used.mean()),
                "seq_mean_items_when_regression": float(used[[s["verdict"] == "regression" for s in seq]].mean())
                if any(s["verdict"] == "regression" for s in seq) else None,
                "fixed_regression_rate": float(fixed), "fixed_items": N,
                "items_saved": float(1 - used.mean() / N)}
            r = rows[f"{delta:.2f}"]
            print(f"{setting} drop {100 * delta:4.1f} pp: sequential alarm {r['seq_regression_rate']:.3f} "
                  f"pass {r['seq_pass_rate']:.3f} undecided {r['seq_undecided_rate']:.3f}, "
                  f"mean items {r['seq_mean_items']:.0f} of {N} (saved {100 * r['items_saved']:.0f}%); "
                  f"fixed gate alarm {r['fixed_regression_rate']:.3f}", flush=True)
        out[setting] = rows
    save("sequential_gate", {"params": {"n": N, "chunk": CHUNK, "alpha": ALPHA, "beta": BETA, "tolerance": TOL,
                                        "reps": a.reps, "seed": a.seed, "drops": list(DROPS)},
                             "results": out, "seconds": time.time() - t0, "versions": versions()})


if __name__ == "__main__":
    main()
