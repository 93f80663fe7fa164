"""The evaluated model's own answer to its own output: `--extract-fallback self` and `--extract-audit`.

For one generated output of a task whose answer type is `extract_judged` (choice, yesno, label), the context is the prompt exactly as it was
generated from (chat template, any adversarial prefill), then the output, then the fixed cue `CUE`; the
continuations are the answer keys, each after one space (" A", " B", ... or " yes", " no", " maybe").
The self-answer is the key the evaluated model gives the highest summed log-probability (ties: the
first key). It is scored through the caching wrapper (backends.caching.score_all), so it is cached per
(model identity, context, key) and a resumed run makes no new model calls.

* `--extract-fallback self` asks about every output the rules find `invalid`, except outputs cut by the
  token limit (finish `length`; the model never reached an answer, and a forced one would hide a
  --max-tokens problem) and empty outputs (a skipped prompt). Ambiguous outputs (hedges) stay ambiguous.
  The answers with the fallback are reported beside the rules-only ones (scoring/score.py); sc votes over the
  per-sample answers (rules' where they read one, else the self-answer).
* `--extract-audit` asks about every non-empty output, and scoring compares the self-answer with the
  rules' answer wherever the rules read one.

docs/extract_fallback.md documents both. `medeval score` has no model, so neither applies there; `medeval
merge` reads the self-answers the shards recorded in their samples files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..tasks import answer_types
from ..accounting import is_truncated
from ..backends.base import Request
from ..errors import MedevalError
from ..backends.caching import score_all

CUE = "\n\nFinal answer:"
OPTIONS = ("--extract-fallback", "--extract-audit")


@dataclass(frozen=True)
class SelfCheck:
    """Which of the two options a run (or a merge of its shards) has on."""
    fallback: bool = False
    audit: bool = False

    @classmethod
    def of(cls, cfg) -> SelfCheck | None:
        fallback = (getattr(cfg, "extract_fallback", None) or "none") == "self"
        audit = bool(getattr(cfg, "extract_audit", False))
        return cls(fallback, audit) if fallback or audit else None

    def names(self) -> str:
        return " and ".join(o for o, on in zip(("--extract-fallback self", "--extract-audit"),
                                                (self.fallback, self.audit)) if on)


def applies(task) -> bool:
    """Generated tasks of an `extract_judged` answer type (choice, yesno, label) have a self-answer; others
    (free text, loglikelihood) none."""
    return task.scoring == "generate" and answer_types.of(task).extract_judged


def keys(task, options) -> list[str]:
    """The answers the model chooses among (the answer type's `choices`): the option letters, or the task's labels."""
    return [c["key"] for c in answer_types.of(task).choices(task, options)[1]]


def check(cfg, tasks, backend_cls=None, backend_options: dict | None = None) -> None:
    """The options' checks before any work: one line naming the option and the fix."""
    fb = getattr(cfg, "extract_fallback", None)
    if fb is not None and fb not in ("self", "none"):
        raise MedevalError(f"--extract-fallback {fb!r}: the only fallback is 'self' (the evaluated model's own "
                           "answer); for another model use --extract-judge MODEL")
    sc = SelfCheck.of(cfg)
    if sc is None:
        return
    ll = [t.name for t in tasks if t.scoring == "loglikelihood"]
    if ll:
        raise MedevalError(f"{sc.names()}: task(s) {', '.join(ll)} are `scoring: loglikelihood` (no generated text "
                           "to read); run them without it, or drop them from --tasks")
    if not any(applies(t) for t in tasks):
        raise MedevalError(f"{sc.names()}: none of the tasks has a choice, yesno or label answer "
                           f"({', '.join(f'{t.name}: {t.answer.type}' for t in tasks)}); drop the option")
    if backend_cls is not None:
        if not hasattr(backend_cls, "loglikelihood"):
            raise MedevalError(f"{sc.names()}: the {getattr(backend_cls, 'name', backend_cls)} backend cannot score "
                               "log-probabilities; use --backend hf or vllm")
        if getattr(backend_cls, "name", "") == "openai" and not (backend_options or {}).get("tokenizer"):
            raise MedevalError(f"{sc.names()}: the openai backend scores log-probabilities only with "
                               "--model-args tokenizer=<the served model's HF id or path> and a server that returns "
                               "prompt logprobs (echo=true, e.g. vllm serve); hosted OpenAI cannot")


def fallback_applies(status: str, text: str | None, finish) -> bool:
    """Whether the fallback answers one output: invalid by the rules, not empty, not cut by the token limit."""
    return bool(text) and status == "invalid" and not is_truncated([finish])


def wanted(status: str, text: str | None, finish, sc: SelfCheck) -> bool:
    """Whether one output is asked about: every non-empty one under the audit, else the fallback's."""
    return bool(text) if sc.audit else fallback_applies(status, text, finish)


def self_answers(prepared, reqs: dict, outputs: dict, modes_of, backend, cache, sc: SelfCheck,
                 progress: bool = True) -> dict[str, list]:
    """Generation request id -> one record (or None: not asked) per sample, for every generated request
    of the tasks the options apply to. `modes_of(task)` gives a task's modes; `outputs` are the runner's."""
    asked: dict[tuple, Request] = {}     # unique contexts: identical outputs are scored once
    where: list[tuple[str, int, tuple, list[str]]] = []
    per_request: dict[str, list] = {}
    for p in prepared:
        if not applies(p.task):
            continue
        for it in p.items:
            ks = keys(p.task, it.options)
            for mode in modes_of(p.task):
                r = reqs[p.task.name][(it.id, mode)]
                got = outputs[r.id]
                texts, finishes = got["texts"], list(got.get("finish") or [None] * len(got["texts"]))
                per_request.setdefault(r.id, [None] * len(texts))
                for i, (t, f) in enumerate(zip(texts, finishes)):
                    reply = r.prefill + (t or "")
                    status = answer_types.outcome(p.task, reply, it.row, it.options, finish_reason=f).status
                    if not wanted(status, t, f, sc):
                        continue
                    key = (r.messages, r.chat, reply, tuple(ks))
                    if key not in asked:
                        asked[key] = Request(f"{r.id}/self/{i}", r.messages, prefill=reply + CUE, chat=r.chat,
                                             continuations=tuple(" " + k for k in ks))
                    where.append((r.id, i, key, ks))
    unique = list(asked.values())
    scored = score_all(backend, cache, unique, progress)
    for rid, i, key, ks in where:
        per_request[rid][i] = record(scored[asked[key].id], ks)
    return per_request


def record(scored: dict, ks: list[str]) -> dict:
    """One output's self-answer as the samples file keeps it."""
    lps = [s["logprob"] for s in scored["scores"]]
    best = max(range(len(lps)), key=lambda j: (lps[j], -j))
    top = max(lps)
    total = sum(math.exp(lp - top) for lp in lps)
    return {"answer": ks[best], "keys": ks, "logprobs": lps, "p": math.exp(lps[best] - top) / total,
            "cached": scored["cached"] == len(ks)}
