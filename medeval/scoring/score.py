"""Raw outputs -> extracted answers -> votes -> metrics with CIs, per task; writes samples_<task>.jsonl."""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import aggregate
from ..tasks import answer_types
from . import modes as M
from . import permutation   # --permute (issue 26)
from .. import metrics, stats
from ..accounting import Tally, is_truncated
from ..tasks.answer_types import extract, outcome
from ..graders.base import Case
from ..metrics.base import RunOptions
from ..graders.self_answer import CUE, applies, fallback_applies
from ..results import SampleRecord, SamplesWriter, safe_child, task_results
from .inputs import ItemOutputs, ScoringInput


def metric_options(task, items, run: RunOptions | None = None) -> dict:
    """Per-metric keyword options: the task's own, plus the answer type's label set for the metrics
    that declare `needs_labels`, plus the run-wide choices a metric declares (`run_option`: the
    BERTScore model and layer, pinned by the task or chosen once per run)."""
    labels = answer_types.of(task).metric_labels(task, [it.options for it in items])
    run = run if run is not None else RunOptions()
    out = {}
    for name in task.metrics:
        m = metrics.get(name)
        opts = dict(task.metric_options.get(name, {}))
        if m.needs_labels and labels:
            opts.setdefault("labels", labels)
        opts.update(run.options_for(m, opts))
        out[name] = opts
    return out


@dataclass
class ModeCounts:
    """What one mode accumulates over a task's items."""
    preds: list = field(default_factory=list)    # the final answer per item
    hits: list = field(default_factory=list)     # per item: the share of its samples that are correct (choice/label)
    graded: list = field(default_factory=list)   # rubric tasks: the grader's record per item
    judged: list = field(default_factory=list)   # --extract-judge: the answer per item with the judge's help
    invalid: list = field(default_factory=lambda: [0, 0, 0, 0])   # items, samples with no answer; truncated ones
    ambiguous: list = field(default_factory=lambda: [0, 0])       # the same for hedges ("B or C"), apart
    usage: Tally = field(default_factory=Tally)
    xcounts: dict = field(default_factory=lambda: {"answered": 0, "none": 0, "unparseable": 0})
    xinvalid: int = 0
    fallback: list = field(default_factory=list)   # --extract-fallback self: the answer per item with it
    fcounts: dict = field(default_factory=lambda: {"invalid": 0, "answered": 0, "truncated": 0, "empty": 0,
                                                   "cached": 0})
    finvalid: int = 0
    audit: dict = field(default_factory=lambda: {"outputs": 0, "compared": 0, "agree": 0, "pairs": defaultdict(int),
                                                 "rules_invalid": 0, "rules_ambiguous": 0, "not_asked": 0})


def score_items(p, inputs: ScoringInput, out_dir: Path, judge=None, run_options=None, extract_judge=None,
                self_check=None) -> dict:
    """Score one task (a prepare.Prepared) from its outputs (`inputs`, scoring/inputs.py; made by `run`,
    `merge` and `score` alike) and write its samples file. The run's choices are passed in: its graders
    (graders/registry.py; `judge` for this task, the run's `extract_judge`), its metric choices.
    `extract_judge` (optional, medeval.graders.extract_judge): asked about outputs the rules find invalid;
    its metrics are reported beside the rules-only ones, which stay `metrics`. `self_check`
    (self_answer.SelfCheck): --extract-fallback self and/or --extract-audit, reported the same way.
    `run_options`: the run's metric choices (RunOptions), made once per run."""
    t0 = time.time()
    task, kind, modes = p.task, answer_types.of(p.task), inputs.modes
    gen = [m for m in modes if M.get(m).generates]   # modes with generated text to read
    xj = extract_judge if extract_judge is not None and kind.extract_judged and gen else None
    sc = self_check if self_check is not None and applies(task) and gen else None
    outcomes = _read_outputs(p, gen, inputs, judge, xj)
    counts = {m: ModeCounts() for m in modes}
    skipped = defaultdict(int)
    perm_blocks = {m: [] for m in modes}   # --permute (issue 26): each item's copies per mode
    writer = SamplesWriter(safe_child(out_dir, f"samples_{task.name}.jsonl"))
    for it in p.items:
        sample = SampleRecord(id=it.id, gold=it.gold, meta={s: aggregate.stratum(it.row, s) for s in task.strata},
                              # the source keys options by something other than the shown letters A, B, ...
                              option_keys=answer_types.option_keys(it.options) or None)
        for mode in modes:
            got, c = inputs.get(mode, it.id), counts[mode]
            sample.prompt = sample.prompt or got.prompt
            info = got.info or {}
            if info.get("skipped"):
                skipped[info["skipped"]] += 1
            if info.get("truncated"):
                skipped["truncated_left"] += 1
            if not M.get(mode).generates:  # no text: the choice with the highest (normalised) log-probability
                pred, block = M.get(mode).pick(got.scores, kind.loglikelihood_choices(task, it.options))
                block.update(pred=pred, correct=pred == it.gold)
            else:
                if got.prefill:  # adversarial mode: the reply is the misleading start plus what the model wrote
                    sample.adversarial_prefill = got.prefill
                block = _generated(kind, task, it, mode, got, outcomes[mode][it.id], c, judge, xj, sc)
            c.preds.append(block["pred"])
            if got.copies:   # --permute (issue 26): the copies' answers, mapped back to the original letters
                block["permutation"] = permutation.item_block(task, it, mode, got.copies, c.usage)
                perm_blocks[mode].append(block["permutation"])
            sample.modes[mode] = block
        writer.write(sample.to_json())
    writer.close()
    result = _task_block(p, modes, metric_options(task, p.items, run_options), counts, skipped, writer.path.name)
    if any(perm_blocks.values()):   # --permute (issue 26): circular/permuted/consistency and the position bias
        permutation.report(result, p.items, modes, perm_blocks, aggregate.clusters_of(task, p.items))
    if judge is not None:
        result["judge"] = judge.summary()
        result.update(judge.report({m: counts[m].graded for m in modes}, [it.row for it in p.items]))
    if xj is not None:
        result["extract_judge"] = _extract_judge_block(xj, task, p, gen, counts, result["metric_options"])
    if sc is not None and sc.fallback:
        result["extract_fallback"] = _fallback_block(task, p, gen, counts, result["metric_options"])
    if sc is not None and sc.audit:
        result["extract_audit"] = _audit_block(gen, counts)
    if inputs.has_prefill():
        result["adversarial"] = aggregate.recovery(p, {m: counts[m].preds for m in modes}, modes)
    result["timings"] = {"score_s": time.time() - t0}
    return result


def _read_outputs(p, gen, inputs: ScoringInput, judge, xj) -> dict:
    """mode -> item id -> the Outcome of each sample. Every judge call (the task's judge on the first
    sample's answer, the extraction judge on invalid outputs) is sent first, at once, concurrently."""
    task, kind = p.task, answer_types.of(p.task)
    reply = lambda m, it, t: inputs.get(m, it.id).prefill + (t or "")
    if judge is not None:
        judge.prefetch([Case(extract(task, (inputs.get(m, it.id).texts or [""])[0] or "", it.row, it.options), it.gold,
                             it.row) for m in gen for it in p.items])
    finish = lambda m, it, k: inputs.get(m, it.id).finish_at(k)
    outcomes = {m: {it.id: [outcome(task, reply(m, it, t), it.row, it.options, finish_reason=finish(m, it, k))
                            for k, t in enumerate(inputs.get(m, it.id).texts)] for it in p.items} for m in gen}
    if xj is not None:
        xj.prefetch([Case(reply(m, it, t), choices=kind.choices(task, it.options)) for m in gen for it in p.items
                     for t, o in zip(inputs.get(m, it.id).texts, outcomes[m][it.id]) if o.status == "invalid"])
    return outcomes


def _generated(kind, task, it, mode, got: ItemOutputs, outs, c: ModeCounts, judge, xj, sc=None) -> dict:
    """One item's samples block for a generating mode: outputs, extracted answers, the vote, the
    judges' verdicts and correctness; counts invalid, ambiguous and truncated outputs into `c`."""
    ext = [o.answer for o in outs]
    status = [o.status for o in outs]
    finishes = got.finishes()
    c.invalid[1] += status.count("invalid")
    c.invalid[3] += sum(st == "invalid" and is_truncated([f]) for st, f in zip(status, finishes))
    c.ambiguous[1] += status.count("ambiguous")
    pred, votes = M.get(mode).reduce(ext)   # greedy: the answer; sc: the vote
    tokens = got.usage()
    c.usage.add(finishes, tokens)
    block = {"outputs": got.texts, "extracted": ext, "status": status, "pred": pred,
             "finish_reasons": finishes, "tokens": tokens}
    if any(got.n_path or ()):  # OpenAI backend: how each sample was obtained
        block["n_path"] = got.n_path
    if votes is not None:
        block["votes"] = votes
    if xj is not None:
        block.update(_judge_block(xj, mode, got.texts, outs, got.prefill, kind.choices(task, it.options), c.xcounts))
        c.judged.append(block["pred_with_extract_judge"])
        c.xinvalid += block["pred_with_extract_judge"] is None and "ambiguous" not in status
    if sc is not None:
        block.update(_self_block(sc, mode, got, outs, finishes, c))
    if judge is not None:
        verdict = judge.grade(Case(pred, it.gold, it.row))
        pred, block["judge"] = verdict.value, verdict.record
        block["pred"] = pred
        c.graded.append(block["judge"])
    if pred is None:   # an item without an answer is ambiguous if a sample hedged, else invalid
        hedged = "ambiguous" in status
        (c.ambiguous if hedged else c.invalid)[0] += 1
        block["pred_status"] = "ambiguous" if hedged else "invalid"
        c.invalid[2] += not hedged and is_truncated(finishes)
    if kind.correctness:
        block["correct"] = kind.is_correct(pred, it.gold)
        c.hits.append(sum(kind.is_correct(e, it.gold) for e in ext) / max(len(ext), 1))
        if "pred_with_extract_judge" in block:
            block["correct_with_extract_judge"] = kind.is_correct(block["pred_with_extract_judge"], it.gold)
        if "pred_with_fallback" in block:
            block["correct_with_fallback"] = kind.is_correct(block["pred_with_fallback"], it.gold)
    return block


def _task_block(p, modes, opts, counts, skipped, samples_file) -> dict:
    """The task's block of results.json (through the results builder), from the per-mode counts."""
    task, n = p.task, len(p.items)
    golds = [it.gold for it in p.items]
    clusters = aggregate.clusters_of(task, p.items)
    preds, hits = {m: counts[m].preds for m in modes}, {m: counts[m].hits for m in modes}
    result = task_results(
        task=task.name, display_name=task.display_name or task.name, version=task.version,
        task_hash=task.spec_hash(), prompt_hash=p.renderer.prompt_hash(), template=p.renderer.template_name,
        data_hash=p.data_hash, item_ids_hash=p.ids_hash,
        dataset={"hub": task.dataset.hub, "config": task.dataset.config, "split": task.dataset.split,
                 "source": p.source},
        n=n, n_total=p.n_total, answer_type=task.answer.type,
        primary_metric=task.primary_metric, metric_options=opts, modes=modes,
        metrics=aggregate.task_metrics(task, preds, golds, opts, modes, hits, clusters),
        bootstrap=aggregate.bootstrap_note(task, clusters),
        invalid={m: {"count": c.invalid[0], "rate": c.invalid[0] / max(n, 1), "samples": c.invalid[1],
                     "truncated": c.invalid[2], "samples_truncated": c.invalid[3]} for m, c in counts.items()},
        usage={m: c.usage.block() for m, c in counts.items()},
        ambiguous={m: {"count": c.ambiguous[0], "rate": c.ambiguous[0] / max(n, 1), "samples": c.ambiguous[1]}
                   for m, c in counts.items()},
        strata=aggregate.strata(task, p.items, preds, golds, opts, modes, hits, clusters),
        skipped=dict(skipped),
        samples_file=samples_file,
    )
    result.update(getattr(p, "notes", None) or {})
    return result


def _extract_judge_block(xj, task, p, gen, counts, opts) -> dict:
    """results.json's `extract_judge`: who judged, what it answered, and the metrics with its answers."""
    golds, n = [it.gold for it in p.items], max(len(p.items), 1)
    return {**xj.summary(), "outputs": {m: counts[m].xcounts for m in counts},
            "metrics": {m: {name: stats.bootstrap_ci(name, counts[m].judged, golds, opts[name])
                            for name in task.metrics} for m in gen},
            "invalid": {m: {"count": counts[m].xinvalid, "rate": counts[m].xinvalid / n} for m in gen}}


def _judge_block(xj, mode, outputs, outs, prefill, choices, counts) -> dict:
    """The extraction judge's verdicts for the invalid outputs of one item, and the answer it gives."""
    records, answers = [], []
    for text, o in zip(outputs, outs):
        if o.status != "invalid":
            records.append(None)
            answers.append(o.answer)
            continue
        verdict = xj.grade(Case(prefill + (text or ""), choices=choices))
        counts[verdict.status] += 1
        records.append(verdict.record)
        answers.append(verdict.value)
    pred = M.get(mode).reduce(answers)[0]
    return {"extract_judge": records, "extracted_with_extract_judge": answers, "pred_with_extract_judge": pred}


def _self_block(sc, mode, got: ItemOutputs, outs, finishes, c: ModeCounts) -> dict:
    """The samples-file fields of --extract-fallback self / --extract-audit for one item and mode, counted
    into `c`: each output's self-answer, and the answers with the fallback or the audit's verdicts."""
    texts = got.texts or []
    records = list(got.self_answer or [None] * len(outs))
    block = {"self_answer": records}
    if sc.fallback:
        answers, source, f = [], [], c.fcounts
        for o, rec, t, fin in zip(outs, records, texts, finishes):
            if o.status != "invalid":
                answers.append(o.answer)
                source.append("rules" if o.answer is not None else None)
                continue
            f["invalid"] += 1
            if not t:
                f["empty"] += 1
            elif not fallback_applies(o.status, t, fin):
                f["truncated"] += 1
            if rec is not None and fallback_applies(o.status, t, fin):
                f["answered"] += 1
                f["cached"] += bool(rec.get("cached"))
                answers.append(rec["answer"])
                source.append("self")
            else:
                answers.append(None)
                source.append(None)
        pred = M.get(mode).reduce(answers)[0]
        block.update(extracted_with_fallback=answers, answered_by=source, pred_with_fallback=pred)
        c.fallback.append(pred)
        c.finvalid += pred is None and "ambiguous" not in [o.status for o in outs]
    if sc.audit:
        verdicts, a = [], c.audit
        for o, rec in zip(outs, records):
            a["outputs"] += 1
            if rec is None:
                a["not_asked"] += 1
                verdicts.append(None)
            elif o.status != "answer":
                a["rules_" + o.status] += 1
                verdicts.append(None)
            else:
                same = rec["answer"] == o.answer
                a["compared"] += 1
                a["agree"] += same
                if not same:
                    a["pairs"][f"{o.answer}->{rec['answer']}"] += 1
                verdicts.append("agree" if same else "disagree")
        block["audit"] = verdicts
    return block


def _fallback_block(task, p, gen, counts, opts) -> dict:
    """results.json's `extract_fallback`: what the model's own answer answered, and the metrics with it."""
    golds, n = [it.gold for it in p.items], max(len(p.items), 1)
    return {"fallback": "self", "cue": CUE,
            "applies_to": "outputs the rules found invalid, except empty ones and ones cut by the token limit",
            "outputs": {m: dict(counts[m].fcounts) for m in gen},
            "metrics": {m: {name: stats.bootstrap_ci(name, counts[m].fallback, golds, opts[name])
                            for name in task.metrics} for m in gen},
            "invalid": {m: {"count": counts[m].finvalid, "rate": counts[m].finvalid / n} for m in gen}}


def _audit_block(gen, counts) -> dict:
    """results.json's `extract_audit`: per mode, how often the model's own answer agrees with the rules'."""
    from statsmodels.stats.proportion import proportion_confint

    out = {"cue": CUE, "unit": "outputs (each sample of sc counts)"}
    for m in gen:
        a = counts[m].audit
        k, n = a["agree"], a["compared"]
        lo, hi = proportion_confint(k, n, method="wilson") if n else (None, None)
        out[m] = {"outputs": a["outputs"], "compared": n, "agree": k, "disagree": n - k,
                  "rate": k / n if n else None, "ci_low": lo, "ci_high": hi,
                  "disagreements": dict(sorted(a["pairs"].items(), key=lambda kv: (-kv[1], kv[0]))),
                  "rules_invalid": a["rules_invalid"], "rules_ambiguous": a["rules_ambiguous"],
                  "not_asked": a["not_asked"]}
    return out
