"""`--permute`: the requests of the reordered copies of a task's choice items (issue 26; tasks/permute.py).

Copy 0 is the item's own request (the original order), so `--permute` adds (copies - 1) requests per item
and mode. Each further copy is an ordinary request (id `<task>/<item>/<mode>/perm<k>`), generated, cached
and resumed like any other; its prompt differs only in the order of the options. A shard holds whole items,
so the copies of an item are always generated and scored together.
"""
from __future__ import annotations

from ..backends.base import Request
from ..tasks import answer_types
from ..tasks.permute import FixedOptions, applies, copies, parse


class Copies(dict):
    """(item id, mode) -> [(Copy, Request), ...], the original first; empty when the run or the task is not
    permuted. `reason`: why a choice task was left unpermuted (its prompt does not show the options list)."""
    reason: str | None = None


def copy_requests(p, cfg, reqs: dict, modes: list[str], full=None) -> Copies:
    """The copy requests of a prepared task (see `Copies`). `full`: the whole task where `p` is a shard's part,
    so that every shard decides alike whether the task can be permuted."""
    spec, out = parse(cfg.permute), Copies()
    if not spec or not applies(p.task):
        return out
    kind = answer_types.of(p.task)
    try:
        if full is not None and full is not p:
            for it in full.items:
                copies(full.task, it, full.renderer, spec, cfg.seed)
        per_item = [copies(p.task, it, p.renderer, spec, cfg.seed) for it in p.items]
    except FixedOptions as e:   # MedXpertQA's hub rows list their options inside the question
        out.reason = f"{e}; the task ran unpermuted"
        return out
    for it, shown in zip(p.items, per_item):
        for mode in modes:
            base = reqs[(it.id, mode)]
            row = [(shown[0], base)]
            for c in shown[1:]:
                if base.continuations:   # loglikelihood: one request per copy serves both modes
                    delim = p.task.loglikelihood.target_delimiter
                    conts = tuple(delim + text for _, text in kind.loglikelihood_choices(p.task, c.options))
                    r = Request(f"{p.task.name}/{it.id}/loglikelihood/perm{c.k}", c.messages, chat=base.chat,
                                continuations=conts)
                else:
                    r = Request(f"{p.task.name}/{it.id}/{mode}/perm{c.k}", c.messages, base.sampling, base.prefill,
                                base.chat)
                row.append((c, r))
            out[(it.id, mode)] = row
    return out


def annotate(result: dict, cfg, task, reason: str | None = None) -> None:
    """Add `permute` to a task block's `permutation` (scoring fills the rest), or say that the option did not
    apply to this task. Nothing when the run is not permuted. Used by `run` and `merge` alike."""
    spec = parse(cfg.permute)
    if not spec:
        return
    if not applies(task) or reason:
        from ..tasks.permute import not_applied_reason

        result["permutation"] = {"permute": spec.label, "applied": False, "reason": reason or not_applied_reason(task)}
    else:
        result["permutation"] = {"permute": spec.label, **(result.get("permutation") or {})}
