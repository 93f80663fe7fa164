"""`medeval run ... --gate-against BASELINE --sequential`: evaluate in chunks, stop when the gate knows.

Each task's baseline items (ids from its samples file, sorted, then shuffled with --order-seed) are
evaluated in that order, `chunk` more per step, by the ordinary pipeline (runner.run with
`RunConfig.item_ids`; one backend for all steps; the cache makes every step re-use the items before it,
and a later full run re-use them all). After each step, per task, the per-item differences of the gated
metric (candidate − baseline, in the evaluation order, oriented so that negative is worse; the metric,
mode and tolerance from the gate policy) go to medeval.sequential.decide, an always-valid test:

* a task is a **regression** once the test rejects "no drop" at alpha and the observed drop exceeds the
  tolerance: the run stops with exit 1;
* a task **passes** once the test rejects "a drop of the tolerance or more" at beta;
* the run stops when every task passed (exit 0), or when the items run out; tasks still undecided then
  pass with the verdict `undecided` (exit 0: no regression was shown; the fixed-size gate can be run on
  the full run for an ordinary verdict).

The output directory holds a normal run of the items used (results.json, samples files) and
`sequential_gate.json`: per task the verdict, the items used and available, the mean difference and the
bettor's wealth, and the items saved. Exit 2 when the runs cannot be compared (the gate's mismatch rules).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .. import metrics as M
from ..metrics.permutation import PERMUTATION_METRICS
from .config import RunConfig
from ..reporting.paired import load_samples, metric_options, mismatches
from ..reporting.policy import Policy
from ..reporting.verify import derived_predictions
from ..results import ResultsError, atomic_write, read_results
from .runner import make_backend, run
from ..scoring import modes as Modes
from ..sequential import decide
from ..tasks.spec import Registry

REPORT = "sequential_gate.json"


def _differences(task: str, base, cand, policy: Policy) -> tuple[np.ndarray, list, dict]:
    """Per-item differences of the items both runs hold (in the candidate's samples order), their ids, and
    what was gated."""
    tp = policy.for_task(task)
    bt, ct = base.tasks[task], cand.tasks[task]
    metric = tp.metric or bt.get("primary_metric")
    if metric not in M.names():
        raise ResultsError(f"{base.file}: tasks.{task}: metric {metric!r} is not known; name another in the policy")
    if metric in PERMUTATION_METRICS:   # its predictions are lists of answers per shown order (issue 26)
        raise ResultsError(f"task {task}: the sequential gate does not compare {metric!r} (a --permute metric); "
                           f"gate the finished runs with `medeval gate --metric {metric}`, or name another metric "
                           "in the policy")
    b_rows, c_rows = load_samples(base, task), load_samples(cand, task)
    issues, _, _ = mismatches(task, bt, ct, b_rows, c_rows)
    if issues:
        raise ResultsError(f"task {task}: the runs cannot be compared: {'; '.join(issues)}")
    ids = [i for i in c_rows if i in b_rows]               # the candidate's samples follow its evaluation order
    mode = tp.mode or (bt.get("modes") or [Modes.GREEDY.name])[0]   # the task's first mode
    golds = [b_rows[i].gold for i in ids]
    opts = metric_options(bt, metric)
    sb = M.item_scores(metric, derived_predictions(base, task, b_rows, ids, mode)[0], golds, opts)   # as the
    sc = M.item_scores(metric, derived_predictions(cand, task, c_rows, ids, mode)[0], golds, opts)   # fixed gate
    if sb is None or sc is None:
        raise ResultsError(f"task {task}: the sequential gate needs a metric with per-item scores; {metric!r} "
                           "has none (gate it with the fixed-size gate)")
    sign = 1.0 if M.get(metric).higher_is_better else -1.0
    return sign * (np.asarray(sc) - np.asarray(sb)), ids, {"metric": metric, "mode": mode, "tolerance": tp.tolerance}


def run_sequential(cfg: RunConfig, baseline: str | Path, policy: Policy, alpha: float, beta: float, chunk: int,
                   order_seed: int = 0, progress: bool = True) -> dict:
    if chunk < 1:
        raise ResultsError(f"--chunk must be at least 1, got {chunk}")
    base = read_results(baseline)
    names = [t.name for t in Registry([Path(d) for d in cfg.task_dirs], strict=False).resolve(cfg.tasks)]
    missing = [t for t in names if t not in base.tasks]
    if missing:
        raise ResultsError(f"{base.file}: no field 'tasks.{missing[0]}': the baseline lacks task(s) "
                           f"{', '.join(missing)}; gate against a run of the same tasks")
    rng = np.random.default_rng(order_seed)
    order = {t: [str(i) for i in rng.permutation(sorted(load_samples(base, t)))] for t in names}
    backend = make_backend(cfg)
    verdicts: dict[str, dict] = {}
    k = 0
    while True:
        k = min(k + chunk, max(len(o) for o in order.values()))
        step = dataclasses.replace(cfg, item_ids={t: order[t][:k] for t in names})
        # the samples files follow the data order; the evaluation order is `order`
        run(step, backend=backend, progress=progress)
        cand = read_results(cfg.output_dir)
        base.check_identity()
        cand.check_identity()
        if base.identity_hash and base.identity_hash == cand.identity_hash:
            raise ResultsError(f"{base.file}: the baseline comes from the same model identity as this run "
                               f"(model.identity_hash {base.identity_hash[:12]}...); gate against another checkpoint")
        for t in names:
            if verdicts.get(t, {}).get("verdict") in ("pass", "regression"):
                continue
            d, ids, what = _differences(t, base, cand, policy)
            pos = {i: n for n, i in enumerate(order[t])}
            d = d[np.argsort([pos[i] for i in ids], kind="stable")]   # into the evaluation order
            res = decide(d, what["tolerance"], alpha, beta, looks=[len(d)])
            verdicts[t] = {**what, **res, "n_available": len(order[t])}
        done = all(v["verdict"] == "pass" for v in verdicts.values())
        failed = any(v["verdict"] == "regression" for v in verdicts.values())
        if done or failed or k >= max(len(o) for o in order.values()):
            break
    for v in verdicts.values():
        v["items_saved"] = v["n_available"] - v["n_used"]
    exit_code = 1 if any(v["verdict"] == "regression" for v in verdicts.values()) else 0
    report = {"baseline": str(base.dir), "alpha": alpha, "beta": beta, "chunk": chunk, "order_seed": order_seed,
              "test": "test by betting, predictable plug-in bets (Waudby-Smith & Ramdas, JRSS-B 2024)",
              "items_evaluated": k, "status": "FAIL" if exit_code else "PASS", "exit_code": exit_code,
              "tasks": verdicts}
    atomic_write(Path(cfg.output_dir) / REPORT, json.dumps(report, indent=2) + "\n")
    return report
