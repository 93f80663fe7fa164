"""Raw outputs -> extracted answers -> votes -> metrics with CIs, per task; writes samples_<task>.jsonl."""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from . import answer_types
from . import loglikelihood as ll
from . import metrics, stats
from .accounting import Tally, is_truncated, tokens_of
from .answer_types import extract, outcome
from .errors import MedevalError
from .extract import vote
from .extract_judge import JUDGED_TYPES
from .fields import get_field
from .metrics.base import RunOptions
from .results import SamplesWriter, safe_child, task_results


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


def score_task(p, reqs, outputs, modes, out_dir: Path, *, judge=None, extract_judge=None,
               run_options: RunOptions | None = None, self_consistency: int = 0) -> dict:
    """Score one task from the generation results of `runner.generate_all`. The run's choices are passed
    in: its graders (graders.py; `judge` for this task, the run's `extract_judge`), its metric choices
    (`run_options`, made once per run) and k."""
    texts = {mode: {i: {**outputs[reqs[(i, mode)].id], "prefill": reqs[(i, mode)].prefill} for i in p.ids}
             for mode in modes}
    result = score_items(p, modes, texts, out_dir, judge=judge, run_options=run_options,
                         extract_judge=extract_judge)
    shots = p.task.fewshot.n if p.task.fewshot else 0
    result["protocols"] = {m: ll.protocol(m, shots, self_consistency) for m in modes}
    return result


def score_items(p, modes, texts, out_dir: Path, judge=None, run_options=None, extract_judge=None) -> dict:
    """texts[mode][item_id] = {"prompt": str, "texts": [..], "finish": [..], "info": {..}}.
    `extract_judge` (optional, medeval.extract_judge): asked about outputs the rules find invalid;
    its metrics are reported beside the rules-only ones, which stay `metrics`. `run_options`: the
    run's metric choices (RunOptions), made once per run."""
    t0 = time.time()
    task, kind = p.task, answer_types.of(p.task)
    opts = metric_options(task, p.items, run_options)
    preds = {m: [] for m in modes}
    hits = {m: [] for m in modes}          # per item: share of its samples that are correct (choice/label)
    graded = {m: [] for m in modes}        # rubric tasks: the grader's record per item
    invalid = {m: [0, 0, 0, 0] for m in modes}   # items, samples with no answer; of those, truncated ones
    ambiguous = {m: [0, 0] for m in modes}  # the same for hedges ("B or C"): counted apart from invalid
    tally = {m: Tally() for m in modes}
    skipped = defaultdict(int)
    gen = [m for m in modes if m not in ll.MODES]   # modes with generated text to read
    if judge is not None and hasattr(judge, "prefetch"):   # every judge call at once, concurrently
        judge.prefetch([(extract(task, (texts[m][it.id]["texts"] or [""])[0] or "", it.row, it.options), it.gold,
                         it.row) for m in gen for it in p.items])
    outcomes = {m: {it.id: [outcome(task, (texts[m][it.id].get("prefill") or "") + (t or ""), it.row, it.options)
                            for t in texts[m][it.id]["texts"]] for it in p.items}
                for m in gen}
    xj = extract_judge if extract_judge is not None and task.answer.type in JUDGED_TYPES and gen else None
    if xj is not None:
        xj.prefetch_outputs([(task, (texts[m][it.id].get("prefill") or "") + (t or ""), it.options)
                             for m in gen for it in p.items
                             for t, o in zip(texts[m][it.id]["texts"], outcomes[m][it.id]) if o.status == "invalid"])
    judged = {m: [] for m in modes}
    xcounts = {m: {"answered": 0, "none": 0, "unparseable": 0} for m in modes}
    xinvalid = {m: 0 for m in modes}
    writer = SamplesWriter(safe_child(out_dir, f"samples_{task.name}.jsonl"))
    for it in p.items:
        item_id, row, gold, options = it.id, it.row, it.gold, it.options
        sample = {"id": item_id, "prompt": None, "gold": gold,
                  "meta": {s: _stratum(row, s) for s in task.strata}}
        for mode in modes:
            got = texts[mode][item_id]
            sample["prompt"] = sample["prompt"] or got.get("prompt")
            info = got.get("info") or {}
            if info.get("skipped"):
                skipped[info["skipped"]] += 1
            if info.get("truncated"):
                skipped["truncated_left"] += 1
            if mode in ll.MODES:  # no text: the choice with the highest (normalised) log-probability
                pred, block = ll.pick(mode, got["scores"], kind.loglikelihood_choices(task, options))
                block.update(pred=pred, correct=pred == gold)
                preds[mode].append(pred)
                sample[mode] = block
                continue
            prefill = got.get("prefill") or ""
            if prefill:  # adversarial mode: the reply is the misleading start plus what the model wrote
                sample["adversarial_prefill"] = prefill
            outs = outcomes[mode][item_id]
            ext = [o.answer for o in outs]
            status = [o.status for o in outs]
            finishes = list(got.get("finish") or [None] * len(ext))
            invalid[mode][1] += status.count("invalid")
            invalid[mode][3] += sum(st == "invalid" and is_truncated([f]) for st, f in zip(status, finishes))
            ambiguous[mode][1] += status.count("ambiguous")
            pred, counts = (ext[0], None) if mode == "greedy" else vote(ext)
            tokens = tokens_of(got)
            tally[mode].add(finishes, tokens)
            block = {"outputs": got["texts"], "extracted": ext, "status": status, "pred": pred,
                     "finish_reasons": finishes, "tokens": tokens}
            if any(got.get("n_path") or ()):  # OpenAI backend: how each sample was obtained
                block["n_path"] = got["n_path"]
            if counts is not None:
                block["votes"] = counts
            if xj is not None:
                block.update(_judge_block(xj, task, mode, got["texts"], outs, prefill, options, xcounts[mode]))
                judged[mode].append(block["pred_with_extract_judge"])
                xinvalid[mode] += block["pred_with_extract_judge"] is None and "ambiguous" not in status
            if judge is not None:
                pred, block["judge"] = judge(pred, gold, row)
                block["pred"] = pred
                graded[mode].append(block["judge"])
            if pred is None:   # an item without an answer is ambiguous if a sample hedged, else invalid
                hedged = "ambiguous" in status
                (ambiguous if hedged else invalid)[mode][0] += 1
                block["pred_status"] = "ambiguous" if hedged else "invalid"
                invalid[mode][2] += not hedged and is_truncated(finishes)
            if kind.correctness:
                block["correct"] = kind.is_correct(pred, gold)
                hits[mode].append(sum(kind.is_correct(e, gold) for e in ext) / max(len(ext), 1))
                if "pred_with_extract_judge" in block:
                    block["correct_with_extract_judge"] = kind.is_correct(block["pred_with_extract_judge"], gold)
            preds[mode].append(pred)
            sample[mode] = block
        writer.write(sample)
    writer.close()
    golds = [it.gold for it in p.items]
    clusters = _clusters(task, p.items)
    result = task_results(
        task=task.name, display_name=task.display_name or task.name, version=task.version,
        task_hash=task.spec_hash(), prompt_hash=p.renderer.prompt_hash(), template=p.renderer.template_name,
        data_hash=p.data_hash, item_ids_hash=p.ids_hash,
        dataset={"hub": task.dataset.hub, "config": task.dataset.config, "split": task.dataset.split,
                 "source": p.source},
        n=len(p.ids), n_total=p.n_total, answer_type=task.answer.type,
        primary_metric=task.primary_metric, metric_options=opts, modes=modes,
        metrics={m: {**{name: stats.bootstrap_ci(name, preds[m], golds, opts[name], clusters=clusters)
                        for name in task.metrics}, **_sample_accuracy(m, hits[m], clusters)} for m in modes},
        bootstrap=_bootstrap_note(task, clusters),
        invalid={m: {"count": invalid[m][0], "rate": invalid[m][0] / max(len(p.ids), 1),
                     "samples": invalid[m][1], "truncated": invalid[m][2], "samples_truncated": invalid[m][3]}
                 for m in modes},
        usage={m: tally[m].block() for m in modes},
        ambiguous={m: {"count": ambiguous[m][0], "rate": ambiguous[m][0] / max(len(p.ids), 1),
                       "samples": ambiguous[m][1]} for m in modes},
        strata=_strata(task, p, preds, golds, opts, modes, hits, clusters),
        skipped=dict(skipped),
        samples_file=writer.path.name,
    )
    result.update(getattr(p, "notes", None) or {})
    if judge is not None and hasattr(judge, "summary"):
        result["judge"] = judge.summary()
    if task.answer.type == "rubric":
        from .rubric import breakdowns

        result["rubric"] = {m: breakdowns(graded[m], [it.row for it in p.items]) for m in modes}
    if xj is not None:
        n = max(len(p.ids), 1)
        result["extract_judge"] = {
            **xj.summary(), "outputs": xcounts,
            "metrics": {m: {name: stats.bootstrap_ci(name, judged[m], golds, opts[name]) for name in task.metrics}
                        for m in gen},
            "invalid": {m: {"count": xinvalid[m], "rate": xinvalid[m] / n} for m in gen}}
    if any(texts[m][i].get("prefill") for m in modes for i in p.ids):
        result["adversarial"] = _recovery(p, preds, texts, modes)
    result["timings"] = {"score_s": time.time() - t0}
    return result


def _judge_block(xj, task, mode, outputs, outs, prefill, options, counts) -> dict:
    """The extraction judge's verdicts for the invalid outputs of one item, and the answer it gives."""
    records, answers = [], []
    for text, o in zip(outputs, outs):
        if o.status != "invalid":
            records.append(None)
            answers.append(o.answer)
            continue
        ans, rec = xj.judge(task, prefill + (text or ""), options)
        counts[rec["verdict"] if rec["verdict"] in ("none", "unparseable") else "answered"] += 1
        records.append(rec)
        answers.append(ans)
    pred = answers[0] if mode == "greedy" else vote(answers)[0]
    return {"extract_judge": records, "extracted_with_extract_judge": answers, "pred_with_extract_judge": pred}


def _recovery(p, preds, texts, modes) -> dict:
    """Adversarial mode: how often the final answer is right (recovered) or the pre-filled wrong one (misled)."""
    kind = answer_types.of(p.task)
    wrong = [kind.adversarial_wrong(it.options, it.gold) for it in p.items]
    out = {"prefill": "the first wrong option, stated as the answer at the start of the reply"}
    if "adversarial_traces" in p.notes:   # a trace file or field was read (some items may have none)
        # the trace's own conclusion is the answer it pushes; items without a trace keep the short pre-fill
        wrong = [extract(p.task, it.trace, it.row, it.options) if it.trace else w for it, w in zip(p.items, wrong)]
        out = {"prefill": "a per-item wrong reasoning trace (see adversarial_traces); items without one: the "
                          "first wrong option stated as the answer",
               "trace_without_answer": sum(it.trace is not None and w is None for it, w in zip(p.items, wrong))}
    n = max(len(p.items), 1)
    for m in modes:
        out[m] = {"recovery_rate": sum(x == it.gold for x, it in zip(preds[m], p.items)) / n,
                  "misled_rate": sum(x is not None and x == w for x, w in zip(preds[m], wrong)) / n}
    return out


def _clusters(task, items) -> list | None:
    """The bootstrap unit of each item: its `bootstrap_cluster` value (None: every item is its own)."""
    if not task.bootstrap_cluster:
        return None
    try:
        return [str(get_field(it.row, task.bootstrap_cluster)) for it in items]
    except KeyError:
        raise MedevalError(f"{task.source_file}: field 'bootstrap_cluster': a row has no field "
                           f"{task.bootstrap_cluster!r}; add it to the data or remove bootstrap_cluster") from None


def _bootstrap_note(task, clusters) -> dict:
    if clusters is None:
        return {"unit": "item", "method": "percentile bootstrap, 1000 resamples of items"}
    return {"unit": "cluster", "field": task.bootstrap_cluster, "clusters": len(set(clusters)),
            "method": f"clustered percentile bootstrap: 1000 resamples of whole {task.bootstrap_cluster} groups "
                      "(copies of one question are resampled together, so they do not narrow the interval)"}


def _sample_accuracy(mode, hits, clusters) -> dict:
    """sc mode: the mean share of correct samples per item (the accuracy of one sampled answer)."""
    if mode != "sc" or not hits:
        return {}
    return {"sample_accuracy": stats.bootstrap_mean(hits, clusters=clusters)}


def _stratum(row, field):
    try:
        v = get_field(row, field)
    except KeyError:
        return "(missing)"
    return v if isinstance(v, (str, int, float, bool)) else str(v)


def _strata(task, p, preds, golds, opts, modes, hits=None, clusters=None) -> dict:
    out = {}
    pick = lambda xs, idx: None if xs is None else [xs[k] for k in idx]
    for field in task.strata:
        groups = defaultdict(list)
        for k, it in enumerate(p.items):
            groups[str(_stratum(it.row, field))].append(k)
        out[field] = {
            value: {"n": len(idx), **{m: {**{name: stats.bootstrap_ci(name, pick(preds[m], idx), pick(golds, idx),
                                                                        opts[name], clusters=pick(clusters, idx))
                                             for name in task.metrics},
                                          **_sample_accuracy(m, pick((hits or {}).get(m) or None, idx),
                                                             pick(clusters, idx))}
                                      for m in modes}}
            for value, idx in sorted(groups.items())}
    return out

