"""The sequential gate: the always-valid test (medeval.sequential) on simulated paired outcomes, and
`medeval run --gate-against B --sequential` end to end on the real embedded model.

The end-to-end baselines are the real run with SYNTHETIC edits: its identity hash changed (no change), and
additionally every prediction set to the gold answer (a planted 100% baseline, so the real model regresses).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medeval.sequential import decide, wealth


def _null(rng, n, churn=0.2):
    u = rng.random(n)
    return np.where(u < churn / 2, 1.0, np.where(u < churn, -1.0, 0.0))


def test_no_true_change_raises_at_most_alpha_false_alarms_looking_after_every_item():
    rng = np.random.default_rng(7)
    alarms = sum(decide(_null(rng, 400), 0.0, 0.05, 0.05)["verdict"] == "regression" for _ in range(400))
    assert alarms / 400 <= 0.05      # Ville: at most alpha over every look; a fixed test looked at 400 times is not
    naive = 0
    for _ in range(400):
        d = _null(rng, 400)
        z = np.cumsum(d) / np.sqrt(np.cumsum(d != 0) + 1e-9)
        naive += bool((z < -1.645).any())
    assert naive / 400 > 0.15         # the same looks with a fixed-n z-test: far more false alarms


def test_a_clear_regression_stops_early_and_a_null_wealth_is_a_supermartingale_in_mean():
    rng = np.random.default_rng(3)
    d = np.where(rng.random(1273) < 0.03, 1.0, np.where(rng.random(1273) < 0.13, -1.0, 0.0))   # about -10 points
    res = decide(d, 0.01, 0.05, 0.05, looks=list(range(50, 1274, 50)))
    assert res["verdict"] == "regression" and res["n_used"] <= 400 and res["mean"] < -0.01
    ends = [wealth(_null(rng, 200), 0.05, "no_drop")[-1] for _ in range(300)]
    assert np.mean(ends) < 1.3        # E[wealth] <= 1 under the null (up to sampling error)
    with pytest.raises(ValueError):
        wealth(d, 0.05, "sideways")


# ------------------------------------------------------------------ the real model, end to end
@pytest.fixture(scope="module")
def real_run(hf_backend, data_dir, tmp_path_factory):
    """The real embedded model on 16 MedQA items, 8 new tokens each (the cache then holds every sample)."""
    import medeval.runs.runner
    from medeval.runs.config import RunConfig
    from medeval.runs.runner import run

    out = tmp_path_factory.mktemp("seq")
    cfg = RunConfig(tasks=["medqa"], limit=16, max_tokens=8, data_dir=str(data_dir), output_dir=str(out / "full"),
                    cache_dir=str(out / "cache"))
    run(cfg, backend=hf_backend, progress=False)
    assert medeval.runs.runner.make_backend   # the CLI's backend is replaced by this shared one below
    return out


def _baseline(real: Path, dest: Path, all_right: bool) -> Path:
    """SYNTHETIC baseline: the real run with another identity hash, and optionally every answer right (its
    outputs rewritten to state the gold answer)."""
    shutil.copytree(real / "full", dest)
    res = json.loads((dest / "results.json").read_text())
    ident = res["model"]["identity"]
    ident["weights"] = "SYNTHETIC baseline"                 # another checkpoint, as far as the gate can tell
    text = json.dumps(ident, sort_keys=True, default=str, separators=(",", ":"))
    res["model"]["identity_hash"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if all_right:
        rows = [json.loads(x) for x in (dest / "samples_medqa.jsonl").read_text().splitlines()]
        for r in rows:
            n = len(r["greedy"]["outputs"])    # the outputs too: the gates re-derive pred from them
            r["greedy"].update(outputs=[f"The answer is {r['gold']}."] * n, extracted=[r["gold"]] * n,
                               pred=r["gold"], correct=True)
        (dest / "samples_medqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        res["tasks"]["medqa"]["metrics"]["greedy"]["accuracy"].update(value=1.0, ci_low=1.0, ci_high=1.0)
    (dest / "results.json").write_text(json.dumps(res))
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("planted", [True, False])
def test_run_sequential_stops_early_on_a_planted_regression_and_not_without_one(
        real_run, hf_backend, data_dir, tmp_path, monkeypatch, planted):
    from typer.testing import CliRunner

    import medeval.runs.runner
    from medeval.cli import app

    monkeypatch.setattr(medeval.runs.runner, "make_backend", lambda cfg: hf_backend)
    monkeypatch.setattr("medeval.runs.seqgate.make_backend", lambda cfg: hf_backend)
    base = _baseline(real_run, tmp_path / "base", all_right=planted)
    out = tmp_path / "cand"
    res = CliRunner().invoke(app, ["run", "--tasks", "medqa", "--limit", "16", "--max-tokens", "8", "--data-dir", str(data_dir),
                                   "-o", str(out), "--cache-dir", str(real_run / "cache"), "--quiet",
                                   "--gate-against", str(base), "--sequential", "--chunk", "4",
                                   "--history", "--store", str(tmp_path / "h.sqlite")])
    report = json.loads((out / "sequential_gate.json").read_text())
    v = report["tasks"]["medqa"]
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"]["medqa"]["n"] == v["n_used"]            # a normal run of the items used
    assert results["cache"]["misses"] == 0                           # every sample came from the cache
    if planted:
        acc = json.loads((real_run / "full" / "results.json").read_text())["tasks"]["medqa"]["metrics"]["greedy"]
        assert acc["accuracy"]["value"] < 0.6                        # the real model is far below the planted 100%
        assert res.exit_code == 1, res.output
        assert v["verdict"] == "regression" and v["n_used"] < 16 and v["items_saved"] == 16 - v["n_used"], v
        assert "medqa: regression after" in res.output
    else:
        assert res.exit_code == 0, res.output
        assert v["verdict"] in ("pass", "undecided") and v["mean"] == 0.0
    from medeval.history.store import Store          # --history: the run of the items used and its verdict

    st = Store(str(tmp_path / "h.sqlite"))
    assert [g["status"] for g in st.gates()] == [report["status"]] == ["FAIL" if planted else "PASS"]
    assert len([r for r in st.items("medqa") if r["mode"] == "greedy"]) == v["n_used"]
