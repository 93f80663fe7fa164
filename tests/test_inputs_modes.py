"""The typed scoring input, the samples record and the decoding modes (issue 22).

`medeval run`, `merge` and `score` each build a scoring.inputs.ScoringInput; scoring reads only that, so
the same outputs score the same whichever built it. A samples line read as a results.SampleRecord and
written again is the same bytes. Each mode object samples, reduces and labels as the runner and scoring did.

FAKE: the model outputs and choice scores below are made up (no model runs here); the items, prompts,
options and gold are real (medqa and openllm_medqa from ../shared/data).
"""
import dataclasses
import json

import pytest

from medeval.backends.base import Sampling
from medeval.results import GENERATION_MODES, MODES, SampleRecord
from medeval.runs import tail
from medeval.runs.merge import _collect
from medeval.runs.prepare import prepare
from medeval.runs.runner import RunConfig, build_requests, modes_for
from medeval.runs.score_external import score_file
from medeval.runs.shard import record
from medeval.scoring import modes as M
from medeval.scoring.inputs import ScoringInput
from medeval.scoring.loglikelihood import pick
from medeval.scoring.score import score_items
from medeval.tasks.spec import Registry

REPLIES = ["The answer is A.", "B", "I am not sure.", "Answer: C or D", "D"]   # FAKE outputs


def _fake_outputs(p, reqs) -> dict:
    """FAKE: one result per request, as the caching wrapper returns them (an item's modes share its prompt)."""
    out = {}
    for n, r in enumerate(dict.fromkeys(reqs.values())):
        prompt = "the prompt of item " + r.id.split("/")[1]
        if r.continuations:
            out[r.id] = {"prompt": prompt, "info": {}, "cached": 0,
                         "scores": [{"continuation": c, "logprob": -1.0 - ((n + j) % 3) * 0.5, "tokens": 1 + j % 2,
                                     "greedy": j == n % len(r.continuations)} for j, c in enumerate(r.continuations)]}
        else:
            k = r.sampling.n
            out[r.id] = {"prompt": prompt, "texts": [REPLIES[(n + j) % len(REPLIES)] for j in range(k)],
                         "finish": ["length" if (n + j) % 4 == 3 else "stop" for j in range(k)],
                         "tokens": [5 + j for j in range(k)], "info": {"prompt_tokens": 40 + n}, "cached": 0,
                         "n_path": None, "sample_prompts": None}
    return out


@pytest.mark.parametrize("task,k,adversarial", [("medqa", 3, True), ("openllm_medqa", 0, False)])
def test_run_and_merge_build_the_same_scoring_input_and_samples(task, k, adversarial, data_dir, tmp_path):
    cfg = RunConfig(tasks=[task], limit=4, data_dir=str(data_dir), self_consistency=k, adversarial=adversarial,
                    shard=(0, 1))
    p = prepare(Registry().resolve([task])[0], cfg)
    reqs = build_requests(p, cfg)
    outputs = _fake_outputs(p, reqs)
    modes = modes_for(p.task, cfg)
    ran = ScoringInput.of_run(p, reqs, outputs, modes)
    score_items(p, ran, tmp_path / "run")
    shard = record(cfg, [p], [p], {task: reqs}, outputs, tmp_path / "run")
    merged = _collect(p, modes, [(tmp_path / "run", {"tasks": {task: {"samples_file": f"samples_{task}.jsonl"}},
                                                     "shard": shard})])
    # a merge has what the samples and shard files keep: all but the cache counts, accounting's prompt shares
    # and the scored continuations' texts (the choices are read again from the item)
    kept = lambda o: dataclasses.replace(o, cached=None, sample_prompts=None, scores=o.scores and [
        {k: v for k, v in s.items() if k != "continuation"} for s in o.scores])
    unkept = lambda i: ScoringInput(i.modes, {m: {k: kept(o) for k, o in i.outputs[m].items()} for m in i.modes})
    assert unkept(merged) == unkept(ran)
    assert any(o.prefill for o in ran.outputs[modes[0]].values()) == adversarial
    score_items(p, merged, tmp_path / "merged")
    name = f"samples_{task}.jsonl"
    assert (tmp_path / "merged" / name).read_bytes() == (tmp_path / "run" / name).read_bytes()
    # a samples line read and written again is the same bytes
    for line in (tmp_path / "run" / name).read_text(encoding="utf-8").splitlines():
        rec = SampleRecord.from_json(json.loads(line))
        assert set(rec.modes) == set(modes) and rec.key == str(json.loads(line)["id"])
        assert json.dumps(rec.to_json(), ensure_ascii=False, default=str) == line


def test_score_builds_the_input_run_would_from_the_same_texts(data_dir, tmp_path, monkeypatch):
    cfg = RunConfig(tasks=["medqa"], limit=4, data_dir=str(data_dir), self_consistency=3)
    p = prepare(Registry().resolve(["medqa"])[0], cfg)
    reqs = build_requests(p, cfg)
    ran = ScoringInput.of_run(p, reqs, _fake_outputs(p, reqs), modes_for(p.task, cfg))
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "outputs": ran.get("sc", i).texts}) + "\n" for i in p.ids))
    seen = []
    monkeypatch.setattr(tail, "score_items", lambda p, inputs, *a, **kw: seen.append(inputs) or
                        score_items(p, inputs, *a, **kw))
    score_file("medqa", preds, tmp_path / "out", "fake", data_dir=data_dir)
    (got,) = seen
    assert got.modes == ["greedy", "sc"]
    assert {i: o.texts for i, o in got.outputs["sc"].items()} == {i: o.texts for i, o in ran.outputs["sc"].items()}
    assert all(got.get("greedy", i).texts == ran.get("sc", i).texts[:1] for i in p.ids)


def test_a_samples_record_keeps_unknown_fields_and_refuses_a_line_without_gold():
    line = {"id": 7, "prompt": "p", "gold": "B", "meta": {}, "later_field": [1], "greedy": {"pred": "B"}}
    rec = SampleRecord.from_json(line)
    assert rec.to_json() == line and list(rec.to_json()) == list(line)
    assert rec.key == "7" and rec.has_pred("greedy") and not rec.has_pred("sc") and rec.block("sc") == {}
    with pytest.raises(ValueError, match="x.jsonl: line 3: a samples row needs 'id' and 'gold'"):
        SampleRecord.from_json({"id": 1}, "x.jsonl: line 3")


def test_each_mode_samples_reduces_and_labels_as_before():
    assert tuple(M.BY_NAME) == MODES and tuple(m.name for m in M.ALL if m.generates) == GENERATION_MODES
    assert M.GREEDY.reduce(["B", "A", None]) == ("B", None)
    assert M.SC.reduce([None, "B", "A", "B"]) == ("B", {"B": 2, "A": 1})
    assert M.SC.reduce(["A", "B"])[0] == "A" and M.SC.reduce([None, None]) == (None, {})   # ties: the earliest
    choices, scores = [("A", "yes"), ("B", "no way")], [{"logprob": -3.0, "tokens": 1, "greedy": False},
                                                         {"logprob": -4.0, "tokens": 2, "greedy": True}]
    assert M.LOGLIKELIHOOD.pick(scores, choices) == pick("loglikelihood", scores, choices)
    assert M.LOGLIKELIHOOD.pick(scores, choices)[0] == "A" and M.LOGLIKELIHOOD_NORM.pick(scores, choices)[0] == "B"
    with pytest.raises(TypeError):
        M.LOGLIKELIHOOD.reduce(["A"])
    cfg = RunConfig(tasks=[], self_consistency=4, temperature=0.7, top_p=0.9)
    base = dict(max_tokens=9, stop=("\n",), seed=1)
    assert M.GREEDY.sampling(cfg, **base) == Sampling(n=1, temperature=0.0, top_p=1.0, **base)
    assert M.SC.sampling(cfg, **base) == Sampling(n=4, temperature=0.7, top_p=0.9, **base)
    assert M.LOGLIKELIHOOD.sampling(cfg, **base) is None and not M.LOGLIKELIHOOD_NORM.generates
    assert M.SC.voted and not M.GREEDY.voted
    assert [M.protocol(m, 5, 10) for m in MODES] == ["generate-greedy", "generate-sc10", "loglikelihood-5shot",
                                                      "loglikelihood-norm-5shot"]
    assert [M.protocol(m) for m in MODES] + [M.protocol("other")] == ["generate-greedy", "generate-sc",
                                                                      "loglikelihood", "loglikelihood_norm", "other"]
    reg = Registry()
    medqa, ll = reg.resolve(["medqa"])[0], reg.resolve(["openllm_medqa"])[0]
    assert [m.name for m in M.of_task(medqa, 0)] == ["greedy"] and [m.name for m in M.of_task(medqa, 3)] == ["greedy", "sc"]
    assert [m.name for m in M.of_task(ll, 3)] == ["loglikelihood", "loglikelihood_norm"]
