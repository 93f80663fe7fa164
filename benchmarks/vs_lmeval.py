"""Item 2: medeval versus lm-evaluation-harness on the same MedQA work.

Both run greedy generation on the first N MedQA test rows from the shared mirror, with the
same prompt text, chat template, batch size, 32 new tokens and the blank-line stop, on the
same converted model directory, one torch thread each. lm-eval runs from its own venv
(benchmarks/.venv-lmeval, made by setup_lmeval.sh) with the task in benchmarks/lmeval_tasks/.
Reports wall-time ratio and per-item agreement of outputs and extracted letters.
"""
from __future__ import annotations

import argparse
import glob
import json
import re
import shutil
from pathlib import Path

from _common import BENCH, LMEVAL_PY, DATA, ROOT, lmeval_workspace, load_str, medeval_cmd, median, save, timed, versions, wait_quiet



def lmeval_cmd(model_dir: str, out: Path, a) -> list[str]:
    return [str(LMEVAL_PY), "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir}",
            "--device", "cpu", "--tasks", "medqa_medeval", "--include_path", str(BENCH / "lmeval_tasks"),
            "--limit", str(a.limit), "--batch_size", str(a.batch_size), "--apply_chat_template",
            "--log_samples", "--output_path", str(out)]


def medeval_args(out: Path, a) -> list[str]:
    return ["run", "-t", "medqa", "-l", str(a.limit), "--no-cache", "-q", "-o", str(out), "--data-dir", str(DATA),
            "--batch-size", str(a.batch_size)]


def lmeval_phases(log: Path) -> dict:
    """Seconds (1-s resolution) from lm-eval's own log timestamps: generation and before it."""
    from datetime import datetime

    stamps = {}
    for line in log.read_text().splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\d:\d\d:\d\d:\d\d) INFO .*?(Running generate_until requests|Saving results aggregated)", line)
        if m:
            stamps.setdefault(m.group(2), datetime.strptime(m.group(1), "%Y-%m-%d:%H:%M:%S"))
    if len(stamps) < 2:
        return {}
    return {"generate_phase_s": (stamps["Saving results aggregated"] - stamps["Running generate_until requests"]).total_seconds()}


def compare(me_dir: Path, lm_dir: Path) -> dict:
    from medeval.tasks import answer_types
    from medeval.tasks.spec import Registry

    task = Registry([]).resolve(["medqa"])[0]
    me = [json.loads(l) for l in (me_dir / "samples_medqa.jsonl").read_text().splitlines()]
    rows = [json.loads(l) for l in (DATA / "medqa" / "test.jsonl").read_text().splitlines()[:len(me)]]
    lm = {}
    for line in Path(glob.glob(str(lm_dir / "*" / "samples_medqa_medeval_*.jsonl"))[0]).read_text().splitlines():
        s = json.loads(line)
        d = lm.setdefault(s["doc_id"], {"raw": s["resps"][0][0], "prompt": s["arguments"]["gen_args_0"]["arg_0"]})
        d[s["filter"]] = s["filtered_resps"][0]
    items, n = [], len(me)
    for k, (m, row) in enumerate(zip(me, rows)):
        l = lm[k]
        ours_on_theirs = answer_types.extract(task, l["raw"], row, answer_types.read(task, row)[1])
        items.append({"id": m["id"], "gold": m["gold"], "same_prompt": m["prompt"] == l["prompt"],
                      "medeval_output": m["greedy"]["outputs"][0], "lmeval_output": l["raw"],
                      "medeval_pred": m["greedy"]["pred"], "lmeval_raw_medeval_extractor": ours_on_theirs,
                      "lmeval_strict": l.get("strict-match"), "lmeval_flexible": l.get("flexible-extract")})
    agree = lambda f: sum(f(x) for x in items)  # noqa: E731
    acc = lambda key: sum(x[key] == x["gold"] for x in items) / n  # noqa: E731
    return {
        "n": n,
        "same_prompt": agree(lambda x: x["same_prompt"]),
        "same_output_text": agree(lambda x: x["medeval_output"] == x["lmeval_output"]),
        "same_letter_medeval_extractor": agree(lambda x: x["medeval_pred"] == x["lmeval_raw_medeval_extractor"]),
        "same_letter_lmeval_strict": agree(lambda x: x["medeval_pred"] == x["lmeval_strict"]),
        "same_letter_lmeval_flexible": agree(lambda x: x["medeval_pred"] == x["lmeval_flexible"]),
        "accuracy": {"medeval": acc("medeval_pred"), "lmeval_raw+medeval_extractor": acc("lmeval_raw_medeval_extractor"),
                     "lmeval_strict": acc("lmeval_strict"), "lmeval_flexible": acc("lmeval_flexible")},
        "differences": [x for x in items if x["medeval_output"] != x["lmeval_output"]
                        or len({x["medeval_pred"], x["lmeval_strict"], x["lmeval_flexible"]}) > 1],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quiet-wait", type=float, default=0)
    a = ap.parse_args()
    model_dir, env, work = lmeval_workspace("medeval-bench-lmeval-")
    runs, cmp = [], None
    for r in range(a.repeats):
        me_out, lm_out = work / f"medeval{r}", work / f"lmeval{r}"
        order = ("medeval", "lmeval") if r % 2 == 0 else ("lmeval", "medeval")  # alternate: drift hits both
        t = {}
        for who in order:
            q = wait_quiet(max_wait=a.quiet_wait)
            cmd = medeval_cmd(*medeval_args(me_out, a)) if who == "medeval" else lmeval_cmd(model_dir, lm_out, a)
            res = timed(cmd, env, cwd=ROOT, log=work / f"{who}{r}.log")
            res.pop("stdout")
            t[who] = {**res, "load_wait": q}
        lm_res = json.loads(Path(glob.glob(str(lm_out / "*" / "results_*.json"))[0]).read_text())
        me_res = json.loads((me_out / "results.json").read_text())
        t["lmeval"]["total_evaluation_time_s"] = float(lm_res.get("total_evaluation_time_seconds", "nan"))
        t["lmeval"].update(lmeval_phases(work / f"lmeval{r}.log"))
        t["medeval"]["timings"] = me_res["timings"]
        t["ratio_medeval_over_lmeval"] = t["medeval"]["wall_s"] / t["lmeval"]["wall_s"]
        runs.append(t)
        if cmp is None:
            cmp = compare(me_out, lm_out)
            shutil.copytree(lm_out, work / "lmeval_samples_kept", dirs_exist_ok=True)
        print(f"rep {r}: medeval {t['medeval']['wall_s']:.1f}s, lm-eval {t['lmeval']['wall_s']:.1f}s, "
              f"load {load_str()}", flush=True)
    summary = {"medeval_wall_s": median([x["medeval"]["wall_s"] for x in runs]),
               "lmeval_wall_s": median([x["lmeval"]["wall_s"] for x in runs]),
               "ratio_medeval_over_lmeval": median([x["ratio_medeval_over_lmeval"] for x in runs]),
               "medeval_generate_s": median([x["medeval"]["timings"]["generate_s"] for x in runs]),
               "lmeval_generate_phase_s": median([x["lmeval"].get("generate_phase_s") for x in runs
                                                  if x["lmeval"].get("generate_phase_s") is not None])}
    save("vs_lmeval", {"settings": vars(a), "model_dir": model_dir,
                       "commands": {"medeval": " ".join(medeval_cmd(*medeval_args(Path("OUT"), a))),
                                    "lmeval": " ".join(lmeval_cmd(model_dir, Path("OUT"), a))},
                       "versions": {"medeval_venv": versions(), "lmeval_venv": versions(str(LMEVAL_PY))},
                       "summary": summary, "agreement": cmp, "runs": runs, "workdir": str(work)})


if __name__ == "__main__":
    main()
