"""Loglikelihood scoring (`scoring: loglikelihood` tasks): requests -> cached per-choice log-probabilities.

The protocol of lm-evaluation-harness's `multiple_choice` tasks, which the Open Medical-LLM Leaderboard
used: each choice is a continuation (target delimiter + choice) of the rendered prompt; the prediction is
the choice with the highest summed log-probability (`loglikelihood` mode, lm-eval's `acc`), or the highest
sum divided by the choice's length in characters (`loglikelihood_norm` mode, lm-eval's `acc_norm`).
No text is generated, so greedy and self-consistency do not apply.

Scores are cached one row per (backend identity, prompt hash, continuation), like samples.
"""
from __future__ import annotations

import json

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .backends.base import Request, prompt_hash
from .cache import Cache, score_key
from .errors import MedevalError

MODES = ("loglikelihood", "loglikelihood_norm")


def score_all(backend, cache: Cache, requests: list[Request], progress: bool = True) -> dict[str, dict]:
    """request id -> {"prompt", "scores": [{"continuation", "logprob", "tokens", "greedy"}], "info", "cached"}."""
    if not requests:
        return {}
    if not hasattr(backend, "loglikelihood"):
        raise MedevalError(f"the {backend.name} backend cannot score `scoring: loglikelihood` tasks; "
                           "use --backend hf, vllm, or openai with a server that returns prompt logprobs")
    ident = backend.identity().as_dict()
    model = json.dumps(ident, sort_keys=True, default=str)
    results, todo = {}, []
    plans = []
    for r in requests:
        text = backend.render(r)
        ph = prompt_hash(text)
        plans.append((r, text, ph, [score_key(ident, backend.name, ph, c) for c in r.continuations]))
    cached = cache.get([k for *_, keys in plans for k in keys])
    for r, text, ph, keys in plans:
        have = [cached.get(k) for k in keys]
        results[r.id] = {"prompt": text, "info": next((h[2] for h in have if h), {}),
                         "scores": [dict(json.loads(h[0]), continuation=c) if h else None
                                    for h, c in zip(have, r.continuations)],
                         "cached": sum(h is not None for h in have)}
        cache.hits += results[r.id]["cached"]
        if results[r.id]["cached"] < len(keys):
            cache.misses += len(keys) - results[r.id]["cached"]
            todo.append((r, ph, keys))
    if not todo:
        return results
    columns = [TextColumn("scoring choices"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task_bar = bar.add_task("ll", total=len(todo))
        for idx, scored in backend.loglikelihood([t[0] for t in todo]):
            r, ph, keys = todo[idx]
            if len(scored.logprobs) != len(r.continuations):
                raise MedevalError(f"backend returned {len(scored.logprobs)} scores for {r.id}, "
                                   f"expected {len(r.continuations)}")
            values = [{"logprob": lp, "tokens": n, "greedy": g}
                      for lp, n, g in zip(scored.logprobs, scored.tokens, scored.greedy)]
            cache.put([(k, model, backend.name, ph, {"loglikelihood": c}, 0, json.dumps(v), "scored", scored.info)
                       for k, c, v in zip(keys, r.continuations, values)])
            results[r.id]["scores"] = [dict(v, continuation=c) for v, c in zip(values, r.continuations)]
            results[r.id]["info"] = scored.info
            bar.advance(task_bar)
    return results


def pick(mode: str, scores: list[dict], choices: list[tuple[str, str]]) -> tuple[str, dict]:
    """The predicted answer of one item in `mode`, and the samples-file block that shows why.

    Ties go to the first choice (numpy's argmax, as lm-eval). Normalisation divides by the length of
    the choice in characters, without the delimiter (lm-eval's `acc_norm`); bytes are recorded too.
    """
    lps = [s["logprob"] for s in scores]
    if mode == "loglikelihood":
        best = max(range(len(lps)), key=lambda j: (lps[j], -j))
        block = {"choices": [a for a, _ in choices], "logprobs": lps, "tokens": [s["tokens"] for s in scores],
                 "chars": [len(t) for _, t in choices], "bytes": [len(t.encode("utf-8")) for _, t in choices],
                 "greedy": [s["greedy"] for s in scores]}
    else:
        norm = [lp / max(len(t), 1) for lp, (_, t) in zip(lps, choices)]
        best = max(range(len(norm)), key=lambda j: (norm[j], -j))
        block = {"normalised": norm}
    return choices[best][0], block


def protocol(mode: str, shots: int, k: int = 0) -> str:
    """How a mode's numbers were made, as the leaderboard labels them."""
    return {"greedy": "generate-greedy", "sc": f"generate-sc{k}", "loglikelihood": f"loglikelihood-{shots}shot",
            "loglikelihood_norm": f"loglikelihood-norm-{shots}shot"}.get(mode, mode)
