"""Scoring the reordered copies of choice items (`--permute`, issue 26; docs/permutation.md).

Per item and mode (`item_block`): each copy's answer read with the copy's own options (rules only), mapped
back to the original lettering, and whether it is right; whether the item is right under every order
(circular) and whether the same option was chosen under every order (consistent). Per task and mode
(`report`): circular_accuracy, permuted_accuracy and permutation_consistency with intervals resampled by item
(medeval/stats.py, the metrics in medeval/metrics/permutation.py), and the position-bias table: how often
each shown position was predicted against how often it held the gold, with a chi-square test
(scipy.stats.chisquare).
"""
from __future__ import annotations

from collections import Counter

from scipy import stats as sps

from . import modes as M
from .. import stats
from ..accounting import tokens_of
from ..errors import MedevalError
from ..metrics.permutation import PERMUTATION_METRICS
from ..tasks import answer_types
from ..tasks.permute import LETTERS, order_letters, order_of, shown, to_original

METRICS = PERMUTATION_METRICS


def attach(inputs, permuted: dict, outputs: dict) -> None:
    """Each item's `copies` ([{order, output}, ...]) in a ScoringInput, from the copy requests (runs/permuted.py)."""
    for (item_id, mode), row in permuted.items():
        if mode in inputs.outputs and item_id in inputs.outputs[mode]:
            inputs.get(mode, item_id).copies = [{"order": c.order, "output": outputs[r.id]} for c, r in row]


def item_block(task, it, mode: str, copies: list[dict], usage=None) -> dict:
    """The samples file's `permutation` block of one item in one mode. `usage` (a Tally): the copies'
    tokens are counted into the mode's usage (copy 0 is the item's own request, counted already)."""
    kind = answer_types.of(task)
    recs = []
    for k, cp in enumerate(copies):
        order, got = tuple(cp["order"]), cp["output"]
        opts, gold = shown(it.options, it.gold, order)
        rec = {"order": order_letters(order), "gold": gold}
        if not M.get(mode).generates:
            pred_shown, b = M.get(mode).pick(got["scores"], kind.loglikelihood_choices(task, opts))
            rec.update({"logprobs": b["logprobs"], "tokens": b["tokens"], "greedy": b["greedy"]}
                       if mode == "loglikelihood" else {"normalised": b["normalised"]})
        else:
            texts = list(got.get("texts") or [])
            finishes = list(got.get("finish") or [None] * len(texts))
            outs = [answer_types.outcome(task, t or "", it.row, opts, finish_reason=f)
                    for t, f in zip(texts, finishes)]
            ext = [o.answer for o in outs]
            pred_shown = M.get(mode).reduce(ext)[0]   # greedy: the answer; sc: the vote
            tokens = tokens_of(got)
            if k and usage is not None:
                usage.add(finishes, tokens)
            rec.update(outputs=texts, extracted=ext, status=[o.status for o in outs], finish_reasons=finishes,
                       tokens=tokens)
        pred = to_original(pred_shown, order)
        rec.update(pred_shown=pred_shown, pred=pred, correct=bool(kind.is_correct(pred, it.gold)))
        recs.append(rec)
    preds = [r["pred"] for r in recs]
    return {"copies": recs, "circular_correct": all(r["correct"] for r in recs),
            "permuted_correct": sum(r["correct"] for r in recs) / len(recs),
            "consistent": preds[0] is not None and all(p == preds[0] for p in preds)}


def copies_from_sample(block: dict, mode: str, where: str) -> list[dict]:
    """The copies of one mode block of a samples row, as `item_block` takes them (merge re-scores them)."""
    perm = block.get("permutation")
    if not isinstance(perm, dict) or not isinstance(perm.get("copies"), list):
        raise MedevalError(f"{where}: mode {mode!r} has no 'permutation' block although the run used --permute; "
                           "re-run the shard")
    out = []
    for c in perm["copies"]:
        if not M.get(mode).generates:
            if mode != M.LOGLIKELIHOOD.name:
                raise MedevalError(f"{where}: the scores of copies are read from the 'loglikelihood' block")
            got = {"scores": [{"logprob": lp, "tokens": n, "greedy": g}
                              for lp, n, g in zip(c["logprobs"], c["tokens"], c["greedy"])]}
        else:
            t = c.get("tokens") or {}   # the counts as the run recorded them, so merged usage equals the run's
            got = {"texts": c["outputs"], "finish": c.get("finish_reasons"), "tokens": t.get("per_sample"),
                   "info": {"prompt_tokens": t.get("prompt"), "completion_tokens_total": t.get("completion")}}
        out.append({"order": order_of(c["order"]), "output": got})
    return out


def report(result: dict, items: list, modes: list[str], blocks: dict, clusters) -> None:
    """Add the permutation metrics (under each mode's `metrics`, beside accuracy) and the task's
    `permutation` block (copies per item, the position-bias table per mode) to a task's results."""
    golds = [it.gold for it in items]
    bias, sizes = {}, [len(b["copies"]) for b in blocks[modes[0]]] if modes else []
    for m in modes:
        if len(blocks[m]) != len(items):
            raise MedevalError(f"--permute: {len(blocks[m])} of {len(items)} items have copies in mode {m!r}; "
                               "re-run without the cache directory's partial results")
        preds = [[c["pred"] for c in b["copies"]] for b in blocks[m]]
        for name in METRICS:
            result["metrics"][m][name] = stats.bootstrap_ci(name, preds, golds, {}, clusters=clusters)
        bias[m] = position_bias(blocks[m])
    result["permutation"] = {"applied": True, "copies_min": min(sizes, default=0),
                             "copies_max": max(sizes, default=0), "copies": sum(sizes),
                             "metrics": list(METRICS), "position_bias": bias}


def position_bias(blocks: list[dict]) -> dict:
    """Predictions per shown position against golds per shown position, over every copy with an answer,
    and a chi-square goodness-of-fit test of the predicted positions against the golds' shares."""
    answered = [c for b in blocks for c in b["copies"] if c["pred_shown"] is not None]
    no_answer = sum(len(b["copies"]) for b in blocks) - len(answered)
    width = max((len(c["order"]) for b in blocks for c in b["copies"]), default=0)
    positions = list(LETTERS[:width])
    pred, gold = Counter(c["pred_shown"] for c in answered), Counter(c["gold"] for c in answered)
    n = len(answered)
    table = [{"position": p, "predicted": pred[p], "predicted_share": pred[p] / n if n else None,
              "gold": gold[p], "gold_share": gold[p] / n if n else None} for p in positions]
    return {"predictions": n, "no_answer": no_answer, "table": table,
            "chi_square": chi_square([pred[p] for p in positions], [gold[p] for p in positions])}


def chi_square(observed: list[int], expected: list[int]) -> dict:
    """scipy.stats.chisquare of the predicted positions against the gold positions' counts (same total)."""
    out = {"test": "chi-square goodness of fit: predicted positions vs the golds' positions",
           "statistic": None, "df": None, "p_value": None}
    if not sum(observed):
        return {**out, "note": "no predictions"}
    if any(o and not e for o, e in zip(observed, expected)):
        return {**out, "note": "predictions at a position that never holds the gold: the test does not apply "
                               "(every such prediction is wrong)"}
    keep = [(o, e) for o, e in zip(observed, expected) if e]
    if len(keep) < 2:
        return {**out, "note": "the golds sit at one position only: nothing to compare"}
    res = sps.chisquare([o for o, _ in keep], f_exp=[e for _, e in keep])
    out.update(statistic=float(res.statistic), df=len(keep) - 1, p_value=float(res.pvalue),
               min_expected=min(e for _, e in keep))
    if out["min_expected"] < 5:
        out["note"] = "some expected counts are below 5: the chi-square approximation is rough"
    return out
