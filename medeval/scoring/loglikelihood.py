"""Loglikelihood scoring (`scoring: loglikelihood` tasks): requests -> cached per-choice log-probabilities.

The protocol of lm-evaluation-harness's `multiple_choice` tasks, which the Open Medical-LLM Leaderboard
used: each choice is a continuation (target delimiter + choice) of the rendered prompt; the prediction is
the choice with the highest summed log-probability (`loglikelihood` mode, lm-eval's `acc`), or the highest
sum divided by the choice's length in characters (`loglikelihood_norm` mode, lm-eval's `acc_norm`).
No text is generated, so greedy and self-consistency do not apply.

Scores are cached one row per (backend identity, prompt hash, continuation), like samples, by the
caching wrapper (backends/caching.py); `backends.caching.score_all` is its thin caller.
"""
from __future__ import annotations

def pick(mode: str, scores: list[dict], choices: list[tuple[str, str]]) -> tuple[str, dict]:
    """The predicted answer of one item in `mode`, and the samples-file block that shows why (the
    reduction of the two loglikelihood modes of scoring/modes.py).

    Ties go to the first choice (numpy's argmax, as lm-eval). Normalisation divides by the length of
    the choice in characters, without the delimiter (lm-eval's `acc_norm`); bytes are recorded too.
    """
    lps = [s["logprob"] for s in scores]
    if mode == "loglikelihood":
        best = max(range(len(lps)), key=lambda j: (lps[j], -j))
        block = {"choices": [a for a, _ in choices], "logprobs": lps, "tokens": [s["tokens"] for s in scores],
                 "chars": [len(t) for _, t in choices], "bytes": [len(t.encode("utf-8")) for _, t in choices],
                 "greedy": [s["greedy"] for s in scores]}
        if any("straddles" in s for s in scores):  # text prompts: the first token began in the context
            block["straddles"] = [s.get("straddles") for s in scores]
    else:
        norm = [lp / max(len(t), 1) for lp, (_, t) in zip(lps, choices)]
        best = max(range(len(norm)), key=lambda j: (norm[j], -j))
        block = {"normalised": norm}
    return choices[best][0], block

