"""Offline vLLM backend: one `vllm.LLM` engine per run, all requests in ONE generate call.

Each sample of a self-consistency request is its own engine prompt (n=1) with a
seed derived from (seed, prompt, sample index); prefix caching shares the prompt.
Prompts are rendered here with the engine's own tokenizer and chat template and
sent as token ids (`TokensPrompt`), so `render()` is exactly what the engine saw
and no second BOS is added (see docs/vllm.md). vllm is imported lazily: this
module imports on machines without it.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
from typing import Callable, Iterator, Literal, Sequence

from pydantic import Field, PositiveInt

from .base import BackendError, Output, Request, Scored, sample_seed, split_pair
from .identity import Identity, fingerprint_dir, hub_commit, local_dir, sha256_text, tokenizer_fingerprint
from .model_args import ModelArgs, parse_model_args

log = logging.getLogger(__name__)

INSTALL = ("--backend vllm needs the vllm package ({why}). Install it on a machine with an "
           "NVIDIA/AMD GPU: `pip install vllm` (see docs/vllm.md), or use --backend hf")
NO_GPU = ("--backend vllm needs a GPU and torch sees none (torch.cuda.is_available() is False). "
          "Check the driver and CUDA_VISIBLE_DEVICES, or use --backend hf on CPU")
NO_DP = ("data_parallel_size={dp}: vLLM's offline LLM class refuses data parallelism in one "
         "process. Serve the model with `vllm serve MODEL --data-parallel-size {dp}` and use "
         "--backend openai against it, or run one job per GPU group")
# End-of-turn tokens of common chat formats; those in the tokenizer become stop tokens.
END_OF_TURN = ("<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")
SECRET_WORDS = ("token", "key", "secret", "password")


# Engine options that change outputs, so they are part of the backend's identity (besides the model,
# revision, dtype, quantization and max_model_len, which are read back from the engine).
IDENTITY_ARGS = ("kv_cache_dtype", "seed", "tokenizer", "tokenizer_revision", "hf_overrides")


NOT_ENGINE_ARGS = ("batch_invariant", "enable_thinking", "chat_template_kwargs")  # handled by the backend


class VLLMArgs(ModelArgs):
    """Options of the vllm backend: all but the last three go to `vllm.LLM`."""

    tensor_parallel_size: PositiveInt | None = None
    pipeline_parallel_size: PositiveInt | None = None
    data_parallel_size: PositiveInt | None = None
    distributed_executor_backend: Literal["mp", "ray", "uni", "external_launcher"] | None = None
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    max_model_len: PositiveInt | None = None
    max_num_seqs: PositiveInt | None = None
    max_num_batched_tokens: PositiveInt | None = None
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] | None = None
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    enable_prefix_caching: bool | None = None
    enforce_eager: bool | None = None
    revision: str | None = None
    trust_remote_code: bool | None = None
    seed: int | None = None
    download_dir: str | None = None
    tokenizer: str | None = None
    tokenizer_revision: str | None = None
    hf_overrides: dict | None = None
    batch_invariant: bool | None = Field(None, description="set VLLM_BATCH_INVARIANT=1")
    enable_thinking: bool | None = Field(None, description="chat template kwarg")
    chat_template_kwargs: dict | None = Field(None, description="extra arguments of the chat template")


def vllm_available() -> bool:
    """True when vllm is installed (found, not imported: that takes seconds) and a GPU is visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _vllm():
    try:
        import vllm
    except ImportError as e:
        raise BackendError(INSTALL.format(why=f"import failed: {e}")) from e
    return vllm


def _real_llm(model_id: str, **engine_args):
    vllm = _vllm()
    import torch

    if not torch.cuda.is_available():
        raise BackendError(NO_GPU)
    return vllm.LLM(model=model_id, **engine_args)


def end_of_turn_ids(tokenizer) -> list[int]:
    """The tokenizer's EOS plus any known end-of-turn token it defines."""
    added = tokenizer.get_added_vocab()
    ids = {added[t] for t in END_OF_TURN if t in added}
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


class VLLMBackend:
    name = "vllm"
    Args = VLLMArgs

    def __init__(self, model_id: str, revision: str | None = None, trust_remote_code: bool = False,
                 engine_args: dict | None = None, chat_template_kwargs: dict | None = None,
                 batch_invariant: bool = False, llm_factory: Callable | None = None):
        args = {k: v for k, v in (engine_args or {}).items() if v is not None}
        self.model_id = model_id
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        if "enable_thinking" in args:
            self.chat_template_kwargs.setdefault("enable_thinking", args.pop("enable_thinking"))
        if args.pop("batch_invariant", batch_invariant):
            os.environ["VLLM_BATCH_INVARIANT"] = "1"  # read when the engine starts
        self.batch_invariant = os.environ.get("VLLM_BATCH_INVARIANT", "0").strip() not in ("", "0")
        dp = args.get("data_parallel_size", 1)
        if dp > 1 and args.get("distributed_executor_backend") != "external_launcher":
            raise BackendError(NO_DP.format(dp=dp))
        args.setdefault("revision", revision)
        args.setdefault("trust_remote_code", trust_remote_code)
        args.setdefault("enable_prefix_caching", True)
        self.revision = args["revision"]
        self.engine_args = args
        self.llm = (llm_factory or _real_llm)(model_id, **args)
        self.tokenizer = self.llm.get_tokenizer()
        self.stop_token_ids = end_of_turn_ids(self.tokenizer)
        self.max_model_len = getattr(getattr(self.llm, "model_config", None), "max_model_len", None)
        self._identity: Identity | None = None

    @classmethod
    def from_model_args(cls, model_id: str, model_args: str | None = "", **kwargs) -> VLLMBackend:
        return cls.from_options(model_id, parse_model_args(model_args, VLLMArgs, "vllm"), **kwargs)

    @classmethod
    def from_options(cls, model_id: str, options: dict, **kwargs) -> VLLMBackend:
        """Validated options (VLLMArgs keys): the chat template's go to the template, the rest to the engine."""
        options = dict(options)
        return cls(model_id, chat_template_kwargs=options.pop("chat_template_kwargs", None), engine_args=options,
                   **kwargs)

    def render(self, request: Request) -> str:
        if not request.chat:
            return "\n\n".join(content for _, content in request.messages) + request.prefill
        kwargs = {**self.chat_template_kwargs, **dict(request.chat_template_kwargs)}
        text = self.tokenizer.apply_chat_template(
            request.as_messages(), tokenize=False, add_generation_prompt=True, **kwargs)
        return text + request.prefill

    def prompt(self, request: Request) -> dict:
        """A `vllm.inputs.TokensPrompt`: the template adds BOS in chat mode, the tokenizer in raw mode."""
        text = self.render(request)
        ids = self.tokenizer.encode(text, add_special_tokens=not request.chat)
        return {"prompt_token_ids": ids, "prompt": text}

    def sampling_params(self, request: Request) -> list:
        """One `SamplingParams` per engine prompt. Greedy: one prompt, n=1. Sampled: one prompt per sample
        index, n=1, seeded from (seed, prompt, index), so a sample does not depend on k or on what a
        resumed run still had to make; prefix caching makes the repeated prompt cheap."""
        s = request.sampling
        common = dict(max_tokens=s.max_tokens, stop=list(s.stop), stop_token_ids=list(self.stop_token_ids))
        if s.greedy:  # explicit, so the model's generation_config defaults never apply
            return [_vllm().SamplingParams(n=1, temperature=0.0, top_p=1.0, seed=s.seed, **common)]
        text = self.render(request)
        return [_vllm().SamplingParams(n=1, temperature=s.temperature, top_p=s.top_p,
                                       seed=sample_seed(s.seed, text, i), **common) for i in request.indices]

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Output]]:
        prompts, params, order = [], [], []   # order: (request index, how many engine prompts it has)
        for i, request in enumerate(requests):
            prompt = self.prompt(request)
            size = len(prompt["prompt_token_ids"])
            if self.max_model_len and size >= self.max_model_len:
                log.warning("request %s: prompt has %d tokens, max_model_len is %d; skipped",
                            request.id, size, self.max_model_len)
                n, why = request.sampling.n, f"prompt longer than max_model_len={self.max_model_len}"
                yield i, Output([""] * n, ["prompt_too_long"] * n, {"prompt_tokens": size, "completion_tokens": [0] * n,
                                                                     "error": why})
                continue
            mine = self.sampling_params(request)
            prompts += [prompt] * len(mine)
            params += mine
            order.append((i, len(mine)))
        if not prompts:
            return
        results = self.llm.generate(prompts, sampling_params=params, use_tqdm=True)
        if len(results) != len(prompts):
            raise BackendError(f"vllm returned {len(results)} outputs for {len(prompts)} prompts")
        start = 0
        for i, count in order:
            yield i, self._output(requests[i], results[start:start + count])
            start += count

    def loglikelihood(self, requests: Sequence[Request]) -> Iterator[tuple[int, Scored]]:
        """Every (request, continuation) as one prompt of context + continuation ids with `prompt_logprobs=1`,
        all in ONE generate call; the continuation's positions are summed. (vLLM does not reuse the prefix
        cache for prompts that ask for prompt logprobs, so each context is computed once per choice.)"""
        prompts, params, spans = [], [], []
        for i, r in enumerate(requests):
            text = self.render(r)
            encode = lambda t, chat=r.chat: self.tokenizer.encode(t, add_special_tokens=not chat)  # noqa: E731
            for c in r.continuations:
                ctx, cont = split_pair(encode, text, c)
                ids = (ctx + cont)[-(self.max_model_len or 10**9) + 1:]
                prompts.append({"prompt_token_ids": ids})
                params.append(_vllm().SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1,
                                                     detokenize=False))
                spans.append((i, len(cont), len(ids) < len(ctx) + len(cont)))
        if not prompts:
            return
        results = self.llm.generate(prompts, sampling_params=params, use_tqdm=True)
        if len(results) != len(prompts):
            raise BackendError(f"vllm returned {len(results)} outputs for {len(prompts)} prompts")
        per: dict[int, Scored] = {}
        for (i, n, truncated), prompt, result in zip(spans, prompts, results):
            ids, entries = prompt["prompt_token_ids"], result.prompt_logprobs or []
            if len(entries) != len(ids):
                raise BackendError(f"request {requests[i].id}: vllm returned {len(entries)} prompt logprobs for "
                                   f"{len(ids)} prompt tokens")
            picked = [entries[p][ids[p]] for p in range(len(ids) - n, len(ids))]
            s = per.setdefault(i, Scored([], [], [], {"prompt_tokens": len(ids) - n, "truncated": False}))
            s.logprobs.append(sum(x.logprob for x in picked))
            s.tokens.append(n)
            s.greedy.append(all(x.rank == 1 for x in picked))
            s.info["truncated"] |= truncated
        yield from per.items()

    def _output(self, request: Request, results) -> Output:
        done = [c for result in results for c in sorted(result.outputs, key=lambda c: c.index)]
        texts, reasons = [c.text for c in done], [c.finish_reason for c in done]
        info = {"prompt_tokens": len(results[0].prompt_token_ids or []),
                "completion_tokens": [len(c.token_ids) for c in done],
                "stop_reasons": [c.stop_reason for c in done],
                "seeding": "greedy" if request.sampling.greedy else "per-sample seed (seed, prompt, index)"}
        n = request.sampling.n
        if request.sampling.greedy and n > 1 and len(done) == 1:
            texts, reasons = texts * n, reasons * n  # vLLM refuses n > 1 with greedy decoding
            info["greedy_copies"] = n
        if len(texts) != n:
            raise BackendError(f"request {request.id}: vllm returned {len(texts)} samples, expected {n}")
        return Output(texts, reasons, info)

    def identity(self) -> Identity:
        """The model as the engine resolved it (dtype, quantization, context), plus tokenizer and template."""
        if self._identity is None:
            mc = getattr(self.llm, "model_config", None)
            local = local_dir(self.model_id)
            options = {k: self.engine_args[k] for k in IDENTITY_ARGS if self.engine_args.get(k) is not None}
            if self.batch_invariant:
                options["batch_invariant"] = True
            self._identity = Identity(
                backend=self.name, model=self.model_id, revision=self.revision,
                commit=hub_commit(self.model_id, self.revision, self.engine_args.get("download_dir")),
                weights=fingerprint_dir(local) if local else None,
                dtype=str(getattr(mc, "dtype", None) or self.engine_args.get("dtype") or "auto"),
                quantization=getattr(mc, "quantization", None) or self.engine_args.get("quantization"),
                max_context=self.max_model_len, context_policy="skip",
                tokenizer=tokenizer_fingerprint(self.tokenizer),
                chat_template=sha256_text(getattr(self.tokenizer, "chat_template", None)),
                chat_template_kwargs=dict(self.chat_template_kwargs), options=options)
        return self._identity

    def describe(self) -> dict:
        try:
            version = importlib.metadata.version("vllm")
        except importlib.metadata.PackageNotFoundError:
            version = None
        safe = {k: v for k, v in self.engine_args.items() if not any(w in k.lower() for w in SECRET_WORDS)}
        return {"backend": self.name, "id": self.model_id, "revision": self.revision,
                "engine_args": safe, "vllm_version": version,
                "chat_template_kwargs": self.chat_template_kwargs,
                "batch_invariant": self.batch_invariant, "stop_token_ids": self.stop_token_ids,
                "max_model_len": self.max_model_len}
