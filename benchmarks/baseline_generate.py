"""The backend alone: raw transformers `generate` on prompts that medeval already rendered.

Reads a plan (JSON list of {id, prompt, max_tokens, stop}) and generates every prompt
with the same model directory, batch size, batch composition (greedy, sorted by
settings, then longest prompt first, then id: the HF backend's rule), max_new_tokens
and stop strings. No medeval import. Prints a JSON line: import/load/generate seconds
and the outputs, so the caller can check that both produced the same text.
"""
from __future__ import annotations

import argparse
import json
import time

T0 = time.perf_counter()
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria  # noqa: E402

T_IMPORT = time.perf_counter() - T0


class StopOnText(StoppingCriteria):
    """A row is done once the text of its last 16 new tokens holds a stop string."""

    def __init__(self, tok, stop, start):
        self.tok, self.stop, self.start = tok, stop, start

    def __call__(self, input_ids, scores, **kwargs):
        tails = self.tok.batch_decode(input_ids[:, self.start:][:, -16:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in tails], device=input_ids.device)


def batches(plan, ids, batch_size):
    order = sorted(range(len(plan)), key=lambda i: (plan[i]["max_tokens"], plan[i]["stop"], -len(ids[i]), plan[i]["id"]))
    cur = []
    for i in order:
        if cur and (len(cur) == batch_size or (plan[i]["max_tokens"], plan[i]["stop"]) !=
                    (plan[cur[0]]["max_tokens"], plan[cur[0]]["stop"])):
            yield cur
            cur = []
        cur.append(i)
    if cur:
        yield cur


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--model", required=True, help="transformers model directory")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hf-stop-strings", action="store_true",
                    help="use transformers' own stop_strings= instead of the 16-token tail check")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    plan = json.load(open(args.plan))
    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    tok.pad_token = tok.pad_token or tok.eos_token
    tok.padding_side = "left"
    t_load = time.perf_counter() - t
    ids = [tok(p["prompt"], add_special_tokens=False)["input_ids"] for p in plan]
    eos = {model.generation_config.eos_token_id, tok.eos_token_id}
    eos = {e for x in eos for e in (x if isinstance(x, list) else [x])}
    outs, gen_s, n_batches, new_tokens = {}, 0.0, 0, 0
    for b in batches(plan, ids, args.batch_size):
        enc = tok.pad({"input_ids": [ids[i] for i in b]}, return_tensors="pt")
        stop = plan[b[0]]["stop"]
        kw = dict(max_new_tokens=plan[b[0]]["max_tokens"], do_sample=False, temperature=None, top_p=None,
                  top_k=None, pad_token_id=tok.pad_token_id)
        if stop and args.hf_stop_strings:
            kw.update(stop_strings=list(stop), tokenizer=tok)
        elif stop:
            kw["stopping_criteria"] = [StopOnText(tok, stop, enc["input_ids"].shape[1])]
        t = time.perf_counter()
        with torch.inference_mode():
            gen = model.generate(**enc, **kw)
        gen_s += time.perf_counter() - t
        n_batches += 1
        new = gen[:, enc["input_ids"].shape[1]:]
        new_tokens += int(new.numel())
        for row, i in zip(new.tolist(), b):
            cut = next((k for k, x in enumerate(row) if x in eos), len(row))
            text = tok.decode(row[:cut], skip_special_tokens=True)
            for s in stop:
                text = text.split(s, 1)[0]
            outs[plan[i]["id"]] = text
    print(json.dumps({"import_s": T_IMPORT, "load_s": t_load, "generate_s": gen_s, "batches": n_batches,
                      "generated_token_slots": new_tokens, "prompt_tokens": sum(map(len, ids)), "outputs": outs}))


if __name__ == "__main__":
    main()
