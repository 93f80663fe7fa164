"""`--extract-judge MODEL`: an optional fallback for outputs the extraction rules find invalid.

An OpenAI-compatible chat model (hosted OpenAI unless `--extract-judge-base-url`) reads
`prompts/judge_extract.jinja` -- the allowed answers and the model's reply -- and answers one
option letter or label, or "none". Only *invalid* outputs of choice, yesno and label tasks are
sent: hedges (`ambiguous`) stay ambiguous, and answers the rules read are never second-guessed.
The judge's reply must be exactly one allowed answer or "none" (after stripping decoration);
anything else is "unparseable" and the output stays invalid. Verdicts are cached in the
generation cache like the diagnosis judge's (medeval/judge.py), and labelled in the samples.
Scoring reports metrics with and without the judge; rules-only stays the default and stays
the `metrics` block.
"""
from __future__ import annotations

import hashlib
import re

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .backends.base import prompt_hash
from .judge import LLMJudge
from .spec import package_dir

TEMPLATE = "judge_extract.jinja"
JUDGED_TYPES = {"choice", "yesno", "label"}


def make_extract_judge(cfg):
    name = (getattr(cfg, "extract_judge", None) or "").strip()
    if not name or name.lower() == "none":
        return None
    cache_dir = None
    if not getattr(cfg, "no_cache", False):
        from .runner import default_cache_dir

        cache_dir = getattr(cfg, "cache_dir", None) or default_cache_dir()
    return ExtractJudge(name, getattr(cfg, "extract_judge_base_url", None), cache_dir)


def parse_choice(text: str | None, keys: list[str]) -> str | None:
    """The allowed answer the judge named, "none", or None (unparseable): the whole reply must be it."""
    text = re.sub(r"<think>.*?</think>", " ", text or "", flags=re.S | re.I).rsplit("</think>", 1)[-1]
    core = re.sub(r"^(?:answer|final answer)\s*[:\-]\s*", "", text.strip(" \t\r\n*`\"'.()[]"), flags=re.I)
    core = core.strip(" \t\r\n*`\"'.()[]")
    for k in [*keys, "none"]:
        if core.lower() == k.lower():
            return k
    return None


class ExtractJudge(LLMJudge):
    """The diagnosis judge's client, cache and retries, with the extraction prompt."""

    def __init__(self, model: str, base_url: str | None = None, cache_dir=None, **kw):
        super().__init__(model, base_url, cache_dir, max_tokens=kw.pop("max_tokens", 16), **kw)
        env = ImmutableSandboxedEnvironment(loader=jinja2.FileSystemLoader(str(package_dir("prompts"))),
                                            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.template = env.get_template(TEMPLATE)
        source = env.loader.get_source(env, TEMPLATE)[0]
        self.template_hash = hashlib.sha256(source.encode()).hexdigest()
        self.ident = {"id": model, "base_url": self.url, "api": "extract-judge"}

    @staticmethod
    def choices(task, options) -> tuple[str, list[dict]]:
        if task.answer.type == "choice":
            return "multiple-choice", [{"key": o["letter"], "text": o["text"]} for o in options]
        return "classification", [{"key": l, "text": ""} for l in task.answer.labels]

    def render_for(self, task, text: str, options) -> str:
        kind, choices = self.choices(task, options)
        return self.template.render(kind=kind, choices=choices, keys=[c["key"] for c in choices],
                                    reply=(text or "")[-4000:]).strip()

    def prefetch_outputs(self, items) -> None:
        """Ask, `concurrency` at a time, about every (task, text, options) not yet cached."""
        prompts = {}
        for task, text, options in items:
            p = self.render_for(task, text, options)
            prompts.setdefault(prompt_hash(p), p)
        self._from_cache(list(prompts))
        todo = {h: t for h, t in prompts.items() if h not in self.replies}
        if todo:
            from concurrent.futures import ThreadPoolExecutor, as_completed

            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                futures = {pool.submit(self._ask, t): h for h, t in todo.items()}
                for fut in as_completed(futures):
                    self._store(futures[fut], fut.result())

    def judge(self, task, text: str, options) -> tuple[str | None, dict]:
        """(answer or None, record) for one invalid output."""
        prompt = self.render_for(task, text, options)
        ph = prompt_hash(prompt)
        self._from_cache([ph])
        if ph not in self.replies:
            self._store(ph, self._ask(prompt))
        reply = self.replies[ph]
        if reply.get("server_model"):
            self.server_models.add(reply["server_model"])
        _, choices = self.choices(task, options)
        got = parse_choice(reply["content"], [c["key"] for c in choices])
        verdict = "unparseable" if got is None else got
        self.counts[{"none": "none", "unparseable": "unparseable"}.get(verdict, "answered")] += 1
        record = {"judge": self.model, "verdict": verdict, "raw": reply["content"][:500],
                  "cached": reply["cached"], "prompt_hash": ph}
        return (None if got in (None, "none") else got), record

    def summary(self) -> dict:
        return {"judge": self.model, "base_url": self.url, "server_models": sorted(self.server_models),
                "template": TEMPLATE, "template_hash": self.template_hash, "calls": self.counts["calls"],
                "cache_hits": self.counts["cache_hits"], "answered": self.counts["answered"],
                "none": self.counts["none"], "unparseable": self.counts["unparseable"],
                "applies_to": "outputs the rules found invalid (never ambiguous ones)"}
