"""The one interface every backend implements.

A backend turns a batch of `Request`s into raw text: for each request, a list
of `request.sampling.n` completions. Everything model-specific (tokenizer,
chat template, engine options) stays inside the backend.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Iterator, Protocol, Sequence

from .identity import Identity


@dataclass(frozen=True)
class Sampling:
    """Decoding settings for one request. temperature == 0 means greedy."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def key(self) -> dict:
        """Everything that changes the output, except n (cached per sample index)."""
        d = asdict(self)
        d.pop("n")
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class Request:
    """One prompt to complete n times.

    `messages` are chat turns ({"role": ..., "content": ...}). `prefill` is text
    placed at the start of the assistant turn (used by the adversarial mode);
    the completion continues after it. `chat=False` sends the user text as a
    raw completion prompt with no chat template.
    """

    id: str
    messages: tuple[tuple[str, str], ...]
    sampling: Sampling = field(default_factory=Sampling)
    prefill: str = ""
    chat: bool = True
    chat_template_kwargs: tuple[tuple[str, object], ...] = ()
    continuations: tuple[str, ...] = ()   # loglikelihood requests: the texts to score after the prompt
    sample_indices: tuple[int, ...] = ()   # which samples of this prompt to make; () = 0 .. n-1

    @property
    def indices(self) -> tuple[int, ...]:
        """The sample index of each of the n completions (a resumed run asks only for the missing ones)."""
        return self.sample_indices or tuple(range(self.sampling.n))

    def as_messages(self) -> list[dict]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass
class Output:
    """The n completions of one request, plus anything the backend wants to record."""

    texts: list[str]
    finish_reasons: list[str | None] = field(default_factory=list)
    info: dict = field(default_factory=dict)


@dataclass
class Scored:
    """A loglikelihood request's result: per continuation, the summed log-probability of its tokens
    after the prompt, its length in tokens, and whether greedy decoding would have produced it."""

    logprobs: list[float]
    tokens: list[int]
    greedy: list[bool]
    info: dict = field(default_factory=dict)
    # text prompts (OpenAI backend): per continuation, whether its first token began in the context
    straddles: list[bool] | None = None


class Backend(Protocol):
    name: str          # "hf", "vllm", "openai"
    model_id: str

    def render(self, request: Request) -> str:
        """The exact prompt text the model sees (chat template applied)."""

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Output]]:
        """Complete every request, `request.sampling.n` samples each.

        Yields (index into `requests`, Output) as results become available, in
        any order, so the caller can persist each batch as soon as it is done.
        Each request is yielded exactly once. Raise BackendError when a request
        cannot be completed after the backend's own retries.
        """

    def loglikelihood(self, requests: Sequence[Request]) -> Iterator[tuple[int, Scored]]:
        """Score `request.continuations` after the rendered prompt, for every request (optional:
        backends without it cannot run `scoring: loglikelihood` tasks). Same yielding rules as generate."""

    def identity(self) -> Identity:
        """Everything that changes this backend's outputs (see identity.py). The cache key,
        results.json's `model.identity` and the gate's same-model check derive from it."""

    def describe(self) -> dict:
        """Model id, revision, backend options: recorded in results.json."""


def split_pair(encode, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) as lm-evaluation-harness splits them: trailing spaces of the
    context move to the continuation, and the continuation is what tokenising the whole adds.
    `encode` maps text to token ids (with the special tokens the backend adds for that prompt kind)."""
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    ctx = encode(context)
    return ctx, encode(context + continuation)[len(ctx):]


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sample_seed(seed: int | None, prompt: str, index: int) -> int:
    """The seed of one sample: a function of (run seed, exact prompt, sample index) only, so a
    sample does not depend on the other requests, on k, or on what the cache already held."""
    digest = hashlib.sha256(f"{seed}:{index}:{prompt}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


def stable_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class BackendError(RuntimeError):
    """A request failed for good (retries exhausted, server refused, model missing)."""
