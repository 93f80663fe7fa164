"""A model grader is an ordinary model: a template plus a parser over a cached OpenAI-compatible backend.

`chat_model(...)` is the grader's model: `OpenAIBackend` (its client, retries, key scrubbing and URL
checks) behind the generation cache (`caching.CachingBackend`), so verdicts are cached under the
grader's typed identity (model, endpoint, options), the hash of the exact request and the decoding,
like any sample. `ChatGrader` (a `base.Grader`) renders a sandboxed Jinja template from prompts/ into
one user message, asks for every uncached prompt at once (the backend's `concurrency` in flight), and
keeps each reply with its token counts. It counts the replies (calls, cache hits, unusable and empty
replies, re-asks) and their tokens (`usage`), and describes itself for the summary, once for every
model grader. The diagnosis judge (judge.py), HealthBench's rubric grader (rubric.py) and the
extraction judge (extract_judge.py) are subclasses; registry.py builds them per task.

Adding a grader: one module with a ChatGrader subclass (`name`, TEMPLATE, a template in prompts/, a
parse function, `prefetch(cases)` that renders every prompt and calls `ask_all`, `verdict(case) ->
Verdict`, and the summary's `COUNTS` and `NOTES`), registered in registry.GRADERS, and `grader = name`
on the answer types it grades; docs/backends.md ("Graders are ordinary models") has the steps.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..backends.base import BackendError, Request, Sampling, prompt_hash
from ..backends.openai_backend import OpenAIBackend, check_url
from ..backends.cache import Cache
from ..backends.caching import CachingBackend, Generated
from ..errors import MedevalError
from ..tasks.spec import package_dir
from .base import Grader

KEY_ENV = "OPENAI_API_KEY"
THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
DEFAULTS = {"concurrency": 8, "max_retries": 5, "timeout": 120.0}
REASKS = 2   # an unusable reply (empty, no verdict) is asked again this many times; it is never cached


def chat_model(model: str, base_url: str | None, cache: Cache, option: str = "--judge", hint: str = "",
               progress: bool = False, **options) -> CachingBackend:
    """An OpenAI-compatible chat model (hosted OpenAI unless `base_url`) behind `cache`; `progress` shows
    the verdicts it is asked for as the "judging" phase (medeval/progress.py)."""
    if not os.environ.get(KEY_ENV) and base_url is None:
        raise MedevalError(f"{option} {model} asks the OpenAI API: set ${KEY_ENV}, or pass {option}-base-url "
                           f"for another OpenAI-compatible server{hint}")
    if base_url:
        check_url(base_url, f"{option}-base-url")   # named by its own option, before the backend checks it
    return CachingBackend(OpenAIBackend(model, base_url=base_url, **{**DEFAULTS, **options}), cache, progress,
                          "judging")


def template_of(name: str) -> tuple[jinja2.Template, str]:
    """A prompts/ template in the sandbox, and the sha256 of its source."""
    env = ImmutableSandboxedEnvironment(loader=jinja2.FileSystemLoader(str(package_dir("prompts"))),
                                        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    source = env.loader.get_source(env, name)[0]
    return env.get_template(name), hashlib.sha256(source.encode()).hexdigest()


class ChatGrader(Grader):
    """Renders TEMPLATE, asks the chat model (greedy, seed 0, `max_tokens`), keeps and counts every reply."""

    TEMPLATE = ""
    max_tokens = 256
    HINT = ""   # ends the error when the model's key is missing (registry.py)

    @classmethod
    def without_model(cls) -> Grader:
        """What `--judge none` gives instead of this grader: another grader, or (here) an error."""
        raise MedevalError(f"tasks graded by the {cls.name} grader need a grader model: pass --judge MODEL")

    def __init__(self, chat: CachingBackend):
        super().__init__()
        self.chat = chat
        self.model = chat.model_id
        self.url = chat.identity().endpoint
        self.template_name = self.TEMPLATE
        self.template, self.template_hash = template_of(self.TEMPLATE)
        self.sampling = Sampling(n=1, temperature=0.0, top_p=1.0, max_tokens=self.max_tokens, seed=0)
        self.replies: dict[str, dict] = {}   # prompt hash -> {"content", "server_model", "cached", tokens}
        self.server_models: set[str] = set()

    def request(self, prompt: str) -> Request:
        return Request(f"grader/{prompt_hash(prompt)[:16]}", (("user", prompt),), self.sampling)

    def cache_keys(self, prompt: str) -> list[str]:
        """The generation-cache key of this grader's verdict on `prompt`."""
        return self.chat.sample_keys(self.request(prompt))[2]

    def usable(self, text: str | None) -> bool:
        """Whether a reply can be used (and so cached): here, any non-empty text after thinking;
        graders with a parser refuse what it cannot read."""
        return bool(after_thinking(text).strip())

    def ask_all(self, prompts: dict[str, str]) -> None:
        """Every {prompt hash: prompt} not answered yet: from the cache, else from the model, each kept
        (and cached) as it arrives, so a failure loses nothing already answered. A reply `usable` refuses
        (empty, garbage) is counted, asked again up to REASKS times, and never cached, so a later run
        asks again rather than serving it."""
        todo = [(h, t) for h, t in prompts.items() if h not in self.replies]
        if not todo:   # answered already (prefetch): no identity, render or cache lookup per verdict
            return
        for attempt in range(REASKS + 1):
            bad = []
            try:
                for k, got in self.chat.generate([self.request(t) for _, t in todo], usable=self.usable):
                    ok = self.usable(got.texts[0])
                    if not ok:
                        self.counts["unusable_replies"] += 1
                        self.counts["empty_replies"] += not (got.texts[0] or "").strip()
                        bad.append(todo[k])
                    if ok or attempt == REASKS:
                        self._keep(todo[k][0], got)
            except BackendError as err:   # the backend's message names the endpoint, never the key
                raise MedevalError(f"judge {self.model} at {self.url} failed after retries: {str(err)[:400]}. "
                                   "Generations are cached: re-run once the judge is reachable.") from None
            if not bad:
                return
            self.counts["reasks"] += len(bad) if attempt < REASKS else 0
            todo = bad

    def _keep(self, ph: str, got: Generated) -> None:
        self.counts["cache_hits" if got.cached else "calls"] += 1
        self.replies[ph] = {"content": got.texts[0] or "", "server_model": got.info.get("server_model"),
                            "finish": got.finish[0], "cached": bool(got.cached),
                            "prompt_tokens": got.info.get("prompt_tokens"), "completion_tokens": got.tokens[0]}

    def reply(self, prompt: str) -> tuple[str, dict]:
        """(prompt hash, reply) for one prompt, asking only if neither answered nor cached."""
        ph = prompt_hash(prompt)
        self.ask_all({ph: prompt})
        reply = self.replies[ph]
        if reply.get("server_model"):
            self.server_models.add(reply["server_model"])
        return ph, reply

    def describe(self) -> dict:
        """Who graded, with what template, and how its replies went (every model grader's summary starts so)."""
        return {"judge": self.model, "base_url": self.url, "server_models": sorted(self.server_models),
                "template": self.template_name, "template_hash": self.template_hash,
                "calls": self.counts["calls"], "cache_hits": self.counts["cache_hits"],
                "unparseable": self.counts["unparseable"], "unusable_replies": self.counts["unusable_replies"],
                "empty_replies": self.counts["empty_replies"], "reasks": self.counts["reasks"],
                "usage": self.usage()}

    def usage(self) -> dict:
        """Tokens of the grader's verdicts (new and cached alike), kept apart from the model's own."""
        got = list(self.replies.values())
        counted = [r for r in got if isinstance(r.get("prompt_tokens"), int) and isinstance(r.get("completion_tokens"), int)]
        return {"requests": len(got), "prompt_tokens": sum(r["prompt_tokens"] for r in counted),
                "completion_tokens": sum(r["completion_tokens"] for r in counted),
                "requests_without_usage": len(got) - len(counted)}


def last_json_object(text: str, accept) -> dict | None:
    """The last flat {...} JSON object in a grader's reply that `accept(obj)` takes, or None."""
    for m in reversed(list(re.finditer(r"\{[^{}]*\}", text))):
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(obj, dict) and accept(obj):
            return obj
    return None


def after_thinking(text: str | None) -> str:
    """A reply without its <think>...</think> blocks (and anything before a stray closing tag). An unclosed
    <think> means the grader's reasoning never finished: the text from it on is dropped, as extraction
    drops it from model outputs, so a verdict is never read from inside the reasoning."""
    text = re.split(r"</think>", THINK.sub(" ", text or ""), flags=re.I)[-1]
    return re.split(r"<think>", text, maxsplit=1, flags=re.I)[0]
