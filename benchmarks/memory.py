"""Item 5: peak resident memory of a full `medeval run` on the embedded model, by dataset size.

Each run is a fresh process; its peak RSS is the kernel's ru_maxrss for that child
(resource.getrusage(RUSAGE_CHILDREN) read in a one-shot wrapper process). The floor is a
process that imports torch/transformers, loads the same model and runs one raw generate
(the first forward pass on CPU adds about as much again as the weights).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import DATA, PY, load_str, medeval_cmd, save, thread_env, timed, versions, wait_quiet

WRAP = ("import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:]); "
        "print(json.dumps({'rc': r.returncode, 'maxrss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")
# no medeval code on the hot path: import, load the same model, one generate of 8 short prompts
FLOOR = ("import torch; torch.set_num_threads(1)\n"
         "from transformers import AutoModelForCausalLM\n"
         "from medeval.backends.hf import embedded_model_dir\n"
         "m = AutoModelForCausalLM.from_pretrained(embedded_model_dir()).eval()\n"
         "with torch.inference_mode(): m.generate(torch.randint(0, 1000, (8, 150)), attention_mask=torch.ones(8, 150, "
         "dtype=torch.long), max_new_tokens=32, do_sample=False, pad_token_id=0)")


def peak(cmd, env, log):
    r = timed([PY, "-c", WRAP, *cmd], env, log=log)
    out = json.loads(r["stdout"].strip().splitlines()[-1])
    if out["rc"]:
        raise RuntimeError(f"{cmd} failed, see {log}")
    return {"peak_rss_mib": out["maxrss_kib"] / 1024, "wall_s": r["wall_s"], "load": [r["load_before"], r["load_after"]]}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", default="medmcqa")
    ap.add_argument("--limits", default="10,50,200")
    ap.add_argument("--quiet-wait", type=float, default=0)
    a = ap.parse_args()
    env = thread_env(1)
    work = Path(tempfile.mkdtemp(prefix="medeval-bench-memory-"))
    wait_quiet(max_wait=a.quiet_wait)
    floor = peak([PY, "-c", FLOOR], env, work / "floor.log")
    print(f"floor (import + load + one raw generate): {floor['peak_rss_mib']:.0f} MiB", flush=True)
    runs = []
    for n in [int(x) for x in a.limits.split(",")]:
        wait_quiet(max_wait=a.quiet_wait)
        out = work / f"run{n}"
        r = peak(medeval_cmd("run", "-t", a.task, "-l", str(n), "--no-cache", "-q", "-o", str(out),
                             "--data-dir", str(DATA)), env, work / f"run{n}.log")
        size = (out / f"samples_{a.task}.jsonl").stat().st_size
        runs.append({"limit": n, **r, "samples_file_kib": size / 1024})
        print(f"limit {n}: peak {r['peak_rss_mib']:.0f} MiB in {r['wall_s']:.0f}s, load {load_str()}", flush=True)
    slope = (runs[-1]["peak_rss_mib"] - runs[0]["peak_rss_mib"]) / max(runs[-1]["limit"] - runs[0]["limit"], 1)
    save("memory", {"settings": vars(a), "versions": versions(),
                    "command": " ".join(medeval_cmd("run", "-t", a.task, "-l", "N", "--no-cache", "-q", "-o", "OUT",
                                                    "--data-dir", str(DATA))),
                    "floor": floor, "runs": runs, "mib_per_item": slope})


if __name__ == "__main__":
    main()
