"""OpenAIBackend against a real HTTP server on localhost.

Most tests use the server's `echo` generator, a FAKE model (hash-derived answer
letters) that makes faults cheap to test; one slow test generates with the
embedded SmolLM2 through the same HTTP path.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import traceback
from collections import Counter

import pytest

from medeval.backends.base import BackendError, Request, Sampling
from medeval.backends.openai_backend import OpenAIBackend
from medeval.errors import MedevalError
from medeval.testing.openai_server import ECHO_MODEL, HF_MODEL, OpenAITestServer

SECRET = "sk-medeval-TEST-9f3c2a7e5b1d"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def ask(i: int, n: int = 1, temperature: float = 0.0, seed: int | None = None, **kw) -> Request:
    return Request(f"q{i}", (("system", "Answer with a letter."), ("user", f"Question {i}: A, B, C or D?")),
                   Sampling(n=n, temperature=temperature, seed=seed, max_tokens=16), **kw)


def backend(server: OpenAITestServer, **kw) -> OpenAIBackend:
    kw.setdefault("max_retries", 3)
    kw.setdefault("timeout", 5.0)
    return OpenAIBackend(server.model_name, base_url=server.url, **kw)


def run(b: OpenAIBackend, requests) -> dict:
    got = list(b.generate(requests))
    indices = [i for i, _ in got]
    assert sorted(indices) == list(range(len(requests))), f"each request exactly once, got {indices}"
    return dict(got)


def successes_per_body(server: OpenAITestServer) -> Counter:
    return Counter(json.dumps(e["body"], sort_keys=True) for e in server.entries(status=200))


def test_chat_request_shape_and_render():
    with OpenAITestServer() as srv:
        b = backend(srv, samples="native")
        reqs = [ask(0), ask(1, n=3, temperature=0.7, seed=5)]
        outs = run(b, reqs)
        bodies = {e["body"]["messages"][1]["content"]: e["body"] for e in srv.log}
    assert len(srv.log) == 2 and all(e["path"] == "/v1/chat/completions" for e in srv.log)
    greedy, sampled = bodies["Question 0: A, B, C or D?"], bodies["Question 1: A, B, C or D?"]
    assert greedy["temperature"] == 0.0 and "seed" not in greedy and greedy["n"] == 1
    assert greedy["max_tokens"] == 16 and greedy["model"] == ECHO_MODEL
    assert (sampled["n"], sampled["seed"], sampled["temperature"]) == (3, 5, 0.7)
    assert json.loads(b.render(reqs[0])) == {"messages": greedy["messages"]}
    assert len(outs[1].texts) == 3 and all(t.startswith("The answer is ") for t in outs[1].texts)
    assert outs[1].info["n_path"] == "native" and outs[0].info["n_path"] == "single"
    d = b.describe()
    assert (d["backend"], d["id"], d["server_model"]) == ("openai", ECHO_MODEL, ECHO_MODEL)
    assert d["n_support"] == "native"
    assert d["base_url"] == srv.url and d["revision"] is None  # stable for the cache key


def test_completions_prefill_stop_and_chat_template_kwargs():
    with OpenAITestServer() as srv:
        b = backend(srv)
        plain = Request("p", (("user", "The heart has four"),), Sampling(max_tokens=16, stop=("is",)),
                        chat=False)
        pre = ask(1, prefill="The answer is", chat_template_kwargs=(("enable_thinking", False),))
        outs = run(b, [plain, pre])
        by_path = {e["path"]: e["body"] for e in srv.log}
    sent = by_path["/v1/completions"]
    assert sent["prompt"] == "The heart has four" == b.render(plain) and sent["stop"] == ["is"]
    assert outs[0].texts == ["The answer "] and outs[0].finish_reasons == ["stop"]
    chat = by_path["/v1/chat/completions"]
    assert chat["messages"][-1] == {"role": "assistant", "content": "The answer is"}
    assert chat["continue_final_message"] is True and chat["add_generation_prompt"] is False
    assert chat["chat_template_kwargs"] == {"enable_thinking": False}
    assert json.loads(b.render(pre)) == {"messages": chat["messages"],
                                         "chat_template_kwargs": {"enable_thinking": False}}
    with OpenAITestServer() as srv:
        run(backend(srv, prefill_flags=False, chat_template_kwargs={"enable_thinking": True, "x": 1}), [pre])
        body = srv.log[0]["body"]
    assert "continue_final_message" not in body  # the request's own kwargs win over the backend's
    assert body["chat_template_kwargs"] == {"enable_thinking": False, "x": 1}


def test_completions_api_without_tokenizer_fails_before_any_request():
    with OpenAITestServer() as srv:
        with pytest.raises(BackendError, match="needs a tokenizer.*'q0'"):
            list(backend(srv, api="completions").generate([ask(0)]))
        assert srv.log == []


def seeds_of(log, i):
    return [e["body"]["seed"] for e in log if f"Question {i}:" in e["body"]["messages"][1]["content"]
            and e["status"] == 200]


def test_each_sample_is_its_own_request_seeded_from_seed_prompt_and_index():
    """Default scheme: k=3 then the missing indices 3, 4 are the requests a fresh k=5 sends."""
    from dataclasses import replace

    from medeval.backends.base import sample_seed

    k5 = [ask(i, n=5, temperature=0.8, seed=10) for i in range(2)]
    k3 = [replace(r, sampling=replace(r.sampling, n=3)) for r in k5]
    rest = [replace(r, sampling=replace(r.sampling, n=2), sample_indices=(3, 4)) for r in k5]
    with OpenAITestServer() as srv:
        b = backend(srv)
        fresh, first, grown = run(b, k5), run(b, k3), run(b, rest)
        log = list(srv.log)
    for i in range(2):
        assert first[i].texts + grown[i].texts == fresh[i].texts
        assert seeds_of(log, i) == 2 * [sample_seed(10, b.render(k5[i]), j) for j in range(5)]
        assert fresh[i].info["n_path"] == "per_sample" and fresh[i].info["http_calls"] == 5
    assert all(e["body"]["n"] == 1 for e in log) and b.honours_n is None   # n is never probed
    with OpenAITestServer() as srv:   # native n: the missing samples of a grown run are still seeded per index
        nb = backend(srv, samples="native")
        grown_native = run(nb, rest)
        assert [e["body"]["n"] for e in srv.log] == [1] * 4
    assert all(grown_native[i].texts == grown[i].texts and grown_native[i].info["n_path"] == "per_sample"
               for i in range(2))


@pytest.mark.parametrize("server_n", ["ignore_n", "reject_n"])
def test_native_n_not_honoured_falls_back_to_per_sample_requests(server_n, caplog):
    reqs = [ask(i, n=4, temperature=0.8, seed=10) for i in range(3)]
    with OpenAITestServer() as srv:
        per_sample = run(backend(srv), reqs)
        native = run(backend(srv, samples="native"), reqs)
        assert all(o.info["n_path"] == "native" and o.info["http_calls"] == 1 for o in native.values())
    with OpenAITestServer(**{server_n: True}) as srv:
        b = backend(srv, concurrency=1, samples="native")
        fallback = run(b, reqs)
        log = list(srv.log)
    assert b.honours_n is False and b.describe()["n_support"] == "per-sample fallback (server does not honour n)"
    assert "does not honour n" in caplog.text
    probe, rest = log[0], log[1:]
    assert probe["body"]["n"] == 4 and probe["retry_count"] == 0
    assert probe["status"] == (500 if server_n == "reject_n" else 200) and len(rest) == 3 * 4
    for i in range(3):
        assert fallback[i].texts == per_sample[i].texts        # the same seeded requests as the default scheme
        assert fallback[i].info["n_path"].startswith("per_sample")
        assert len(seeds_of(rest, i)) == 4
    assert fallback[2].info["http_calls"] == 4


def test_injected_faults_recover_and_deliver_each_result_once():
    reqs = [ask(i, temperature=0.5, seed=i) for i in range(10)]
    with OpenAITestServer() as clean:
        expected = run(backend(clean), reqs)
    faults = ["429", "500", "503", "drop", "delay"]
    with OpenAITestServer(faults=faults, delay_s=3.0) as srv:
        outs = run(backend(srv, timeout=0.5, concurrency=4), reqs)
        statuses = Counter(str(e["status"]) for e in srv.log)
        per_body = successes_per_body(srv)
        retried = [e for e in srv.log if e["retry_count"] > 0]
    assert {i: o.texts for i, o in outs.items()} == {i: o.texts for i, o in expected.items()}
    assert statuses == Counter({"200": 10, "429": 1, "500": 1, "503": 1, "dropped": 1, "delayed": 1})
    assert len(per_body) == 10 and set(per_body.values()) == {1}  # one success per request
    assert len(retried) == 5 == sum(o.info["retries"] for o in outs.values())


def test_transient_errors_while_probing_n_are_not_taken_for_a_refusal():
    reqs = [ask(i, n=3, temperature=0.5, seed=7) for i in range(4)]
    with OpenAITestServer() as clean:
        expected = run(backend(clean, samples="native"), reqs)
    with OpenAITestServer(faults=["500", "503", "drop"]) as srv:
        b = backend(srv, concurrency=2, samples="native")
        outs = run(b, reqs)
        per_body = successes_per_body(srv)
    assert b.honours_n is True and all(o.info["n_path"] == "native" for o in outs.values())
    assert {i: o.texts for i, o in outs.items()} == {i: o.texts for i, o in expected.items()}
    assert len(per_body) == 4 and set(per_body.values()) == {1}


def test_an_outage_while_probing_n_fails_the_run_and_decides_nothing():
    """HTTP 500s that do not say "completion choice" through every retry: an outage, not a refusal of n."""
    with OpenAITestServer(faults=["500"] * 4) as srv:
        b = backend(srv, concurrency=1, max_retries=2, samples="native")
        with pytest.raises(BackendError, match="HTTP 500"):
            list(b.generate([ask(0, n=3, temperature=0.5, seed=7)]))
        assert len(srv.log) == 4 and all(e["body"]["n"] == 3 for e in srv.log)  # probe + 1 + 2 retries
    assert b.honours_n is None


def test_a_failure_keeps_completions_already_in_flight():
    """One request fails for good while another is in flight: the other is still delivered, then the error."""
    with OpenAITestServer(faults=["delay", "500"], delay_s=1.0) as srv:
        b = backend(srv, concurrency=2, max_retries=0)
        got = []
        with pytest.raises(BackendError, match="HTTP 500"):
            for item in b.generate([ask(i) for i in range(4)]):
                got.append(item[0])
        log = list(srv.log)
    delayed = [e for e in log if e["fault"] == "delay"]
    assert len(log) == 2 and len(delayed) == 1          # requests 2 and 3 were never sent
    assert got == [int(delayed[0]["body"]["messages"][1]["content"].split()[1].rstrip(":"))]


def test_exhausted_retries_raise_after_yielding_earlier_results():
    with OpenAITestServer(faults=["ok", "ok"] + ["500"] * 20) as srv:
        b = backend(srv, concurrency=1, max_retries=2)
        got = []
        with pytest.raises(BackendError) as info:
            for item in b.generate([ask(i) for i in range(5)]):
                got.append(item)
        attempts = [e["retry_count"] for e in srv.log if "Question 2:" in json.dumps(e["body"])]
    assert [i for i, _ in got] == [0, 1]
    msg = str(info.value)
    assert srv.url in msg and "HTTP 500" in msg and "after 2 retries" in msg and "'q2'" in msg
    assert attempts == [0, 1, 2]


def test_timeouts_refused_connections_and_client_errors_are_clear():
    with OpenAITestServer(faults=["delay"] * 5, delay_s=3.0) as srv:
        with pytest.raises(BackendError, match=r"no response within 0\.3s \(after 1 retries\)"):
            list(backend(srv, timeout=0.3, max_retries=1).generate([ask(0)]))
        assert len(srv.log) == 2
    with OpenAITestServer() as srv:
        with pytest.raises(BackendError, match=r"HTTP 404 \(after 0 retries\).*does not exist"):
            list(OpenAIBackend("no-such-model", base_url=srv.url).generate([ask(0)]))
        assert len(srv.log) == 1
        url = srv.url
    with OpenAITestServer(faults=["garbage"]) as srv:
        with pytest.raises(BackendError, match="not an OpenAI completion.*Bad Gateway"):
            list(backend(srv).generate([ask(0)]))
    with pytest.raises(BackendError, match=r"connection failed \(after 1 retries\).*server running"):
        list(OpenAIBackend("m", base_url=url, max_retries=1, timeout=1).generate([ask(0)]))


def test_results_are_yielded_progressively_and_early_stop_cancels():
    with OpenAITestServer() as srv:
        gen = backend(srv, concurrency=1).generate([ask(i) for i in range(20)])
        next(gen)
        seen_at_first_result = len(srv.log)
        gen.close()  # the caller stops: in-flight work is cancelled, the thread ends
    assert seen_at_first_result < 20


def test_api_key_never_leaks(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    with OpenAITestServer(api_key=SECRET, faults=["429", "drop", "ok"] + ["503"] * 10) as srv:
        b = backend(srv, max_retries=2, concurrency=1)
        got, texts = [], []
        with pytest.raises(BackendError) as info:
            for i, out in b.generate([ask(i) for i in range(3)]):
                got.append(i)
                texts += out.texts
        assert got == [0]  # the key was accepted (after 2 retries), then the server failed for good
    with OpenAITestServer(api_key="another-key") as srv:
        with pytest.raises(BackendError, match="HTTP 401") as denied:
            list(backend(srv).generate([ask(0)]))
    out = capsys.readouterr()
    everything = "\n".join([caplog.text, out.out, out.err, json.dumps(b.describe()), *texts]
                           + [str(e.value) + repr(e.value) + "".join(traceback.format_exception(e.value))
                              for e in (info, denied)])
    assert "Retrying" in caplog.text or "retr" in caplog.text.lower()  # the logs were captured
    assert SECRET not in everything
    with pytest.raises(MedevalError, match="carries a user:password") as bad_url:
        OpenAIBackend("m", base_url="http://user:pw-SECRET@127.0.0.1:1/v1?key=SECRET2")
    assert "pw-SECRET" not in str(bad_url.value) and "SECRET2" not in str(bad_url.value)


def test_server_command_line_serves_requests():
    with subprocess.Popen([sys.executable, "-m", "medeval.testing.openai_server", "--port", "0",
                           "--ignore-n"], stdout=subprocess.PIPE, text=True) as proc:
        serve_and_stop(proc)
    assert subprocess.run([sys.executable, "-m", "medeval.testing.openai_server", "--help"],
                          capture_output=True).returncode == 0


def serve_and_stop(proc: subprocess.Popen) -> None:
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {ECHO_MODEL} (echo) at http://127.0.0.1:")
        b = OpenAIBackend(ECHO_MODEL, base_url=line.split(" at ")[1].strip(), max_retries=0, samples="native")
        outs = run(b, [ask(0, n=2, temperature=1.0, seed=3)])
        assert len(outs[0].texts) == 2 and b.honours_n is False
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_real_model_over_http():
    from medeval.backends.hf import embedded_model_dir

    reqs = [Request("chat", (("user", "What is the capital of France?"),), Sampling(max_tokens=8)),
            Request("plain", (("user", "The heart has four"),), Sampling(max_tokens=8), chat=False),
            Request("sc", (("user", "Name a bone."),), Sampling(n=2, temperature=0.8, seed=3, max_tokens=8))]
    with OpenAITestServer("hf") as srv:
        b = OpenAIBackend(HF_MODEL, base_url=srv.url, timeout=120)
        first, again = run(b, reqs), run(b, reqs[2:])
        # the same chat request rendered here and sent as a plain completion gives the same greedy text
        local = OpenAIBackend(HF_MODEL, base_url=srv.url, api="completions",
                              tokenizer=str(embedded_model_dir()), timeout=120)
        rendered = run(local, reqs[:1])
    assert all(t.strip() for o in first.values() for t in o.texts)
    assert "Paris" in first[0].texts[0]
    assert again[0].texts == first[2].texts  # seeded sampling is reproducible
    assert "<|im_start|>user" in local.render(reqs[0])
    assert rendered[0].texts == first[0].texts


def test_the_runner_caches_completions_that_arrive_after_a_failure(tmp_path):
    from medeval.backends.cache import Cache
    from medeval.runs.runner import generate_all

    with OpenAITestServer(faults=["delay", "500"], delay_s=1.0) as srv:
        b = backend(srv, concurrency=2, max_retries=0)
        cache = Cache(tmp_path / "cache")
        with pytest.raises(BackendError, match="HTTP 500"):
            generate_all(b, cache, [ask(i) for i in range(4)], progress=False)
        assert cache.stats()["entries"] == 1 and len(srv.log) == 2
        again = generate_all(b, cache, [ask(i) for i in range(4)], progress=False)  # the re-run: 3 requests
        assert len(srv.log) == 5 and sum(r["cached"] for r in again.values()) == 1
