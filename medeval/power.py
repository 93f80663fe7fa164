"""What a paired regression test could have seen: power, minimum detectable drop, items needed.

The gate (medeval.reporting.gate) tests a candidate against a baseline on the same items with
medeval.stats.paired_test. A pass says "no significant drop", which is only worth something when a
drop of the size the policy cares about would have been significant. This module answers, for the
test the gate ran, at its alpha and sidedness and at a target power (0.8):

* **minimum detectable drop (MDD)**: the smallest true drop the test rejects with that power at the
  run's n;
* **items needed**: the smallest n at which a drop of a given size (the policy's tolerance) is
  rejected with that power.

"Drop" means "worse": a rise for a metric where lower is better. Both are computed for the test the
gate actually ran:

* **McNemar's exact test** (0/1 item scores): the exact unconditional power of the conditional
  binomial test. Alternative model: the candidate keeps the pair's symmetric churn (items flipping
  either way at the rate p = min(b, c) / n observed) and adds a drop d of extra flips to wrong, so
  P(right -> wrong) = p + d, P(wrong -> right) = p, discordance psi = 2p + d. The number of
  discordant items M ~ Binomial(n, psi); given M = m, the worse flips B ~ Binomial(m, (p + d) / psi);
  the test rejects when binom.sf(B - 1, m, 1/2) < alpha (one-sided; alpha / 2 two-sided, the worse
  tail). Power = sum over m of P(M = m) P(B >= k_m). The normal-approximation closed form with a
  fixed discordance (Connor 1987, Biometrics 43:207-211: n = (z_a sqrt(psi) + z_b sqrt(psi - d^2))^2
  / d^2) only seeds the search for items needed: holding psi fixed understates the MDD when the extra
  errors add discordance, and the normal approximation fails for a few discordant items.
* **paired bootstrap** (other metrics): a normal test of the paired difference, with its per-item
  standard deviation sigma = se * sqrt(n) from the bootstrap's standard error se of the delta, through
  statsmodels' NormalIndPower (ratio=0: a one-sample test).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

TARGET_POWER = 0.8
MAX_ITEMS = 100_000_000   # items needed above this are reported as "more than"


def _tail_alpha(alpha: float, sided: str) -> float:
    """The level of the worse tail: alpha one-sided, alpha / 2 two-sided."""
    return alpha if sided == "one" else alpha / 2


def mcnemar_power(drop: float, n: int, churn: float, alpha: float, sided: str = "one") -> float:
    """Exact power of McNemar's exact test (binomial test on the discordant pairs, the gate's
    `p < alpha`) against a true drop `drop` on n items, with symmetric churn rate `churn` (= p in the
    module docstring: the rate at which items flip either way besides the drop)."""
    drop, churn = max(float(drop), 0.0), max(float(churn), 0.0)
    psi = min(2 * churn + drop, 1.0)
    if n < 1 or psi <= 0:
        return 0.0
    p_worse = min((churn + drop) / psi, 1.0)
    a = _tail_alpha(alpha, sided)
    lo = int(stats.binom.ppf(1e-12, n, psi))
    hi = int(stats.binom.isf(1e-12, n, psi)) if psi < 1 else n
    m = np.arange(max(lo, 1), max(hi, 1) + 1)
    x = stats.binom.isf(a, m, 0.5)                    # smallest x with P(B > x | H0) <= a
    k = x + 1 + (stats.binom.sf(x, m, 0.5) >= a)      # reject iff B >= k (p = sf(k - 1) < a, strictly)
    return float(np.sum(stats.binom.pmf(m, n, psi) * stats.binom.sf(k - 1, m, p_worse)))


def mcnemar_mdd(n: int, churn: float, alpha: float, sided: str = "one", power: float = TARGET_POWER) -> float | None:
    """Smallest drop McNemar's exact test rejects with `power` on n items; None when no drop can be
    (too few items: one-sided at 0.05 needs at least 5 discordant items, all worse)."""
    f = lambda d: mcnemar_power(d, n, churn, alpha, sided) - power
    top = 1.0 - 2 * churn if churn < 0.5 else 0.0
    if top <= 0 or f(top) < 0:
        return None
    if f(1e-9) >= 0:
        return 0.0
    return float(optimize.brentq(f, 1e-9, top, xtol=1e-6))


def _connor_items(drop: float, psi: float, alpha: float, power: float) -> float:
    """Connor (1987) normal-approximation sample size for McNemar's test with discordance psi."""
    za, zb = stats.norm.isf(alpha), stats.norm.ppf(power)
    return (za * math.sqrt(psi) + zb * math.sqrt(max(psi - drop ** 2, 0.0))) ** 2 / drop ** 2


def mcnemar_items_needed(drop: float, churn: float, alpha: float, sided: str = "one",
                         power: float = TARGET_POWER) -> int | None:
    """Smallest n (found by bisection to 0.1%; the exact test's power is nearly, not strictly, monotone
    in n) at which McNemar's exact test rejects a true drop `drop` with `power`; None when more than
    MAX_ITEMS would be needed or drop is 0."""
    if drop <= 0 or 2 * churn + drop > 1:
        return None
    ok = lambda n: mcnemar_power(drop, n, churn, alpha, sided) >= power
    guess = max(int(_connor_items(drop, 2 * churn + drop, _tail_alpha(alpha, sided), power)), 2)
    lo, hi = 1, guess
    while not ok(hi):
        lo, hi = hi, hi + hi // 4 + 1
        if hi > MAX_ITEMS:
            return None
    while hi - lo > max(1, hi // 1000):
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def _normal(sided: str) -> tuple:
    from statsmodels.stats.power import NormalIndPower   # imported here: statsmodels is slow to import

    return NormalIndPower(), ("larger" if sided == "one" else "two-sided")


def normal_mdd(n: int, sd: float, alpha: float, sided: str = "one", power: float = TARGET_POWER) -> float:
    """Smallest drop a normal test of the paired difference (per-item sd) rejects with `power` on n items."""
    test, alt = _normal(sided)
    d = test.solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=0, alternative=alt)
    return float(d) * sd


def normal_items_needed(drop: float, sd: float, alpha: float, sided: str = "one",
                        power: float = TARGET_POWER) -> int | None:
    if drop <= 0 or sd <= 0:
        return None
    test, alt = _normal(sided)
    n = test.solve_power(effect_size=drop / sd, nobs1=None, alpha=alpha, power=power, ratio=0, alternative=alt)
    n = math.ceil(float(np.asarray(n).item()) - 1e-9)
    return n if n <= MAX_ITEMS else None


def analyse(s: dict, tolerance: float, alpha: float, sided: str = "one", power: float = TARGET_POWER,
            n_total: int | None = None) -> dict:
    """The power of the paired test whose result is `s` (medeval.stats.paired_test's dict):

    `mdd` (fraction; None when unknown or when no drop is detectable, see `detectable`), `items_needed`
    to detect a drop of `tolerance`, `underpowered` (mdd > tolerance, or nothing detectable), the
    basis (`churn` for McNemar, `sd` for the bootstrap) and `note` when the power cannot be estimated."""
    n = int(s.get("n") or 0)
    out = {"power": power, "alpha": alpha, "sided": sided, "n": n, "n_total": n_total, "tolerance": tolerance,
           "method": None, "mdd": None, "detectable": True, "items_needed": None, "underpowered": False,
           "note": None}
    if s.get("test") == "mcnemar_exact" and n:
        b, c = int(s.get("discordant_worse", 0)), int(s.get("discordant_better", 0))
        churn = min(b, c) / n
        out.update(method="mcnemar_exact", churn=churn, discordance=(b + c) / n)
        out["mdd"] = mcnemar_mdd(n, churn, alpha, sided, power)
        out["items_needed"] = mcnemar_items_needed(tolerance, churn, alpha, sided, power)
    elif s.get("test") == "paired_bootstrap" and n >= 2 and s.get("delta_se"):
        sd = float(s["delta_se"]) * math.sqrt(n)
        out.update(method="normal_paired_sd", sd=sd)
        out["mdd"] = normal_mdd(n, sd, alpha, sided, power)
        out["items_needed"] = normal_items_needed(tolerance, sd, alpha, sided, power)
    else:
        out["detectable"] = None
        out["note"] = ("the two runs' per-item differences have no variance (identical predictions), or fewer "
                       "than 2 items: the power cannot be estimated from this pair")
        return out
    if out["mdd"] is None:
        out["detectable"] = False
        out["note"] = f"no drop is detectable with {power:.0%} power on {n} items"
    # a tolerance of 0 (fail any significant drop) has no drop size to be powered for
    out["underpowered"] = tolerance > 0 and (out["mdd"] is None or out["mdd"] > tolerance + 1e-12)
    return out
