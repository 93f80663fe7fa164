"""The run's graders, built once from its options and closed at the end.

`Graders(cfg, tasks)` reads `--judge` / `--judge-base-url` (the grader an answer type names in
`AnswerType.grader`: the diagnosis judge, HealthBench's rubric grader), `--extract-judge` /
`--extract-judge-base-url` and the cache options (`cache_dir`, `no_cache`) from any object that has
them (RunConfig, a merged shard's config). It builds each grader model once (`chat.chat_model`: the
OpenAI backend behind one generation-cache connection), up front for the given tasks, so a missing
key or a bad URL fails before any generation. Then:

* `for_task(task)` (or `for_type(answer_type)`): the grader the task's answer type declares, a fresh
  tally over the shared model (each task's results.json block counts its own verdicts), or None;
  under `--judge none` the grader class's `without_model()` (the lexical matcher, or an error);
* `extract_for(task)`: the extraction judge for one task (a fresh tally over the run's one shared
  model, so each task's block counts its own verdicts and tokens), or None without --extract-judge;
  scoring asks it only about outputs of answer types that are `extract_judged`;
* `close()`: closes the cache connection.

Every grader is a `base.Grader`. Adding one: its class in its own module (`name`, `HINT`,
`without_model`), one entry in `GRADERS` below, and `grader = <its name>` on the answer types it grades.
"""
from __future__ import annotations

from ..backends.cache import Cache, NullCache
from ..backends.caching import CachingBackend
from .base import Grader
from .chat import ChatGrader, chat_model
from ..errors import MedevalError
from .extract_judge import ExtractJudge
from .judge import LLMJudge
from ..paths import default_cache_dir
from .rubric import RubricGrader
from ..tasks import answer_types

GRADERS: dict[str, type[ChatGrader]] = {cls.name: cls for cls in (LLMJudge, RubricGrader)}   # AnswerType.grader -> class


def grader_of(answer_type: str) -> type[ChatGrader] | None:
    """The grader class an answer type declares, or None; a name GRADERS lacks is an error."""
    name = answer_types.get(answer_type).grader
    if name is not None and name not in GRADERS:
        raise MedevalError(f"answer type {answer_type!r} names grader {name!r}, which medeval.graders.registry."
                           f"GRADERS lacks (it has {sorted(GRADERS)}): register the grader class there")
    return GRADERS.get(name)


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
        for kind in sorted({t.answer.type for t in tasks if grader_of(t.answer.type) is not None}):
            self.for_type(kind)   # builds the grader's model now: a missing key, a bad URL or a rubric task
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

    def for_type(self, answer_type: str) -> Grader | None:
        """A new grader for one task of `answer_type` (its own counts, the run's shared model), or None."""
        cls = grader_of(answer_type)
        if cls is None:
            return None
        name = self._judge_name()
        if name is None:
            return cls.without_model()
        return cls(self._model("--judge", name, getattr(self.cfg, "judge_base_url", None), cls.HINT))

    def for_task(self, task) -> Grader | None:
        return self.for_type(task.answer.type)

    def extract_for(self, task=None) -> ExtractJudge | None:
        """A new extraction judge for one task (its own counts and tokens, the run's shared model), or None
        without --extract-judge. Scoring asks it only about tasks whose answer type is `extract_judged`."""
        return None if self._extract_model is None else ExtractJudge(self._extract_model)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None
