"""`--extract-judge MODEL`: an optional fallback for outputs the extraction rules find invalid.

An OpenAI-compatible chat model (hosted OpenAI unless `--extract-judge-base-url`) reads
`prompts/judge_extract.jinja` -- the allowed answers and the model's reply -- and answers one
option letter or label, or "none". Only *invalid* outputs of the answer types that declare
`extract_judged` (choice, yesno, label; their `choices` are the allowed answers) are sent: hedges (`ambiguous`) stay ambiguous, and answers the rules read are never second-guessed.
The judge's reply must be exactly one allowed answer or "none" (after stripping decoration);
anything else is "unparseable" and the output stays invalid. The judge is a ChatGrader
(chat.py): the OpenAI backend behind the generation cache, built per task by registry.py;
`grade(Case(output text, choices=...))` gives a Verdict whose value is the answer (None: "none" or
unparseable) and whose status is "answered", "none" or "unparseable"; its records are labelled in
the samples.
Scoring reports metrics with and without the judge; rules-only stays the default and stays
the `metrics` block.
"""
from __future__ import annotations

import re

from ..backends.base import prompt_hash
from .base import Case, Verdict
from .chat import ChatGrader, after_thinking

TEMPLATE = "judge_extract.jinja"


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
    """The extraction prompt over the grader's cached chat model; one per task. A case is an invalid
    output's text with the allowed answers (`choices`: the answer type's kind and keys)."""

    TEMPLATE = TEMPLATE
    max_tokens = 16
    COUNTS = {"answered": "answered", "none": "none"}
    NOTES = {"applies_to": "outputs the rules found invalid (never ambiguous ones)"}

    def render(self, case: Case) -> str:
        kind, choices = case.choices
        return self.template.render(kind=kind, choices=choices, keys=[c["key"] for c in choices],
                                    reply=(case.answer or "")[-4000:]).strip()

    def prefetch(self, cases) -> None:
        """Ask, `concurrency` at a time, about every case not yet cached."""
        prompts = {}
        for case in cases:
            p = self.render(case)
            prompts.setdefault(prompt_hash(p), p)
        self.ask_all(prompts)

    def verdict(self, case: Case) -> Verdict:
        ph, reply = self.reply(self.render(case))
        got = parse_choice(reply["content"], [c["key"] for c in case.choices[1]])
        verdict = "unparseable" if got is None else got
        record = {"judge": self.model, "verdict": verdict, "raw": reply["content"][:500],
                  "cached": reply["cached"], "prompt_hash": ph}
        return Verdict(None if got in (None, "none") else got,
                       {"none": "none", "unparseable": "unparseable"}.get(verdict, "answered"), record)
