"""The run's model graders, built once from its options and closed at the end.

`Graders(cfg, tasks)` reads `--judge` / `--judge-base-url` (diagnosis judge, HealthBench rubric grader),
`--extract-judge` / `--extract-judge-base-url` and the cache options (`cache_dir`, `no_cache`) from any
object that has them (RunConfig, a merged shard's config). It builds each grader model once
(`chat_grader.chat_model`: the OpenAI backend behind one generation-cache connection), up front for
the given tasks, so a missing key or a bad URL fails before any generation. Then:

* `for_task(task)` (or `judge(answer_type)`): the task's judge, a fresh tally over the shared model
  (each task's results.json block counts its own verdicts), or None when the answer type has none;
* `extract_for(task)`: the extraction judge for one task (a fresh tally over the run's one shared
  model, so each task's block counts its own verdicts and tokens), or None without --extract-judge;
* `close()`: closes the cache connection.

Adding a grader for a new answer type: its ChatGrader subclass in its own module, and one entry in
`_JUDGES` below.
"""
from __future__ import annotations

from ..backends.cache import Cache, NullCache
from ..backends.caching import CachingBackend
from .chat import chat_model
from ..errors import MedevalError
from .extract_judge import ExtractJudge
from .judge import LexicalJudge, LLMJudge
from ..paths import default_cache_dir
from .rubric import RubricGrader

_JUDGES = {"diagnosis": (LLMJudge, ", or use --judge none (lexical fallback, not the paper's metric)"),
           "rubric": (RubricGrader, " (HealthBench needs a grader model)")}
NEEDS_GRADER = ("HealthBench tasks are graded by a model: pass --judge MODEL (the II-Medical cards used gpt-4.1) "
                "and --judge-base-url URL for any OpenAI-compatible server")


class Graders:
    def __init__(self, cfg, tasks=(), progress: bool = False, **options):
        """`options` go to each grader's OpenAIBackend (e.g. max_retries, timeout, concurrency); `progress`
        shows the judging phase."""
        self.cfg, self.options, self.progress = cfg, options, progress
        self.cache: Cache | None = None
        self._models: dict[tuple, CachingBackend] = {}
        name = (getattr(cfg, "extract_judge", None) or "").strip()
        self._extract_model = None   # built now: a missing key or a bad URL fails before generating
        if name and name.lower() != "none":
            self._extract_model = self._model("--extract-judge", name, getattr(cfg, "extract_judge_base_url", None), "")
        for kind in sorted({t.answer.type for t in tasks} & set(_JUDGES)):
            self.judge(kind)   # builds the grader's model now: a missing key, a bad URL or a rubric task
            #                    without --judge fails before generating

    def _judge_name(self) -> str | None:
        name = (getattr(self.cfg, "judge", None) or "none").strip()
        return None if name.lower() == "none" else name

    def _model(self, option: str, name: str, base_url: str | None, hint: str) -> CachingBackend:
        key = (name, base_url)
        if key not in self._models:
            if self.cache is None:
                cfg = self.cfg
                self.cache = (NullCache() if getattr(cfg, "no_cache", False) else
                              Cache(getattr(cfg, "cache_dir", None) or default_cache_dir()))
            self._models[key] = chat_model(name, base_url, self.cache, option, hint, self.progress, **self.options)
        return self._models[key]

    def judge(self, answer_type: str):
        """A new judge for one task of `answer_type` (its own counts, the run's shared model), or None."""
        if answer_type not in _JUDGES:
            return None
        name = self._judge_name()
        if name is None:
            if answer_type == "rubric":
                raise MedevalError(NEEDS_GRADER)
            return LexicalJudge()
        cls, hint = _JUDGES[answer_type]
        return cls(self._model("--judge", name, getattr(self.cfg, "judge_base_url", None), hint))

    def for_task(self, task):
        return self.judge(task.answer.type)

    def extract_for(self, task=None):
        """A new extraction judge for one task (its own counts and tokens, the run's shared model), or None."""
        return None if self._extract_model is None else ExtractJudge(self._extract_model)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None
