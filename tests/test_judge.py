"""The diagnosis judge: lexical fallback, and the LLM judge against a real loopback HTTP server.

The server is a FAKE judge (no model): a subclass of medeval's OpenAI-protocol test server that
reads the rendered judge prompt and answers with the rank of the first differential entry
containing the final diagnosis. Everything else (HTTP, retries, cache, parsing) is the real code.
"""
import json
import re

import pytest

from medeval.errors import MedevalError
from medeval.graders.base import Case
from medeval.graders.registry import Graders
from medeval.graders.judge import LexicalJudge, LLMJudge, parse_verdict
from medeval.runs.runner import RunConfig, run
from medeval.testing.openai_server import OpenAITestServer

from conftest import DATA

SECRET = "sk-test-DO-NOT-LEAK-1234"
SERVED = "fake-judge-FAKE"
VERSION = "fake-judge-FAKE-2025-01-01"   # what the server says it is, as OpenAI's dated names


class FakeJudgeServer(OpenAITestServer):
    """FAKE judge: rank = first entry containing the final diagnosis (case-insensitive), 0 if none.
    A final diagnosis containing GARBLE gets an unparseable answer."""

    def complete(self, path, body):
        if body.get("model") != self.model_name:
            return 404, {"error": {"message": f"no model {body.get('model')}"}}
        prompt = body["messages"][-1]["content"]
        gold = re.search(r"^Final diagnosis: (.*)$", prompt, re.M).group(1).strip().lower()
        entries = re.findall(r"^(\d+)\. (.*)$", prompt, re.M)
        rank = next((int(n) for n, e in entries if gold in e.lower()), 0)
        content = ("I am not sure about this one." if "garble" in gold else
                   json.dumps({"rank": rank, "reasoning": f"entry {rank} names it" if rank else "no entry matches"}))
        return 200, {"id": "judge-1", "object": "chat.completion", "created": 0, "model": VERSION,
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}],
                     "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(content.split()),
                               "total_tokens": len(prompt.split()) + len(content.split())}}   # FAKE counts


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeJudgeServer(model_name=SERVED, api_key=SECRET) as s:
        yield s


def ask(judge, pred, gold, row):
    """(value, record) of one verdict."""
    verdict = judge.grade(Case(pred, gold, row))
    return verdict.value, verdict.record


def make_judge(cfg, **options):
    """The diagnosis judge the runner builds for a run with `cfg` (graders/registry.py)."""
    return Graders(cfg, **options).for_type("diagnosis")


def posts(server) -> int:
    return len(server.entries(path="/v1/chat/completions"))


CASES = [  # (differential, final diagnosis, expected rank)
    (["Sarcoidosis", "Tuberculosis", "Lymphoma"], "Tuberculosis", 2),
    (["Kawasaki disease", "Measles"], "Kawasaki disease", 1),
    (["Migraine", "Tension headache"], "Subarachnoid hemorrhage", None),
]


@pytest.mark.parametrize("text,n,want", [
    ('{"rank": 2, "reasoning": "TB is entry 2"}', 5, (2, "TB is entry 2")),
    ('```json\n{"rank": 0, "reasoning": "none match"}\n```', 5, (0, "none match")),
    ('<think>maybe 1?</think>{"rank": 3, "reasoning": "x"}', 5, (3, "x")),
    ("Reasoning: entry 1 is a synonym.\nRank: 1", 5, (1, None)),
    ("**Rank**: none", 5, (0, None)),
    ("4", 5, (4, None)),
    ('{"rank": 6, "reasoning": "x"}', 5, (None, "x")),       # out of range for 5 entries
    ('{"rank": 2, "reasoning": "x"}', 1, (None, "x")),       # the differential had 1 entry
    ('{"rank": "two"}', 5, (None, None)),
    ("I cannot tell.", 5, (None, None)), ("", 5, (None, None)), (None, 5, (None, None)),
])
def test_parse_verdict(text, n, want):
    assert parse_verdict(text, n) == want


def test_lexical_fallback_is_labelled():
    judge = make_judge(RunConfig(tasks=[], judge="none"))
    assert isinstance(judge, LexicalJudge)
    rank, rec = ask(judge, ["Sarcoidosis", "Pulmonary tuberculosis"], "Tuberculosis, pulmonary", {})
    assert rank == 2 and rec["judge"] == "lexical-fallback" and rec["note"] == "not the paper's metric"
    assert ask(judge, None, "Tuberculosis", {}) == (None, {**judge.label, "verdict": "no differential", "rank": None})
    assert ask(judge, ["Migraine"], "Tuberculosis", {})[0] is None


def test_llm_judge_ranks_records_and_never_leaks_the_key(server, tmp_path):
    judge = make_judge(RunConfig(tasks=[], judge=SERVED, judge_base_url=server.url, cache_dir=str(tmp_path)))
    assert isinstance(judge, LLMJudge)
    records = []
    for diff, gold, want in CASES:
        rank, rec = ask(judge, diff, gold, {})
        assert rank == want, rec
        assert rec["judge"] == SERVED and rec["server_model"] == VERSION and len(rec["prompt_hash"]) == 64
        assert rec["verdict"] == ("match" if want else "no match") and rec["reasoning"] and rec["raw"]
        records.append(rec)
    rank, rec = ask(judge, ["Gout"], "GARBLE syndrome", {})
    assert rank is None and rec["verdict"] == "unparseable" and rec["raw"] == "I am not sure about this one."
    assert ask(judge, None, "Gout", {})[1]["verdict"] == "no differential"
    s = judge.summary()
    assert (s["calls"], s["unparseable"], s["no_differential"], s["server_models"]) == (4, 1, 1, [VERSION])
    assert posts(server) == 4 and all(e["status"] == 200 for e in server.log)   # the key was accepted
    assert SECRET not in json.dumps([records, s, rec])


def test_verdicts_are_cached_across_runs(server, tmp_path):
    cfg = RunConfig(tasks=[], judge=SERVED, judge_base_url=server.url, cache_dir=str(tmp_path))
    graders = Graders(cfg)
    first = graders.for_type("diagnosis")
    first.prefetch([Case(d, g, {}) for d, g, _ in CASES] + [Case(None, "x", {})])   # concurrent
    assert posts(server) == 3
    assert [ask(first, d, g, {})[0] for d, g, _ in CASES] == [w for *_, w in CASES]
    assert posts(server) == 3 and first.summary()["calls"] == 3
    graders.close()
    again = make_judge(cfg)   # a new process would see the same SQLite file
    out = [ask(again, d, g, {}) for d, g, _ in CASES]
    assert posts(server) == 3, "a re-run must not ask the judge again"
    assert [r for r, _ in out] == [w for *_, w in CASES] and all(rec["cached"] for _, rec in out)
    assert again.summary()["cache_hits"] == 3 and again.summary()["server_models"] == [VERSION]
    # the judge's tokens are its own account, the same whether its verdicts came from the cache or not
    used = first.summary()["usage"]
    assert used["requests"] == 3 and used["prompt_tokens"] > 30 and used["requests_without_usage"] == 0
    assert again.summary()["usage"] == used
    # another judge model or a changed differential is a different question
    assert make_judge(RunConfig(tasks=[], judge="other", judge_base_url=server.url, cache_dir=str(tmp_path))
                      ).cache_keys("x") != again.cache_keys("x")
    ask(again, ["Tuberculosis"], "Tuberculosis", {})
    assert posts(server) == 4


def test_transient_errors_are_retried(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeJudgeServer(model_name=SERVED, faults=["500", "429"], api_key=SECRET) as s:
        judge = make_judge(RunConfig(tasks=[], judge=SERVED, judge_base_url=s.url, cache_dir=str(tmp_path)),
                           max_retries=2)
        assert ask(judge, ["Tuberculosis"], "Tuberculosis", {})[0] == 1
        assert [e["status"] for e in s.log] == [500, 429, 200]


def test_judge_failure_is_a_clear_error_without_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeJudgeServer(model_name=SERVED, faults=["500"] * 3, api_key=SECRET) as s:
        judge = make_judge(RunConfig(tasks=[], judge=SERVED, judge_base_url=s.url, cache_dir=str(tmp_path)),
                           max_retries=1)
        with pytest.raises(MedevalError, match="judge fake-judge-FAKE at http://127.0.0.1") as err:
            ask(judge, ["Tuberculosis"], "Tuberculosis", {})
        assert SECRET not in str(err.value) and "re-run" in str(err.value)


def test_judge_needs_a_key_for_openai(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MedevalError, match="OPENAI_API_KEY"):
        make_judge(RunConfig(tasks=[], judge="gpt-4o", no_cache=True))
    with pytest.raises(MedevalError, match="user:password"):
        make_judge(RunConfig(tasks=[], judge="m", judge_base_url="http://u:p@127.0.0.1:1/v1", no_cache=True))


def test_run_with_llm_judge_records_verdicts_and_reuses_them(server, hf_backend, tmp_path):
    """A real run of cupcase on the embedded model, judged by the FAKE judge; the re-run asks nothing."""
    cfg = RunConfig(tasks=["cupcase"], limit=2, max_tokens=48, data_dir=str(DATA), judge=SERVED,
                    judge_base_url=server.url, cache_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "a"))
    res = run(cfg, backend=hf_backend, progress=False)
    samples = [json.loads(l) for l in (tmp_path / "a" / "samples_cupcase.jsonl").open()]
    judged = [s["greedy"]["judge"] for s in samples]
    assert all(j["judge"] == SERVED for j in judged)
    asked = sum(j["verdict"] != "no differential" for j in judged)
    assert asked >= 1, "the embedded model wrote no usable differential: the judge path went untested"
    assert posts(server) == asked
    for s in samples:
        assert s["greedy"]["pred"] == s["greedy"]["judge"]["rank"]
    assert 0 <= res["tasks"]["cupcase"]["metrics"]["greedy"]["top5_accuracy"]["value"] <= 1
    run(RunConfig(**{**cfg.__dict__, "output_dir": str(tmp_path / "b")}), backend=hf_backend, progress=False)
    assert posts(server) == asked
    again = [json.loads(l)["greedy"]["judge"] for l in (tmp_path / "b" / "samples_cupcase.jsonl").open()]
    assert [j["rank"] for j in again] == [j["rank"] for j in judged]
