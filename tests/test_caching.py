"""The seams of issue 15: the cache is a wrapper around any backend, and graders are ordinary models.

The model behind the loopback server is its `echo` generator, a FAKE model (hash-derived letters);
the HTTP client, the cache (a real SQLite file), the wrapper and the graders are the real code.
"""
from __future__ import annotations

import pytest

from medeval.backends.base import Request, Sampling
from medeval.backends.openai_backend import OpenAIBackend
from medeval.backends.cache import Cache
from medeval.backends.caching import CachingBackend
from medeval.errors import MedevalError
from medeval.graders.registry import Graders
from medeval.graders.judge import LexicalJudge, LLMJudge
from medeval.graders.rubric import RubricGrader
from medeval.runs.runner import RunConfig, run
from medeval.tasks.spec import Registry
from medeval.testing.openai_server import OpenAITestServer


def ask(n: int, i: int = 0) -> Request:
    return Request(f"q{i}", (("user", f"Question {i}: A, B, C or D?"),),
                   Sampling(n=n, temperature=0.8, seed=7, max_tokens=8))


def chat(srv) -> OpenAIBackend:
    return OpenAIBackend(srv.model_name, base_url=srv.url, max_retries=0, timeout=10.0)


def test_the_wrapper_asks_only_for_missing_samples_and_keeps_the_interface(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAITestServer() as srv:
        cached = CachingBackend(chat(srv), Cache(tmp_path))
        assert (cached.name, cached.model_id) == ("openai", srv.model_name)      # the backend's own
        assert cached.render(ask(2)) == cached.backend.render(ask(2))
        first = dict(cached.generate([ask(2)]))[0]
        assert first.cached == 0 and len(srv.log) == 2                            # two seeded n=1 calls
        grown = dict(cached.generate([ask(3), ask(1, i=1)]))                      # k 2 -> 3, one new prompt
        assert len(srv.log) == 4, "only sample index 2 of q0 and q1's one sample are asked"
        assert grown[0].cached == 2 and grown[0].texts[:2] == first.texts and None not in grown[0].texts
        assert grown[1].cached == 0 and (cached.cache.hits, cached.cache.misses) == (2, 4)
        again = dict(cached.generate([ask(3), ask(1, i=1)]))
        assert len(srv.log) == 4 and [g.cached for g in again.values()] == [3, 1]
        assert again[0].texts == grown[0].texts and again[0].tokens == grown[0].tokens
        cached.close()


def test_graders_are_built_once_per_run_over_one_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    reg = Registry()
    cfg = RunConfig(tasks=[], judge="j", judge_base_url="http://127.0.0.1:9/v1", extract_judge="x",
                    extract_judge_base_url="http://127.0.0.1:9/v1", cache_dir=str(tmp_path))
    graders = Graders(cfg, [reg.tasks["healthbench"]])
    a, b = graders.for_type("diagnosis"), graders.for_type("rubric")
    assert isinstance(a, LLMJudge) and isinstance(b, RubricGrader) and graders.for_type("choice") is None
    assert a.chat is b.chat and a is not graders.for_type("diagnosis")   # one model; a fresh tally per task
    x = graders.extract_for()
    assert x.chat.cache is a.chat.cache and x is not graders.extract_for()   # one cache connection; a tally per task
    graders.close()
    same = Graders(cfg).for_type("diagnosis")
    other = Graders(RunConfig(tasks=[], judge="k", judge_base_url="http://127.0.0.1:9/v1", no_cache=True))
    assert same.cache_keys("p") == a.cache_keys("p") != other.for_type("diagnosis").cache_keys("p")
    assert same.cache_keys("p") != same.cache_keys("q")
    assert isinstance(Graders(RunConfig(tasks=[])).for_type("diagnosis"), LexicalJudge)
    with pytest.raises(MedevalError, match="HealthBench tasks are graded by a model"):
        Graders(RunConfig(tasks=[])).for_type("rubric")


def test_a_missing_judge_key_fails_before_any_generation(tmp_path, monkeypatch, data_dir):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = RunConfig(tasks=["cupcase"], limit=1, data_dir=str(data_dir), judge="gpt-4o",
                    cache_dir=str(tmp_path / "c"), output_dir=str(tmp_path / "o"))
    with pytest.raises(MedevalError, match=r"--judge gpt-4o asks the OpenAI API: set \$OPENAI_API_KEY"):
        run(cfg, backend=object(), progress=False)   # object(): any generation would fail differently


def test_a_rubric_task_without_judge_is_refused_before_the_model_loads_yet_its_data_checks(tmp_path, data_dir):
    from medeval.runs.render import check_data

    cfg = RunConfig(tasks=["healthbench"], limit=1, data_dir=str(data_dir), cache_dir=str(tmp_path / "c"),
                    output_dir=str(tmp_path / "o"))
    with pytest.raises(MedevalError, match="HealthBench tasks are graded by a model: pass --judge MODEL"):
        run(cfg, backend=object(), progress=False)   # object(): any generation would fail differently
    assert check_data(Registry().tasks["healthbench"], data_dir) is None   # `medeval tasks --data-dir`: data fine
