"""Item 1, generate phase only: medeval's HFBackend.generate vs raw transformers generate,
interleaved batch by batch in one process on one loaded model (A/B pairs seconds apart, so
load drift on the shared machine hits both sides alike).

Batches are the ones the HF backend forms for the run (greedy requests sorted by settings,
then longest prompt first, then id; cut every --batch-size). Per batch:
  A: backend.generate(requests of the batch)  - renders, tokenizes, generates, decodes, cuts stops
  B: raw model.generate on the pre-tokenized batch with the same kwargs and a minimal stop check,
     then decode (baseline_generate.py's code).
"""
from __future__ import annotations

import argparse
import os
import time

from _common import DATA, load_str, median, save, versions, wait_quiet


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="medqa,medmcqa,pubmedqa,mmlu_medical")
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--quiet-wait", type=float, default=0)
    a = ap.parse_args()
    os.environ["MEDEVAL_TORCH_THREADS"] = "1"
    import torch
    from baseline_generate import StopOnText
    from medeval.backends.hf import HFBackend
    from medeval.runs.runner import RunConfig, build_requests, prepare
    from medeval.tasks.spec import Registry

    torch.set_num_threads(1)
    be = HFBackend(batch_size=a.batch_size)
    cfg = RunConfig(tasks=a.tasks.split(","), limit=a.limit, data_dir=str(DATA))
    reqs = [r for t in Registry([]).resolve(cfg.tasks) for r in build_requests(prepare(t, cfg), cfg).values()]
    ids = [be.tok(be.render(r), add_special_tokens=not r.chat)["input_ids"] for r in reqs]
    order = sorted(range(len(reqs)), key=lambda i: (repr(reqs[i].sampling.key()), -len(ids[i]), reqs[i].id))
    batches, cur = [], []
    for i in order:
        if cur and (len(cur) == a.batch_size or reqs[i].sampling != reqs[cur[0]].sampling):
            batches.append(cur)
            cur = []
        cur.append(i)
    batches.append(cur)
    tok, model = be.tok, be.model

    def raw(b):
        s = reqs[b[0]].sampling
        enc = tok.pad({"input_ids": [ids[i] for i in b]}, return_tensors="pt")
        kw = dict(max_new_tokens=s.max_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
                  pad_token_id=tok.pad_token_id, stopping_criteria=[StopOnText(tok, s.stop, enc["input_ids"].shape[1])])
        with torch.inference_mode():
            gen = model.generate(**enc, **kw)
        return [tok.decode(row, skip_special_tokens=True) for row in gen[:, enc["input_ids"].shape[1]:]]

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    raw(batches[-1][:1])  # warm-up
    q = wait_quiet(max_wait=a.quiet_wait)
    passes = []
    for p in range(a.passes):
        med_s, raw_s = [], []
        for k, b in enumerate(batches):
            first_medeval = (k + p) % 2 == 0     # alternate which side of the pair goes first
            for side in ("m", "r") if first_medeval else ("r", "m"):
                if side == "m":
                    med_s.append(timed(lambda: list(be.generate([reqs[i] for i in b])))[0])
                else:
                    raw_s.append(timed(lambda: raw(b))[0])
        passes.append({"medeval_s": sum(med_s), "raw_s": sum(raw_s), "per_batch": list(zip(med_s, raw_s)),
                       "ratio": sum(med_s) / sum(raw_s), "load_after": load_str()})
        print(f"pass {p}: medeval backend {sum(med_s):.1f}s, raw generate {sum(raw_s):.1f}s, "
              f"ratio {sum(med_s) / sum(raw_s):.3f}, load {load_str()}", flush=True)
    save("generate_ab", {"settings": vars(a), "versions": versions(), "n_requests": len(reqs),
                         "n_batches": len(batches), "load_before": q["load_before"],
                         "ratio_median": median([x["ratio"] for x in passes]),
                         "per_batch_ratio_median": median([m / r for x in passes for m, r in x["per_batch"]]),
                         "passes": passes})


if __name__ == "__main__":
    main()
