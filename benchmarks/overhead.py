"""Item 1: medeval end-to-end time versus the backend alone (raw transformers generate).

For each repeat: `medeval run` on the tasks with --no-cache (fresh output dir), then
baseline_generate.py on the very prompts medeval rendered (same batches, same
max_new_tokens and stops). One extra medeval run under cProfile gives the breakdown.
"""
from __future__ import annotations

import argparse
import cProfile  # noqa: F401  (used through `python -m cProfile`)
import json
import pstats
import tempfile
from pathlib import Path

from _common import (DATA, PY, BENCH, load_str, medeval_cmd, median, save, thread_env, timed, versions,
                     wait_quiet)

TASKS = "medqa,medmcqa,pubmedqa,mmlu_medical"


def medeval_args(out: Path, a) -> list[str]:
    return ["run", "-t", a.tasks, "-l", str(a.limit), "--no-cache", "-q", "-o", str(out),
            "--data-dir", str(DATA), "--batch-size", str(a.batch_size), "--seed", "1234"]


def build_plan(out: Path) -> list[dict]:
    from medeval.tasks.spec import Registry

    res = json.loads((out / "results.json").read_text())
    reg = Registry([])
    plan = []
    for name in res["tasks"]:
        g = reg.resolve([name])[0].generation
        for line in (out / f"samples_{name}.jsonl").read_text().splitlines():
            s = json.loads(line)
            plan.append({"id": f"{name}/{s['id']}/greedy", "prompt": s["prompt"], "max_tokens": g.max_tokens,
                         "stop": list(g.stop), "medeval_output": s["greedy"]["outputs"][0]})
    return plan


# (label, predicate on (file, function name)) for the profile breakdown; cumulative seconds
PROFILE_ROWS = [
    ("prepare: load data + render prompts", lambda f, n: f.endswith("medeval/runs/prepare.py") and n == "prepare"),
    ("  load data (load_items)", lambda f, n: f.endswith("medeval/tasks/data.py") and n == "load_items"),
    ("  render messages (Renderer.messages)", lambda f, n: f.endswith("medeval/tasks/prompts.py") and n == "messages"),
    ("make_backend (imports torch + loads model)", lambda f, n: f.endswith("medeval/runs/runner.py") and n == "make_backend"),
    ("generate_all (cache keys, render, backend)", lambda f, n: f.endswith("medeval/runs/runner.py") and n == "generate_all"),
    ("  transformers generate()", lambda f, n: "transformers/generation/utils.py" in f and n == "generate"),
    ("    stop check (_StopOnText)", lambda f, n: f.endswith("backends/hf.py") and n == "__call__"),
    ("  chat template render", lambda f, n: f.endswith("backends/hf.py") and n == "render"),
    ("score_items (all tasks)", lambda f, n: f.endswith("medeval/scoring/score.py") and n == "score_items"),
    ("  extraction", lambda f, n: f.endswith("medeval/tasks/answer_types/__init__.py") and n == "extract"),
    ("  bootstrap CIs (all metrics, overall)", lambda f, n: f.endswith("medeval/stats.py") and n == "bootstrap_ci"),
    ("  strata CIs", lambda f, n: f.endswith("medeval/scoring/aggregate.py") and n == "strata"),
    ("  samples_<task>.jsonl writes", lambda f, n: f.endswith("medeval/results/files.py") and n in ("write", "close")),
    ("results.json write", lambda f, n: f.endswith("medeval/results/files.py") and n == "atomic_write"),
    ("runner.run total", lambda f, n: f.endswith("medeval/runs/runner.py") and n == "run"),
]


def profile_breakdown(prof: Path) -> dict:
    st = pstats.Stats(str(prof)).stats
    rows = {}
    for label, pred in PROFILE_ROWS:
        # a recursive function's cumtime is already total; count each matching function once
        rows[label] = sum(v[3] for (f, _, n), v in st.items() if pred(f, n))
    total = max(v[3] for v in st.values())
    rows["process total (incl. imports)"] = total
    rows["imports + CLI before runner.run"] = total - rows["runner.run total"]
    rows["harness = runner.run - make_backend - transformers generate()"] = (
        rows["runner.run total"] - rows["make_backend (imports torch + loads model)"] - rows["  transformers generate()"])
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--name", default="overhead", help="results/<name>.json")
    ap.add_argument("--quiet-wait", type=float, default=0, help="seconds to wait for load < 1.5 before each run")
    a = ap.parse_args()
    env = thread_env(1)
    work = Path(tempfile.mkdtemp(prefix="medeval-bench-overhead-"))
    from medeval.backends.hf import embedded_model_dir

    model_dir = str(embedded_model_dir())
    runs, plan_path, plan = [], work / "plan.json", None
    for r in range(a.repeats):
        out = work / f"run{r}"

        def run_medeval():
            q = wait_quiet(max_wait=a.quiet_wait)
            return q, timed(medeval_cmd(*medeval_args(out, a)), env, log=work / f"medeval{r}.log")

        def run_baseline():
            q = wait_quiet(max_wait=a.quiet_wait)
            return q, timed([PY, str(BENCH / "baseline_generate.py"), "--plan", str(plan_path), "--model", model_dir,
                             "--batch-size", str(a.batch_size)], env, log=work / f"baseline{r}.log")

        if r % 2 == 0 or plan is None:       # alternate which goes first (the plan comes from medeval's run 0)
            q, m = run_medeval()
            if plan is None:
                plan = build_plan(out)
                plan_path.write_text(json.dumps(plan))
            q2, b = run_baseline()
        else:
            q2, b = run_baseline()
            q, m = run_medeval()
        res = json.loads((out / "results.json").read_text())
        base = json.loads(b.pop("stdout").strip().splitlines()[-1])
        same = sum(base["outputs"][p["id"]] == p["medeval_output"] for p in plan)
        runs.append({"medeval_wall_s": m["wall_s"], "medeval_timings": res["timings"],
                     "task_score_s": {t: v["timings"]["score_s"] for t, v in res["tasks"].items()},
                     "baseline": {k: v for k, v in base.items() if k != "outputs"}, "baseline_wall_s": b["wall_s"],
                     "outputs_identical": same, "n_requests": len(plan),
                     "load": {"medeval": [q["load_before"], m["load_before"], m["load_after"]],
                              "baseline": [q2["load_before"], b["load_before"], b["load_after"]]}})
        print(f"rep {r}: medeval {m['wall_s']:.1f}s, backend alone {base['generate_s']:.1f}s, "
              f"identical outputs {same}/{len(plan)}, load {load_str()}", flush=True)
    med = lambda f: median([f(x) for x in runs])  # noqa: E731
    summary = {
        "n_requests": len(plan),
        "medeval_wall_s": med(lambda x: x["medeval_wall_s"]),
        "medeval_generate_s": med(lambda x: x["medeval_timings"]["generate_s"]),
        "medeval_load_model_s": med(lambda x: x["medeval_timings"]["load_model_s"]),
        "medeval_prepare_s": med(lambda x: x["medeval_timings"]["prepare_s"]),
        "medeval_score_s": med(lambda x: x["medeval_timings"]["score_s"]),
        "medeval_total_s": med(lambda x: x["medeval_timings"]["total_s"]),
        "medeval_startup_s": med(lambda x: x["medeval_wall_s"] - x["medeval_timings"]["total_s"]),
        "backend_generate_s": med(lambda x: x["baseline"]["generate_s"]),
        "baseline_wall_s": med(lambda x: x["baseline_wall_s"]),
        "baseline_import_s": med(lambda x: x["baseline"]["import_s"]),
        "baseline_load_s": med(lambda x: x["baseline"]["load_s"]),
    }
    # ratios of medians over the per-repeat ratios' median (both are reported)
    summary["e2e_over_backend"] = med(lambda x: x["medeval_wall_s"] / x["baseline"]["generate_s"])
    summary["e2e_over_baseline_script"] = med(lambda x: x["medeval_wall_s"] / x["baseline_wall_s"])
    summary["generate_phase_over_backend"] = med(lambda x: x["medeval_timings"]["generate_s"] / x["baseline"]["generate_s"])
    summary["harness_s_excl_import_load_generate"] = med(
        lambda x: x["medeval_timings"]["total_s"] - x["medeval_timings"]["load_model_s"] - x["baseline"]["generate_s"])
    summary["harness_over_backend"] = summary["harness_s_excl_import_load_generate"] / summary["backend_generate_s"]
    profile = None
    if not a.no_profile:
        out, prof = work / "profiled", work / "medeval.prof"
        wait_quiet(max_wait=a.quiet_wait)
        p = timed([PY, "-m", "cProfile", "-o", str(prof), *medeval_cmd(*medeval_args(out, a))], env,
                  log=work / "profiled.log")
        profile = {"wall_s": p["wall_s"], "load": [p["load_before"], p["load_after"]],
                   "cumulative_s": profile_breakdown(prof),
                   "timings": json.loads((out / "results.json").read_text())["timings"]}
    save(a.name, {"command": " ".join(medeval_cmd(*medeval_args(Path("OUT"), a))),
                      "baseline_command": f"{PY} benchmarks/baseline_generate.py --plan PLAN --model {model_dir} "
                                          f"--batch-size {a.batch_size}",
                      "settings": vars(a), "versions": versions(), "model_dir": model_dir,
                      "summary": summary, "runs": runs, "profile": profile, "workdir": str(work)})


if __name__ == "__main__":
    main()
