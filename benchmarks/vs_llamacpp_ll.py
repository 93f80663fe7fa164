"""Loglikelihood picks through llama.cpp's server against the HF backend on the same items (issue 27).

Starts llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`, loopback only) on the
embedded GGUF (SmolLM2-135M-Instruct, Q4_1) and scores the first --limit items of openllm_medqa twice
through it with `medeval run --backend openai`: once with `--model-args tokenizer=<the converted model>`
(the server refuses the token-id prompts, medeval falls back to text prompts) and once without a
tokenizer (text prompts from the start); then once with the HF backend on the dequantized copy of the
same weights (float32, CPU, one torch thread).

Reports per run: item agreement of the picks (acc and acc_norm), which disagreements are near-ties
(the HF margin between the two picked choices is at most twice the item's largest log-probability
difference between the backends, i.e. within the two backends' numerical disagreement), the largest
difference in summed log-probability, how the prompts were sent, and wall times.
"""
from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import DATA, PY, ROOT, load_str, medeval_cmd, save, thread_env, timed, versions

TASK = "openllm_medqa"
SERVED = "smollm2-135m-instruct-q4_1"


def start_server(gguf: str, threads: int, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([PY, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", SERVED,
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
                             "--n_threads", str(threads), "--seed", "0"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"llama_cpp.server did not start: {log.read_text()[-2000:]}")


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / f"samples_{TASK}.jsonl").read_text().splitlines()]


def compare(api: list[dict], hf: list[dict]) -> dict:
    items, max_diff = [], 0.0
    for a, h in zip(api, hf):
        la, lh = a["loglikelihood"], h["loglikelihood"]
        assert a["id"] == h["id"] and a["prompt"] == h["prompt"]
        diff = max(abs(x - y) for x, y in zip(la["logprobs"], lh["logprobs"]))
        max_diff = max(max_diff, diff)
        pick_a, pick_h = la["choices"].index(la["pred"]), lh["choices"].index(lh["pred"])
        margin = abs(lh["logprobs"][pick_h] - lh["logprobs"][pick_a])
        items.append({"id": a["id"], "agree": pick_a == pick_h,
                      "agree_norm": a["loglikelihood_norm"]["pred"] == h["loglikelihood_norm"]["pred"],
                      "hf_margin": margin, "near_tie": pick_a != pick_h and margin <= 2 * diff,
                      "max_abs_logprob_diff": diff, "straddles": sum(la.get("straddles") or [])})
    n = len(items)
    return {"n": n, "agree": sum(i["agree"] for i in items), "agree_norm": sum(i["agree_norm"] for i in items),
            "near_ties": sum(i["near_tie"] for i in items),
            "agree_apart_from_near_ties": sum(i["agree"] or i["near_tie"] for i in items),
            "max_abs_logprob_diff": max_diff,
            "median_abs_logprob_diff": sorted(i["max_abs_logprob_diff"] for i in items)[n // 2],
            "straddled_continuations": sum(i["straddles"] for i in items),
            "disagreements": [i for i in items if not i["agree"]]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads and torch threads")
    ap.add_argument("--runs", default="llamacpp_tokenizer,llamacpp_text",
                    help="which llama.cpp runs: llamacpp_tokenizer (tokenizer given), llamacpp_text (none)")
    a = ap.parse_args()
    from medeval.backends.hf import embedded_gguf, embedded_model_dir

    model_dir, gguf = str(embedded_model_dir()), str(embedded_gguf())
    work = Path(tempfile.mkdtemp(prefix="medeval-bench-llamacpp-"))
    env = thread_env(a.threads)
    common = ["run", "-t", TASK, "-l", str(a.limit), "--no-cache", "-q", "--data-dir", str(DATA)]
    proc, url = start_server(gguf, a.threads, work / "server.log")
    runs, commands = {}, {}
    try:
        server = ["--backend", "openai", "--base-url", url, "--model", SERVED, "--concurrency", "1"]
        for name, extra in (("llamacpp_tokenizer", ["--model-args", f"tokenizer={model_dir}"]), ("llamacpp_text", [])):
            if name not in a.runs.split(","):
                continue
            cmd = medeval_cmd(*common, "-o", str(work / name), *server, *extra)
            commands[name] = " ".join(cmd).replace(url, "http://127.0.0.1:PORT/v1").replace(model_dir, "<model dir>")
            runs[name] = timed(cmd, env, cwd=ROOT, log=work / f"{name}.log")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    cmd = medeval_cmd(*common, "-o", str(work / "hf"), "--backend", "hf", "--dtype", "float32", "--batch-size", "8")
    commands["hf"] = " ".join(cmd)
    runs["hf"] = timed(cmd, env, cwd=ROOT, log=work / "hf.log")
    hf = rows(work / "hf")
    result = {}
    for name in [n for n in ("llamacpp_tokenizer", "llamacpp_text") if n in runs]:
        runs[name].pop("stdout")
        model = json.loads((work / name / "results.json").read_text())["model"]
        result[name] = {**compare(rows(work / name), hf), "loglikelihood_prompt": model["loglikelihood_prompt"],
                        "echo_logprobs": model.get("echo_logprobs")}
        r = result[name]
        print(f"{name}: {r['agree']}/{r['n']} picks agree ({r['agree_apart_from_near_ties']} apart from near-ties), "
              f"acc_norm {r['agree_norm']}/{r['n']}, max |dlogprob| {r['max_abs_logprob_diff']:.3f}, "
              f"prompts: {r['loglikelihood_prompt'][:60]}", flush=True)
    runs["hf"].pop("stdout")
    same = (all(x["loglikelihood"]["logprobs"] == y["loglikelihood"]["logprobs"]
                for x, y in zip(rows(work / "llamacpp_tokenizer"), rows(work / "llamacpp_text")))
            if len(result) == 2 else None)
    import llama_cpp

    save("vs_llamacpp_ll", {"settings": vars(a), "task": TASK, "load_at_end": load_str(), "commands": commands,
                            "versions": {**versions(), "llama-cpp-python": llama_cpp.__version__},
                            "wall_s": {k: v["wall_s"] for k, v in runs.items()}, "runs": runs,
                            "tokenizer_and_text_runs_identical": same, "agreement": result, "workdir": str(work)})


if __name__ == "__main__":
    sys.exit(main())
