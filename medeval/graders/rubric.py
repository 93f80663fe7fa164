"""HealthBench rubric grading: a grader model decides, for each physician-written criterion, whether
a response meets it; the item score is the points met over the total positive points, clipped to [0, 1].

The grader is any OpenAI-compatible chat model (`--judge MODEL`, `--judge-base-url URL`; the
II-Medical cards used gpt-4.1). It reads `prompts/healthbench_grader.jinja` once per criterion and
answers {"explanation": ..., "criteria_met": true|false}. The grader is a ChatGrader (chat.py):
the OpenAI backend behind the generation cache, built once per run by registry.py, `concurrency` in
flight, retried by the openai client. A reply that gives no verdict is counted as unparseable and the criterion as not met
(no points, no penalty); the counts are in results.json, never dropped silently.
"""
from __future__ import annotations

import re
from collections import defaultdict

from ..backends.base import prompt_hash
from ..errors import MedevalError
from .base import Case, Verdict
from .chat import ChatGrader, after_thinking, last_json_object

TEMPLATE = "healthbench_grader.jinja"
NEEDS_GRADER = ("HealthBench tasks are graded by a model: pass --judge MODEL (the II-Medical cards used gpt-4.1) "
                "and --judge-base-url URL for any OpenAI-compatible server")
_MET = re.compile(r'"?criteria_met"?\s*[:=]\s*"?(true|false)\b', re.I)


def parse_met(text: str | None) -> bool | None:
    """criteria_met from a grader reply: the last JSON object that has it, else `criteria_met: true`."""
    text = after_thinking(text)
    obj = last_json_object(text, lambda o: isinstance(o.get("criteria_met"), bool))
    if obj is not None:
        return obj["criteria_met"]
    hits = _MET.findall(text)
    return hits[-1].lower() == "true" if hits else None


def item_score(criteria: list[dict], met: list[bool | None]) -> float | None:
    """Points of the met criteria (penalties included) over the total positive points, clipped to [0, 1]."""
    possible = sum(c["points"] for c in criteria if c["points"] > 0)
    if possible <= 0:
        return None
    return min(1.0, max(0.0, sum(c["points"] for c, m in zip(criteria, met) if m) / possible))


class RubricGrader(ChatGrader):
    """The grader model deciding, criterion by criterion, whether a response meets it. A case is
    (response, the item's criteria, the row); the verdict's value is the item score."""

    name = "rubric"
    TEMPLATE = TEMPLATE
    max_tokens = 512
    COUNTS = {"criteria_graded": "criteria", "items_with_unparseable": "items_with_unparseable",
              "empty_responses": "empty_response"}
    NOTES = {"unparseable_rule": "a criterion whose grader reply gives no verdict counts as not met"}
    HINT = " (HealthBench needs a grader model)"   # ends the missing-key error

    @classmethod
    def without_model(cls):
        """--judge none: there is no rubric grading without a model."""
        raise MedevalError(NEEDS_GRADER)

    def usable(self, text: str | None) -> bool:
        """A reply is usable (and cached) only when it gives a verdict."""
        return parse_met(text) is not None

    def render(self, conversation, response: str, criterion: dict) -> str:
        return self.template.render(conversation=list(conversation), response=response,
                                    criterion=str(criterion["criterion"]), points=criterion["points"]).strip()

    def _prompts(self, response, rubrics, row) -> list[str]:
        conv = [m for m in row.get("prompt", [])]
        return [self.render(conv, response, c) for c in rubrics]

    def prefetch(self, cases) -> None:
        prompts = {}
        for case in cases:
            if case.answer:
                for text in self._prompts(case.answer, case.gold, case.row or {}):
                    prompts.setdefault(prompt_hash(text), text)
        self.ask_all(prompts)

    def verdict(self, case: Case) -> Verdict:
        response, rubrics = case.answer, case.gold
        base = {"grader": self.model, "template_hash": self.template_hash}
        if not response:   # nothing written meets no criterion: 0 after clipping, no grader call needed
            return Verdict(0.0, "empty_response", {**base, "verdict": "empty response", "score": 0.0, "criteria": []})
        out = []
        for c, text in zip(rubrics, self._prompts(response, rubrics, case.row or {})):
            ph, reply = self.reply(text)
            met = parse_met(reply["content"])
            out.append({"criterion": c["criterion"], "points": c["points"], "tags": c.get("tags", []),
                        "met": met, "verdict": "unparseable" if met is None else ("met" if met else "not met"),
                        "raw": reply["content"], "cached": reply["cached"], "prompt_hash": ph})
        score = item_score(rubrics, [o["met"] for o in out])
        unparseable = sum(o["met"] is None for o in out)
        counts = {"graded": 1, "criteria": len(out), "unparseable": unparseable,
                  "items_with_unparseable": int(bool(unparseable)), "no_positive_criteria": int(score is None)}
        return Verdict(score, "graded", {**base, "verdict": "graded", "score": score, "unparseable": unparseable,
                                         "criteria": out}, counts)

    def report(self, graded, rows) -> dict:
        """HealthBench's `rubric` block: per mode, the scores by axis and by theme."""
        return {"rubric": {m: breakdowns(records, rows) for m, records in graded.items()}}


def breakdowns(records: list[dict], rows: list[dict]) -> dict:
    """Scores by axis (criteria tagged axis:X, scored like an item over those criteria only) and by
    theme (items tagged theme:X), each the mean over items with a bootstrap interval."""
    from ..stats import bootstrap_mean

    by_axis, by_theme = defaultdict(list), defaultdict(list)
    for rec, row in zip(records, rows):
        crits = rec.get("criteria") or []
        axes = {t for c in crits for t in c["tags"] if t.startswith("axis:")}
        for axis in sorted(axes):
            sub = [c for c in crits if axis in c["tags"]]
            s = item_score(sub, [c["met"] for c in sub])
            scores = by_axis[axis.split(":", 1)[1]]   # listed even when only penalties carry the axis (n 0)
            if s is not None:
                scores.append(s)
        for tag in row.get("example_tags") or []:
            if isinstance(tag, str) and tag.startswith("theme:") and rec.get("score") is not None:
                by_theme[tag.split(":", 1)[1]].append(rec["score"])
    return {"by_axis": {k: bootstrap_mean(v) for k, v in sorted(by_axis.items())},
            "by_theme": {k: bootstrap_mean(v) for k, v in sorted(by_theme.items())},
            "rule": "item score = points of met criteria (negative points included) / total positive points, "
                    "clipped to [0, 1]; axis score = the same over the item's criteria with that axis tag (items whose "
                    "criteria of that axis are all penalties have no axis score; n counts the others)"}
