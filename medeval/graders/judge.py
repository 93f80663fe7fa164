"""Who decides the rank of the final diagnosis in a model's differential (diagnosis tasks).

A judge is a `base.Grader` of the `diagnosis` answer type: `grade(Case(differential, final_diagnosis,
row))` gives a Verdict whose value is the rank (None: no entry matches, or no verdict); registry.py
builds one per task:

* `--judge none`: the lexical matcher of `medeval.metrics.diagnosis` (`lexical_rank`), labelled
  "lexical-fallback" in every record because it is not the LLM-judged metric of the papers.
* `--judge MODEL`: an OpenAI-compatible chat model (hosted OpenAI unless `--judge-base-url`) reads
  `prompts/judge_diagnosis.jinja` and answers `{"rank": N, "reasoning": ...}`, read by `parse_verdict`.
  It is a ChatGrader (chat.py): the OpenAI backend behind the generation cache, so a re-run asks
  nothing; `prefetch` sends all uncached prompts concurrently before scoring. The API key is read from
  $OPENAI_API_KEY and never recorded.
"""
from __future__ import annotations

import re

from ..backends.base import prompt_hash
from .base import Case, Grader, Verdict
from .chat import ChatGrader, after_thinking, last_json_object
from ..metrics.diagnosis import MATCH_THRESHOLD, lexical_rank

TEMPLATE = "judge_diagnosis.jinja"
_RANK = re.compile(r"\brank\b\W{0,6}(?:is\s+)?(\d+|none|null)\b", re.I)   # Rank: 2, **rank** = none


class LexicalJudge(Grader):
    """--judge none: Dice overlap of stemmed content tokens (docs/metrics.md, Diagnosis)."""

    label = {"judge": "lexical-fallback", "note": "not the paper's metric"}

    def verdict(self, case: Case) -> Verdict:
        pred, gold = case.answer, case.gold
        if not pred:
            return Verdict(None, "no_differential", {**self.label, "verdict": "no differential", "rank": None})
        rank = lexical_rank(pred, gold)
        return Verdict(rank, "match" if rank else "no_match",
                       {**self.label, "verdict": "match" if rank else "no match", "rank": rank,
                        "threshold": MATCH_THRESHOLD})

    def describe(self) -> dict:
        return {**self.label, "threshold": MATCH_THRESHOLD}


def parse_verdict(text: str | None, n_entries: int) -> tuple[int | None, str | None]:
    """(rank, reasoning) from a judge reply; rank 0 = no entry matches, None = unparseable or out
    of range. Reads {"rank": N, "reasoning": ...} JSON anywhere in the reply, else "Rank: N"."""
    text = after_thinking(text).strip()
    obj = last_json_object(text, lambda o: "rank" in o) or {}
    rank, reasoning = obj.get("rank"), obj.get("reasoning")
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


class LLMJudge(ChatGrader):
    """An OpenAI-compatible chat model grading each differential (see the module docstring)."""

    name = "diagnosis"
    TEMPLATE = TEMPLATE
    COUNTS = {"no_differential": "no_differential"}
    HINT = ", or use --judge none (lexical fallback, not the paper's metric)"   # ends the missing-key error

    @classmethod
    def without_model(cls) -> Grader:
        """--judge none: the lexical matcher, labelled as such."""
        return LexicalJudge()

    def render(self, differential: list[str], final_diagnosis: str) -> str:
        return self.template.render(differential=list(differential), final_diagnosis=str(final_diagnosis)).strip()

    def prefetch(self, cases) -> None:
        """Ask for every case's (differential, final diagnosis) not yet cached, `concurrency` at a time."""
        prompts = {}
        for case in cases:
            if case.answer:
                text = self.render(case.answer, case.gold)
                prompts.setdefault(prompt_hash(text), text)
        self.ask_all(prompts)

    def verdict(self, case: Case) -> Verdict:
        pred, gold = case.answer, case.gold
        base = {"judge": self.model, "template_hash": self.template_hash}
        if not pred:
            return Verdict(None, "no_differential", {**base, "verdict": "no differential", "rank": None})
        ph, reply = self.reply(self.render(pred, gold))
        rank, reasoning = parse_verdict(reply["content"], len(pred))
        verdict = "unparseable" if rank is None else "match" if rank else "no match"
        record = {**base, "server_model": reply.get("server_model"), "prompt_hash": ph, "verdict": verdict,
                  "rank": rank or None, "reasoning": reasoning, "raw": reply["content"], "cached": reply["cached"]}
        return Verdict(rank or None, verdict.replace(" ", "_"), record)
