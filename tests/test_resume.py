"""Nothing lost: SIGKILL mid-run, re-run, compare with an uninterrupted run; two runs on one cache."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

ARGS = ["--tasks", "medqa,pubmedqa", "--limit", "3", "-k", "2", "--batch-size", "2", "--max-tokens", "12", "--quiet"]


def medeval(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "medeval.cli", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **kw.pop("env", {})}, **kw)


def rows(cache_dir) -> int:
    db = cache_dir / "generations.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as c:
            return c.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def samples(out_dir):
    keep = ("id", "prompt", "gold", "greedy", "sc")
    return {f.name: [{k: r[k] for k in keep} for r in map(json.loads, f.read_text().splitlines())]
            for f in sorted(out_dir.glob("samples_*.jsonl"))}


def test_sigkill_then_rerun_recomputes_nothing_and_matches_an_uninterrupted_run(tmp_path, data_dir):
    total = 3 * 2 * (1 + 2)                     # items x tasks x (greedy + 2 samples)
    ref = medeval(*ARGS, "--data-dir", str(data_dir), "-o", str(tmp_path / "ref"), "--cache-dir", str(tmp_path / "c0"))
    assert ref.wait(timeout=900) == 0, ref.stderr.read()

    cache = tmp_path / "c1"
    kills = 0
    for target in (2, 8):                       # kill once in the greedy batches, once among the SC samples
        p = medeval(*ARGS, "--data-dir", str(data_dir), "-o", str(tmp_path / "run"), "--cache-dir", str(cache))
        deadline = time.time() + 600
        while rows(cache) < target and p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
    assert kills >= 1
    done = rows(cache)
    assert 0 < done < total
    assert not (tmp_path / "run" / "results.json").exists()  # a killed run never leaves a partial results file

    final = medeval(*ARGS, "--data-dir", str(data_dir), "-o", str(tmp_path / "run"), "--cache-dir", str(cache))
    assert final.wait(timeout=900) == 0, final.stderr.read()
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["cache"]["hits"] == done and res["cache"]["misses"] == total - done  # nothing recomputed
    assert rows(cache) == total
    assert samples(tmp_path / "run") == samples(tmp_path / "ref")
    ref_res = json.loads((tmp_path / "ref" / "results.json").read_text())
    for t in res["tasks"]:
        assert res["tasks"][t]["metrics"] == ref_res["tasks"][t]["metrics"]


def test_two_runs_share_one_cache_without_corrupting_it(tmp_path, data_dir):
    cache = tmp_path / "shared-cache"
    common = ["--limit", "3", "--max-tokens", "8", "--quiet", "--data-dir", str(data_dir), "--cache-dir", str(cache)]
    a = medeval("--tasks", "medqa,mmlu_anatomy", *common, "-o", str(tmp_path / "a"))
    b = medeval("--tasks", "medqa,medmcqa", *common, "-o", str(tmp_path / "b"))
    assert a.wait(timeout=900) == 0, a.stderr.read()
    assert b.wait(timeout=900) == 0, b.stderr.read()
    with sqlite3.connect(cache / "generations.sqlite") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 9   # medqa's 3 prompts stored once
    ra = json.loads((tmp_path / "a" / "results.json").read_text())
    rb = json.loads((tmp_path / "b" / "results.json").read_text())
    assert ra["cache"]["hits"] + ra["cache"]["misses"] == 6 and rb["cache"]["hits"] + rb["cache"]["misses"] == 6
    assert ra["tasks"]["medqa"]["metrics"] == rb["tasks"]["medqa"]["metrics"]


def test_growing_k_gives_the_samples_of_a_fresh_run(tmp_path, data_dir, hf_backend):
    """-k 3 then -k 5 on one cache: the 2 new samples are those a fresh -k 5 makes (seed, prompt, index)."""
    from medeval.runs.runner import RunConfig, run

    def go(k, cache, out):
        cfg = RunConfig(tasks=["pubmedqa"], limit=2, max_tokens=8, data_dir=str(data_dir), self_consistency=k,
                        cache_dir=str(tmp_path / cache), output_dir=str(tmp_path / out))
        res = run(cfg, backend=hf_backend, progress=False)
        lines = (tmp_path / out / "samples_pubmedqa.jsonl").read_text().splitlines()
        return res, [json.loads(line)["sc"]["outputs"] for line in lines]

    go(3, "grown", "k3")
    grown, grown_outputs = go(5, "grown", "k5")
    fresh, fresh_outputs = go(5, "fresh", "fresh")
    assert (grown["cache"]["hits"], grown["cache"]["misses"]) == (2 * (1 + 3), 2 * 2)
    assert grown_outputs == fresh_outputs and all(len(o) == 5 for o in fresh_outputs)
    assert len({o for outs in fresh_outputs for o in outs}) > 2
