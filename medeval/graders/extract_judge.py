"""`--extract-judge MODEL`: an optional fallback for outputs the extraction rules find invalid.

An OpenAI-compatible chat model (hosted OpenAI unless `--extract-judge-base-url`) reads
`prompts/judge_extract.jinja` -- the allowed answers and the model's reply -- and answers one
option letter or label, or "none". Only *invalid* outputs of choice, yesno and label tasks are
sent: hedges (`ambiguous`) stay ambiguous, and answers the rules read are never second-guessed.
The judge's reply must be exactly one allowed answer or "none" (after stripping decoration);
anything else is "unparseable" and the output stays invalid. The judge is a ChatGrader
(chat.py): the OpenAI backend behind the generation cache, built once per run by registry.py;
its verdicts are labelled in the samples.
Scoring reports metrics with and without the judge; rules-only stays the default and stays
the `metrics` block.
"""
from __future__ import annotations

import re

from ..backends.base import prompt_hash
from .chat import ChatGrader, after_thinking

TEMPLATE = "judge_extract.jinja"
JUDGED_TYPES = {"choice", "yesno", "label"}


def parse_choice(text: str | None, keys: list[str]) -> str | None:
    """The allowed answer the judge named, "none", or None (unparseable): the whole reply must be it."""
    text = after_thinking(text)
    core = re.sub(r"^(?:answer|final answer)\s*[:\-]\s*", "", text.strip(" \t\r\n*`\"'.()[]"), flags=re.I)
    core = core.strip(" \t\r\n*`\"'.()[]")
    for k in [*keys, "none"]:
        if core.lower() == k.lower():
            return k
    return None


class ExtractJudge(ChatGrader):
    """The extraction prompt over the grader's cached chat model; one per run."""

    TEMPLATE = TEMPLATE
    max_tokens = 16

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
        self.ask_all(prompts)

    def judge(self, task, text: str, options) -> tuple[str | None, dict]:
        """(answer or None, record) for one invalid output."""
        ph, reply = self.reply(self.render_for(task, text, options))
        _, choices = self.choices(task, options)
        got = parse_choice(reply["content"], [c["key"] for c in choices])
        verdict = "unparseable" if got is None else got
        self.counts[{"none": "none", "unparseable": "unparseable"}.get(verdict, "answered")] += 1
        record = {"judge": self.model, "verdict": verdict, "raw": reply["content"][:500],
                  "cached": reply["cached"], "prompt_hash": ph}
        return (None if got in (None, "none") else got), record

    def summary(self) -> dict:
        """This judge's verdicts (one judge per task: its counts and tokens are the task's own)."""
        return {**self.base_summary(), "answered": self.counts["answered"], "none": self.counts["none"],
                "applies_to": "outputs the rules found invalid (never ambiguous ones)"}
