"""Item 6 (needs a GPU; not run on the CPU-only development machine): generation tokens/s of
the HF backend on a randomly initialised Llama-3-8B-shaped model in bf16, against the bf16
compute ceiling (2 x parameters FLOPs per token) and the HBM-bandwidth ceiling for decoding.

    python benchmarks/gpu_throughput.py                     # Llama-3-8B shape, cuda, bf16
    python benchmarks/gpu_throughput.py --shape tiny --device cpu --dtype float32   # smoke test

Two paths per batch size: raw `model.generate` (prefill timed separately) and medeval's
HFBackend.generate with the same model (a tokenizer from the embedded model; every row is
forced to exactly --new-tokens tokens with min_new_tokens, so tokens/s is exact).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from _common import median, save, versions

SHAPES = {  # transformers LlamaConfig fields
    "llama3-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                      rope_theta=500000.0, tie_word_embeddings=False),
    "tiny": dict(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=False),
}
# dense bf16 tensor-core peak (TFLOP/s) and HBM bandwidth (TB/s), from the vendors' data sheets
PEAKS = {"H200": (989.0, 4.8), "H100 SXM": (989.0, 3.35), "H100 PCIe": (756.0, 2.0), "H100": (989.0, 3.35),
         "A100": (312.0, 2.0), "L40S": (362.0, 0.86), "L4": (121.0, 0.3)}


def peaks(device: str, tflops: float | None, bw: float | None):
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    hit = next((v for k, v in PEAKS.items() if k in name), (None, None))
    return name, tflops or hit[0], bw or hit[1]


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama3-8b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--batch-sizes", default="1,8,32,64")
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, help="override the bf16 dense peak (TFLOP/s)")
    ap.add_argument("--peak-bw", type=float, help="override the memory bandwidth (TB/s)")
    ap.add_argument("--no-backend", action="store_true", help="skip the medeval HFBackend path")
    a = ap.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = getattr(torch, a.dtype)
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(a.device):
        model = LlamaForCausalLM(LlamaConfig(**SHAPES[a.shape])).eval()
    torch.set_default_dtype(prev)
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.model.embed_tokens.weight.numel()          # a lookup, no FLOPs
    flops_per_token = 2 * (n_params - n_embed)                  # the lm_head matmul counts; attention ignored
    weight_bytes = n_params * torch.finfo(dtype).bits // 8
    gpu, tflops, bw = peaks(a.device, a.peak_tflops, a.peak_bw)
    model.generation_config.min_new_tokens = a.new_tokens      # every row generates exactly new_tokens
    model.generation_config.eos_token_id = None
    rows = []
    for bs in [int(x) for x in a.batch_sizes.split(",")]:
        ids = torch.randint(100, 40000, (bs, a.prompt_len), device=a.device)
        mask = torch.ones_like(ids)
        kw = dict(max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=False, pad_token_id=0)
        try:
            with torch.inference_mode():
                model.generate(ids, attention_mask=mask, **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
                pre, tot = [], []
                for _ in range(a.repeats):
                    sync(a.device)
                    t = time.perf_counter()
                    model(ids, attention_mask=mask, logits_to_keep=1)
                    sync(a.device)
                    pre.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    model.generate(ids, attention_mask=mask, **kw)
                    sync(a.device)
                    tot.append(time.perf_counter() - t)
        except torch.OutOfMemoryError:
            rows.append({"batch": bs, "error": "out of memory"})
            torch.cuda.empty_cache()
            continue
        p, t = median(pre), median(tot)
        decode_tps = bs * a.new_tokens / max(t - p, 1e-9)
        row = {"batch": bs, "prefill_s": p, "generate_s": t, "new_tokens_per_s": bs * a.new_tokens / t,
               "decode_tokens_per_s": decode_tps, "prefill_tokens_per_s": bs * a.prompt_len / p}
        if tflops:
            row["prefill_mfu"] = row["prefill_tokens_per_s"] * flops_per_token / (tflops * 1e12)
            row["decode_mfu"] = decode_tps * flops_per_token / (tflops * 1e12)
        if bw:  # each decode step reads every weight once: batch x bandwidth / weight bytes tokens/s at most
            row["decode_bw_ceiling_tokens_per_s"] = bs * bw * 1e12 / weight_bytes
        if not a.no_backend:
            row["medeval_backend_new_tokens_per_s"] = backend_tps(model, a, bs)
        rows.append(row)
        print(json.dumps(row), flush=True)
    save(f"gpu_throughput_{a.shape}", {"settings": vars(a), "versions": versions(), "device": gpu,
                                       "params": n_params, "flops_per_token": flops_per_token,
                                       "peak_tflops": tflops, "peak_bw_tb_s": bw, "rows": rows})


def backend_tps(model, a, bs) -> float:
    """medeval's HFBackend.generate on the same model (built around it, no loading)."""
    from medeval.backends.base import Request, Sampling
    from medeval.backends.hf import HFBackend, load_model

    _, tok, _ = load_model("embedded", device="cpu")           # any tokenizer whose ids fit the vocabulary
    be = HFBackend.__new__(HFBackend)
    be.model, be.tok, be.batch_size, be.context_policy = model, tok, bs, "truncate_left"
    be.max_context, be.oom_splits, be.chat_template_kwargs = 8192, 0, {}
    words = "the patient presents with fever cough and shortness of breath for three days".split()
    text = " ".join(words[i % len(words)] for i in range(a.prompt_len))
    reqs = [Request(f"r{i}", (("user", f"{i} {text}"),), Sampling(max_tokens=a.new_tokens), chat=False)
            for i in range(bs)]
    list(be.generate(reqs[:1]))  # warm-up
    ts = []
    for _ in range(a.repeats):
        sync(a.device)
        t = time.perf_counter()
        list(be.generate(reqs))
        sync(a.device)
        ts.append(time.perf_counter() - t)
    return bs * a.new_tokens / median(ts)


if __name__ == "__main__":
    main()
