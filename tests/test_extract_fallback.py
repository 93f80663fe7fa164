"""--extract-fallback self and --extract-audit (issue 21, item 3): the evaluated model's own answer.

On the real embedded model and real MedQA / PubMedQA items. To get outputs the rules cannot read, one
task here asks the model to restate the question before answering and stops at the first period (a
real MedQA task with a test-only prompt: the model's real outputs, which name no option).
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from conftest import CHROMIUM, dump_dom, invoke
from results_factory import synthetic_run

from medeval.backends.base import Request
from medeval.errors import MedevalError
from medeval.tasks.extract import Outcome
from medeval.runs.merge import merge
from medeval.reporting.view import run_data
from medeval.runs.runner import RunConfig, run
from medeval.scoring.inputs import ItemOutputs
from medeval.scoring.score import ModeCounts, _self_block
from medeval.graders.self_answer import CUE, SelfCheck

RESTATE_TEMPLATE = """Here is a multiple-choice question about medicine. Do not answer it yet: first restate, \
in your own words, what the question asks.

Question: {{ question }}
{% for o in options %}
{{ o.letter }}. {{ o.text }}
{% endfor %}
The question asks
"""

RESTATE_TASK = """name: medqa_restate
version: 1
description: MedQA with a prompt that makes the model restate the question (outputs without an answer); tests only
dataset:
  hub: GBaker/MedQA-USMLE-4-options
  split: test
  local: medqa/test.jsonl
  fields: [question, options, answer_idx, meta_info]
prompt:
  template: restate.jinja
  vars: {question: question}
answer:
  type: choice
  options: options
  gold: answer_idx
  gold_format: letter
metrics: [accuracy]
generation:
  max_tokens: 48
  stop: ["."]
"""


def samples(out: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"samples_{task}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tasks")
    (d / "restate.jinja").write_text(RESTATE_TEMPLATE)
    (d / "medqa_restate.yaml").write_text(RESTATE_TASK)
    return d


@pytest.fixture(scope="module")
def both(hf_backend, data_dir, task_dir, tmp_path_factory):
    """One run with both options on 2 restating MedQA items and 2 PubMedQA items."""
    out = tmp_path_factory.mktemp("fallback")
    cfg = RunConfig(tasks=["medqa_restate", "pubmedqa"], limit=2, data_dir=str(data_dir), task_dirs=[str(task_dir)],
                    output_dir=str(out / "run"), cache_dir=str(out / "cache"), extract_fallback="self",
                    extract_audit=True)
    return cfg, run(cfg, backend=hf_backend, progress=False), out


@pytest.mark.slow
def test_invalid_outputs_get_the_models_own_answer_labelled_and_both_metrics_are_reported(both, hf_backend):
    cfg, res, out = both
    task = res["tasks"]["medqa_restate"]
    rows = samples(out / "run", "medqa_restate")
    invalid = [(r, i) for r in rows for i, st in enumerate(r["greedy"]["status"]) if st == "invalid"
               and r["greedy"]["finish_reasons"][i] != "length"]
    assert invalid, "the restating prompt should give outputs the rules cannot read"
    assert task["invalid"]["greedy"]["count"] == len(invalid)      # the rules-only counts are unchanged
    fb = task["extract_fallback"]
    assert fb["outputs"]["greedy"]["invalid"] == len(invalid) == fb["outputs"]["greedy"]["answered"]
    assert fb["invalid"]["greedy"]["count"] == 0 and fb["cue"] == CUE
    for r, i in invalid:
        g = r["greedy"]
        rec = g["self_answer"][i]
        assert g["answered_by"][i] == "self" and g["extracted"][i] is None
        assert rec["keys"] == ["A", "B", "C", "D"] and len(rec["logprobs"]) == 4
        assert rec["answer"] == rec["keys"][max(range(4), key=lambda j: rec["logprobs"][j])]
        assert g["extracted_with_fallback"][i] == g["pred_with_fallback"] == rec["answer"]
        assert g["correct_with_fallback"] == (rec["answer"] == r["gold"]) and g["correct"] is False
        # the context is the prompt exactly as generated, the output and the cue: score it here directly
        direct = dict(hf_backend.loglikelihood([Request("check", (("user", r["prompt"]),), prefill=g["outputs"][i]
                                                        + CUE, chat=False, continuations=(" A", " B", " C", " D"))]))
        assert direct[0].logprobs == pytest.approx(rec["logprobs"], abs=0.05)
    # both metrics: the rules-only ones stay `metrics`; the fallback's are computed from its answers
    acc = task["metrics"]["greedy"]["accuracy"]["value"]
    assert acc == sum(r["greedy"]["correct"] for r in rows) / len(rows)
    assert fb["metrics"]["greedy"]["accuracy"]["value"] == sum(r["greedy"]["correct_with_fallback"]
                                                                 for r in rows) / len(rows)
    assert res["extraction"] == {"extract_judge": None, "extract_fallback": "self", "extract_audit": True,
                                 "self_answer_cue": CUE}


@pytest.mark.slow
def test_the_audit_reports_an_agreement_rate_per_task(both):
    _, res, out = both
    for name in ("medqa_restate", "pubmedqa"):
        a = res["tasks"][name]["extract_audit"]["greedy"]
        rows = samples(out / "run", name)
        verdicts = [v for r in rows for v in r["greedy"]["audit"]]
        answered = sum(st == "answer" for r in rows for st in r["greedy"]["status"])
        assert a["outputs"] == len(rows) == 2 and a["not_asked"] == 0
        assert a["compared"] == answered == verdicts.count("agree") + verdicts.count("disagree")
        assert a["agree"] == verdicts.count("agree") and a["disagree"] == sum(a["disagreements"].values())
        if a["compared"]:
            assert a["rate"] == a["agree"] / a["compared"] and a["ci_low"] <= a["rate"] <= a["ci_high"]
    pub = samples(out / "run", "pubmedqa")
    assert all(r["greedy"]["self_answer"][0]["keys"] == ["yes", "no", "maybe"] for r in pub)
    # the embedded model answers at least one of them readably (an answer cut off at the 16-token limit is
    # invalid under the rules, so not compared)
    assert res["tasks"]["pubmedqa"]["extract_audit"]["greedy"]["compared"] >= 1


@pytest.mark.slow
def test_a_rerun_scores_no_self_answer_anew(both, hf_backend, monkeypatch):
    cfg, first, out = both

    def no_model(*_a, **_k):
        raise AssertionError("the model was called although everything is cached")

    monkeypatch.setattr(hf_backend, "loglikelihood", no_model)
    monkeypatch.setattr(hf_backend, "generate", no_model)
    again = run(dataclasses.replace(cfg, output_dir=str(out / "again")), backend=hf_backend, progress=False)
    assert again["cache"]["misses"] == 0
    for name in ("medqa_restate", "pubmedqa"):
        a, b = first["tasks"][name], again["tasks"][name]
        assert a["extract_audit"] == b["extract_audit"]
        assert a["extract_fallback"]["metrics"] == b["extract_fallback"]["metrics"]
        o = b["extract_fallback"]["outputs"]["greedy"]
        assert o["cached"] == o["answered"]


@pytest.mark.slow
def test_merge_reports_the_shards_self_answers_as_one_run(both, hf_backend, monkeypatch):
    cfg, whole, out = both
    monkeypatch.setattr(hf_backend, "generate", lambda *a, **k: (_ for _ in ()).throw(AssertionError("not cached")))
    dirs = []
    for i in range(2):   # the same items and cache: every sample and score is reused
        d = out / f"s{i}"
        run(dataclasses.replace(cfg, output_dir=str(d), shard=(i, 2)), backend=hf_backend, progress=False)
        dirs.append(d)
    merged = merge(dirs, out / "merged")
    for name in ("medqa_restate", "pubmedqa"):
        assert merged["tasks"][name]["extract_audit"] == whole["tasks"][name]["extract_audit"]
        m, w = merged["tasks"][name]["extract_fallback"], whole["tasks"][name]["extract_fallback"]
        assert m["metrics"] == w["metrics"] and m["invalid"] == w["invalid"]
    assert merged["extraction"]["extract_fallback"] == "self"


def test_sc_votes_over_each_samples_answer_with_the_fallback():
    """Per sample: the rules' answer, else the self-answer (not for a truncated output); then the vote."""
    rec = lambda a: {"answer": a, "keys": ["A", "B"], "logprobs": [0.0, 0.0], "p": 0.5, "cached": False}  # noqa: E731
    outs = [Outcome("A", "answer"), Outcome(None, "invalid"), Outcome(None, "invalid"), Outcome(None, "invalid"),
            Outcome(None, "ambiguous")]
    got = ItemOutputs(texts=["A", "hmm", "well", "cut off", "A or B"],
                      self_answer=[None, rec("B"), rec("B"), rec("A"), None])
    c = ModeCounts()
    block = _self_block(SelfCheck(fallback=True), "sc", got, outs, ["stop", "stop", "stop", "length", "stop"], c)
    assert block["extracted_with_fallback"] == ["A", "B", "B", None, None]
    assert block["answered_by"] == ["rules", "self", "self", None, None]
    assert block["pred_with_fallback"] == "B"     # two fallback answers outvote one rules answer
    assert c.fcounts == {"invalid": 3, "answered": 2, "truncated": 1, "empty": 0, "cached": 0}


@pytest.mark.parametrize("change,match", [
    ({"extract_fallback": "gpt-4o"}, "the only fallback is 'self'"),
    ({"tasks": ["openllm_medqa"], "extract_audit": True}, "scoring: loglikelihood"),
    ({"tasks": ["cupcase"], "extract_fallback": "self"}, "none of the tasks has a choice, yesno or label answer"),
    ({"backend": "openai", "model": "m", "backend_args": {"base_url": "http://127.0.0.1:9/v1"},
      "extract_fallback": "self"}, "--model-args tokenizer="),
])
def test_the_options_are_checked_before_any_work(change, match, tmp_path, data_dir):
    cfg = RunConfig(**{"tasks": ["medqa"], "data_dir": str(data_dir), "output_dir": str(tmp_path / "o"),
                       "cache_dir": str(tmp_path / "c"), **change})
    with pytest.raises(MedevalError, match=match):
        run(cfg, progress=False)
    assert not (tmp_path / "o" / "results.json").exists()


@pytest.mark.slow
def test_view_carries_the_audit_and_the_self_answers(both):
    _, res, out = both
    data = run_data(out / "run")
    task = next(t for t in data["tasks"] if t["task"] == "medqa_restate")
    assert task["extract_audit"] == res["tasks"]["medqa_restate"]["extract_audit"]
    assert task["extract_fallback"]["outputs"] == res["tasks"]["medqa_restate"]["extract_fallback"]["outputs"]
    assert all("audit" in it["modes"]["greedy"] and "self_answer" in it["modes"]["greedy"] for it in task["items"])


def test_view_lists_the_audit_disagreements(report_app, tmp_path):
    """SYNTHETIC run (tests/results_factory.py) with planted audit verdicts: the filter shows exactly those."""
    expect = synthetic_run(tmp_path / "run", 40)
    task = expect["task"]
    path = tmp_path / "run" / f"samples_{task}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    planted = [r["id"] for k, r in enumerate(rows) if k % 7 == 3]
    for r in rows:
        g = r["greedy"]
        g["self_answer"] = [{"answer": "D", "keys": ["A", "B", "C", "D"], "logprobs": [-3, -3, -3, -0.2], "p": 0.8,
                             "cached": False}]
        g["audit"] = ["disagree" if r["id"] in planted else "agree"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    results["tasks"][task]["extract_audit"] = {"cue": CUE, "greedy": {"compared": 40, "agree": 40 - len(planted)}}
    (tmp_path / "run" / "results.json").write_text(json.dumps(results))
    assert run_data(tmp_path / "run")["tasks"][0]["extract_audit"]["greedy"]["agree"] == 40 - len(planted)
    page = tmp_path / "page.html"
    res = invoke(report_app, "view", tmp_path / "run", "-o", page)
    assert res.exit_code == 0, res.output
    if CHROMIUM is None:
        pytest.skip("chromium is not on PATH (apt-get install chromium): the page's filter is not driven")
    dom = dump_dom(f"{page.as_uri()}#size=250&status=disagree")
    assert re.findall(r'<tr class="item" data-id="([^"]+)"', dom) == planted
    assert 'audit disagreements' in dom


# ---- issue 22: the extraction judge in a run of several tasks, and in merge (FAKE judge server, real model)
@pytest.fixture
def judge_server(monkeypatch):
    from test_extract_judge import SECRET, SERVED, FakeExtractJudge

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeExtractJudge(model_name=SERVED, api_key=SECRET) as s:
        yield s


@pytest.mark.slow
def test_extract_judge_counts_each_task_apart_and_its_tokens_reach_the_usage(both, hf_backend, judge_server):
    cfg, _, out = both
    res = run(dataclasses.replace(cfg, output_dir=str(out / "judged"), extract_fallback=None, extract_audit=False,
                                  extract_judge=judge_server.model_name, extract_judge_base_url=judge_server.url),
              backend=hf_backend, progress=False)
    sent = len(judge_server.entries(path="/v1/chat/completions"))
    per_task = {name: res["tasks"][name]["extract_judge"] for name in ("medqa_restate", "pubmedqa")}
    asked = {name: sum(sum(c.values()) for c in xj["outputs"].values()) for name, xj in per_task.items()}
    assert asked["medqa_restate"] > 0 and sent == sum(asked.values())
    for name, xj in per_task.items():
        assert xj["calls"] + xj["cache_hits"] == asked[name], name   # its own verdicts, not the run's so far
    usage = res["usage"]["judge"][judge_server.model_name]
    assert usage["requests"] == sent == usage["requests_without_usage"]   # the FAKE server reports no tokens
    assert res["extraction"]["extract_judge"] == judge_server.model_name


@pytest.mark.slow
def test_merge_keeps_the_extract_judge(both, hf_backend, judge_server):
    cfg, _, out = both
    jcfg = dataclasses.replace(cfg, extract_judge=judge_server.model_name, extract_judge_base_url=judge_server.url)
    whole = run(dataclasses.replace(jcfg, output_dir=str(out / "jwhole")), backend=hf_backend, progress=False)
    dirs = [out / f"js{i}" for i in range(2)]
    for i, d in enumerate(dirs):
        run(dataclasses.replace(jcfg, output_dir=str(d), shard=(i, 2)), backend=hf_backend, progress=False)
    merged = merge(dirs, out / "jmerged")
    m, w = merged["tasks"]["medqa_restate"]["extract_judge"], whole["tasks"]["medqa_restate"]["extract_judge"]
    assert m["metrics"] == w["metrics"] and m["outputs"] == w["outputs"] and m["invalid"] == w["invalid"]
