"""One grader interface and one verdict type.

A grader reads one `Case` (the answer to grade, the gold, the dataset row, the allowed answers) and
returns one `Verdict`: the value scoring keeps (a rank, a score, an option key; None when it gives
none), its status (one word, the tally it adds to) and the record the samples file keeps. Every grader
is a `Grader`:

* `prefetch(cases)`: everything the grader needs asked, at once (a model grader sends every uncached
  prompt concurrently); a no-op for graders without a model;
* `grade(case) -> Verdict`: one verdict, tallied here (`Verdict.tally`) so no grader counts its own;
* `summary() -> dict`: results.json's block: `describe()` (who graded, with what, its calls and
  tokens: `chat.ChatGrader`), then the tallies named in `COUNTS`, then the fixed `NOTES`;
* `report(graded, rows) -> dict`: extra task blocks over the records per mode (HealthBench's
  `rubric` breakdowns); none by default.

An answer type names the grader of its final answers (`AnswerType.grader`, a `name` below) and says
whether the extraction judge may read its invalid outputs (`AnswerType.extract_judged`);
registry.py builds graders from those declarations alone.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Case:
    """What a grader reads about one item."""
    answer: Any                    # what is graded: the final answer (a differential, a reply) or an output's text
    gold: Any = None               # the reference: the final diagnosis, the rubric's criteria
    row: Mapping = field(default_factory=dict)   # the dataset row (HealthBench: the conversation)
    choices: tuple | None = None   # (kind, [{key, text}]): the allowed answers (AnswerType.choices)


@dataclass(frozen=True)
class Verdict:
    """One grader's verdict on one case."""
    value: Any                     # what scoring keeps: a rank, a score, an option key; None: none given
    status: str                    # one word ("match", "unparseable", "none", ...): the tally it adds to
    record: dict                   # what the samples file keeps for this verdict
    counts: Mapping[str, int] | None = None   # the tallies it adds instead (several per verdict: rubric criteria)

    def tally(self) -> Mapping[str, int]:
        return {self.status: 1} if self.counts is None else self.counts


class Grader(ABC):
    """The interface every grader implements; counting lives here, once."""

    name: ClassVar[str] = ""                    # the name an answer type gives in `grader` (None: not by type)
    COUNTS: ClassVar[dict[str, str]] = {}       # summary key -> tally, in results.json's order
    NOTES: ClassVar[dict[str, str]] = {}        # fixed lines of the summary (rules the counts follow)

    def __init__(self):
        self.counts: Counter = Counter()        # tallies of verdicts (and, for model graders, of replies)

    def prefetch(self, cases: Iterable[Case]) -> None:
        """Ask for everything `cases` will need, at once; nothing to ask by default."""

    def grade(self, case: Case) -> Verdict:
        """One verdict, tallied."""
        verdict = self.verdict(case)
        self.counts.update(verdict.tally())
        return verdict

    @abstractmethod
    def verdict(self, case: Case) -> Verdict:
        """The grader's own work on one case (`grade` tallies it)."""

    def describe(self) -> dict:
        """Who graded and with what (the summary's first fields)."""
        return {}

    def summary(self) -> dict:
        """results.json's block for this grader (one per task: its tallies are the task's own)."""
        return {**self.describe(), **{k: self.counts[c] for k, c in self.COUNTS.items()}, **self.NOTES}

    def report(self, graded: Mapping[str, list], rows: list[dict]) -> dict:
        """Extra task blocks from the records per mode and the rows; none by default."""
        return {}
