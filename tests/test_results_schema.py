"""The results.json seams: one declared schema, one builder, one reader; the gate reads a metric's direction."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medeval import metrics as M
from medeval import stats as S
from medeval.metrics.base import Metric
from medeval.reporting import gate as G
from medeval.results import ResultsError, RunResults, TaskResults, read_results, run_results, task_results, \
    write_results
from results_factory import TaskSpec, mask_with_accuracy, medqa_golds, preds_from_mask, write_run

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def test_every_declared_field_is_documented():
    """A results field is one declaration in medeval/results/schema.py plus its line in docs/results.md."""
    text = DOCS.read_text(encoding="utf-8")
    missing = [f"{model.__name__}.{name}" for model in (RunResults, TaskResults) for name in model.model_fields
               if f'"{name}"' not in text]
    assert not missing, f"declared in medeval/results/schema.py but not in docs/results.md: {missing}"


def _task(**more):
    golds = medqa_golds(4)
    return task_results(task="medqa", display_name="MedQA", version=1, task_hash="t", prompt_hash="p",
                        template="medqa.jinja", data_hash="d", item_ids_hash="i",
                        dataset={"hub": "h", "config": None, "split": "test", "source": "local"}, n=4, n_total=4,
                        answer_type="choice", primary_metric="accuracy", metric_options={"accuracy": {}},
                        modes=["greedy"], metrics={"greedy": {"accuracy": S.bootstrap_ci("accuracy", golds, golds)}},
                        samples_file="samples_medqa.jsonl", **more)


def _run(tasks, **more):
    return run_results(command=["medeval", "run"], model={"id": "org/m", "backend": "hf"}, decoding={}, seed=1,
                       cache={"hits": 0, "misses": 4, "dir": None}, timings={"total_s": 1.0}, tasks=tasks,
                       groups={}, **more)


def test_builder_writes_declared_fields_in_schema_order_and_refuses_others(tmp_path):
    task = _task(skipped={})
    assert list(task)[:3] == ["task", "display_name", "version"] and "invalid" not in task   # unset: not written
    results = _run({"medqa": {**task, "timings": {"score_s": 0.1}}})
    assert list(results)[:5] == ["schema_version", "medeval_version", "created", "git_revision", "command"]
    assert "usage" not in results and "shard" not in results
    write_results(tmp_path, results)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    with pytest.raises(TypeError, match=r"task medqa: field\(s\) scores_by_moon .*medeval/results/schema.py"):
        _task(scores_by_moon=1)
    with pytest.raises(TypeError, match=r"results.json: field\(s\) notes "):
        _run({"medqa": task}, notes="x")


def test_reader_checks_types_and_normalises_metric_options(tmp_path):
    golds = medqa_golds(20)
    labels = list("ABCD")
    spec = TaskSpec(golds, golds, primary_metric="macro_f1", metrics=("accuracy", "macro_f1"),
                    metric_options={"labels": labels})   # one options dict for all metrics
    run = read_results(write_run(tmp_path / "a", "m", {"medqa": spec}))
    assert run.tasks["medqa"]["metric_options"] == {"accuracy": {"labels": labels}, "macro_f1": {"labels": labels}}
    data = json.loads((tmp_path / "a" / "results.json").read_text())
    data["tasks"]["medqa"]["n"] = "twenty"
    (tmp_path / "a" / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError) as e:
        read_results(tmp_path / "a")
    msg = str(e.value)
    assert "results.json: field 'tasks.medqa.n'" in msg and "'twenty'" in msg and "\n" not in msg


def _lower_is_better(monkeypatch):
    """A metric where lower is better (an error rate), registered for this test only."""
    item = lambda p, g, **_: float(p is None or p != g)
    m = Metric("error_rate", lambda ps, gs, **_: float(np.mean([item(p, g) for p, g in zip(ps, gs)])),
               item=item, higher_is_better=False)
    monkeypatch.setitem(M.REGISTRY, "error_rate", m)


def test_gate_reads_the_direction_of_the_metric(monkeypatch, tmp_path):
    _lower_is_better(monkeypatch)
    golds = medqa_golds(300)
    base_mask = mask_with_accuracy(300, 0.7, seed=1)
    worse_mask = base_mask.copy()
    worse_mask[np.flatnonzero(base_mask)[:45]] = False          # 45 more errors: the error rate rises 15 points
    spec = dict(primary_metric="error_rate", metrics=("error_rate",))
    base = write_run(tmp_path / "b", "m", {"medqa": TaskSpec(golds, preds_from_mask(golds, base_mask), **spec)})
    worse = write_run(tmp_path / "c", "m", {"medqa": TaskSpec(golds, preds_from_mask(golds, worse_mask), **spec)})
    report = G.run_gate(base, worse)
    r = report.results[0]
    assert r.stats["delta"] == pytest.approx(0.15) and r.stats["discordant_worse"] == 45
    assert report.exit_code == G.REGRESSION and r.verdict == "fail" and r.reason.startswith("rise 15.00 pp")
    better = G.run_gate(worse, base)                               # the error rate falls: no regression
    assert better.exit_code == G.PASS and better.results[0].reason == "no rise"
    p = S.paired_test("error_rate", preds_from_mask(golds, worse_mask), preds_from_mask(golds, base_mask), golds)
    assert p["discordant_worse"] == 0 and p["discordant_better"] == 45 and p["p_value"] == 1.0
