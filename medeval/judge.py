"""Who decides the rank of the final diagnosis in a model's differential (diagnosis tasks).

`ChatGrader` is the OpenAI-compatible grading client, shared with HealthBench's rubric grader
(`medeval.rubric`). `make_judge(cfg)` returns a callable
`(differential, final_diagnosis, row) -> (rank | None, record)`:

* `--judge none`: the lexical matcher of `medeval.metrics.diagnosis` (`lexical_rank`), labelled
  "lexical-fallback" in every record because it is not the LLM-judged metric of the papers.
* `--judge MODEL`: an OpenAI-compatible chat model (hosted OpenAI unless `--judge-base-url`)
  reads `prompts/judge_diagnosis.jinja` and answers `{"rank": N, "reasoning": ...}`. Verdicts are
  cached in the generation cache (SQLite), keyed by judge model, endpoint and the hash of the
  rendered judge prompt, so a re-run asks nothing. `prefetch` sends all uncached prompts
  concurrently before scoring. The API key is read from $OPENAI_API_KEY and never recorded.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .backends.base import Sampling, prompt_hash
from .errors import MedevalError
from .metrics.diagnosis import MATCH_THRESHOLD, lexical_rank
from .spec import package_dir

TEMPLATE = "judge_diagnosis.jinja"
KEY_ENV = "OPENAI_API_KEY"
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_RANK = re.compile(r"\brank\b\W{0,6}(?:is\s+)?(\d+|none|null)\b", re.I)   # Rank: 2, **rank** = none


def make_judge(cfg):
    """The judge named by cfg.judge ('none' = lexical fallback), endpoint cfg.judge_base_url."""
    name = (getattr(cfg, "judge", None) or "none").strip()
    if name.lower() == "none":
        return LexicalJudge()
    cache_dir = None
    if not getattr(cfg, "no_cache", False):
        from .paths import default_cache_dir

        cache_dir = getattr(cfg, "cache_dir", None) or default_cache_dir()
    return LLMJudge(name, getattr(cfg, "judge_base_url", None), cache_dir)


class LexicalJudge:
    """--judge none: Dice overlap of stemmed content tokens (docs/metrics.md, Diagnosis)."""

    label = {"judge": "lexical-fallback", "note": "not the paper's metric"}

    def __call__(self, pred, gold, row=None):
        if not pred:
            return None, {**self.label, "verdict": "no differential", "rank": None}
        rank = lexical_rank(pred, gold)
        return rank, {**self.label, "verdict": "match" if rank else "no match", "rank": rank,
                      "threshold": MATCH_THRESHOLD}

    def prefetch(self, items) -> None:
        pass

    def summary(self) -> dict:
        return {**self.label, "threshold": MATCH_THRESHOLD}


def parse_verdict(text: str | None, n_entries: int) -> tuple[int | None, str | None]:
    """(rank, reasoning) from a judge reply; rank 0 = no entry matches, None = unparseable or out
    of range. Reads {"rank": N, "reasoning": ...} JSON anywhere in the reply, else "Rank: N"."""
    text = _THINK.sub(" ", text or "").rsplit("</think>", 1)[-1].strip()
    rank, reasoning = None, None
    for m in reversed(list(re.finditer(r"\{[^{}]*\}", text))):
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(obj, dict) and "rank" in obj:
            rank, reasoning = obj["rank"], obj.get("reasoning")
            break
    if rank is None:
        hits = _RANK.findall(text)
        if hits:
            rank = hits[-1]
        elif re.fullmatch(r"\W*(\d)\W*", text):
            rank = text.strip(" .*`\n")
    if isinstance(rank, str):
        rank = 0 if rank.lower() in ("none", "null") else int(rank) if rank.isdigit() else None
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= n_entries:
        return None, reasoning if isinstance(reasoning, str) else None
    return rank, reasoning if isinstance(reasoning, str) else None


class ChatGrader:
    """An OpenAI-compatible chat model that grades model outputs: one client, retries (the openai
    client's), `concurrency` requests in flight, replies cached in the generation cache under the
    grader's identity (model, endpoint, `api` label) and the hash of the rendered prompt. Shared by
    the diagnosis judge (LLMJudge) and HealthBench's rubric grader (medeval.rubric.RubricGrader)."""

    api = "judge"
    hint = ", or use --judge none (lexical fallback, not the paper's metric)"

    def __init__(self, model: str, base_url: str | None = None, cache_dir=None, *, template: str,
                 max_retries: int = 5, timeout: float = 120.0, concurrency: int = 8, max_tokens: int = 256):
        import openai

        from .backends.openai_backend import check_url, safe_url

        key = os.environ.get(KEY_ENV)
        if not key and base_url is None:
            raise MedevalError(f"--judge {model} asks the OpenAI API: set ${KEY_ENV}, or pass --judge-base-url "
                               f"for another OpenAI-compatible server{self.hint}")
        if base_url:
            check_url(base_url, "--judge-base-url")
        self.model, self.concurrency = model, concurrency
        self.url = safe_url(base_url) if base_url else "https://api.openai.com/v1"
        self.client = openai.OpenAI(api_key=key or "EMPTY", base_url=base_url, max_retries=max_retries,
                                    timeout=timeout)
        env = ImmutableSandboxedEnvironment(loader=jinja2.FileSystemLoader(str(package_dir("prompts"))),
                                            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.template_name = template
        self.template = env.get_template(template)
        source = env.loader.get_source(env, template)[0]
        self.template_hash = hashlib.sha256(source.encode()).hexdigest()
        self.sampling = Sampling(n=1, temperature=0.0, top_p=1.0, max_tokens=max_tokens, seed=0)
        self.ident = {"id": model, "base_url": self.url, "api": self.api}
        self.cache = None
        if cache_dir is not None:
            from .cache import Cache

            self.cache = Cache(cache_dir)
        self.replies: dict[str, dict] = {}   # prompt hash -> {"content", "server_model", "cached"}
        self.counts = Counter()
        self.server_models: set[str] = set()

    def _key(self, ph: str) -> str:
        from .cache import sample_key

        return sample_key(self.ident, "judge", ph, self.sampling, 0)

    def _ask(self, prompt: str) -> dict:
        import openai

        try:
            resp = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}], temperature=0.0,
                max_tokens=self.sampling.max_tokens, seed=self.sampling.seed)
            content = resp.choices[0].message.content or ""
            finish = resp.choices[0].finish_reason
            usage = getattr(resp, "usage", None)
            tokens = {k: getattr(usage, k, None) for k in ("prompt_tokens", "completion_tokens")}
        except openai.APIError as err:   # raised once the client's retries are spent
            detail = str(getattr(err, "message", err))
            key = os.environ.get(KEY_ENV)
            detail = detail.replace(key, "***") if key else detail
            raise MedevalError(f"judge {self.model} at {self.url} failed after retries: "
                               f"{type(err).__name__}: {detail[:300]}. Generations are cached: re-run once "
                               "the judge is reachable.") from None
        except (AttributeError, IndexError, TypeError) as err:
            raise MedevalError(f"judge {self.model} at {self.url}: the reply is not a chat completion "
                               f"({type(err).__name__})") from None
        return {"content": content, "server_model": getattr(resp, "model", None), "finish": finish, **tokens}

    def _store(self, ph: str, reply: dict) -> None:
        self.counts["calls"] += 1
        if self.cache is not None:
            text = json.dumps({"content": reply["content"], "server_model": reply["server_model"]})
            self.cache.put([(self._key(ph), json.dumps(self.ident, sort_keys=True), "judge", ph, self.sampling, 0,
                             text, reply.get("finish"), {"server_model": reply["server_model"],
                                                         "prompt_tokens": reply.get("prompt_tokens"),
                                                         "completion_tokens": reply.get("completion_tokens")})])
        self.replies[ph] = {**reply, "cached": False}

    def _from_cache(self, hashes: list[str]) -> None:
        todo = [h for h in hashes if h not in self.replies]
        if self.cache is None or not todo:
            return
        got = self.cache.get([self._key(h) for h in todo])
        for h in todo:
            hit = got.get(self._key(h))
            if hit is not None:
                self.replies[h] = {**json.loads(hit[0]), "finish": hit[1], "cached": True,
                                   **{k: hit[2].get(k) for k in ("prompt_tokens", "completion_tokens")}}
                self.counts["cache_hits"] += 1

    def ask_all(self, prompts: dict[str, str]) -> None:
        """Every {prompt hash: prompt} not answered yet: from the cache, else asked `concurrency` at a time;
        each reply is stored (and cached) as it completes, so a failure loses nothing already answered."""
        self._from_cache(list(prompts))
        todo = {h: t for h, t in prompts.items() if h not in self.replies}
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._ask, t): h for h, t in todo.items()}
            for fut in as_completed(futures):
                self._store(futures[fut], fut.result())   # stored as each completes

    def reply(self, prompt: str) -> tuple[str, dict]:
        """(prompt hash, reply) for one prompt, asking only if neither answered nor cached."""
        ph = prompt_hash(prompt)
        self.ask_all({ph: prompt})
        reply = self.replies[ph]
        if reply.get("server_model"):
            self.server_models.add(reply["server_model"])
        return ph, reply

    def base_summary(self) -> dict:
        return {"judge": self.model, "base_url": self.url, "server_models": sorted(self.server_models),
                "template": self.template_name, "template_hash": self.template_hash,
                "calls": self.counts["calls"], "cache_hits": self.counts["cache_hits"],
                "unparseable": self.counts["unparseable"], "usage": self.usage()}

    def usage(self) -> dict:
        """Tokens of the grader's verdicts (new and cached alike), kept apart from the model's own."""
        got = list(self.replies.values())
        counted = [r for r in got if isinstance(r.get("prompt_tokens"), int) and isinstance(r.get("completion_tokens"), int)]
        return {"requests": len(got), "prompt_tokens": sum(r["prompt_tokens"] for r in counted),
                "completion_tokens": sum(r["completion_tokens"] for r in counted),
                "requests_without_usage": len(got) - len(counted)}

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None


class LLMJudge(ChatGrader):
    """An OpenAI-compatible chat model grading each differential (see the module docstring)."""

    def __init__(self, model: str, base_url: str | None = None, cache_dir=None, **kw):
        super().__init__(model, base_url, cache_dir, template=TEMPLATE, **kw)

    def render(self, differential: list[str], final_diagnosis: str) -> str:
        return self.template.render(differential=list(differential), final_diagnosis=str(final_diagnosis)).strip()

    def prefetch(self, items) -> None:
        """Ask for every (differential, final_diagnosis, row) not yet cached, `concurrency` at a time."""
        prompts = {}
        for pred, gold, _row in items:
            if pred:
                text = self.render(pred, gold)
                prompts.setdefault(prompt_hash(text), text)
        self.ask_all(prompts)

    def __call__(self, pred, gold, row=None):
        base = {"judge": self.model, "template_hash": self.template_hash}
        if not pred:
            self.counts["no_differential"] += 1
            return None, {**base, "verdict": "no differential", "rank": None}
        ph, reply = self.reply(self.render(pred, gold))
        rank, reasoning = parse_verdict(reply["content"], len(pred))
        if rank is None:
            self.counts["unparseable"] += 1
            verdict = "unparseable"
        else:
            verdict = "match" if rank else "no match"
        record = {**base, "server_model": reply.get("server_model"), "prompt_hash": ph, "verdict": verdict,
                  "rank": rank or None, "reasoning": reasoning, "raw": reply["content"], "cached": reply["cached"]}
        return (rank or None), record

    def summary(self) -> dict:
        """For results.json: who judged, with what prompt, and how many verdicts were unusable."""
        return {**self.base_summary(), "no_differential": self.counts["no_differential"]}
