"""`--permute`: the requests of the reordered copies of a task's choice items (issue 26; tasks/permute.py).

Copy 0 is the item's own request (the original order), so `--permute` adds (copies - 1) requests per item
and mode. Each further copy is an ordinary request (id `<task>/<item>/<mode>/perm<k>`), generated, cached
and resumed like any other; its prompt differs only in the order of the options. A shard holds whole items,
so the copies of an item are always generated and scored together.
"""
from __future__ import annotations

from ..backends.base import Request
from ..tasks import answer_types
from ..tasks.permute import applies, copies, parse


def copy_requests(p, cfg, reqs: dict, modes: list[str]) -> dict:
    """(item id, mode) -> [(Copy, Request), ...], the original first; {} when the run or the task is not permuted."""
    spec = parse(cfg.permute)
    if not spec or not applies(p.task):
        return {}
    kind, out = answer_types.of(p.task), {}
    for it in p.items:
        shown = copies(p.task, it, p.renderer, spec, cfg.seed)
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


def annotate(result: dict, cfg, task) -> None:
    """Add `permute` to a task block's `permutation` (scoring fills the rest), or say that the option did not
    apply to this task. Nothing when the run is not permuted. Used by `run` and `merge` alike."""
    spec = parse(cfg.permute)
    if not spec:
        return
    if not applies(task):
        from ..tasks.permute import not_applied_reason

        result["permutation"] = {"permute": spec.label, "applied": False, "reason": not_applied_reason(task)}
    else:
        result["permutation"] = {"permute": spec.label, **(result.get("permutation") or {})}
