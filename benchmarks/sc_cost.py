"""Item 3: cost of self-consistency (k=10) over greedy on the HF backend.

Three ways on the same first K MedQA prompts, one model load, one torch thread:
  greedy      - medeval's greedy path (n=1, batched by --batch-size);
  sc_one_n10  - medeval's SC path: one request with n=10 (num_return_sequences=10);
  sc_10x_n1   - ten separate sampled requests with n=1 each (seeds seed..seed+9);
  sc_prefix_shared - a candidate fix, not medeval's code: the prompt's KV cache computed once
                at batch 1, repeated n times, and generate continues the n rows from it.
Also times the first prompt's prefill (one forward pass) alone and 10 copies in one batch
(the copies that num_return_sequences makes), to show what a shared prefix would save.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import time

from _common import DATA, load_str, median, save, versions, wait_quiet


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=2)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quiet-wait", type=float, default=0)
    a = ap.parse_args()
    os.environ["MEDEVAL_TORCH_THREADS"] = "1"
    import torch
    from medeval.backends.base import Request, Sampling
    from medeval.backends.hf import HFBackend
    from medeval.runs.runner import RunConfig, build_requests, prepare
    from medeval.tasks.spec import Registry

    torch.set_num_threads(1)
    t = time.perf_counter()
    be = HFBackend(batch_size=a.batch_size)
    load_s = time.perf_counter() - t
    cfg = RunConfig(tasks=["medqa"], limit=a.items, data_dir=str(DATA), self_consistency=a.k)
    p = prepare(Registry([]).resolve(["medqa"])[0], cfg)
    reqs = build_requests(p, cfg)
    greedy = [reqs[(i, "greedy")] for i in p.ids]
    sc = [reqs[(i, "sc")] for i in p.ids]
    sep = [Request(f"{r.id}/{j}", r.messages, Sampling(1, r.sampling.temperature, r.sampling.top_p, r.sampling.max_tokens,
                                                        r.sampling.stop, r.sampling.seed + j), r.prefill, r.chat)
           for r in sc for j in range(a.k)]
    tok = be.tok

    def run(requests):
        t0 = time.perf_counter()
        outs = dict(be.generate(requests))
        dt = time.perf_counter() - t0
        ntok = sum(len(tok(x, add_special_tokens=False)["input_ids"]) for o in outs.values() for x in o.texts)
        return dt, ntok, [x for i in sorted(outs) for x in outs[i].texts]

    def prefix_shared(requests):
        """SC with the prompt prefilled once: KV cache of the prompt (minus its last token) computed at batch 1,
        repeated n times, then generate continues all n rows from it (a candidate fix for hf.py)."""
        from medeval.backends.hf import _StopOnText

        t0 = time.perf_counter()
        ntok, texts = 0, []
        for r in requests:
            s = r.sampling
            text = be.render(r)
            x = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
            seed_src = f"{s.seed}:{text}".encode()
            torch.manual_seed(int.from_bytes(hashlib.sha256(seed_src).digest()[:8], "little") % 2**63)
            with torch.inference_mode():
                cache = be.model(x[:, :-1], use_cache=True).past_key_values
                cache.batch_repeat_interleave(s.n)
                xs = x.repeat(s.n, 1)
                gen = be.model.generate(xs, attention_mask=torch.ones_like(xs), past_key_values=cache,
                                        max_new_tokens=s.max_tokens, do_sample=True, temperature=s.temperature,
                                        top_p=s.top_p, top_k=0, pad_token_id=tok.pad_token_id,
                                        stopping_criteria=[_StopOnText(tok, s.stop, xs.shape[1])])
            for row in gen[:, xs.shape[1]:]:
                text_out, _ = be._finish(row, s.stop)
                texts.append(text_out)
                ntok += len(tok(text_out, add_special_tokens=False)["input_ids"])
        return time.perf_counter() - t0, ntok, texts

    def prefill(copies):  # the first prompt, `copies` times over in one batch
        ids = tok(be.render(greedy[0]), add_special_tokens=False)["input_ids"]
        t0 = time.perf_counter()
        with torch.inference_mode():
            be.model(torch.tensor([ids] * copies), logits_to_keep=1)
        return time.perf_counter() - t0

    run(greedy[:1])  # warm-up: first-call allocations
    reps = []
    for r in range(a.repeats):
        q = wait_quiet(max_wait=a.quiet_wait)
        g, s1, s10, sp = run(greedy), run(sc), run(sep), prefix_shared(sc)
        pf1, pfk = prefill(1), prefill(a.k)
        reps.append({"greedy_s": g[0], "greedy_tokens": g[1], "sc_one_n10_s": s1[0], "sc_one_n10_tokens": s1[1],
                     "sc_10x_n1_s": s10[0], "sc_10x_n1_tokens": s10[1],
                     "sc_prefix_shared_s": sp[0], "sc_prefix_shared_tokens": sp[1],
                     "sc_prefix_shared_same_samples": sum(x == y for x, y in zip(s1[2], sp[2])), "samples": len(sp[2]), "prefill_x1_s": pf1, "prefill_xk_s": pfk,
                     "load": [q["load_before"], load_str()]})
        print(f"rep {r}: greedy {g[0]:.1f}s, SC one n={a.k} {s1[0]:.1f}s, SC {a.k}x n=1 {s10[0]:.1f}s, shared prefix {sp[0]:.1f}s "
              f"(same samples as n={a.k}: {reps[-1]['sc_prefix_shared_same_samples']}/{len(sp[2])}), "
              f"load {load_str()}", flush=True)
    med = lambda k: median([x[k] for x in reps])  # noqa: E731
    summary = {k: med(k) for k in reps[0] if k != "load"}
    summary["sc_one_over_greedy"] = med_ratio(reps, "sc_one_n10_s", "greedy_s")
    summary["sc_sep_over_greedy"] = med_ratio(reps, "sc_10x_n1_s", "greedy_s")
    summary["sc_sep_over_sc_one"] = med_ratio(reps, "sc_10x_n1_s", "sc_one_n10_s")
    summary["sc_prefix_shared_over_sc_one"] = med_ratio(reps, "sc_prefix_shared_s", "sc_one_n10_s")
    summary["prefill_xk_over_x1"] = med_ratio(reps, "prefill_xk_s", "prefill_x1_s")
    prompt_tokens = [len(tok(be.render(r), add_special_tokens=False)["input_ids"]) for r in greedy]
    save("sc_cost", {"settings": vars(a), "versions": versions(), "model_load_s": load_s,
                     "prompt_tokens": prompt_tokens, "summary": summary, "runs": reps})


def med_ratio(reps, a, b):
    return median([x[a] / x[b] for x in reps])


if __name__ == "__main__":
    main()
