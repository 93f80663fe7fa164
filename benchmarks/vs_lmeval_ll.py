"""Loglikelihood scoring, medeval against lm-evaluation-harness on the same items (issue 11).

Both harnesses score the first --limit items of MedQA (test), MMLU anatomy (all 135) and PubMedQA
(PQA-L test) from the shared offline mirror with the Open Medical-LLM Leaderboard's protocol:
zero-shot, no chat template, the answer is the choice whose continuation is most probable. medeval
runs its bundled openllm_* tasks; lm-eval (its own venv, benchmarks/.venv-lmeval from setup_lmeval.sh)
runs benchmarks/lmeval_tasks/openllm_local.yaml, its own formats on the mirror's field names. Same
converted model directory, float32, CPU, one torch thread, same batch size.

Reports per task: item agreement of the chosen option (acc and acc_norm), identical prompts, the
largest difference in summed log-probability, and the wall time of each harness.
"""
from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

from _common import BENCH, LMEVAL_PY, ROOT, lmeval_workspace, load_str, medeval_cmd, save, timed, versions

TASKS = {"openllm_medqa": "openllm_medqa_local", "openllm_mmlu_anatomy": "openllm_mmlu_anatomy_local",
         "openllm_pubmedqa": "openllm_pubmedqa_local"}


def lmeval_cmd(model_dir: str, out: Path, a) -> list[str]:
    return [str(LMEVAL_PY), "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
            "--device", "cpu", "--tasks", ",".join(TASKS.values()), "--include_path", str(BENCH / "lmeval_tasks"),
            "--limit", str(a.limit), "--batch_size", str(a.batch_size), "--log_samples", "--output_path", str(out)]


def medeval_args(out: Path, a) -> list[str]:
    return ["run", "-t", ",".join(TASKS), "-l", str(a.limit), "--no-cache", "-q", "-o", str(out),
            "--data-dir", str(ROOT.parent / "shared" / "data"), "--batch-size", str(a.batch_size)]


def compare(me_dir: Path, lm_dir: Path) -> dict:
    out = {}
    for ours, theirs in TASKS.items():
        me = [json.loads(line) for line in (me_dir / f"samples_{ours}.jsonl").read_text().splitlines()]
        lm = {}
        for line in Path(glob.glob(str(lm_dir / "*" / f"samples_{theirs}_*.jsonl"))[0]).read_text().splitlines():
            s = json.loads(line)
            lm[s["doc_id"]] = s
        rows, max_diff = [], 0.0
        for k, m in enumerate(me):
            s = lm[k]
            lls = [float(r[0]) for r in s["filtered_resps"]]
            lens = [len(c) for c in m["loglikelihood"]["choices"]]
            pick = max(range(len(lls)), key=lambda j: (lls[j], -j))
            pick_norm = max(range(len(lls)), key=lambda j: (lls[j] / lens[j], -j))
            choices = m["loglikelihood"]["choices"]
            diff = max(abs(a - b) for a, b in zip(lls, m["loglikelihood"]["logprobs"]))
            max_diff = max(max_diff, diff)
            rows.append({"id": m["id"], "same_prompt": m["prompt"] == s["arguments"]["gen_args_0"]["arg_0"],
                         "acc_agree": choices[pick] == m["loglikelihood"]["pred"],
                         "acc_norm_agree": choices[pick_norm] == m["loglikelihood_norm"]["pred"],
                         "lmeval_acc": s.get("acc"), "medeval_correct": m["loglikelihood"]["correct"],
                         "max_abs_logprob_diff": diff})
        n = len(rows)
        out[ours] = {"n": n, "same_prompt": sum(r["same_prompt"] for r in rows),
                     "acc_agree": sum(r["acc_agree"] for r in rows),
                     "acc_norm_agree": sum(r["acc_norm_agree"] for r in rows),
                     "correct_agree": sum(bool(r["lmeval_acc"]) == r["medeval_correct"] for r in rows),
                     "max_abs_logprob_diff": max_diff,
                     "disagreements": [r for r in rows if not (r["acc_agree"] and r["acc_norm_agree"]
                                                               and r["same_prompt"])]}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args()
    model_dir, env, work = lmeval_workspace("medeval-bench-ll-")
    runs = {}
    for who in ("lmeval", "medeval"):
        cmd = medeval_cmd(*medeval_args(work / who, a)) if who == "medeval" else lmeval_cmd(model_dir, work / who, a)
        res = timed(cmd, env, cwd=ROOT, log=work / f"{who}.log")
        res.pop("stdout")
        runs[who] = res
        print(f"{who}: {res['wall_s']:.1f} s (load {res['load_before']} -> {res['load_after']})", flush=True)
    agreement = compare(work / "medeval", work / "lmeval")
    for task, r in agreement.items():
        print(f"{task}: {r['acc_agree']}/{r['n']} acc agree, {r['acc_norm_agree']}/{r['n']} acc_norm agree, "
              f"{r['same_prompt']}/{r['n']} same prompt, max |dlogprob| {r['max_abs_logprob_diff']:.2e}")
    save("vs_lmeval_ll", {"settings": vars(a), "model_dir": model_dir, "load_at_end": load_str(),
                          "commands": {"medeval": " ".join(medeval_cmd(*medeval_args(Path("OUT"), a))),
                                       "lmeval": " ".join(lmeval_cmd(model_dir, Path("OUT"), a))},
                          "versions": {"medeval_venv": versions(), "lmeval_venv": versions(str(LMEVAL_PY))},
                          "wall_s": {k: v["wall_s"] for k, v in runs.items()},
                          "ratio_medeval_over_lmeval": runs["medeval"]["wall_s"] / runs["lmeval"]["wall_s"],
                          "agreement": agreement, "runs": runs, "workdir": str(work)})


if __name__ == "__main__":
    main()
