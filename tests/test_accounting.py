"""Per-sample accounting: finish reasons, token counts, truncation rates, usage and cost.

Runs go through the OpenAI backend against the loopback server in its `echo` mode, a FAKE model
(hash-derived answer letters, one FAKE token per word) whose counts are known exactly; the HF
path is covered by tests/test_hf_backend.py and tests/test_run.py on the real embedded model.
"""
from __future__ import annotations

import json

import pytest

from medeval import accounting as A
from medeval.backends.openai_backend import OpenAIBackend
from medeval.reporting.summary import summary
from medeval.errors import MedevalError
from medeval.runs.runner import RunConfig, run
from medeval.testing.openai_server import ECHO_MODEL, OpenAITestServer


def samples(out, task):
    return [json.loads(line) for line in (out / f"samples_{task}.jsonl").read_text().splitlines()]


def echo_run(srv, data_dir, out, cache, max_tokens, samples="per_sample", **kw):
    backend = OpenAIBackend(ECHO_MODEL, base_url=srv.url, max_retries=0, timeout=10, samples=samples)
    cfg = RunConfig(tasks=["medqa"], limit=4, self_consistency=3, max_tokens=max_tokens, data_dir=str(data_dir),
                    output_dir=str(out), cache_dir=str(cache), **kw)
    return run(cfg, backend=backend, progress=False)


def test_truncated_answers_are_counted_and_priced_and_a_cached_rerun_reports_the_same(tmp_path, data_dir,
                                                                                     monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with OpenAITestServer("echo") as srv:
        # "The answer is X" is 4 FAKE tokens: max_tokens=2 cuts every sample before the letter
        cut = echo_run(srv, data_dir, tmp_path / "cut", tmp_path / "c1", 2, price_per_mtok="3,15")
        bodies = [e for e in srv.entries(status=200)]
        full = echo_run(srv, data_dir, tmp_path / "full", tmp_path / "c1", 8)
        asked = len(srv.entries(status=200))
        again = echo_run(srv, data_dir, tmp_path / "again", tmp_path / "c1", 2, price_per_mtok="3,15")
        assert len(srv.entries(status=200)) == asked, "the re-run is served from the cache"

    t = cut["tasks"]["medqa"]
    for mode, k in (("greedy", 1), ("sc", 3)):
        u = t["usage"][mode]
        assert u["samples"] == 4 * k and u["finish_reasons"] == {"length": 4 * k}
        assert u["truncated"] == 4 * k and u["truncation_rate"] == 1.0 and u["mean_completion_tokens"] == 2
        assert t["invalid"][mode]["count"] == 4 and t["invalid"][mode]["truncated"] == 4
        assert t["invalid"][mode]["samples_truncated"] == 4 * k
        assert u["completion_tokens"] == 2 * 4 * k and u["token_counts"] == "complete"
    # the prompt tokens are the server's own counts (FAKE: words of the JSON of the messages)
    billed = sum(len(srv_prompt(b).split()) for b in bodies)
    usage = cut["usage"]["generation"]
    assert usage["prompt_tokens"] == billed and usage["completion_tokens"] == 2 * (4 + 12)
    assert usage["cost_usd"] == pytest.approx((billed * 3 + 32 * 15) / 1e6)
    assert usage["price_per_mtok"] == {"input": 3.0, "output": 15.0} and cut["usage"]["judge"] == {}
    rows = samples(tmp_path / "cut", "medqa")
    assert all(r["greedy"]["finish_reasons"] == ["length"] and r["greedy"]["tokens"]["per_sample"] == [2]
               for r in rows)
    assert all(r["sc"]["finish_reasons"] == ["length"] * 3 and r["sc"]["tokens"]["completion"] == 6 for r in rows)
    # enough tokens: every sample ends normally and nothing is truncated
    f = full["tasks"]["medqa"]
    assert f["usage"]["greedy"]["finish_reasons"] == {"stop": 4} and f["invalid"]["greedy"]["truncated"] == 0
    assert f["usage"]["sc"]["truncation_rate"] == 0.0 and f["usage"]["sc"]["mean_completion_tokens"] == 4
    assert "cost_usd" not in f["usage"]["greedy"] and full["usage"]["generation"]["cost_usd"] is None
    # from the cache: the same samples, the same accounting, the same cost
    assert again["cache"]["misses"] == 0
    assert again["usage"] == cut["usage"] and again["tasks"]["medqa"]["usage"] == t["usage"]
    assert samples(tmp_path / "again", "medqa") == rows


def srv_prompt(entry: dict) -> str:
    """What the echo server counts as the prompt of a logged chat request."""
    body = entry["body"]
    msgs = [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
    return json.dumps({"messages": msgs, "continue": bool(body.get("continue_final_message"))}, sort_keys=True)


def test_seeded_fallback_counts_each_sample_and_native_n_only_the_total(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with OpenAITestServer("echo", ignore_n=True) as srv:   # one choice whatever n: one call per sample
        seeded = echo_run(srv, data_dir, tmp_path / "s", tmp_path / "c", 8, samples="native", no_cache=True)
    with OpenAITestServer("echo") as srv:
        native = echo_run(srv, data_dir, tmp_path / "n", tmp_path / "c", 8, samples="native", no_cache=True)
    s_rows, n_rows = samples(tmp_path / "s", "medqa"), samples(tmp_path / "n", "medqa")
    assert all(r["sc"]["tokens"]["per_sample"] == [4, 4, 4] for r in s_rows)
    assert all(r["sc"]["tokens"]["per_sample"] == [None] * 3 and r["sc"]["tokens"]["completion"] == 12
               for r in n_rows)
    # the seeded path bills the prompt once per call: three times the native path's prompt tokens
    assert seeded["tasks"]["medqa"]["usage"]["sc"]["prompt_tokens"] == 3 * native["tasks"]["medqa"]["usage"]["sc"]["prompt_tokens"]
    assert seeded["tasks"]["medqa"]["usage"]["sc"]["completion_tokens"] == native["tasks"]["medqa"]["usage"]["sc"]["completion_tokens"] == 48


def test_summary_prints_truncation_beside_invalid(tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with OpenAITestServer("echo") as srv:
        res = echo_run(srv, data_dir, tmp_path / "o", tmp_path / "c", 2, no_cache=True, price_per_mtok="1,1")
    summary(res)
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if "invalid" in line)
    assert header.index("invalid") < header.index("truncated")
    assert "100% / 100%" in text and "tokens:" in text and "estimated cost $" in text


def test_price_inputs_are_checked_before_any_generation(tmp_path):
    assert A.parse_price("2.5, 10") == {"input": 2.5, "output": 10.0}
    for bad in ("2.5", "a,b", "1,-2", "1,2,3", "nan,1"):
        with pytest.raises(MedevalError, match="--price-per-mtok"):
            A.parse_price(bad)
    table = tmp_path / "prices.yaml"
    table.write_text("gpt-4o: {input: 2.5, output: 10}\njudge-x: {input: 1, output: 2}\n")
    assert A.load_price_table(table)["judge-x"] == {"input": 1.0, "output": 2.0}
    table.write_text("gpt-4o: {input: 2.5}\n")
    with pytest.raises(MedevalError, match=r"prices.yaml: field 'gpt-4o': needs exactly `input` and `output`"):
        A.load_price_table(table)
    with pytest.raises(MedevalError, match="price table not found"):
        run(RunConfig(tasks=["medqa"], price_table=str(tmp_path / "none.yaml")), backend=object())


def test_run_usage_keeps_judge_tokens_apart_and_prices_them_from_the_table():
    tasks = {"t": {"usage": {"greedy": {"requests": 2, "samples": 2, "prompt_tokens": 1000, "completion_tokens": 100}},
                   "judge": {"judge": "judge-x", "usage": {"requests": 2, "prompt_tokens": 400, "completion_tokens": 20,
                                                           "requests_without_usage": 0}}}}
    out = A.run_usage(tasks, None, {"m": {"input": 1.0, "output": 10.0}, "judge-x": {"input": 2.0, "output": 4.0}},
                      "m", "--price-table p.yaml")
    assert out["generation"]["cost_usd"] == pytest.approx((1000 + 1000) / 1e6)
    assert tasks["t"]["usage"]["greedy"]["cost_usd"] == pytest.approx(2000 / 1e6)
    assert out["judge"]["judge-x"]["prompt_tokens"] == 400
    assert out["judge"]["judge-x"]["cost_usd"] == pytest.approx((800 + 80) / 1e6)
    assert out["cost_usd_total"] == pytest.approx(2880 / 1e6)
