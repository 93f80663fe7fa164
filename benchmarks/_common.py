"""Shared helpers for the benchmark scripts: machine facts, load, timing, result files."""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
RESULTS = Path(os.environ.get("MEDEVAL_BENCH_RESULTS") or BENCH / "results")  # --quick uses results-quick/
DATA = ROOT.parent / "shared" / "data"
PY = os.path.normpath(os.path.abspath(sys.executable))  # keeps the venv symlink


def load1() -> float:
    return os.getloadavg()[0]


def load_str() -> str:
    return "%.2f %.2f %.2f" % os.getloadavg()


_waited = [0.0]  # seconds this process has spent in wait_quiet so far


def wait_quiet(threshold: float = 1.5, max_wait: float = 0.0, poll: float = 10.0) -> dict:
    """Wait for the 1-minute load average to drop below threshold; max_wait caps the total
    waiting of the whole process (all calls together), so a busy machine costs a bounded delay."""
    t0 = time.time()
    while load1() >= threshold and _waited[0] + (time.time() - t0) < max_wait:
        time.sleep(poll)
    _waited[0] += time.time() - t0
    return {"load_before": load_str(), "waited_s": round(time.time() - t0, 1), "quiet": load1() < threshold}


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = next((int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                if l.startswith("MemTotal")), 0)
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem / 2**20, 1),
            "platform": platform.platform()}


def versions(python: str = PY) -> dict:
    code = ("import json, platform, importlib.metadata as m\n"
            "out = {'python': platform.python_version()}\n"
            "for p in ('torch', 'transformers', 'medeval', 'lm-eval', 'rouge-score', 'bert-score', 'scipy'):\n"
            "    try: out[p] = m.version(p)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    out = json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "medeval"], cwd=ROOT, capture_output=True, text=True)
    out["medeval_git"] = rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return out


def median(xs):
    return statistics.median(xs) if xs else None


def thread_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env.update(MEDEVAL_TORCH_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", PYTHONHASHSEED="0")
    return env


def timed(cmd: list[str], env: dict | None = None, cwd: Path = ROOT, log: Path | None = None) -> dict:
    """Run a command; wall time, exit code, load before/after; raise with the log tail on failure."""
    before = load_str()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
    if r.returncode:
        raise RuntimeError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{(r.stdout + r.stderr)[-3000:]}")
    return {"wall_s": wall, "load_before": before, "load_after": load_str(), "stdout": r.stdout}


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")   # MEDEVAL_BENCH_RESULTS may be elsewhere
    return path


def medeval_cmd(*args: str) -> list[str]:
    """The medeval console script of the interpreter running the benchmarks."""
    return [str(Path(PY).parent / "medeval"), *args]


LMEVAL_PY = BENCH / ".venv-lmeval" / "bin" / "python"   # lm-evaluation-harness in its own venv (setup_lmeval.sh)


def lmeval_workspace(prefix: str) -> tuple[str, dict, Path]:
    """(the embedded model's directory, a one-thread environment, a fresh work directory) for a run
    against lm-eval; exits with a hint when lm-eval's venv is missing."""
    import tempfile

    if not LMEVAL_PY.exists():
        raise SystemExit(f"{LMEVAL_PY} is missing: run benchmarks/setup_lmeval.sh first")
    from medeval.backends.hf import embedded_model_dir

    return str(embedded_model_dir()), thread_env(1), Path(tempfile.mkdtemp(prefix=prefix))
