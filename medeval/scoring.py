"""Raw outputs -> extracted answers -> votes -> metrics with CIs, per task; writes samples_<task>.jsonl."""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from . import metrics
from .data import get_field
from .extract import extract, vote
from .results import SamplesWriter, safe_child

CORRECTNESS = {"choice", "yesno", "label", "multilabel"}


def metric_options(task, options_per_item, bertscore_model: str | None = None) -> dict:
    """Per-metric keyword options: the task's own, plus the label set for classification metrics,
    plus the BERTScore model and layer (pinned by the task, else chosen once per run)."""
    labels = task.answer.labels
    if task.answer.type == "choice":
        labels = sorted({o["letter"] for opts in options_per_item for o in opts})
    out = {}
    for m in task.metrics:
        opts = dict(task.metric_options.get(m, {}))
        if labels and ("f1" in m and task.answer.type != "entities"):
            opts.setdefault("labels", labels)
        if m.startswith("bertscore") and (bertscore_model or "model_type" not in opts):
            from .metrics.text import choose_bertscore

            chosen = choose_bertscore(bertscore_model)
            opts.update(model_type=chosen["model_type"], num_layers=chosen["num_layers"])
            opts["model_source"] = chosen["source"]
        out[m] = opts
    return out


def score_task(p, reqs, outputs, modes, out_dir: Path, cfg, backend=None, judge=None) -> dict:
    """Score one task from the generation results of `runner.generate_all`."""
    texts = {mode: {i: {**outputs[reqs[(i, mode)].id], "prefill": reqs[(i, mode)].prefill} for i in p.ids}
             for mode in modes}
    return score_items(p, modes, texts, out_dir, judge=judge or _judge_for(p.task, cfg),
                       bertscore_model=cfg.bertscore_model)


def score_items(p, modes, texts, out_dir: Path, judge=None, bertscore_model=None) -> dict:
    """texts[mode][item_id] = {"prompt": str, "texts": [..], "finish": [..], "info": {..}}."""
    t0 = time.time()
    task = p.task
    opts = metric_options(task, p.options, bertscore_model)
    preds = {m: [] for m in modes}
    hits = {m: [] for m in modes}          # per item: share of its samples that are correct (choice/label)
    graded = {m: [] for m in modes}        # rubric tasks: the grader's record per item
    invalid = {m: [0, 0] for m in modes}   # [items with no answer, samples with no answer]
    skipped = defaultdict(int)
    if judge is not None and hasattr(judge, "prefetch"):   # every judge call at once, concurrently
        judge.prefetch([(extract(task, (texts[m][i]["texts"] or [""])[0] or "", row, options), gold, row)
                        for m in modes for i, row, gold, options in zip(p.ids, p.rows, p.golds, p.options)])
    writer = SamplesWriter(safe_child(out_dir, f"samples_{task.name}.jsonl"))
    for k, (item_id, row, gold, options) in enumerate(zip(p.ids, p.rows, p.golds, p.options)):
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
            prefill = got.get("prefill") or ""
            if prefill:  # adversarial mode: the reply is the misleading start plus what the model wrote
                sample["adversarial_prefill"] = prefill
            ext = [extract(task, prefill + (t or ""), row, options) for t in got["texts"]]
            invalid[mode][1] += sum(e is None for e in ext)
            pred, counts = (ext[0], None) if mode == "greedy" else vote(ext)
            block = {"outputs": got["texts"], "extracted": ext, "pred": pred}
            if counts is not None:
                block["votes"] = counts
            if judge is not None:
                pred, block["judge"] = judge(pred, gold, row)
                block["pred"] = pred
                graded[mode].append(block["judge"])
            if pred is None:
                invalid[mode][0] += 1
            if task.answer.type in CORRECTNESS:
                block["correct"] = pred is not None and pred == gold
                hits[mode].append(sum(e is not None and e == gold for e in ext) / max(len(ext), 1))
            preds[mode].append(pred)
            sample[mode] = block
        writer.write(sample)
    writer.close()
    golds = p.golds
    clusters = _clusters(task, p.rows)
    result = {
        "task": task.name, "display_name": task.display_name or task.name, "version": task.version,
        "task_hash": task.spec_hash(), "prompt_hash": p.renderer.prompt_hash(), "template": p.renderer.template_name,
        "data_hash": p.data_hash, "item_ids_hash": p.ids_hash,
        "dataset": {"hub": task.dataset.hub, "config": task.dataset.config, "split": task.dataset.split,
                    "source": p.source},
        "n": len(p.ids), "n_total": p.n_total, "answer_type": task.answer.type,
        "primary_metric": task.primary_metric, "metric_options": opts, "modes": modes,
        "metrics": {m: {**{name: metrics.bootstrap_ci(name, preds[m], golds, opts[name], clusters=clusters)
                           for name in task.metrics}, **_sample_accuracy(m, hits[m], clusters)} for m in modes},
        "bootstrap": _bootstrap_note(task, clusters),
        "invalid": {m: {"count": invalid[m][0], "rate": invalid[m][0] / max(len(p.ids), 1),
                        "samples": invalid[m][1]} for m in modes},
        "strata": _strata(task, p, preds, golds, opts, modes, hits, clusters),
        "skipped": dict(skipped),
        "samples_file": writer.path.name,
    }
    result.update(getattr(p, "notes", None) or {})
    if judge is not None and hasattr(judge, "summary"):
        result["judge"] = judge.summary()
    if task.answer.type == "rubric":
        from .rubric import breakdowns

        result["rubric"] = {m: breakdowns(graded[m], p.rows) for m in modes}
    if any(texts[m][i].get("prefill") for m in modes for i in p.ids):
        result["adversarial"] = _recovery(p, preds, texts, modes)
    result["timings"] = {"score_s": time.time() - t0}
    return result


def _recovery(p, preds, texts, modes) -> dict:
    """Adversarial mode: how often the final answer is right (recovered) or the pre-filled wrong one (misled)."""
    from .runner import adversarial_wrong

    traces = getattr(p, "prefills", None)
    wrong = [adversarial_wrong(o, g) for o, g in zip(p.options, p.golds)]
    out = {"prefill": "the first wrong option, stated as the answer at the start of the reply"}
    if traces:
        # the trace's own conclusion is the answer it pushes; items without a trace keep the short pre-fill
        wrong = [extract(p.task, t, row, o) if t else w for t, row, o, w in zip(traces, p.rows, p.options, wrong)]
        out = {"prefill": "a per-item wrong reasoning trace (see adversarial_traces); items without one: the "
                          "first wrong option stated as the answer",
               "trace_without_answer": sum(t is not None and w is None for t, w in zip(traces, wrong))}
    n = max(len(p.ids), 1)
    for m in modes:
        out[m] = {"recovery_rate": sum(x == g for x, g in zip(preds[m], p.golds)) / n,
                  "misled_rate": sum(x is not None and x == w for x, w in zip(preds[m], wrong)) / n}
    return out


def _clusters(task, rows) -> list | None:
    """The bootstrap unit of each item: its `bootstrap_cluster` value (None: every item is its own)."""
    if not task.bootstrap_cluster:
        return None
    from .errors import MedevalError

    try:
        return [str(get_field(r, task.bootstrap_cluster)) for r in rows]
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
    return {"sample_accuracy": metrics.bootstrap_mean(hits, clusters=clusters)}


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
        for k, row in enumerate(p.rows):
            groups[str(_stratum(row, field))].append(k)
        out[field] = {
            value: {"n": len(idx), **{m: {**{name: metrics.bootstrap_ci(name, pick(preds[m], idx), pick(golds, idx),
                                                                        opts[name], clusters=pick(clusters, idx))
                                             for name in task.metrics},
                                          **_sample_accuracy(m, pick((hits or {}).get(m) or None, idx),
                                                             pick(clusters, idx))}
                                      for m in modes}}
            for value, idx in sorted(groups.items())}
    return out


def _judge_for(task, cfg):
    if task.answer.type == "rubric":
        from .rubric import make_grader

        return make_grader(cfg)
    if task.answer.type != "diagnosis":
        return None
    from .judge import make_judge

    return make_judge(cfg)
