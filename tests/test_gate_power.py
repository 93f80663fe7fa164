"""The gate's power analysis (medeval/power.py, issue 28): minimum detectable drop, items needed,
'underpowered' verdicts and the policy's require_power. Real MedQA / PubMedQA gold answers with planted
predictions (tests/results_factory.py); no model."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from medeval import power as PW
from medeval import stats as S
from medeval.reporting import gate as G
from medeval.reporting import gate_report as GR
from medeval.reporting.view import compare_data
from conftest import invoke
from results_factory import DATA, TaskSpec, medqa_golds, preds_from_mask, write_run


@pytest.fixture(scope="module")
def app(report_app):
    return report_app


def caught(base_ok, cand_ok, alpha=0.05, sided="one"):
    """The gate's McNemar exact test (binomtest on the discordant pairs), vectorised over rows."""
    b = np.sum(base_ok & ~cand_ok, axis=-1)
    c = np.sum(~base_ok & cand_ok, axis=-1)
    return stats.binom.sf(b - 1, b + c, 0.5) < (alpha if sided == "one" else alpha / 2)


@pytest.mark.parametrize("n,churn,drop,sided", [(400, 0.21, 0.06, "one"), (300, 0.0, 0.02, "one"),
                                                  (1273, 0.03, 0.015, "two")])
def test_exact_mcnemar_power_matches_a_simulation_of_the_test(n, churn, drop, sided):
    rng = np.random.default_rng(0)
    u = rng.random((6000, n))                       # items flip to wrong with churn + drop, to right with churn
    base_ok = np.ones((6000, n), dtype=bool)        # only the flips matter to the test
    cand_ok = ~(u < churn + drop)
    base_ok[(u >= churn + drop) & (u < 2 * churn + drop)] = False
    simulated = caught(base_ok, cand_ok, 0.05, sided).mean()
    assert PW.mcnemar_power(drop, n, churn, 0.05, sided) == pytest.approx(simulated, abs=0.02)


def test_mdd_and_items_needed_invert_the_power():
    mdd = PW.mcnemar_mdd(400, 0.21, 0.05)
    assert PW.mcnemar_power(mdd, 400, 0.21, 0.05) == pytest.approx(0.8, abs=1e-4)
    need = PW.mcnemar_items_needed(0.01, 0.21, 0.05)
    assert PW.mcnemar_power(0.01, need, 0.21, 0.05) >= 0.8 > PW.mcnemar_power(0.01, int(need * 0.98), 0.21, 0.05)
    # many discordant items: Connor's (1987) normal approximation agrees with the exact power
    assert need == pytest.approx(PW._connor_items(0.01, 0.43, 0.05, 0.8), rel=0.02)
    # no churn: a drop is caught once enough items flip, all to wrong (5 at one-sided 0.05: 0.5^5 < 0.05)
    assert PW.mcnemar_mdd(400, 0.0, 0.05) == pytest.approx(0.0167, abs=0.001)
    assert PW.mcnemar_mdd(4, 0.0, 0.05) is None      # 4 items can never reach p < 0.05
    # the bootstrap's normal test: (z_alpha + z_power) * sd / sqrt(n), through statsmodels
    z = stats.norm.isf(0.05) + stats.norm.ppf(0.8)
    assert PW.normal_mdd(500, 0.4, 0.05) == pytest.approx(z * 0.4 / np.sqrt(500), rel=1e-4)   # solver tolerance
    assert PW.normal_items_needed(0.01, 0.4, 0.05) == pytest.approx((z * 0.4 / 0.01) ** 2, abs=1)


def independent_pair(tmp_path, n=400, drop=0.03, seed=0, n_total=1273):
    """A baseline right on a fixed 70% of n MedQA items; a candidate wrong on a random (30% + drop) of
    them, a different set: the issue's loopback models."""
    golds = medqa_golds(n)
    rng = np.random.default_rng(seed)
    base_ok = rng.permutation(n) >= round(0.3 * n)
    cand_ok = rng.permutation(n) >= round((0.3 + drop) * n)
    spec = lambda ok: {"medqa": TaskSpec(golds, preds_from_mask(golds, ok), n_total=n_total)}
    return (write_run(tmp_path / "b", "org/base", spec(base_ok)), write_run(tmp_path / "c", "org/cand", spec(cand_ok)),
            base_ok, cand_ok)


def gate(app, tmp_path, base, cand, *extra):
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    res = invoke(app, "gate", "--baseline", base, "--candidate", cand, "--report-md", md, "--report-json", js, *extra)
    return res, (json.loads(js.read_text()) if js.exists() else None), (md.read_text() if md.exists() else "")


def test_a_400_item_gate_against_a_3_point_worse_candidate_is_underpowered(app, tmp_path):
    base, cand, base_ok, cand_ok = independent_pair(tmp_path)
    res, report, md = gate(app, tmp_path, base, cand)
    assert res.exit_code == 0, res.output
    t = report["tasks"][0]
    assert t["verdict"] in ("pass", "warn") and t["stats"]["delta"] == pytest.approx(-0.03)
    p = t["power"]
    churn = min(int((base_ok & ~cand_ok).sum()), int((~base_ok & cand_ok).sum())) / 400
    assert p["method"] == "mcnemar_exact" and p["churn"] == pytest.approx(churn)
    assert p["underpowered"] and 0.06 < p["mdd"] < 0.11 and p["mdd"] == PW.mcnemar_mdd(400, churn, 0.05)
    assert p["items_needed"] == PW.mcnemar_items_needed(0.01, churn, 0.05) and p["items_needed"] > 1273
    # the honest verdict word, in every rendering
    word = f"{t['verdict']} (underpowered: could only detect ≥ {100 * p['mdd']:.1f} pp)"
    assert t["display_verdict"] == word
    assert f"| {100 * p['mdd']:.2f} | {word} |" in md
    need = f"needs about {p['items_needed']:,} items, more than the data set's 1,273"
    assert need in md and need in res.output.replace("\n", " ") and word in res.output
    # the reported MDD is what the test catches 80% of the time: simulate the gate's test on fresh
    # candidates of the same kind (items drawn per run), drops on a grid of 0.5 pp
    rng = np.random.default_rng(1)
    rates = []
    for d in np.arange(0.05, 0.125, 0.005):
        b = rng.random((1500, 400)) < 0.7
        rates.append(caught(b, rng.random((1500, 400)) >= 0.3 + d).mean())
    simulated = 0.05 + 0.005 * np.argmax(np.asarray(rates) >= 0.8)
    assert p["mdd"] == pytest.approx(simulated, rel=0.2)


@pytest.mark.parametrize("rule,code,verdict", [("true", 1, "fail"), ("fail", 1, "fail"), ("warn", 0, "warn")])
def test_require_power_makes_an_underpowered_gate_not_pass(app, tmp_path, rule, code, verdict):
    base, cand, _, _ = independent_pair(tmp_path, drop=0.0)   # same quality: a plain pass without the rule
    assert gate(app, tmp_path, base, cand)[1]["tasks"][0]["verdict"] == "pass"
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"require_power: {rule}\n")
    res, report, md = gate(app, tmp_path, base, cand, "--policy", policy)
    assert res.exit_code == code, res.output
    t = report["tasks"][0]
    assert t["verdict"] == verdict and t["power"]["required"] in ("fail", "warn")
    assert t["reason"].startswith("underpowered: could only detect ≥") and "require_power" in t["reason"]
    assert ("FAIL (underpowered" if verdict == "fail" else "warn (underpowered") in md
    # a task may opt out, and a tolerance above the MDD is powered: no qualifier, a plain pass
    policy.write_text(f"require_power: {rule}\ntasks:\n  medqa: {{require_power: off}}\n")
    assert gate(app, tmp_path, base, cand, "--policy", policy)[0].exit_code == 0
    policy.write_text(f"require_power: {rule}\ndefault: {{tolerance: 0.15}}\n")
    res, report, _ = gate(app, tmp_path, base, cand, "--policy", policy)
    assert res.exit_code == 0 and report["tasks"][0]["display_verdict"] == "pass"
    assert not report["tasks"][0]["power"]["underpowered"]


def test_bad_power_settings_are_one_line_errors(app, tmp_path):
    base, cand, _, _ = independent_pair(tmp_path, n=50)
    policy = tmp_path / "policy.yaml"
    for text, message in (("require_power: maybe\n", "require_power must be true (= fail), false (= off), warn or fail"),
                          ("tasks:\n  medqa: {require_power: 2}\n", "tasks.medqa.require_power must be"),
                          ("power: 1.5\n", "power (the target power of the minimum detectable drop) must be in (0, 1)")):
        policy.write_text(text)
        res = invoke(app, "gate", "--baseline", base, "--candidate", cand, "--policy", policy)
        assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_target_power_and_two_sided_raise_the_mdd(tmp_path):
    base, cand, _, _ = independent_pair(tmp_path, n=300, drop=0.0)
    from medeval.reporting.policy import Policy

    p80 = G.run_gate(base, cand).results[0].power
    p90 = G.run_gate(base, cand, Policy(power=0.9)).results[0].power
    two = G.run_gate(base, cand, sided="two").results[0].power
    assert p80["mdd"] < p90["mdd"] and p80["mdd"] < two["mdd"]
    assert p90["mdd"] == PW.mcnemar_mdd(300, p90["churn"], 0.05, "one", 0.9)
    assert p80["items_needed"] < p90["items_needed"]


def test_bootstrap_metric_mdd_comes_from_the_paired_standard_error(app, tmp_path):
    with (DATA / "pubmedqa" / "test.jsonl").open(encoding="utf-8") as f:
        golds = [json.loads(line)["final_decision"] for _, line in zip(range(300), f)]
    labels = ["yes", "no", "maybe"]
    rng = np.random.default_rng(0)
    noisy = lambda: [labels[(labels.index(g) + 1) % 3] if rng.random() < 0.25 else g for g in golds]
    spec = dict(primary_metric="macro_f1", metrics=("macro_f1",), metric_options={"labels": labels}, n_total=500)
    base = write_run(tmp_path / "b", "m", {"pubmedqa": TaskSpec(golds, noisy(), **spec)})
    cand = write_run(tmp_path / "c", "m", {"pubmedqa": TaskSpec(golds, noisy(), **spec)})
    res, report, md = gate(app, tmp_path, base, cand, "--resamples", 300)
    t = report["tasks"][0]
    s, p = t["stats"], t["power"]
    assert s["test"] == "paired_bootstrap" and p["method"] == "normal_paired_sd"
    z = stats.norm.isf(0.05) + stats.norm.ppf(0.8)
    assert p["sd"] == pytest.approx(s["delta_se"] * np.sqrt(300)) and p["mdd"] == pytest.approx(z * s["delta_se"], rel=1e-4)
    assert p["items_needed"] == pytest.approx((z * p["sd"] / 0.01) ** 2, abs=1)
    assert "paired bootstrap as a normal test" in md
    # identical predictions: no variance, so no power estimate (and not called underpowered)
    same = S.paired_test("macro_f1", golds, golds, golds, {"labels": labels})
    assert same["delta_se"] == 0.0
    p = PW.analyse(same, 0.01, 0.05)
    assert p["mdd"] is None and p["detectable"] is None and not p["underpowered"] and "cannot be estimated" in p["note"]


def test_compare_shows_the_mdd_but_never_fails_on_power(app, tmp_path):
    base, cand, _, _ = independent_pair(tmp_path, drop=0.0)
    policy = tmp_path / "policy.yaml"
    policy.write_text("require_power: fail\n")
    res = invoke(app, "compare", base, cand, "--format", "json", "--policy", policy)
    assert res.exit_code == 0, res.output
    t = json.loads(res.output)[0]["tasks"][0]
    assert t["verdict"] == "pass" and t["display_verdict"] == "no significant difference"
    assert t["power"]["sided"] == "two" and t["power"]["underpowered"] and "required" not in t["power"]


def test_the_comparison_page_carries_the_mdd_and_the_items_needed(tmp_path):
    base, cand, _, _ = independent_pair(tmp_path)
    report = G.run_gate(base, cand)
    task = compare_data(report)["tasks"][0]
    row = GR.table_rows(report)[0]
    assert task["row"]["MDD (pp)"] == row["MDD (pp)"] == f"{100 * report.results[0].power['mdd']:.2f}"
    assert task["power"]["items_needed"] > 1273 and "needs about" in task["power_text"]


def test_a_rise_is_the_drop_of_a_lower_is_better_metric(monkeypatch, tmp_path):
    """An error rate (registered for this test only): the same pair has the same MDD, called a rise."""
    from medeval import metrics as M
    from medeval.metrics.base import Metric

    item = lambda p, g, **_: float(p != g)
    monkeypatch.setitem(M.REGISTRY, "error_rate", Metric(
        "error_rate", lambda ps, gs, **_: float(np.mean([item(p, g) for p, g in zip(ps, gs)])), item=item,
        higher_is_better=False))
    golds = medqa_golds(300)
    rng = np.random.default_rng(3)
    masks = rng.random(300) < 0.7, rng.random(300) < 0.66
    runs = [write_run(tmp_path / f"r{k}", "m", {"medqa": TaskSpec(golds, preds_from_mask(golds, m), primary_metric=metric,
                                                                    metrics=(metric,))})
            for k, (m, metric) in enumerate([(masks[0], "error_rate"), (masks[1], "error_rate"),
                                             (masks[0], "accuracy"), (masks[1], "accuracy")])]
    err, acc = G.run_gate(runs[0], runs[1]).results[0], G.run_gate(runs[2], runs[3]).results[0]
    assert err.stats["delta"] == pytest.approx(-acc.stats["delta"])
    assert err.power["direction"] == "rise" and err.power["mdd"] == acc.power["mdd"] > 0.05
    assert "detect a rise of ≥" in G.power_text(err.power) and "detect a drop of ≥" in G.power_text(acc.power)
