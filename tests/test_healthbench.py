"""HealthBench rubric grading end to end: the embedded model answers, a grader behind a real loopback
OpenAI-compatible HTTP server grades each criterion.

The grader is a FAKE (no model): a subclass of medeval's OpenAI-protocol test server that reads the
rendered grader prompt and applies a fixed rule (met iff the criterion text has an even number of
characters; criteria mentioning "pain" get an unparseable reply). Everything else (the HTTP client,
retries after injected 429/500 faults, concurrency, the cache, parsing, scoring) is the real code.
"""
import json
import re

import numpy as np
import pytest

from medeval.errors import MedevalError
from medeval.graders.rubric import item_score, parse_met
from medeval.runs.runner import RunConfig, run
from medeval.testing.openai_server import OpenAITestServer

from conftest import read_rows

SERVED = "fake-grader-FAKE"


def rule(criterion: str):
    return None if "pain" in criterion.lower() else len(criterion) % 2 == 0


class FakeGrader(OpenAITestServer):
    def complete(self, path, body):
        prompt = body["messages"][-1]["content"]
        crit = re.search(r"^# Rubric criterion \(-?\d+ points\)\n(.*?)\n\n# Instructions", prompt, re.S | re.M)
        met = rule(crit.group(1))
        content = ("Hard to say." if met is None else
                   json.dumps({"explanation": "fixed rule", "criteria_met": met}))
        return 200, {"id": "g", "object": "chat.completion", "created": 0, "model": SERVED + "-2025",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}]}


@pytest.mark.parametrize("text,want", [
    ('{"explanation": "x", "criteria_met": true}', True),
    ('```json\n{"explanation": "no", "criteria_met": false}\n```', False),
    ('<think>{"criteria_met": true}</think> {"criteria_met": false}', False),
    ("criteria_met: True", True), ('{"criteria_met": "yes"}', None), ("I think so.", None), (None, None),
])
def test_parse_met(text, want):
    assert parse_met(text) == want


def test_item_score_clips_and_counts_penalties():
    crit = [{"points": 5}, {"points": 5}, {"points": -7}]
    assert item_score(crit, [True, True, False]) == 1.0
    assert item_score(crit, [True, False, True]) == 0.0           # 5 - 7 < 0: clipped
    assert item_score(crit, [True, True, True]) == pytest.approx(0.3)
    assert item_score(crit, [None, True, False]) == 0.5           # unparseable = not met
    assert item_score([{"points": -3}], [True]) is None            # no positive points


def test_needs_a_grader(data_dir):
    with pytest.raises(MedevalError, match="--judge MODEL"):
        run(RunConfig(tasks=["healthbench"], data_dir=str(data_dir), limit=1), backend=object(), progress=False)


@pytest.mark.slow
def test_healthbench_end_to_end_with_a_loopback_grader(hf_backend, data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rows = read_rows("healthbench", "sample")[:2]
    with FakeGrader(model_name=SERVED, faults=["429", "500"]) as server:   # the first two calls fail, then retry
        cfg = RunConfig(tasks=["healthbench"], limit=2, max_tokens=8, data_dir=str(data_dir), judge=SERVED,
                        judge_base_url=server.url, cache_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "a"))
        res = run(cfg, backend=hf_backend, progress=False)
        t = res["tasks"]["healthbench"]
        n_crit = sum(len(r["rubrics"]) for r in rows)
        served = [e for e in server.entries(path="/v1/chat/completions") if e.get("status") == 200]
        n_bad = sum(rule(c["criterion"]) is None for r in rows for c in r["rubrics"])
        # a reply without a verdict is asked again twice and never cached
        assert t["judge"]["calls"] == n_crit and len(served) == n_crit + 2 * n_bad
        assert t["judge"]["unusable_replies"] == 3 * n_bad and t["judge"]["reasks"] == 2 * n_bad
        # expected scores from the fixed rule, computed here independently
        want = [item_score(r["rubrics"], [bool(rule(c["criterion"])) for c in r["rubrics"]]) for r in rows]
        samples = [json.loads(line) for line in (tmp_path / "a" / "samples_healthbench.jsonl").open()]
        assert [s["greedy"]["pred"] for s in samples] == pytest.approx(want)
        assert t["metrics"]["greedy"]["rubric_score"]["value"] == pytest.approx(np.mean(want))
        assert t["judge"]["unparseable"] == n_bad and t["judge"]["judge"] == SERVED
        assert t["judge"]["server_models"] == [SERVED + "-2025"]
        axes = {tag.split(":")[1] for r in rows for c in r["rubrics"] for tag in c["tags"] if tag.startswith("axis:")}
        themes = {tag.split(":")[1] for r in rows for tag in r["example_tags"] if tag.startswith("theme:")}
        assert set(t["rubric"]["greedy"]["by_axis"]) == axes and set(t["rubric"]["greedy"]["by_theme"]) == themes
        # the model answered the conversation turn by turn, in its own chat template
        assert samples[0]["prompt"].count("<|im_start|>user") == sum(m["role"] == "user" for m in rows[0]["prompt"])
        # a re-run asks the grader only for the verdicts it could not read: the others come from the cache
        run(RunConfig(**{**cfg.__dict__, "output_dir": str(tmp_path / "b")}), backend=hf_backend, progress=False)
        assert len(server.entries(path="/v1/chat/completions")) == len(served) + 2 + 3 * n_bad


def test_bad_conversations_and_prompt_specs_are_one_line_errors(tmp_path):
    from medeval.tasks.prompts import Renderer
    from medeval.tasks.spec import Registry, load_file

    task = Registry().tasks["healthbench"]
    r = Renderer(task)
    ok = {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                     {"role": "user", "content": "I have a cough."}]}
    assert r.messages(ok) == (("user", "Hi"), ("assistant", "Hello"), ("user", "I have a cough."))
    for bad in ({"prompt": [{"role": "assistant", "content": "x"}]}, {"prompt": []}, {"prompt": "text"},
                {"prompt": [{"role": "doctor", "content": "x"}]}, {}):
        with pytest.raises(MedevalError, match="prompt.messages"):
            r.messages(bad, "item-1")
    f = tmp_path / "t.yaml"
    f.write_text("name: t\nversion: 1\ndataset: {local: t/test.jsonl}\nprompt: {template: a.jinja, messages: prompt}\n"
                 "answer: {type: rubric, gold: rubrics}\nmetrics: [rubric_score]\n")
    with pytest.raises(MedevalError, match="exactly one of `template`"):
        load_file(f)
