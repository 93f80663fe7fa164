"""Run every CPU benchmark with its defaults, then regenerate benchmarks/RESULTS.md.

    python benchmarks/run_all.py               # about 30 minutes on 2 cores
    python benchmarks/run_all.py --quick       # small sizes, a few minutes; writes results-quick/ only
    python benchmarks/run_all.py --only overhead,memory --quiet-wait 600

Each script writes benchmarks/results/<name>.json. The lm-eval comparison needs
benchmarks/.venv-lmeval (made here by setup_lmeval.sh when missing). The GPU script runs
only where torch sees a GPU.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from _common import BENCH, PY, load_str

QUICK = {"overhead": ["--limit", "2", "--repeats", "1"], "generate_ab": ["--limit", "1"], "vs_lmeval": ["--limit", "4", "--repeats", "1"],
         "sc_cost": ["--items", "1", "--repeats", "1"],
         "scoring_throughput": ["--short-pairs", "300", "--long-pairs", "10", "--bertscore-texts", "32", "--repeats", "1"],
         "memory": ["--limits", "2,8"], "view_load": ["--items", "500", "--repeats", "1"], "extraction_corpus": [],
         "gate_power": ["--reps", "300", "--boot-reps", "20", "--pairs", "2"], "sequential_gate": ["--reps", "300"]}
ORDER = ["scoring_throughput", "overhead", "generate_ab", "vs_lmeval", "sc_cost", "memory", "view_load",
         "extraction_corpus", "gate_power", "sequential_gate"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=",".join(ORDER))
    ap.add_argument("--quiet-wait", default="0", help="seconds each step may spend in all (between its measurements) waiting for a 1-min load below 1.5")
    a = ap.parse_args()
    steps = [s for s in ORDER if s in a.only.split(",")]
    if "vs_lmeval" in steps and not (BENCH / ".venv-lmeval" / "bin" / "python").exists():
        subprocess.run(["bash", str(BENCH / "setup_lmeval.sh")], check=True)
    t0 = time.time()
    if a.quick:  # never overwrite the real results with the tiny ones
        os.environ["MEDEVAL_BENCH_RESULTS"] = str(BENCH / "results-quick")
    for s in steps:
        args = (QUICK[s] if a.quick else []) + ["--quiet-wait", a.quiet_wait]
        print(f"== {s} {' '.join(args)}  (load {load_str()})", flush=True)
        t = time.time()
        subprocess.run([PY, str(BENCH / f"{s}.py"), *args], cwd=BENCH, check=True)
        print(f"== {s} done in {time.time() - t:.0f}s", flush=True)
    import torch

    if torch.cuda.is_available():
        subprocess.run([PY, str(BENCH / "gpu_throughput.py")], cwd=BENCH, check=True)
    else:
        print("== gpu_throughput skipped: no GPU visible to torch")
    subprocess.run([PY, str(BENCH / "report.py")], cwd=BENCH, check=True)
    print(f"all done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
