"""Caching as a backend wrapper: `CachingBackend(backend, cache)` answers `generate` and `loglikelihood`
like the backend it wraps, from the generation cache (medeval/backends/cache.py) where it can.

Each call runs plan -> cache lookup -> the backend for what is missing -> put. A sample's key is the
wrapped backend's typed identity (backends/identity.py), the hash of the exact prompt it renders, the
decoding and the sample index; a scored choice's key is the identity, the prompt hash and the
continuation. Only the missing sample indices are asked for (each sample's seed depends on its index
only), and every reply is stored the moment it arrives, so an interrupted run loses nothing.

The runner (`runner.generate_all`, `score_all` below) and the model graders (graders/chat.py)
all call it. The wrapper yields richer results than a bare backend: per request, which samples came
from the cache, and each sample's token count and how it was obtained.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

from ..accounting import BILLING_KEY, PROMPT_KEY, SAMPLE_KEY, SHARE_KEY, cached_sample_prompt, cached_sample_tokens, sample_info
from .base import BackendError, Request, prompt_hash
from .cache import Cache, replace_surrogates, sample_key, score_key
from ..errors import MedevalError
from ..progress import Phase


@dataclass
class Generated:
    """The n samples of one request, each from the cache or the backend."""

    prompt: str
    texts: list
    finish: list
    tokens: list           # completion tokens of each sample (None where unknown)
    n_path: list           # how the backend obtained each sample (OpenAI backend), None elsewhere
    info: dict
    cached: int            # how many samples came from the cache
    sample_prompts: list = None   # (prompt tokens of one call, billing, completion share) per sample (accounting)

    def as_dict(self) -> dict:
        return {"prompt": self.prompt, "texts": self.texts, "finish": self.finish, "cached": self.cached,
                "info": self.info, "tokens": self.tokens, "n_path": self.n_path,
                "sample_prompts": self.sample_prompts}


@dataclass
class ScoredChoices:
    """The per-continuation scores of one loglikelihood request, from the cache or the backend."""

    prompt: str
    scores: list           # {"continuation", "logprob", "tokens", "greedy"} per continuation
    info: dict
    cached: int

    def as_dict(self) -> dict:
        return {"prompt": self.prompt, "info": self.info, "scores": self.scores, "cached": self.cached}


class CachingBackend:
    """Any backend behind the generation cache. `name`, `model_id`, `render`, `identity` and `describe`
    are the wrapped backend's; `progress` shows the requests sent to it (medeval/progress.py: a bar on a
    terminal, a line now and then elsewhere)."""

    def __init__(self, backend, cache: Cache, progress: bool = False, label: str = "generating"):
        self.backend, self.cache, self.progress, self.label = backend, cache, progress, label

    def __getattr__(self, name):
        if name == "backend":   # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.backend, name)

    def sample_keys(self, request: Request, ident: dict | None = None) -> tuple[str, str, list[str]]:
        """(rendered prompt, its hash, the cache key of each of the request's samples)."""
        ident = ident or self.backend.identity().as_dict()
        text = self.backend.render(request)
        ph = prompt_hash(text)
        return text, ph, [sample_key(ident, self.backend.name, ph, request.sampling, i)
                          for i in range(request.sampling.n)]

    def generate(self, requests: Sequence[Request], usable=None) -> Iterator[tuple[int, Generated]]:
        """(index, Generated) for every request: fully cached ones first, then the others as the backend
        answers. A reply with the wrong number of samples is reported after every other one is stored.

        `usable(text) -> bool` (graders): a reply it refuses is returned but never stored, and a stored one
        it refuses (written before the check existed) counts as missing, so it is asked again and replaced."""
        ident = self.backend.identity().as_dict()
        plan = [self.sample_keys(r, ident) for r in requests]
        hits = self.cache.get([k for *_, keys in plan for k in keys])
        if usable is not None:
            hits = {k: h for k, h in hits.items() if usable(h[0])}
        todo = []
        for idx, (r, (text, ph, keys)) in enumerate(zip(requests, plan)):
            got, missing = _from_cache(text, [hits.get(k) for k in keys])
            self.cache.hits += len(keys) - len(missing)
            self.cache.misses += len(missing)
            if not missing:
                yield idx, got
                continue
            sub = r if len(missing) == r.sampling.n else replace(   # exactly the missing sample indices
                r, sampling=replace(r.sampling, n=len(missing)), sample_indices=tuple(missing))
            todo.append((idx, sub, ph, keys, missing, got))
        yield from self._ask(todo, json.dumps(ident, sort_keys=True, default=str), usable)

    def _ask(self, todo: list, model: str, usable=None) -> Iterator[tuple[int, Generated]]:
        if not todo:
            return
        failure = None
        with Phase(self.label, len(todo), self.progress) as advance:
            for j, out in self.backend.generate([t[1] for t in todo]):
                idx, req, ph, keys, missing, got = todo[j]
                if len(out.texts) != len(missing):
                    failure = failure or BackendError(
                        f"backend returned {len(out.texts)} samples for {req.id}, expected {len(missing)}")
                    continue
                finishes = out.finish_reasons or [None] * len(out.texts)
                info = [sample_info(out.info, s) for s in range(len(missing))]
                texts = []
                for t in out.texts:   # text SQLite and UTF-8 files can hold: lone surrogates replaced, counted
                    t, n = replace_surrogates(t)
                    self.cache.repaired += bool(n)
                    texts.append(t)
                keep = [(s, i, t, f) for s, (i, t, f) in enumerate(zip(missing, texts, finishes))
                        if usable is None or usable(t)]
                self.cache.put([(keys[i], model, self.backend.name, ph, req.sampling, i, t, f, info[s])
                                for s, i, t, f in keep], replace=usable is not None)   # over a refused old row
                for s, (i, t, f) in enumerate(zip(missing, texts, finishes)):
                    got.texts[i], got.finish[i], got.n_path[i] = t, f, out.info.get("n_path")
                    got.tokens[i] = info[s][SAMPLE_KEY]
                    got.sample_prompts[i] = (info[s][PROMPT_KEY], info[s][BILLING_KEY], info[s][SHARE_KEY])
                got.info = out.info
                advance()
                yield idx, got
        if failure is not None:
            raise failure

    def loglikelihood(self, requests: Sequence[Request]) -> Iterator[tuple[int, ScoredChoices]]:
        """(index, ScoredChoices) for every request, cached scores first, then the backend's."""
        if not hasattr(self.backend, "loglikelihood"):
            raise MedevalError(f"the {self.backend.name} backend cannot score `scoring: loglikelihood` tasks; "
                               "use --backend hf, vllm, or openai with a server that returns prompt logprobs")
        ident = self.backend.identity().as_dict()
        todo = []
        plans = []
        for r in requests:
            text = self.backend.render(r)
            ph = prompt_hash(text)
            plans.append((r, text, ph, [score_key(ident, self.backend.name, ph, c) for c in r.continuations]))
        hits = self.cache.get([k for *_, keys in plans for k in keys])
        for idx, (r, text, ph, keys) in enumerate(plans):
            have = [hits.get(k) for k in keys]
            got = ScoredChoices(text, [dict(json.loads(h[0]), continuation=c) if h else None
                                       for h, c in zip(have, r.continuations)],
                                next((h[2] for h in have if h), {}), sum(h is not None for h in have))
            self.cache.hits += got.cached
            self.cache.misses += len(keys) - got.cached
            if got.cached == len(keys):
                yield idx, got
            else:
                todo.append((idx, r, ph, keys, got))
        yield from self._score(todo, json.dumps(ident, sort_keys=True, default=str))

    def _score(self, todo: list, model: str) -> Iterator[tuple[int, ScoredChoices]]:
        if not todo:
            return
        with Phase("scoring choices", len(todo), self.progress, remaining=False) as advance:
            for j, scored in self.backend.loglikelihood([t[1] for t in todo]):
                idx, r, ph, keys, got = todo[j]
                if len(scored.logprobs) != len(r.continuations):
                    raise MedevalError(f"backend returned {len(scored.logprobs)} scores for {r.id}, "
                                       f"expected {len(r.continuations)}")
                values = [{"logprob": lp, "tokens": n, "greedy": g}
                          for lp, n, g in zip(scored.logprobs, scored.tokens, scored.greedy)]
                for v, s in zip(values, scored.straddles or []):
                    v["straddles"] = s
                self.cache.put([(k, model, self.backend.name, ph, {"loglikelihood": c}, 0, json.dumps(v), "scored",
                                 scored.info) for k, c, v in zip(keys, r.continuations, values)])
                got.scores = [dict(v, continuation=c) for v, c in zip(values, r.continuations)]
                got.info = scored.info
                advance()
                yield idx, got

    def close(self) -> None:
        """Close the cache (the wrapped backend holds no connection that outlives a call)."""
        self.cache.close()


def _from_cache(text: str, have: list) -> tuple[Generated, list[int]]:
    """The request's samples the cache holds (None elsewhere) and the indices it lacks."""
    got = Generated(prompt=text, texts=[h[0] if h else None for h in have], finish=[h[1] if h else None for h in have],
                    tokens=[cached_sample_tokens(h[2], i) if h else None for i, h in enumerate(have)],
                    n_path=[(h[2] or {}).get("n_path") if h else None for h in have],
                    info=next((h[2] for h in have if h), {}), cached=sum(h is not None for h in have),
                    sample_prompts=[cached_sample_prompt(h[2]) if h else (None, None, None) for h in have])
    return got, [i for i, h in enumerate(have) if h is None]


def score_all(backend, cache: Cache, requests: list[Request], progress: bool = True) -> dict[str, dict]:
    """request id -> {"prompt", "scores": [{"continuation", "logprob", "tokens", "greedy"}], "info", "cached"}."""
    if not requests:
        return {}
    got = dict(CachingBackend(backend, cache, progress).loglikelihood(requests))
    return {r.id: got[k].as_dict() for k, r in enumerate(requests)}
