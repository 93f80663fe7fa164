"""The OpenAI backend against real servers: the in-package server (mode hf) and llama-cpp-python's
`python -m llama_cpp.server` on the embedded GGUF (the `llamacpp_server` fixture in conftest.py).

Every test in `TestServers` runs against both: generation, stops, finish reasons, token usage,
seeded self-consistency, the n-probe and loglikelihood. The in-package server also mimics
llama-cpp-python's refusal of token-id prompts (`text_prompts_only`, for the fault paths)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from medeval.backends.base import BackendError, Request, Sampling
from medeval.backends.openai_backend import (OpenAIBackend, _continuation_start, is_validation_error,
                                             split_text)
from medeval.testing.openai_server import HF_MODEL, OpenAITestServer

from conftest import LLAMACPP_MODEL


def test_continuation_tokens_are_found_by_text_offset():
    # "Answer:" | " A"   -> tokens "Answer", ":", " A": the continuation starts at a token boundary
    assert _continuation_start([0, 6, 7], boundary=7, end=9) == (2, False)
    # "four chamb" | "ers" -> tokens "four", " chambers": " chambers" begins in the context
    assert _continuation_start([0, 4], boundary=10, end=13) == (1, True)
    # the generated token (at offset == end) is not the continuation's; a continuation inside the last token
    assert _continuation_start([0, 4, 13], boundary=10, end=13) == (1, True)
    assert split_text("Answer: ", "A") == ("Answer:", " A") and split_text("Q:", " B") == ("Q:", " B")


def test_what_counts_as_a_validation_error():
    pydantic = json.dumps({"error": {"message": "2 validation errors:\n  {'type': 'string_type', ...}",
                                     "type": "internal_server_error"}})
    assert is_validation_error(400, "") and is_validation_error(422, "{}")
    assert is_validation_error(500, pydantic)
    assert is_validation_error(500, json.dumps({"error": {"message": "bad", "type": "invalid_request_error"}}))
    assert not is_validation_error(500, json.dumps({"error": {"message": "injected fault 500", "type": "server_error"}}))
    assert not is_validation_error(500, "<html>Internal Server Error</html>")
    assert not is_validation_error(503, pydantic) and not is_validation_error(429, "")


def test_a_validation_error_fails_at_once_with_the_servers_message():
    """HTTP 500 whose body is a validation error (llama-cpp-python's answer to token ids): no retries."""
    from medeval.backends.hf import embedded_model_dir

    req = Request("r", (("user", "Question: ?\nAnswer:"),), chat=False, continuations=(" A", " B"))
    with OpenAITestServer(text_prompts_only=True) as srv:   # FAKE echo model: only the refusal is real here
        b = OpenAIBackend("medeval-echo-FAKE", base_url=srv.url, tokenizer=str(embedded_model_dir()),
                          prompt_format="token_ids", max_retries=5)
        with pytest.raises(BackendError) as info:
            list(b.loglikelihood([req]))
        assert len(srv.log) == 1 and srv.log[0]["status"] == 500
    msg = str(info.value)
    assert "HTTP 500, the server refused the request (not retried)" in msg
    assert "2 validation errors" in msg and "Input should be a valid string" in msg and "'r'" in msg
    assert "need a server that returns prompt logprobs" in msg


@pytest.mark.slow
def test_text_prompts_detected_once_and_a_straddling_token_is_counted_and_flagged(hf_backend):
    """A server that refuses token ids: detected on the first request (one refusal in the log), every
    later request goes as text; a token that begins in the context is part of the continuation's score."""
    from medeval.backends.hf import embedded_model_dir

    reqs = [Request("clean", (("user", "The heart has four"),), chat=False, continuations=(" chambers", " legs")),
            Request("straddle", (("user", "The heart has four chamb"),), chat=False, continuations=("ers", "ber")),
            Request("whole", (("user", "The heart has four"),), chat=False, continuations=(" chambers",))]
    with OpenAITestServer("hf", text_prompts_only=True) as srv:
        b = OpenAIBackend(HF_MODEL, base_url=srv.url, tokenizer=str(embedded_model_dir()), concurrency=3)
        got = dict(b.loglikelihood(reqs))
        statuses = [e["status"] for e in srv.log]
    assert statuses.count(500) == 1 and statuses.count(200) == 5   # one refusal, then text for all
    assert b.ll_prompt == "text" and b.describe()["loglikelihood_prompt"].startswith("text (")
    assert "refused token-id prompts: HTTP 500" in b.describe()["loglikelihood_prompt"]
    ref = dict(hf_backend.loglikelihood(reqs))
    assert got[0].logprobs == pytest.approx(ref[0].logprobs, abs=2e-4) and got[0].straddles == [False, False]
    # "four chamb|ers": the server's token " chambers" begins in the context; its log-probability is the
    # score, i.e. the score of " chambers" after "The heart has four", and the samples say so
    assert got[1].straddles[0] is True and got[1].tokens[0] == 1
    assert got[1].logprobs[0] == pytest.approx(ref[2].logprobs[0], abs=2e-4)
    assert b.describe()["straddled_continuations"] >= 1
    assert b.describe()["echo_logprobs"] == "aligned"
    # llama-cpp-python 0.3 echoes the prompt logprobs of a model without BOS one position late: detected, and
    # each continuation token is then scored by a request without echo that forces it: the same scores
    rare = Request("rare", (("user", "The heart has four"),), chat=False, continuations=(" chambers", " zebra crossings"))
    with OpenAITestServer("hf", text_prompts_only=True, shifted_echo=True) as srv:
        late = OpenAIBackend(HF_MODEL, base_url=srv.url, prompt_format="text")
        shifted = dict(late.loglikelihood([rare]))[0]
        forced = [e["body"]["logit_bias"] for e in srv.log if not e["body"].get("echo")]
    assert late.describe()["echo_logprobs"].startswith("shifted by one token")
    assert forced == [{" chambers": 100.0}, {" zebra": 100.0}, {" crossings": 100.0}]
    assert shifted.logprobs == pytest.approx(dict(hf_backend.loglikelihood([rare]))[0].logprobs, abs=2e-4)


# -- the same checks against both servers ----------------------------------------------------------

@pytest.fixture(scope="module", params=["in-package", "llama.cpp"])
def served(request):
    if request.param == "llama.cpp":
        yield SimpleNamespace(kind="llama.cpp", url=request.getfixturevalue("llamacpp_server"), model=LLAMACPP_MODEL)
        return
    with OpenAITestServer("hf") as srv:
        yield SimpleNamespace(kind="in-package", url=srv.url, model=HF_MODEL)


def backend(served, **kw) -> OpenAIBackend:
    return OpenAIBackend(served.model, base_url=served.url, timeout=120, max_retries=2, **kw)


def outputs(b: OpenAIBackend, reqs) -> dict:
    got = list(b.generate(reqs))
    assert sorted(i for i, _ in got) == list(range(len(reqs)))
    return dict(got)


@pytest.mark.slow
class TestServers:
    def test_generation_stops_finish_reasons_and_usage(self, served):
        chat = Request("chat", (("user", "What is the capital of France?"),), Sampling(max_tokens=8))
        plain = Request("plain", (("user", "The heart has four"),), Sampling(max_tokens=8), chat=False)
        first = outputs(backend(served), [chat, plain])
        for o in first.values():
            assert o.texts[0].strip() and o.info["prompt_tokens"] > 0
            assert o.info["completion_tokens"][0] <= 8
            assert o.finish_reasons != ["length"] or o.info["completion_tokens"] == [8]
        if served.kind == "in-package":   # the dequantized weights; llama.cpp's Q4_1 answers otherwise
            assert "Paris" in first[0].texts[0] and first[0].finish_reasons == ["stop"]   # ends at its EOS
        assert first[1].finish_reasons == ["length"]
        words = first[1].texts[0].split()
        stop = words[1] if len(words) > 1 else words[0]   # a string the model is known to produce
        stopped = Request("stopped", plain.messages, Sampling(max_tokens=8, stop=(stop,)), chat=False)
        again = outputs(backend(served), [stopped])[0]
        assert again.finish_reasons == ["stop"] and stop not in again.texts[0]
        assert first[1].texts[0].startswith(again.texts[0])
        assert again.info["completion_tokens"][0] <= 8

    def test_self_consistency_samples_are_seeded_per_sample(self, served):
        sc = Request("sc", (("user", "Name a bone."),), Sampling(n=2, temperature=1.0, seed=3, max_tokens=5))
        a, b = outputs(backend(served), [sc])[0], outputs(backend(served), [sc])[0]
        assert len(a.texts) == 2 and a.texts == b.texts          # the server honours each sample's seed
        assert a.info["n_path"] == "per_sample" and a.info["http_calls"] == 2
        assert len(set(a.texts)) > 1                               # and the samples differ

    def test_the_n_probe(self, served):
        sc = Request("sc", (("user", "Name a bone."),), Sampling(n=2, temperature=0.9, seed=5, max_tokens=3))
        b = backend(served, samples="native", concurrency=1)
        got = outputs(b, [sc, sc])
        assert all(len(o.texts) == 2 for o in got.values())
        expected = {"in-package": "native", "llama.cpp": "per-sample fallback (server does not honour n)"}
        assert b.describe()["n_support"] == expected[served.kind]

    def test_loglikelihood_agrees_with_the_hf_backend(self, served, hf_backend, data_dir, tmp_path):
        from medeval.backends.hf import embedded_model_dir
        from medeval.runs.runner import RunConfig, run

        # MMLU's short prompts: llama-cpp-python's echo costs time quadratic in the prompt's length
        common = dict(tasks=["openllm_mmlu_anatomy"], limit=2, data_dir=str(data_dir), no_cache=True)
        b = backend(served, tokenizer=str(embedded_model_dir()))
        api = run(RunConfig(**common, output_dir=str(tmp_path / "api")), backend=b, progress=False)
        run(RunConfig(**common, output_dir=str(tmp_path / "hf")), backend=hf_backend, progress=False)
        rows = {d: [json.loads(line) for line in
                    (tmp_path / d / "samples_openllm_mmlu_anatomy.jsonl").read_text().splitlines()]
                for d in ("api", "hf")}
        fmt = {"in-package": "token ids", "llama.cpp": "text"}[served.kind]
        assert api["model"]["loglikelihood_prompt"].startswith(fmt)
        # llama.cpp computes on the Q4_1 weights (activations quantised too), HF on their dequantized copy
        tol = {"in-package": 2e-4, "llama.cpp": 0.75}[served.kind]   # vs_llamacpp_ll: up to 0.61 on MedQA
        for a, h in zip(rows["api"], rows["hf"]):
            assert a["prompt"] == h["prompt"] and a["loglikelihood"]["tokens"] == h["loglikelihood"]["tokens"]
            assert a["loglikelihood"]["logprobs"] == pytest.approx(h["loglikelihood"]["logprobs"], abs=tol)
            assert a["loglikelihood"]["pred"] == h["loglikelihood"]["pred"]
            assert a["loglikelihood"].get("straddles", [False] * 4) == [False] * 4
