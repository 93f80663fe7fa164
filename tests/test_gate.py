"""`medeval gate` / `medeval compare`: paired tests, fail rule, mismatches, exit codes, reports."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from medeval import metrics as M
from medeval import stats as S
from medeval.reporting import gate as G
from medeval.reporting import gate_report as GR
from medeval.reporting.paired import metric_options
from medeval.results import normalise_metric_options
from conftest import invoke
from results_factory import DATA, TaskSpec, mask_with_accuracy, medqa_golds, preds_from_mask, write_run

N = 300


@pytest.fixture(scope="module")
def app(report_app):
    return report_app


@pytest.fixture(scope="module")
def golds():
    return medqa_golds(N)


@pytest.fixture(scope="module")
def base_mask():
    return mask_with_accuracy(N, 0.70, seed=1)


def flip(mask, n_to_wrong, n_to_right, seed=2):
    rng = np.random.default_rng(seed)
    out = mask.copy()
    out[rng.choice(np.flatnonzero(mask), n_to_wrong, replace=False)] = False
    out[rng.choice(np.flatnonzero(~mask), n_to_right, replace=False)] = True
    return out


def medqa_run(path: Path, golds, mask, model="org/model", **spec):
    return write_run(path, model, {"medqa": TaskSpec(golds, preds_from_mask(golds, mask), **spec)})


def gate(app, tmp_path, base, cand, *extra):
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    res = invoke(app, "gate", "--baseline", base, "--candidate", cand, "--report-md", md, "--report-json", js, *extra)
    report = json.loads(js.read_text()) if js.exists() else None
    return res, report, (md.read_text() if md.exists() else "")


def test_planted_regression_fails_with_exit_1(app, tmp_path, golds, base_mask):
    cand = flip(base_mask, 45, 0)  # candidate wrong on 15% more of 300 items
    base = medqa_run(tmp_path / "b", golds, base_mask)
    res, report, md = gate(app, tmp_path, base, medqa_run(tmp_path / "c", golds, cand))
    assert res.exit_code == 1, res.output
    t = report["tasks"][0]
    assert t["verdict"] == "fail" and t["stats"]["test"] == "mcnemar_exact"
    assert t["stats"]["delta"] == pytest.approx(-0.15)
    assert t["stats"]["ci_high"] < -0.05 and t["stats"]["ci_low"] <= -0.15 <= t["stats"]["ci_high"]
    assert report["status"] == "FAIL" and "| medqa | accuracy (greedy) | 300 | 70.00 | 55.00 | -15.00 |" in md
    assert "FAIL" in md.splitlines()[0]


def test_noise_passes_with_exit_0(app, tmp_path, golds, base_mask):
    cand = flip(base_mask, 4, 3)  # a few flips both ways
    res, report, _ = gate(app, tmp_path, medqa_run(tmp_path / "b", golds, base_mask),
                          medqa_run(tmp_path / "c", golds, cand))
    assert res.exit_code == 0, res.output
    t = report["tasks"][0]
    assert t["verdict"] == "pass" and t["stats"]["p_value"] > 0.3
    # paired CI: 7 discordant items out of 300 -> a narrow interval (an unpaired one would be ~15 pp wide)
    assert t["stats"]["ci_high"] - t["stats"]["ci_low"] < 0.04


def test_pvalues_match_scipy_binomtest(app, tmp_path, golds, base_mask):
    cand = flip(base_mask, 14, 5, seed=7)
    base_dir, cand_dir = medqa_run(tmp_path / "b", golds, base_mask), medqa_run(tmp_path / "c", golds, cand)
    worse = int(np.sum(base_mask & ~cand))
    better = int(np.sum(~base_mask & cand))
    assert (worse, better) == (14, 5)
    _, report, _ = gate(app, tmp_path, base_dir, cand_dir)
    s = report["tasks"][0]["stats"]
    assert (s["discordant_worse"], s["discordant_better"]) == (14, 5)
    assert s["p_value"] == pytest.approx(stats.binomtest(14, 19, 0.5, alternative="greater").pvalue, rel=1e-12)
    res = invoke(app, "compare", base_dir, cand_dir, "--format", "json")  # compare is two-sided by default
    assert res.exit_code == 0, res.output
    s2 = json.loads(res.output)[0]["tasks"][0]["stats"]
    assert s2["p_value"] == pytest.approx(stats.binomtest(14, 19, 0.5).pvalue, rel=1e-12)
    # the gate's one-sided drop of 3 pp is not significant at 0.01 but is at 0.05
    assert gate(app, tmp_path, base_dir, cand_dir, "--alpha", "0.01")[0].exit_code == 0
    assert gate(app, tmp_path, base_dir, cand_dir, "--alpha", "0.05")[0].exit_code == 1


@pytest.mark.parametrize("field,value", [("version", 2), ("prompt_hash", "sha256-prompt-v2")])
def test_version_or_prompt_mismatch_exits_2(app, tmp_path, golds, base_mask, field, value):
    base = medqa_run(tmp_path / "b", golds, base_mask)
    cand = medqa_run(tmp_path / "c", golds, base_mask, **{field: value})
    res, report, md = gate(app, tmp_path, base, cand)
    assert res.exit_code == 2, res.output
    assert report["tasks"][0]["verdict"] == "mismatch" and field in report["tasks"][0]["reason"]
    assert "CANNOT COMPARE" in md
    res, report, _ = gate(app, tmp_path, base, cand, "--allow-mismatch")
    assert res.exit_code == 0, res.output
    assert any(field in n and "--allow-mismatch" in n for n in report["tasks"][0]["notes"])


def test_different_item_sets_are_compared_on_the_items_in_common(app, tmp_path, golds, base_mask):
    base = medqa_run(tmp_path / "b", golds, base_mask)
    cand = write_run(tmp_path / "c", "org/model", {"medqa": TaskSpec(
        golds[:290], preds_from_mask(golds[:290], base_mask[:290]))})
    res, report, _ = gate(app, tmp_path, base, cand)
    assert res.exit_code == 0, res.output
    assert report["tasks"][0]["stats"]["n"] == 290
    assert any("'item_ids_hash' differs" in n and "290 items both runs share" in n for n in report["tasks"][0]["notes"])
    disjoint = write_run(tmp_path / "d", "org/model", {"medqa": TaskSpec(golds[:10], golds[:10], ids=[f"x{i}" for i in range(10)])})
    res, report, _ = gate(app, tmp_path, base, disjoint)
    assert res.exit_code == 2 and "no items in common (field 'item_ids_hash'" in report["tasks"][0]["reason"]


def test_same_items_with_other_data_or_dataset_cannot_be_compared(app, tmp_path, golds, base_mask):
    base = medqa_run(tmp_path / "b", golds, base_mask)
    other = medqa_run(tmp_path / "c", golds, base_mask)
    results = json.loads((other / "results.json").read_text())
    results["tasks"]["medqa"]["data_hash"] = "other"
    results["tasks"]["medqa"]["dataset"]["split"] = "dev"
    (other / "results.json").write_text(json.dumps(results))
    res, report, _ = gate(app, tmp_path, base, other)
    reason = report["tasks"][0]["reason"]
    assert res.exit_code == 2 and "field 'data_hash' differs" in reason and "field 'dataset.split' differs" in reason


def test_samples_file_outside_the_run_directory_is_refused(app, tmp_path, golds, base_mask):
    base = medqa_run(tmp_path / "b", golds, base_mask)
    cand = medqa_run(tmp_path / "c", golds, base_mask)
    results = json.loads((cand / "results.json").read_text())
    for evil in ("../b/samples_medqa.jsonl", str((base / "samples_medqa.jsonl").resolve())):
        results["tasks"]["medqa"]["samples_file"] = evil
        (cand / "results.json").write_text(json.dumps(results))
        res, _, _ = gate(app, tmp_path, base, cand)
        assert res.exit_code == 2 and "not a file inside the run directory" in res.output


def test_missing_task_and_changed_gold(app, tmp_path, golds, base_mask):
    preds = preds_from_mask(golds, base_mask)
    base = write_run(tmp_path / "b", "m", {"medqa": TaskSpec(golds, preds), "extra": TaskSpec(golds, preds)})
    cand = write_run(tmp_path / "c", "m", {"medqa": TaskSpec(golds, preds)})
    res, report, _ = gate(app, tmp_path, base, cand)
    assert res.exit_code == 2 and "missing from the candidate" in report["tasks"][1]["reason"]
    res, report, _ = gate(app, tmp_path, base, cand, "--allow-mismatch")
    assert res.exit_code == 0 and report["tasks"][1]["verdict"] == "missing"
    changed = ["A" if g != "A" else "B" for g in golds[:5]] + golds[5:]
    cand2 = write_run(tmp_path / "c2", "m", {"medqa": TaskSpec(changed, preds), "extra": TaskSpec(golds, preds)})
    res, report, _ = gate(app, tmp_path, base, cand2)
    assert res.exit_code == 2 and "field 'gold' differs on 5 common items" in report["tasks"][0]["reason"]


def test_bad_inputs_exit_2_with_one_line_error(app, tmp_path, golds, base_mask):
    good = medqa_run(tmp_path / "good", golds, base_mask)
    v2 = medqa_run(tmp_path / "v2", golds, base_mask)
    data = json.loads((v2 / "results.json").read_text())
    (v2 / "results.json").write_text(json.dumps({**data, "schema_version": 2}))
    lm_eval = tmp_path / "lm_eval"
    lm_eval.mkdir()
    (lm_eval / "results.json").write_text(json.dumps({"results": {"medqa": {"acc": 0.5}}, "config": {}}))
    no_samples = medqa_run(tmp_path / "ns", golds, base_mask)
    (no_samples / "samples_medqa.jsonl").unlink()
    cases = {v2: "schema_version 2 is not supported", lm_eval: "not a medeval results file",
             tmp_path / "nope": "not found", no_samples: "samples file of task 'medqa' not found"}
    for cand, message in cases.items():
        res = invoke(app, "gate", "--baseline", good, "--candidate", cand)
        assert res.exit_code == 2, (cand, res.output)
        assert message in res.output and "Traceback" not in res.output
        assert res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1
    bad_policy = tmp_path / "policy.yaml"
    bad_policy.write_text("default: {tolerence: 0.02}\n")
    res = invoke(app, "gate", "--baseline", good, "--candidate", good, "--policy", bad_policy)
    assert res.exit_code == 2 and "tolerence" in res.output


def test_policy_tolerance_override_and_skip(app, tmp_path, golds, base_mask):
    preds_b = preds_from_mask(golds, base_mask)
    preds_c = preds_from_mask(golds, flip(base_mask, 45, 0))
    base = write_run(tmp_path / "b", "m", {"medqa": TaskSpec(golds, preds_b), "other": TaskSpec(golds, preds_b)})
    cand = write_run(tmp_path / "c", "m", {"medqa": TaskSpec(golds, preds_c), "other": TaskSpec(golds, preds_c)})
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: {tolerance: 0.01}\ntasks:\n  medqa: {tolerance: 0.20}\n  other: {skip: true}\n")
    res, report, _ = gate(app, tmp_path, base, cand, "--policy", policy)
    assert res.exit_code == 0, res.output
    assert [t["verdict"] for t in report["tasks"]] == ["pass", "skipped"]
    assert report["tasks"][0]["tolerance"] == 0.20
    policy.write_text("default: {tolerance: 0.01}\ntasks:\n  medqa: {tolerance: 0.10}\n")
    assert gate(app, tmp_path, base, cand, "--policy", policy)[0].exit_code == 1


def pubmedqa_golds(n):
    with (DATA / "pubmedqa" / "test.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["final_decision"] for _, line in zip(range(n), f)]


def test_macro_f1_paired_bootstrap(app, tmp_path):
    golds = pubmedqa_golds(200)
    labels = ["yes", "no", "maybe"]
    base_preds = [g if i % 4 else labels[(labels.index(g) + 1) % 3] for i, g in enumerate(golds)]
    cand_preds = [("yes" if g == "maybe" else p) for p, g in zip(base_preds, golds)]  # loses the minority class
    spec = dict(primary_metric="macro_f1", metrics=("macro_f1",), metric_options={"labels": labels})
    base = write_run(tmp_path / "b", "m", {"pubmedqa": TaskSpec(golds, base_preds, **spec)})
    cand = write_run(tmp_path / "c", "m", {"pubmedqa": TaskSpec(golds, cand_preds, **spec)})
    res, report, _ = gate(app, tmp_path, base, cand, "--resamples", 100)
    s = report["tasks"][0]["stats"]
    expected = (M.compute("macro_f1", cand_preds, golds, {"labels": labels})
                - M.compute("macro_f1", base_preds, golds, {"labels": labels}))
    assert s["test"] == "paired_bootstrap" and s["delta"] == pytest.approx(expected)
    assert s["ci_low"] <= expected <= s["ci_high"] < 0
    assert res.exit_code == 1 and s["p_value"] < 0.01
    assert not report["tasks"][0]["notes"]  # recomputed values agree with results.json
    again = gate(app, tmp_path, base, cand, "--resamples", 100)[1]  # fixed seed: identical report
    assert again["tasks"] == report["tasks"]


def test_metric_options_shapes():
    labels = ["yes", "no", "maybe"]
    read = lambda opts: {"metric_options": normalise_metric_options(     # as medeval.results.read_results does
        {"metrics": {"greedy": {"macro_f1": {}}}, "primary_metric": "macro_f1", "metric_options": opts})}
    assert metric_options(read({"labels": labels}), "macro_f1") == {"labels": labels}
    assert metric_options(read({"macro_f1": {"labels": labels}}), "macro_f1") == {"labels": labels}
    assert metric_options(read({"macro_f1": {"labels": labels}}), "accuracy") == {}
    assert metric_options({}, "accuracy") == {}


def test_bootstrap_pvalue_sidedness():
    golds = pubmedqa_golds(100)
    worse = [g if i % 3 else "maybe" for i, g in enumerate(golds)]
    opts = {"labels": ["yes", "no", "maybe"]}
    down = S.paired_test("macro_f1", golds, worse, golds, opts, "one", 100, 0)
    up = S.paired_test("macro_f1", worse, golds, golds, opts, "one", 100, 0)
    two = S.paired_test("macro_f1", worse, golds, golds, opts, "two", 100, 0)
    same = S.paired_test("macro_f1", worse, worse, golds, opts, "one", 100, 0)
    assert down["p_value"] < 0.01 and up["p_value"] > 0.99 and two["p_value"] < 0.01
    assert same["delta"] == 0 and same["p_value"] == 1.0 and same["ci_low"] == same["ci_high"] == 0


def test_compare_never_fails_on_regression(app, tmp_path, golds, base_mask):
    base = medqa_run(tmp_path / "b", golds, base_mask)
    worse = medqa_run(tmp_path / "c", golds, flip(base_mask, 45, 0))
    better = medqa_run(tmp_path / "d", golds, flip(base_mask, 0, 45))
    res = invoke(app, "compare", base, worse, better, "--format", "markdown")
    assert res.exit_code == 0, res.output
    assert res.output.count("| medqa | accuracy (greedy) | 300 |") == 2
    assert "| worse |" in res.output and "| better |" in res.output and "FAIL" not in res.output
    res = invoke(app, "compare", base, worse)  # rich table
    assert res.exit_code == 0 and "medqa" in res.output and "-15.00" in res.output


def test_fast_f1_bootstrap_matches_recomputing_every_resample(monkeypatch):
    """The sufficient-statistics path must give exactly what calling metrics.compute per resample gives."""
    import dataclasses

    golds = pubmedqa_golds(120)
    cand = [g if i % 3 else ("maybe" if i % 2 else None) for i, g in enumerate(golds)]
    opts = {"labels": ["yes", "no", "maybe"]}
    fast = S.paired_test("macro_f1", golds, cand, golds, opts, "two", 100, 3)
    m = M.get("macro_f1")
    if m.stats is None:
        pytest.skip("macro_f1 has no sufficient statistics in this version of medeval.metrics")
    monkeypatch.setitem(M.REGISTRY, "macro_f1", dataclasses.replace(m, stats=None, from_stats=None))
    slow = S.paired_test("macro_f1", golds, cand, golds, opts, "two", 100, 3)
    assert fast.pop("test") == slow.pop("test") == "paired_bootstrap"
    assert fast == pytest.approx(slow, rel=1e-12)


def test_unknown_metric_is_a_clear_error(app, tmp_path, golds, base_mask):
    run = medqa_run(tmp_path / "b", golds, base_mask, primary_metric="no_such_metric")
    res = invoke(app, "gate", "--baseline", run, "--candidate", run)
    assert res.exit_code == 2 and "metric 'no_such_metric' is not known" in res.output


def test_gate_refuses_to_compare_a_model_with_itself(app, tmp_path, golds, base_mask):
    """Two runs of one backend identity (same model, weights, dtype, template): exit 2, unless asked."""
    spec = {"medqa": TaskSpec(golds, preds_from_mask(golds, base_mask))}
    base = write_run(tmp_path / "b", "org/new-ckpt", spec, identity_hash="a" * 64)
    same = write_run(tmp_path / "c", "org/new-ckpt", spec, identity_hash="a" * 64)
    other = write_run(tmp_path / "d", "org/new-ckpt", spec, identity_hash="b" * 64)
    res = invoke(app, "gate", "--baseline", base, "--candidate", same)
    same_hash = json.loads((base / "results.json").read_text())["model"]["identity_hash"]
    assert res.exit_code == 2 and f"same model (identity {same_hash[:12]})" in res.output
    assert "--allow-same-model" in res.output
    assert invoke(app, "gate", "--baseline", base, "--candidate", same, "--allow-same-model").exit_code == 0
    assert invoke(app, "gate", "--baseline", base, "--candidate", other).exit_code == 0
    report = G.run_gate(base, same)
    assert GR.to_json(report)["same_model"] is True and "same model" in GR.to_markdown(report)
    assert G.run_gate(base, same, kind="compare").exit_code == 0          # compare only notes it


class _Answers:
    """FAKE backend (no model): answers every prompt with "The answer is A"."""
    name, model_id = "fake", "fake-A"

    def render(self, r):
        return "\n".join(c for _, c in r.messages)

    def describe(self):
        return {"backend": "fake", "id": "fake-A"}

    def identity(self):
        from medeval.backends.identity import Identity

        return Identity(backend="fake", model="fake-A")

    def generate(self, reqs):
        from medeval.backends.base import Output

        for i, r in enumerate(reqs):
            yield i, Output(["The answer is A"] * r.sampling.n, ["stop"] * r.sampling.n)


def test_scored_predictions_gate_against_a_run_of_the_same_items(app, tmp_path, data_dir):
    """`medeval score` and `medeval run` hash the same items the same way, so the gate compares them."""
    from medeval.runs.runner import RunConfig, run
    from medeval.runs.score_external import score_file

    ran = run(RunConfig(tasks=["medqa"], limit=12, data_dir=str(data_dir), output_dir=str(tmp_path / "run"),
                        no_cache=True), backend=_Answers(), progress=False)["tasks"]["medqa"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples_medqa.jsonl").read_text().splitlines()]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "output": f"Answer: {r['gold']}"}) + "\n" for r in rows))
    scored = score_file("medqa", preds, tmp_path / "scored", "external", data_dir)["tasks"]["medqa"]
    for key in ("item_ids_hash", "data_hash", "prompt_hash", "version"):
        assert scored[key] == ran[key], key
    res, report, _ = gate(app, tmp_path, tmp_path / "scored", tmp_path / "run")
    assert res.exit_code == 1 and report["tasks"][0]["stats"]["n"] == 12, res.output   # all-A is a regression
    preds.write_text("".join(json.dumps({"id": r["id"], "output": "A"}) + "\n" for r in rows[:8]))
    score_file("medqa", preds, tmp_path / "scored8", "external", data_dir)
    res, report, _ = gate(app, tmp_path, tmp_path / "scored8", tmp_path / "run")
    assert res.exit_code == 0 and report["tasks"][0]["stats"]["n"] == 8, res.output


def test_a_policy_alias_bomb_is_refused(app, tmp_path, golds, base_mask):
    base = medqa_run(tmp_path / "b", golds, base_mask)
    bomb = "default: {tolerance: 0.01}\nx0: &x0 [a, a, a, a, a, a, a, a, a]\n"
    bomb += "".join(f"x{k}: &x{k} [{', '.join([f'*x{k - 1}'] * 9)}]\n" for k in range(1, 9))
    (tmp_path / "policy.yaml").write_text(bomb)
    res, _, _ = gate(app, tmp_path, base, base, "--policy", tmp_path / "policy.yaml")
    assert res.exit_code == 2 and "YAML aliases" in res.output
