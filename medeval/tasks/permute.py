"""`--permute cyclic|random:N|none`: the shown orders of a choice item's options (CircularEval, issue 26).

An order is a tuple of original option indices in the order they are shown: (1, 2, 3, 0) shows the
original B as A, C as B, D as C and A as D. The first order is always the original one (the identity),
so a copy-0 answer is the item's ordinary answer and `accuracy` stays the original-order accuracy.

- `cyclic`: every rotation of the options, n copies for n options (rotation r shows original (j + r) mod n
  at position j).
- `random:N`: the original order and N-1 further distinct orders drawn with `random.Random` seeded by the
  run's --seed, the task and the item id (the same copies on every machine and every shard); an item with
  fewer than N distinct orders (2 options: 2) gets all of them.
- `none`: one copy, the original order (nothing changes).

Each copy shows the same option texts relabelled A, B, C, ... in its order; the gold follows its option.
`copies` renders each copy's prompt with the task's template and refuses a template whose prompt does not
change when the options are reordered (it shows fields of the row, not the options list).
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from ..errors import MedevalError
from . import answer_types
from .answer_types.choice import LETTERS

KINDS = ("none", "cyclic", "random")
MAX_ENUMERATED = 6   # up to 6 options (720 orders) the distinct orders are drawn from the full list


@dataclass(frozen=True)
class Permute:
    kind: str = "none"
    n: int = 0            # random:N: copies per item (the original order included)

    def __bool__(self) -> bool:
        return self.kind != "none"

    @property
    def label(self) -> str:
        return f"random:{self.n}" if self.kind == "random" else self.kind


def parse(text: str | None) -> Permute:
    """'none' | 'cyclic' | 'random:N' (N >= 2) -> Permute; anything else is a one-line error."""
    t = (text or "none").strip().lower()
    if t in ("none", "cyclic"):
        return Permute(t)
    kind, sep, n = t.partition(":")
    if kind == "random" and sep and n.isdigit() and int(n) >= 2:
        return Permute("random", int(n))
    raise MedevalError(f"--permute {text!r}: expected none, cyclic or random:N with N >= 2 copies per item "
                       "(the original order counts as one), e.g. --permute random:5")


def applies(task) -> bool:
    """Only tasks whose answer type shows lettered options have options to reorder; every other task runs
    unpermuted."""
    return answer_types.of(task).lettered_options


def not_applied_reason(task) -> str:
    return (f"answer type {task.answer.type!r} shows no lettered options to reorder; the task ran unpermuted")


def orders(n_options: int, spec: Permute, seed: int, key: str) -> list[tuple[int, ...]]:
    """The shown orders of an item with `n_options` options, the identity first. `key` (task/item id)
    seeds random:N together with the run's seed."""
    ident = tuple(range(n_options))
    if spec.kind == "cyclic":
        return [tuple((j + r) % n_options for j in range(n_options)) for r in range(n_options)]
    if spec.kind != "random":
        return [ident]
    rng = random.Random(f"{seed}/{key}")
    want = min(spec.n, math.factorial(n_options)) - 1
    if n_options <= MAX_ENUMERATED:
        others = [o for o in itertools.permutations(range(n_options)) if o != ident]
        return [ident, *rng.sample(others, want)]
    seen, out = {ident}, [ident]
    while len(out) < want + 1:
        o = list(ident)
        rng.shuffle(o)
        if tuple(o) not in seen:
            seen.add(tuple(o))
            out.append(tuple(o))
    return out


def shown(options: list[dict], gold: str, order: tuple[int, ...]) -> tuple[list[dict], str]:
    """The options relabelled in `order` (each keeps its text and source key) and the gold's shown letter."""
    out = []
    for j, i in enumerate(order):
        o = {**options[i], "letter": LETTERS[j]}
        out.append(o)
    src = LETTERS.index(gold) if isinstance(gold, str) and gold in LETTERS[:len(options)] else None
    return out, (LETTERS[order.index(src)] if src is not None else gold)


def to_original(pred, order: tuple[int, ...]):
    """A shown letter mapped back to the original lettering (None and letters not shown stay as they are)."""
    if isinstance(pred, str) and pred in LETTERS[:len(order)]:
        return LETTERS[order[LETTERS.index(pred)]]
    return pred


def order_letters(order: tuple[int, ...]) -> list[str]:
    """An order as the samples file records it: the original letters in shown order."""
    return [LETTERS[i] for i in order]


def order_of(letters: list[str]) -> tuple[int, ...]:
    """The inverse of `order_letters` (reading a samples file)."""
    return tuple(LETTERS.index(x) for x in letters)


class FixedOptions(MedevalError):
    """The prompt of an item does not change with the order of its options (the template shows them some
    other way, e.g. inside the question text): the task cannot be permuted."""


@dataclass(frozen=True)
class Copy:
    """One shown order of an item: its index (0: the original order), order, options, gold and prompt."""
    k: int
    order: tuple[int, ...]
    options: list
    gold: str
    messages: tuple


def copies(task, item, renderer, spec: Permute, seed: int) -> list[Copy]:
    """The copies of a prepared choice item (prepare.Item), the original first, each with its prompt."""
    out = []
    for k, order in enumerate(orders(len(item.options), spec, seed, f"{task.name}/{item.id}")):
        opts, gold = shown(item.options, item.gold, order)
        if k == 0:
            out.append(Copy(0, order, opts, gold, item.messages))
            continue
        msgs = renderer.messages(item.row, item.id, opts)
        if msgs == item.messages and [o["text"] for o in opts] != [o["text"] for o in item.options]:
            raise FixedOptions(f"item {item.id}: the prompt is the same in another order of the options (the "
                               f"template {renderer.template_name!r} shows them otherwise, e.g. inside the question "
                               "text), so their order cannot be changed")
        out.append(Copy(k, order, opts, gold, msgs))
    return out
