"""An always-valid paired test for the sequential gate: test by betting on the per-item differences.

Per item, d = candidate score − baseline score (oriented so that d < 0 is worse), with scores in [0, 1],
so d is in [−1, 1] and x = (d + 1) / 2 in [0, 1]. Two one-sided nulls about the mean Δ = E[d] of the
items' distribution, each tested by a nonnegative supermartingale (a bettor's wealth), so that by
Ville's inequality the wealth ever reaches 1/level with probability at most `level` under its null,
however often it is looked at and whenever one stops (Waudby-Smith & Ramdas, "Estimating means of bounded
random variables by betting", JRSS-B 86(1), 2024, sections 3-4; the bets are their predictable plug-in
bets, eq. (26)-(27), truncated at half the bound):

* "regression": H0 Δ ≥ 0; wealth Π (1 − λ_i (x_i − 1/2)), λ_i in [0, 1); the gate calls a regression once
  this wealth reaches 1/alpha and the observed drop exceeds the tolerance (the fixed gate's rule), so
  with no true drop it raises a false alarm with probability at most alpha;
* "no regression beyond the margin": H0 Δ ≤ −tol; wealth Π (1 + λ_i (x_i − m)), m = (1 − tol) / 2,
  λ_i in [0, 1/(2m)); it passes once this wealth reaches 1/beta, so a true drop of tol or more passes
  with probability at most beta.

The items must come in an order that does not depend on their outcomes (the gate draws a seeded random
order); the guarantee is about the distribution the items are drawn from, like the fixed gate's tests.
"""
from __future__ import annotations

import math

import numpy as np


def _plugin_bets(x: np.ndarray, level: float, cap: float) -> np.ndarray:
    """Predictable plug-in bets: λ_t from x_1..x_{t-1} only (WSR 2024, eq. 26-27), truncated at `cap`."""
    n = len(x)
    t = np.arange(1, n + 1)
    mu_after = (0.5 + np.cumsum(x)) / (t + 1)
    sq = np.concatenate(([0.0], np.cumsum((x - mu_after) ** 2)[:-1]))
    var = (0.25 + sq) / t                        # the running variance before item t, with a prior of 1/4
    lam = np.sqrt(2 * math.log(1 / level) / (var * t * np.log1p(t)))
    return np.minimum(lam, cap)


def wealth(d: np.ndarray, level: float, null: str, tol: float = 0.0) -> np.ndarray:
    """The bettor's wealth after each item against H0 `null` ("no_drop": Δ ≥ 0, "drop": Δ ≤ −tol)."""
    x = (np.asarray(d, dtype=float) + 1) / 2
    if null == "no_drop":
        m, sign = 0.5, -1.0
        cap = 0.5 / (1 - m)
    elif null == "drop":
        m, sign = (1 - tol) / 2, 1.0
        cap = 0.5 / m
    else:
        raise ValueError(f"null must be 'no_drop' or 'drop', got {null!r}")
    lam = _plugin_bets(x, level, cap)
    return np.cumprod(1 + sign * lam * (x - m))


def decide(d, tol: float, alpha: float, beta: float, looks: list[int] | None = None) -> dict:
    """The sequential gate on the differences `d` in evaluation order, looked at after each count in
    `looks` (default: every item). Returns {verdict: regression | pass | undecided, n_used, mean, ...}."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return {"verdict": "undecided", "n_used": 0, "n_available": 0, "mean": None}
    w_reg = wealth(d, alpha, "no_drop")
    w_ok = wealth(d, beta, "drop", tol)
    means = np.cumsum(d) / np.arange(1, n + 1)
    for k in sorted(set(looks or range(1, n + 1))):
        if not 1 <= k <= n:
            continue
        i = k - 1
        if w_reg[i] >= 1 / alpha and -means[i] > tol + 1e-12:
            return {"verdict": "regression", "n_used": k, "n_available": n, "mean": float(means[i]),
                    "wealth": float(w_reg[i])}
        if w_ok[i] >= 1 / beta:
            return {"verdict": "pass", "n_used": k, "n_available": n, "mean": float(means[i]),
                    "wealth": float(w_ok[i])}
    return {"verdict": "undecided", "n_used": n, "n_available": n, "mean": float(means[-1]),
            "wealth": float(max(w_reg[-1], w_ok[-1]))}
