"""II-Medical card tasks and protocol, clustered bootstrap, BioMed-R1 strata and adversarial traces."""
import json
import subprocess
import sys

import numpy as np
import pytest

from medeval import stats
from medeval.errors import MedevalError
from medeval.tasks.prompts import Renderer
from medeval.runs.runner import RunConfig, apply_group_defaults, build_requests, prepare, run
from medeval.tasks.spec import Registry

REG = Registry()
CARD_ORDER = ["medmcqa", "medqa", "pubmedqa_pqal1000", "mmlu_pro_medical", "gpqa_medical", "lancet",
              "medbullets_op4", "medbullets_op5", "medxpertqa", "nejm"]


def test_tasks_and_group_in_the_cards_column_order():
    assert REG.groups["ii_medical_card"].tasks == CARD_ORDER
    assert REG.groups["ii_medical_offline"].tasks == [t for t in CARD_ORDER if t not in ("lancet", "nejm")]
    d = REG.groups["ii_medical_card"].defaults
    assert (d.prompt_variant, d.temperature, d.top_p, d.self_consistency) == ("ii_medical", 0.6, 0.9, 4)
    assert REG.tasks["gpqa_medical"].bootstrap_cluster == "question_group"
    assert REG.tasks["lancet"].dataset.access == REG.tasks["nejm"].dataset.access == "user-supplied"


def test_group_defaults_fill_only_unset_options():
    cfg = apply_group_defaults(RunConfig(tasks=["ii_medical_card"]), REG)
    assert (cfg.temperature, cfg.top_p, cfg.self_consistency, cfg.prompt_variant) == (0.6, 0.9, 4, "ii_medical")
    assert cfg.defaults_from["temperature"] == "ii_medical_card"
    mine = apply_group_defaults(RunConfig(tasks=["ii_medical_card"], self_consistency=1, temperature=1.0), REG)
    assert (mine.self_consistency, mine.temperature, mine.top_p) == (1, 1.0, 0.9)
    assert "self_consistency" not in mine.defaults_from
    plain = apply_group_defaults(RunConfig(tasks=["medqa"]), REG)   # medeval's own defaults (Neeto's SC)
    assert (plain.self_consistency, plain.temperature, plain.top_p, plain.prompt_variant) == (0, 0.7, 0.9, None)


def test_card_prompt_options_3_to_10_and_no_double_options(data_dir):
    cfg = RunConfig(tasks=[], data_dir=str(data_dir), prompt_variant="ii_medical")
    p = prepare(REG.tasks["mmlu_pro_medical"], cfg)
    assert {len(it.options) for it in p.items} >= {8, 10} and p.task.generation.max_tokens == 8192
    user = p.items[0].messages[-1][1]
    assert user.endswith("Please reason step-by-step, and put your final answer within \\boxed{}.")
    assert "\nJ. " in user or len(p.items[0].options) < 10
    # every option count in the set (3..10) renders its letters
    rows = [json.loads(line) for line in (data_dir / "mmlu_pro_medical" / "test.jsonl").open()]
    r = Renderer(REG.tasks["mmlu_pro_medical"], "ii_medical")
    for n in range(3, 11):
        row = next(x for x in rows if len(x["options"]) == n)
        text = r.messages(row)[-1][1]
        assert all(f"\n{chr(65 + i)}. " in text for i in range(n)) and f"\n{chr(65 + n)}. " not in text
    # MedXpertQA from the hub lists its options inside the question: they are not printed twice
    row = json.loads((data_dir / "medxpertqa" / "test.jsonl").open().readline())
    hub = {**row, "question": row["question"] + "\nAnswer Choices: (A) x (B) y"}
    mx = Renderer(REG.tasks["medxpertqa"], "ii_medical")
    assert "\nA. " in mx.messages(row)[-1][1] and "\nA. " not in mx.messages(hub)[-1][1]


def test_clustered_bootstrap_does_not_count_copies_as_evidence():
    rng = np.random.default_rng(0)
    once = rng.integers(0, 2, 78)                     # 78 questions, right or wrong
    five = np.tile(once, 5)                           # the GPQA layout: 5 copies, row i is question i % 78
    groups = np.tile(np.arange(78), 5)
    letters = lambda a: ["A" if x else "B" for x in a]
    naive = stats.bootstrap_ci("accuracy", letters(five), ["A"] * 390)
    clustered = stats.bootstrap_ci("accuracy", letters(five), ["A"] * 390, clusters=groups)
    unique = stats.bootstrap_ci("accuracy", letters(once), ["A"] * 78)
    width = lambda b: b["ci_high"] - b["ci_low"]
    assert clustered["value"] == naive["value"] == unique["value"] and clustered["clusters"] == 78
    assert width(clustered) > 1.8 * width(naive)      # ~sqrt(5) wider than treating copies as items
    assert abs(width(clustered) - width(unique)) < 0.03
    f1 = stats.bootstrap_ci("macro_f1", letters(five), letters(np.tile(rng.integers(0, 2, 78), 5)),
                              {"labels": ["A", "B"]}, clusters=groups)
    assert f1["ci_low"] < f1["value"] < f1["ci_high"] and f1["clusters"] == 78
    assert stats.bootstrap_mean(five, clusters=groups)["ci_high"] == pytest.approx(clustered["ci_high"])


def test_lancet_and_nejm_explain_how_to_get_the_data(data_dir):
    res = subprocess.run([sys.executable, "-m", "medeval.cli", "run", "--tasks", "lancet", "--data-dir",
                          str(data_dir)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "UCSC-VLAA/m1_eval_data" in res.stderr and "lancet/test.jsonl" in res.stderr
    with pytest.raises(MedevalError, match=r"(?s)no data for task 'nejm'.*UCSC-VLAA/m1_eval_data.*603 lines"):
        prepare(REG.tasks["nejm"], RunConfig(tasks=[], data_dir=str(data_dir)))
    with pytest.raises(MedevalError, match="not downloaded from the hub"):   # never fetched, even without a mirror
        prepare(REG.tasks["lancet"], RunConfig(tasks=[]))


def test_item_labels_and_trace_files_reach_strata_and_requests(data_dir, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,is_reasoning\nmedbullets_op4-0000,1\n")
    traces = tmp_path / "traces.jsonl"
    traces.write_text(json.dumps({"id": "medbullets_op4-0001", "prefill": "Long wrong reasoning. The answer is A."})
                      + "\n")
    cfg = RunConfig(tasks=[], data_dir=str(data_dir), limit=3, item_labels=str(labels), adversarial=True,
                    adversarial_file=str(traces), self_consistency=0)
    p = prepare(REG.tasks["medbullets_op4"], cfg)
    assert "item_labels.is_reasoning" in p.task.strata
    assert p.items[0].row["item_labels"] == {"is_reasoning": "1"} and "item_labels" not in p.items[1].row
    assert p.notes["item_labels"]["items_labelled"] == 1 and p.notes["item_labels"]["items_without_label"] == 2
    reqs = build_requests(p, cfg)
    assert reqs[("medbullets_op4-0001", "greedy")].prefill.endswith("The answer is A.")
    assert reqs[("medbullets_op4-0000", "greedy")].prefill.startswith("The answer is ")   # no trace: default
    assert p.notes["adversarial_traces"]["items_without_trace"] == 2
    with pytest.raises(MedevalError, match="--item-labels: file 'nope.csv' not found"):
        prepare(REG.tasks["medbullets_op4"], RunConfig(tasks=[], data_dir=str(data_dir), item_labels="nope.csv"))


@pytest.mark.slow
def test_card_protocol_runs_end_to_end(hf_backend, data_dir, tmp_path):
    """Two of the card's columns on the embedded model under a group with the card's defaults (a copy of
    ii_medical_offline's, to keep the test short): card decoding, sample_accuracy, GPQA's clustered
    interval, MedXpertQA's reasoning/understanding strata, the group's sample_accuracy mean."""
    d = REG.groups["ii_medical_offline"].defaults
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "g.yaml").write_text(
        "group: tiny_card\ntasks: [gpqa_medical, medxpertqa]\nmetric: sample_accuracy\ndefaults: "
        + json.dumps(d.model_dump(exclude_none=True)) + "\n")
    cfg = RunConfig(tasks=["tiny_card"], task_dirs=[str(tmp_path / "tasks")], limit=2, self_consistency=2,
                    max_tokens=4, data_dir=str(data_dir), output_dir=str(tmp_path / "run"), no_cache=True)
    res = run(cfg, backend=hf_backend, progress=False)
    assert list(res["tasks"]) == ["gpqa_medical", "medxpertqa"]
    sc = res["decoding"]["sc"]
    assert (sc["k"], sc["temperature"], sc["top_p"]) == (2, 0.6, 0.9)
    assert res["decoding"]["prompt_variant"] == "ii_medical"
    for name, t in res["tasks"].items():
        s = t["metrics"]["sc"]["sample_accuracy"]
        assert 0 <= s["value"] <= 1 and s["n"] == 2
    assert res["tasks"]["gpqa_medical"]["bootstrap"]["unit"] == "cluster"
    assert set(res["tasks"]["medxpertqa"]["strata"]["question_type"]) <= {"Reasoning", "Understanding"}
    group = res["groups"]["tiny_card"]
    want = np.mean([t["metrics"]["sc"]["sample_accuracy"]["value"] for t in res["tasks"].values()])
    assert group["sc"]["value"] == pytest.approx(want)
    sample = json.loads((tmp_path / "run" / "samples_medxpertqa.jsonl").read_text().splitlines()[0])
    assert "within \\boxed{}" in sample["prompt"] and len(sample["sc"]["outputs"]) == 2


def test_trace_from_a_row_field_and_misled_is_the_traces_answer(data_dir, tmp_path):
    from medeval.scoring.aggregate import recovery
    from medeval.tasks.spec import Adversarial

    rows = [json.loads(line) for line in (data_dir / "medbullets_op4" / "test.jsonl").open()][:2]
    rows[0]["wrong_trace"] = "Conduction is fastest in the AV node, so the answer is A."
    (tmp_path / "medbullets_op4").mkdir()
    (tmp_path / "medbullets_op4" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = REG.tasks["medbullets_op4"].model_copy(update={"adversarial": Adversarial(field="wrong_trace")})
    cfg = RunConfig(tasks=[], data_dir=str(tmp_path), adversarial=True, self_consistency=0)
    p = prepare(task, cfg)
    assert [it.trace for it in p.items] == [rows[0]["wrong_trace"], None]
    assert p.notes["adversarial_traces"] == {"field": "wrong_trace", "items_with_trace": 1, "items_without_trace": 1}
    gold0 = p.items[0].gold
    rec = recovery(p, {"greedy": ["A", p.items[1].gold]}, ["greedy"])
    assert rec["greedy"]["misled_rate"] == (0.5 if gold0 != "A" else 0.0) and rec["trace_without_answer"] == 0


def test_lancet_reads_m1_rows_without_ids(data_dir, tmp_path):
    """A file built as its how_to_get says (m1 rows: question, options, answer_idx, answer; no id).
    Stand-in rows: MedBullets questions with their ids removed (the real Lancet set is hub-only)."""
    rows = [json.loads(line) for line in (data_dir / "medbullets_op5" / "test.jsonl").open()][:3]
    (tmp_path / "lancet").mkdir()
    (tmp_path / "lancet" / "test.jsonl").write_text(
        "".join(json.dumps({k: r[k] for k in ("question", "options", "answer_idx", "answer")}) + "\n" for r in rows))
    p = prepare(REG.tasks["lancet"], RunConfig(tasks=[], data_dir=str(tmp_path), prompt_variant="ii_medical"))
    assert p.ids == ["0", "1", "2"] and [it.gold for it in p.items] == [r["answer_idx"] for r in rows]
    assert [len(it.options) for it in p.items] == [5, 5, 5]
