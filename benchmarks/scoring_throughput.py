"""Item 4: scoring throughput on CPU, one torch thread.

ROUGE pairs/s (rouge-score as medeval calls it, versus medeval.metrics.rouge_fast) on short
texts (iu_xray: impression vs findings) and long ones (pubmed_summ: abstract vs a lead of the
article); BERTScore texts/s with one loaded scorer (the offline MiniLM default); bootstrap CI
seconds for 10k items (accuracy: per-item path; macro_f1: per-item count path).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from _common import DATA, load_str, median, save, versions, wait_quiet

TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def rows(name):
    return [json.loads(l) for l in (DATA / name / "test.jsonl").read_text().splitlines()]


def best_of(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return median(ts), ts


def rouge_bench(pairs, repeats):
    from rouge_score import rouge_scorer

    from medeval.metrics.rouge_fast import FastRougeScorer, clear_caches

    out = {}
    for types in [[t] for t in TYPES] + [TYPES]:
        key = "+".join(types)
        ref, fast = rouge_scorer.RougeScorer(types, use_stemmer=True), FastRougeScorer(types, use_stemmer=True)
        t_ref, _ = best_of(lambda: [ref.score(g, p) for g, p in pairs], repeats)

        def cold():  # empty memo: every text tokenized once, as in a task's first ROUGE metric
            clear_caches()
            s = FastRougeScorer(types, use_stemmer=True)
            return [s.score(g, p) for g, p in pairs]

        t_fast, _ = best_of(cold, repeats)
        # warm: the texts were seen before (a task's 2nd and 3rd ROUGE metric, bootstrap_ci's 2nd pass)
        [fast.score(g, p) for g, p in pairs]
        t_warm, _ = best_of(lambda: [fast.score(g, p) for g, p in pairs], repeats)
        same = all(ref.score(g, p) == fast.score(g, p) for g, p in pairs)
        out[key] = {"rouge_score_pairs_per_s": len(pairs) / t_ref, "rouge_fast_pairs_per_s": len(pairs) / t_fast,
                    "rouge_fast_warm_pairs_per_s": len(pairs) / t_warm, "speedup": t_ref / t_fast, "identical": same}
        print(f"  {key}: rouge-score {len(pairs) / t_ref:.0f}/s, fast {len(pairs) / t_fast:.0f}/s "
              f"(x{t_ref / t_fast:.1f}), identical={same}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--short-pairs", type=int, default=2000)
    ap.add_argument("--long-pairs", type=int, default=60)
    ap.add_argument("--lead-chars", type=int, default=2000, help="long predictions: the article's first N chars")
    ap.add_argument("--bertscore-texts", type=int, default=128)
    ap.add_argument("--bootstrap-items", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quiet-wait", type=float, default=0)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from medeval import stats
    from medeval.metrics.text import bertscore_default_model, bertscore_prf

    res = {"load": {}}
    iu, pm = rows("iu_xray")[:a.short_pairs], rows("pubmed_summ")[:a.long_pairs]
    short = [(r["impression"], r["findings"]) for r in iu]
    long_ = [(r["abstract"], r["article"][:a.lead_chars]) for r in pm]
    toks = lambda ps: [float(np.median([len(x.split()) for x in side])) for side in zip(*ps)]  # noqa: E731
    res["texts"] = {"short_median_words_ref_pred": toks(short), "long_median_words_ref_pred": toks(long_)}
    res["load"]["rouge"] = wait_quiet(max_wait=a.quiet_wait)["load_before"]
    print("ROUGE short (iu_xray)")
    res["rouge_short"] = rouge_bench(short, a.repeats)
    print("ROUGE long (pubmed_summ)")
    res["rouge_long"] = rouge_bench(long_, a.repeats)
    # medeval's own metric path: bootstrap_ci computes the corpus value and the per-item scores
    preds, golds = [p for _, p in short], [g for g, _ in short]
    t, _ = best_of(lambda: stats.bootstrap_ci("rougeL", preds, golds, {"use_stemmer": True}), 1)
    res["medeval_bootstrap_ci_rougeL_short_s"] = t
    res["load"]["rouge_after"] = load_str()

    res["load"]["bertscore"] = wait_quiet(max_wait=a.quiet_wait)["load_before"]
    n = a.bertscore_texts
    cand, refs = [p for _, p in short], [g for g, _ in short]
    t0 = time.perf_counter()
    bertscore_prf(cand[:8], refs[:8])                      # loads the scorer once
    first = time.perf_counter() - t0
    runs = []
    for k in range(a.repeats):                             # fresh texts each time (results are memoised)
        lo = 8 + k * n
        t0 = time.perf_counter()
        bertscore_prf(cand[lo:lo + n], refs[lo:lo + n])
        runs.append(time.perf_counter() - t0)
    res["bertscore"] = {"model": bertscore_default_model()["source"], "first_call_incl_load_s": first,
                        "texts": n, "texts_per_s": n / median(runs), "runs_s": runs}
    print(f"BERTScore: {n / median(runs):.0f} pairs/s, first call {first:.1f}s", flush=True)

    res["load"]["bootstrap"] = wait_quiet(max_wait=a.quiet_wait)["load_before"]
    rng = np.random.default_rng(0)
    golds = list(rng.choice(list("ABCD"), a.bootstrap_items))
    preds = [g if rng.random() < 0.4 else str(rng.choice(list("ABCD"))) for g in golds]
    preds[::50] = [None] * len(preds[::50])
    boot = {}
    for name in ("accuracy", "macro_f1"):
        opts = {"labels": list("ABCD")} if name == "macro_f1" else {}
        t, ts = best_of(lambda: stats.bootstrap_ci(name, preds, golds, opts), a.repeats)
        boot[name] = {"items": a.bootstrap_items, "resamples": 1000, "seconds": t, "runs_s": ts}
        print(f"bootstrap {name} ({a.bootstrap_items} items): {t:.2f}s", flush=True)
    res["bootstrap_ci"] = boot
    res["load"]["end"] = load_str()
    save("scoring_throughput", {"settings": vars(a), "versions": versions(), **res})


if __name__ == "__main__":
    main()
