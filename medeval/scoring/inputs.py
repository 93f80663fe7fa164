"""What scoring reads: per mode and item, the outputs the model gave (`ScoringInput`).

Three commands make one: `medeval run` from its generation results (`ScoringInput.of_run`), `medeval
merge` from the shards' samples and shard files (runs/merge.py), `medeval score` from a predictions
file (`ScoringInput.of_texts`). scoring/score.py reads only this, whichever made it, so the three score
alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..accounting import tokens_of


@dataclass
class ItemOutputs:
    """One item's outputs in one mode. A generating mode has `texts` (one per sample) with their finish
    reasons and token counts; a loglikelihood mode has `scores` (one per choice) instead."""

    prompt: str | None = None          # the rendered prompt (None: not known, e.g. external predictions)
    texts: list | None = None          # generated samples
    finish: list | None = None         # finish reason per sample (None: not known)
    tokens: list | None = None         # completion tokens per sample (None where unknown)
    sample_prompts: list | None = None  # (prompt tokens, billing, completion share) per sample (accounting)
    n_path: list | None = None         # how the backend obtained each sample (OpenAI backend)
    info: dict = field(default_factory=dict)   # the backend's info (skipped / truncated context, token totals)
    cached: int | None = None          # how many samples (or scored choices) came from the cache
    scores: list | None = None         # loglikelihood: {"logprob", "tokens", "greedy"} per choice
    prefill: str = ""                  # --adversarial: the misleading start the reply continues
    self_answer: list | None = None    # --extract-fallback / --extract-audit: one record (or None) per sample
    copies: list | None = None         # --permute: [{"order", "output"}] per shown order, the original first

    @classmethod
    def of_result(cls, got: dict, prefill: str = "", self_answer: list | None = None) -> ItemOutputs:
        """From one request's result as the caching wrapper gives it (Generated / ScoredChoices.as_dict)."""
        return cls(prompt=got.get("prompt"), texts=got.get("texts"), finish=got.get("finish"),
                   tokens=got.get("tokens"), sample_prompts=got.get("sample_prompts"), n_path=got.get("n_path"),
                   info=got.get("info") or {}, cached=got.get("cached"), scores=got.get("scores"),
                   prefill=prefill or "", self_answer=self_answer)

    def finishes(self) -> list:
        """The finish reason of each sample, None where not known."""
        return list(self.finish or [None] * len(self.texts or []))

    def finish_at(self, k: int):
        """Sample k's finish reason (None: not known)."""
        return ((self.finish or [])[k:k + 1] or [None])[0]

    def reply(self, k: int) -> str:
        """Sample k as the model's whole reply: the prefill, then what it wrote."""
        return self.prefill + (self.texts[k] or "")

    def usage(self) -> dict:
        """{"prompt", "completion", "per_sample"} tokens (accounting.tokens_of)."""
        return tokens_of({"info": self.info, "texts": self.texts, "tokens": self.tokens,
                          "sample_prompts": self.sample_prompts})


@dataclass
class ScoringInput:
    """One task's outputs: `outputs[mode][item_id]`, for the modes in `modes` (their order is the report's)."""

    modes: list[str]
    outputs: dict[str, dict[str, ItemOutputs]]

    def __post_init__(self):
        missing = [m for m in self.modes if m not in self.outputs]
        if missing:
            raise ValueError(f"ScoringInput: no outputs for mode(s) {missing}")

    def get(self, mode: str, item_id: str) -> ItemOutputs:
        return self.outputs[mode][item_id]

    def has_prefill(self) -> bool:
        return any(o.prefill for m in self.modes for o in self.outputs[m].values())

    @classmethod
    def of_run(cls, p, reqs: dict, results: dict, modes: list[str], self_answers: dict | None = None) -> ScoringInput:
        """From `medeval run`: the task's requests ((item id, mode) -> Request), the results per request id
        (runner.generate_all / caching.score_all) and the self-answers per request id (self_answer.self_answers)."""
        own = self_answers or {}
        return cls(list(modes), {mode: {i: ItemOutputs.of_result(results[reqs[(i, mode)].id], reqs[(i, mode)].prefill,
                                                                 own.get(reqs[(i, mode)].id)) for i in p.ids}
                                 for mode in modes})

    @classmethod
    def of_texts(cls, modes: list[str], texts: dict[str, dict[str, list[str]]]) -> ScoringInput:
        """From texts alone (`medeval score`): mode -> item id -> the outputs; no prompt, finish or tokens."""
        return cls(list(modes), {m: {i: ItemOutputs(texts=list(t)) for i, t in texts[m].items()} for m in modes})
