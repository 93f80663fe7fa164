"""The decoding modes, one object each: how a mode samples, how it turns an item's answers into one
prediction, how its numbers are labelled, and whether it generates text.

| mode | tasks | sampling | reduction | protocol label |
|---|---|---|---|---|
| `greedy` | `scoring: generate` | n=1, temperature 0 | the first (only) answer | generate-greedy |
| `sc` | generate, votable, `-k K` > 0 | n=K at --temperature/--top-p | majority vote (`tasks.extract.vote`) | generate-scK |
| `loglikelihood` | `scoring: loglikelihood` | none: the choices are scored | highest log-probability | loglikelihood-Nshot |
| `loglikelihood_norm` | the same | the same request | highest log-probability per character | loglikelihood-norm-Nshot |

The runner (which modes a task has, the requests), scoring, merge, the gate and the leaderboard ask
these objects. The names live in medeval/results/schema.py (`MODES`, the keys of every per-mode block of
results.json); this module is checked against them on import. Adding a mode: its name there, its object
here, and docs/results.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backends.base import Sampling
from ..results.schema import GENERATION_MODES, MODES
from ..tasks.extract import vote
from . import loglikelihood as ll


@dataclass(frozen=True)
class Mode:
    name: str
    generates: bool = True     # reads generated text (else: scores the choices, no text)
    voted: bool = False        # the item's answer is a vote over several samples (reports sample_accuracy)

    def applies(self, task, k: int) -> bool:
        """Whether a task evaluated with self-consistency k has this mode."""
        raise NotImplementedError

    def sampling(self, cfg, **base) -> Sampling | None:
        """The decoding of the mode's requests (None: nothing is generated). `base`: max_tokens, stop, seed."""
        return None

    def decoding(self, cfg) -> dict | None:
        """results.json's `decoding.<mode>` block (None: the mode records none)."""
        return None

    def reduce(self, answers: list) -> tuple:
        """An item's answer from its samples' answers, and the votes (None where nothing is voted)."""
        raise NotImplementedError

    def protocol(self, shots: int | None = None, k: int | None = None) -> str:
        """How the mode's numbers were made, as the leaderboard labels them (without shots or k: the
        label a results file without `protocols` gets)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Greedy(Mode):
    def applies(self, task, k: int) -> bool:
        return task.scoring == "generate"

    def sampling(self, cfg, **base) -> Sampling:
        return Sampling(n=1, temperature=0.0, top_p=1.0, **base)

    def decoding(self, cfg) -> dict:
        return {"temperature": 0.0, "top_p": 1.0, "max_tokens": cfg.max_tokens, "seed": cfg.seed}

    def reduce(self, answers: list) -> tuple:
        return answers[0], None

    def protocol(self, shots: int | None = None, k: int | None = None) -> str:
        return "generate-greedy"


@dataclass(frozen=True)
class SelfConsistency(Mode):
    def applies(self, task, k: int) -> bool:
        return task.scoring == "generate" and k > 0 and task.votable

    def sampling(self, cfg, **base) -> Sampling:
        return Sampling(n=cfg.self_consistency, temperature=cfg.temperature, top_p=cfg.top_p, **base)

    def decoding(self, cfg) -> dict | None:
        if not cfg.self_consistency:
            return None
        return {"k": cfg.self_consistency, "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": cfg.seed,
                "max_tokens": cfg.max_tokens, "vote": "majority over extracted answers; ties -> earliest sample",
                "sample_accuracy": "choice/label tasks: mean over items of the share of the k samples that "
                                   "are correct (the expected accuracy of one sampled answer)"}

    def reduce(self, answers: list) -> tuple:
        return vote(answers)

    def protocol(self, shots: int | None = None, k: int | None = None) -> str:
        return "generate-sc" if k is None else f"generate-sc{k}"


@dataclass(frozen=True)
class Loglikelihood(Mode):
    label: str = "loglikelihood"

    def applies(self, task, k: int) -> bool:
        return task.scoring == "loglikelihood"

    def reduce(self, answers: list) -> tuple:
        raise TypeError(f"mode {self.name!r} reads no answers; it picks a choice from their scores (pick)")

    def pick(self, scores: list[dict], choices: list[tuple[str, str]]) -> tuple[str, dict]:
        """The predicted choice and the samples-file block that shows why (scoring/loglikelihood.py)."""
        return ll.pick(self.name, scores, choices)

    def protocol(self, shots: int | None = None, k: int | None = None) -> str:
        return self.name if shots is None else f"{self.label}-{shots}shot"


GREEDY = Greedy("greedy")
SC = SelfConsistency("sc", voted=True)
LOGLIKELIHOOD = Loglikelihood("loglikelihood", generates=False)   # its samples block holds the per-choice scores
LOGLIKELIHOOD_NORM = Loglikelihood("loglikelihood_norm", generates=False, label="loglikelihood-norm")
ALL = (GREEDY, SC, LOGLIKELIHOOD, LOGLIKELIHOOD_NORM)
BY_NAME = {m.name: m for m in ALL}

if tuple(BY_NAME) != MODES or tuple(m.name for m in ALL if m.generates) != GENERATION_MODES:
    raise RuntimeError(f"medeval/scoring/modes.py declares modes {tuple(BY_NAME)} (generating: "
                       f"{tuple(m.name for m in ALL if m.generates)}); medeval/results/schema.py declares {MODES} "
                       f"(generating: {GENERATION_MODES}): make them the same")


def get(name: str) -> Mode:
    """The mode called `name` (KeyError naming the known modes otherwise)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown decoding mode {name!r} (known: {', '.join(BY_NAME)})") from None


def of_task(task, k: int) -> list[Mode]:
    """The modes a task has when the run's self-consistency is k, in report order."""
    return [m for m in ALL if m.applies(task, k)]


def protocol(name: str, shots: int | None = None, k: int | None = None) -> str:
    """The protocol label of mode `name`; an unknown name is its own label."""
    return BY_NAME[name].protocol(shots, k) if name in BY_NAME else name
