"""The GPU check of issue 10, in one process tree, in under 5 minutes on one GPU (see gpu_check.sh).

1. hf_e2e:    `medeval run --backend hf` on CUDA (dtype bfloat16, batch_size auto), greedy + SC-4, MedQA items.
2. oom:       real out-of-memory recovery: a per-process memory cap, a 1B model, 64 prompts of ~3,000
              words in one batch; it must finish after splitting (the failed attempt freed before each retry).
3. vllm_e2e:  `medeval run --backend vllm` on the same items (needs vLLM; see shared/gpu for a GPU
              machine without a package index).
4. throughput: medeval's HF and vLLM backends against raw `model.generate` and raw `LLM.generate` on
              the same prompts and settings (output tokens per second).
5. self_answer: `medeval run --extract-fallback self --extract-audit` (issue 21) on vLLM (`prompt_logprobs`;
              HF in --smoke), twice on one cache: the second run must score no self-answer anew.
              The random model never stops, so every output is truncated: the fallback skips them all
              and the audit scores every one (compared only where the rules read an answer).

Real weights cannot be downloaded on the GPU machines this project borrows, so the model is a randomly
initialised Llama-shaped one written here with the embedded model's tokenizer: speed, memory and code
paths are real; accuracy is meaningless, and it never emits EOS, so every sample runs to max_tokens.

    python benchmarks/gpu_check.py --data-dir DIR --tokenizer DIR [--out FILE]
    python benchmarks/gpu_check.py --smoke            # CPU, tiny model: checks the script, not a GPU
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {  # LlamaConfig fields
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8),
}


def random_llama(out: Path, tokenizer_dir: Path, shape: str, device: str) -> Path:
    """A randomly initialised Llama-shaped checkpoint (bf16 on GPU, fp32 on CPU) with a real tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if (out / "config.json").is_file():
        return out
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = LlamaConfig(vocab_size=len(tok), max_position_embeddings=8192, tie_word_embeddings=False,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **SHAPES[shape])
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(dtype).eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def medeval_run(args: list[str], out: Path) -> dict:
    """`medeval run` as a user types it; returns timings and the model block of results.json."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "medeval.cli", "run", *args, "-o", str(out), "-q", "--no-cache"],
                       capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if r.returncode:
        return {"ok": False, "wall_s": wall, "error": (r.stdout + r.stderr)[-2000:]}
    res = json.loads((out / "results.json").read_text())
    task = res["tasks"]["medqa"]
    return {"ok": True, "wall_s": round(wall, 1), "generate_s": round(res["timings"]["generate_s"], 2),
            "n": task["n"], "modes": task["modes"], "invalid": task["invalid"],
            "model": {k: res["model"].get(k) for k in ("backend", "dtype", "device", "batch_size",
                                                       "batch_size_start", "batch_size_largest_fit",
                                                       "oom_splits", "max_model_len", "identity_hash")}}


def self_answer_run(args: list[str], work: Path) -> dict:
    """--extract-fallback self --extract-audit, twice on one cache (the second must be all cached)."""
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    out = {}
    for attempt in ("first", "resumed"):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "medeval.cli", "run", *args, "--extract-fallback", "self",
                            "--extract-audit", "-o", str(work / attempt), "--cache-dir", str(work / "cache"), "-q"],
                           capture_output=True, text=True, cwd=ROOT)
        if r.returncode:
            return {"ok": False, "attempt": attempt, "error": (r.stdout + r.stderr)[-2000:]}
        res = json.loads((work / attempt / "results.json").read_text())
        task = res["tasks"]["medqa"]
        out[attempt] = {"wall_s": round(time.perf_counter() - t0, 1),
                        "self_answer_s": round(res["timings"].get("self_answer_s", 0.0), 2),
                        "cache": res["cache"], "extract_fallback": task["extract_fallback"]["outputs"],
                        "extract_audit": {m: {k: v for k, v in a.items() if k != "disagreements"}
                                          for m, a in task["extract_audit"].items() if isinstance(a, dict)}}
    asked = sum(a["outputs"] - a["not_asked"] for a in out["first"]["extract_audit"].values())
    out["ok"] = asked > 0 and out["resumed"]["cache"]["misses"] == 0
    return out


def _oom_child(model_dir: str, fraction: float, n: int, words: int, q) -> None:
    """In a child process, so the memory cap does not outlive the check."""
    try:
        import torch

        from medeval.backends.base import Request, Sampling
        from medeval.backends.hf import HFBackend

        torch.cuda.set_per_process_memory_fraction(fraction, 0)
        backend = HFBackend(model_dir, batch_size=n, dtype="bfloat16", device="cuda")
        text = " ".join(["the patient reports intermittent chest pain and shortness of breath"] * (words // 10))
        reqs = [Request(f"r{i}", (("user", f"{i}: {text}"),), Sampling(max_tokens=16)) for i in range(n)]
        t0 = time.perf_counter()
        outs = dict(backend.generate(reqs))
        q.put({"ok": len(outs) == n, "items": len(outs), "oom_splits": backend.oom_splits,
               "batch_cap": backend.batch_cap, "largest_fit": backend.largest_fit,
               "wall_s": round(time.perf_counter() - t0, 1), "fraction": fraction,
               "cap_gib": round(fraction * torch.cuda.get_device_properties(0).total_memory / 2**30, 1)})
    except Exception as e:  # reported, not raised: the other checks still run
        q.put({"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]})


def oom_check(model_dir: Path, fraction: float, n: int = 64, words: int = 3000) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_oom_child, args=(str(model_dir), fraction, n, words, q))
    p.start()
    p.join(timeout=240)
    if p.is_alive():
        p.kill()
        return {"ok": False, "error": "timed out after 240 s"}
    return q.get() if not q.empty() else {"ok": False, "error": f"child exited with {p.exitcode}"}


def prompts_for(model_dir: Path, data_dir: Path, limit: int) -> list[str]:
    """The rendered MedQA prompts of a run (the same text medeval sends), for the raw-engine baselines."""
    from medeval.runs.runner import RunConfig, prepare
    from medeval.tasks.spec import Registry

    cfg = RunConfig(tasks=["medqa"], limit=limit, data_dir=str(data_dir))
    task = Registry([]).resolve(["medqa"])[0]
    p = prepare(task, cfg)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    return [tok.apply_chat_template([{"role": r, "content": c} for r, c in m], tokenize=False,
                                    add_generation_prompt=True) for m in p.messages]


def hf_throughput(model_dir: Path, prompts: list[str], max_tokens: int, device: str) -> dict:
    import torch

    from medeval.backends.base import Request, Sampling
    from medeval.backends.hf import HFBackend

    backend = HFBackend(str(model_dir), batch_size=len(prompts), dtype="auto", device=device)
    tok, model = backend.tok, backend.model
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    kw = dict(max_new_tokens=max_tokens, min_new_tokens=max_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.inference_mode():
        model.generate(**{k: v[:2] for k, v in enc.items()}, **kw)  # warm-up
        t0 = time.perf_counter()
        model.generate(**enc, **kw)
        sync(device)
        raw = time.perf_counter() - t0
    reqs = [Request(f"r{i}", (("user", p),), Sampling(max_tokens=max_tokens), chat=False)
            for i, p in enumerate(prompts)]
    t0 = time.perf_counter()
    dict(backend.generate(reqs))
    sync(device)
    ours = time.perf_counter() - t0
    tokens = len(prompts) * max_tokens
    return {"prompts": len(prompts), "max_tokens": max_tokens, "raw_s": round(raw, 2), "medeval_s": round(ours, 2),
            "raw_tok_s": round(tokens / raw), "medeval_tok_s": round(tokens / ours), "ratio": round(ours / raw, 3),
            "note": "medeval stops a row at EOS; the raw path is forced to max_tokens (random weights emit no EOS)"}


def vllm_throughput(model_dir: Path, prompts: list[str], max_tokens: int, k: int) -> dict:
    from vllm import LLM, SamplingParams

    from medeval.backends.base import Request, Sampling
    from medeval.backends.vllm_backend import VLLMBackend

    llm = LLM(model=str(model_dir), enforce_eager=True, gpu_memory_utilization=0.5, enable_prefix_caching=True)
    backend = VLLMBackend(str(model_dir), llm_factory=lambda m, **a: llm)
    reqs = [Request(f"r{i}", (("user", p),), Sampling(n=k, temperature=0.7, top_p=0.9, max_tokens=max_tokens,
                                                       seed=1), chat=False) for i, p in enumerate(prompts)]
    token_prompts = [backend.prompt(r) for r in reqs]
    params = SamplingParams(n=k, temperature=0.7, top_p=0.9, max_tokens=max_tokens, seed=1, ignore_eos=True)
    llm.generate(token_prompts[:2], params, use_tqdm=False)  # warm-up (JIT)
    t0 = time.perf_counter()
    raw = llm.generate(token_prompts, params, use_tqdm=False)
    raw_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    dict(backend.generate(reqs))
    ours = time.perf_counter() - t0
    tokens = sum(len(c.token_ids) for r in raw for c in r.outputs)
    return {"prompts": len(prompts), "samples_per_prompt": k, "raw_s": round(raw_s, 2), "medeval_s": round(ours, 2),
            "raw_tok_s": round(tokens / raw_s), "ratio": round(ours / raw_s, 3)}


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--tokenizer", type=Path, help="tokenizer directory (default: the embedded model's)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/medeval-gpu-check"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check.json")
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--oom-fraction", type=float, default=0.04)
    ap.add_argument("--smoke", action="store_true", help="CPU and a tiny model: exercises the script only")
    ap.add_argument("--skip", default="", help="comma-separated steps to skip: hf_e2e,oom,vllm_e2e,throughput,"
                                               "self_answer")
    a = ap.parse_args()
    import torch

    device = "cpu" if a.smoke else "cuda"
    skip = set(filter(None, a.skip.split(",")))
    if a.smoke:
        skip |= {"oom", "vllm_e2e"}
    elif not torch.cuda.is_available():
        sys.exit("no GPU visible to torch: run on a GPU machine, or pass --smoke")
    tok_dir = a.tokenizer
    if tok_dir is None:
        from medeval.backends.hf import embedded_model_dir

        tok_dir = embedded_model_dir()
    a.work.mkdir(parents=True, exist_ok=True)
    shape = "tiny" if a.smoke else "1b"
    t0 = time.perf_counter()
    model_dir = random_llama(a.work / f"random-{shape}", tok_dir, shape, device)
    out: dict = {"machine": {"gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
                             "python": platform.python_version(), "torch": torch.__version__,
                             "platform": platform.platform()},
                 "model": f"random Llama {shape} ({model_dir})", "smoke": a.smoke,
                 "write_model_s": round(time.perf_counter() - t0, 1)}
    limit = 8 if a.smoke else a.limit
    run_args = ["--tasks", "medqa", "--limit", str(limit), "-k", "4", "--max-tokens", "32", "--data-dir",
                str(a.data_dir), "--model", str(model_dir)]
    if "hf_e2e" not in skip:
        extra = ["--model-args", "dtype=bfloat16"] if device == "cuda" else []
        out["hf_e2e"] = medeval_run([*run_args, "--backend", "hf", *extra], a.work / "hf-run")
    if "oom" not in skip:
        out["oom"] = oom_check(model_dir, a.oom_fraction)
    if "vllm_e2e" not in skip:
        out["vllm_e2e"] = medeval_run([*run_args, "--backend", "vllm", "--model-args",
                                       "enforce_eager=True,gpu_memory_utilization=0.5"], a.work / "vllm-run")
    if "self_answer" not in skip:   # issue 21: the model's own answer, by prompt logprobs on vLLM
        backend = ["--backend", "hf"] if a.smoke else ["--backend", "vllm", "--model-args",
                                                          "enforce_eager=True,gpu_memory_utilization=0.5"]
        out["self_answer"] = self_answer_run([*run_args, *backend], a.work / "self-answer")
    if "throughput" not in skip:
        prompts = prompts_for(model_dir, a.data_dir, limit)
        out["throughput_hf"] = hf_throughput(model_dir, prompts, 64 if device == "cuda" else 8, device)
        if not a.smoke:
            try:
                out["throughput_vllm"] = vllm_throughput(model_dir, prompts, 64, 4)
            except ImportError as e:
                out["throughput_vllm"] = {"ok": False, "error": f"vllm not importable: {e}"}
    out["total_s"] = round(time.perf_counter() - t0, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
