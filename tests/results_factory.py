"""Write result directories (results.json + samples_<task>.jsonl, docs/results.md) for tests.

Gold answers are the real MedQA test answers (`answer_idx`) with the row index
as id, read from ../shared/data; predictions are planted by the test, so the
number of right and wrong items is known exactly. Metric blocks are computed
with the real `medeval.stats.bootstrap_ci`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medeval import stats as S

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LETTERS = "ABCD"


def medqa_golds(n: int) -> list[str]:
    """The first n real MedQA test answers (letters)."""
    path = DATA / "medqa" / "test.jsonl"
    with path.open(encoding="utf-8") as f:
        golds = [json.loads(line)["answer_idx"] for _, line in zip(range(n), f)]
    assert len(golds) == n, f"{path} has fewer than {n} rows"
    return golds


def wrong_letter(gold: str, k: int = 1) -> str:
    return LETTERS[(LETTERS.index(gold) + k) % len(LETTERS)]


def preds_from_mask(golds: list, correct: np.ndarray) -> list:
    """Gold where `correct`, a different option letter elsewhere."""
    return [g if c else wrong_letter(g) for g, c in zip(golds, correct)]


def mask_with_accuracy(n: int, acc: float, seed: int = 0) -> np.ndarray:
    """A boolean mask with exactly round(acc * n) True values."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[: round(acc * n)]] = True
    return mask


@dataclass
class TaskSpec:
    golds: list
    preds: list                       # greedy predictions
    sc_preds: list | None = None      # self-consistency votes, if the run had --self-consistency
    ids: list | None = None           # default: "0", "1", ... (row index)
    version: int = 1
    prompt_hash: str = "sha256-prompt-v1"
    primary_metric: str = "accuracy"
    metrics: tuple = ("accuracy",)
    metric_options: dict | None = None
    n_total: int | None = None
    display_name: str | None = None
    extra: dict = field(default_factory=dict)


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def identity_block(model_id: str, revision: str | None, weights: str) -> dict:
    """`model.identity` and its hash as `medeval run` writes them; `weights` stands for the checkpoint's
    fingerprint (two runs with the same one are the same model)."""
    from medeval.backends.identity import Identity

    ident = Identity(backend="hf", model=model_id, revision=revision, weights=weights)
    return {"identity": ident.as_dict(), "identity_hash": ident.key()}


def write_run(out: Path, model_id: str, tasks: dict[str, TaskSpec], revision: str | None = "main",
              schema_version=1, created: str = "2026-01-01T00:00:00+00:00", identity_hash: str | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    task_blocks = {}
    for name, spec in tasks.items():
        ids = spec.ids or [str(i) for i in range(len(spec.golds))]
        modes = {"greedy": spec.preds} | ({"sc": spec.sc_preds} if spec.sc_preds is not None else {})
        opts = spec.metric_options or {}
        metric_blocks = {m: {k: S.bootstrap_ci(k, p, spec.golds, opts.get(k, opts), n_resamples=100)
                             for k in spec.metrics} for m, p in modes.items()}
        rows = []
        for i, gold in enumerate(spec.golds):
            row = {"id": ids[i], "prompt": f"question {ids[i]}", "gold": gold, "meta": {}}
            for m, p in modes.items():
                row[m] = {"outputs": [f"The answer is {p[i]}"], "extracted": [p[i]], "pred": p[i],
                          "correct": p[i] == gold}
            rows.append(row)
        (out / f"samples_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        task_blocks[name] = {
            "task": name, "display_name": spec.display_name or name, "version": spec.version,
            "task_hash": _sha([name, spec.version]), "prompt_hash": spec.prompt_hash,
            "data_hash": _sha([ids, spec.golds]), "item_ids_hash": _sha(sorted(ids)),
            "dataset": {"path": "test", "split": "test", "source": "factory"},
            "n": len(ids), "n_total": spec.n_total or len(ids), "answer_type": "choice",
            "primary_metric": spec.primary_metric, "modes": list(modes), "metrics": metric_blocks,
            "samples_file": f"samples_{name}.jsonl", **({"metric_options": spec.metric_options}
                                                         if spec.metric_options else {}), **spec.extra}
    results = {"schema_version": schema_version, "medeval_version": "0.1.0", "created": created,
               "git_revision": None, "command": ["medeval", "run"],
               "model": {"id": model_id, "revision": revision, "backend": "hf", "args": {},
                         **(identity_block(model_id, revision, identity_hash) if identity_hash else {})},
               "decoding": {"greedy": {"temperature": 0.0, "top_p": 1.0, "max_tokens": None, "seed": 1234}},
               "seed": 1234, "packages": {}, "cache": {}, "timings": {}, "tasks": task_blocks, "groups": {}}
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return out


# ---------------------------------------------------------------- synthetic runs with full item detail
SYNTHETIC_FILLER = ("SYNTHETIC item written by tests/results_factory.py, not dataset text. A patient presents "
                    "with findings that this generator makes up. ")


def synthetic_run(out: Path, n: int, k: int = 0, seed: int = 0, evil: dict | None = None,
                  prompt_chars: int = 1200, model_id: str = "synthetic/model", task: str = "synthetic_mcq") -> dict:
    """A SYNTHETIC run of n multiple-choice items with every sample field `medeval run` writes
    (prompt, outputs, extracted, pred, votes, finish reasons, tokens, strata), for pages and benchmarks.

    About 60% right, 25% wrong, 15% invalid; every invalid item and 5% of the others were stopped by
    the token limit. `evil` maps item index -> an output text to plant. Returns the expected
    counts and ids per greedy status."""
    rng = np.random.default_rng(seed)
    golds = [LETTERS[i] for i in rng.integers(0, 4, n)]
    draw = rng.random(n)
    status = np.where(draw < 0.6, "correct", np.where(draw < 0.85, "wrong", "invalid"))
    truncated = (status == "invalid") | (rng.random(n) < 0.05)
    preds = [g if s == "correct" else (wrong_letter(g) if s == "wrong" else None) for g, s in zip(golds, status)]
    sc = [p if p is not None else wrong_letter(g, 2) for p, g in zip(preds, golds)] if k else None
    ids = [f"syn-{i:05d}" for i in range(n)]
    write_run(out, model_id, {task: TaskSpec(golds, preds, sc_preds=sc, ids=ids, metrics=("accuracy",))})
    max_tokens = 64
    rows = []
    for i, line in enumerate((out / f"samples_{task}.jsonl").read_text(encoding="utf-8").splitlines()):
        row = json.loads(line)
        body = (SYNTHETIC_FILLER * (1 + prompt_chars // len(SYNTHETIC_FILLER)))[:prompt_chars]
        row["prompt"] = f"<|im_start|>user\nQuestion {i}: {body}\nA. one\nB. two\nC. three\nD. four<|im_end|>\n"
        row["meta"] = {"meta_info": "step1" if i % 3 else "step2&3"}
        fin = "length" if truncated[i] else "stop"
        text = (evil or {}).get(i) or (f"The answer is {preds[i]}" if preds[i] else "Let me think about this")
        used = max_tokens if truncated[i] else 6
        row["greedy"].update(outputs=[text], extracted=[preds[i]], finish_reasons=[fin],
                             tokens={"prompt": 300 + i % 50, "completion": used, "per_sample": [used]})
        if k:
            outs = [f"The answer is {sc[i]}"] * k
            row["sc"].update(outputs=outs, extracted=[sc[i]] * k, votes={sc[i]: k}, finish_reasons=["stop"] * k,
                             tokens={"prompt": 300 + i % 50, "completion": 6 * k, "per_sample": [6] * k})
        rows.append(row)
    (out / f"samples_{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    t = results["tasks"][task]
    n_invalid, n_trunc = int((status == "invalid").sum()), int(truncated.sum())
    t["invalid"] = {"greedy": {"count": n_invalid, "rate": n_invalid / n, "samples": n_invalid,
                               "truncated": n_invalid, "samples_truncated": n_invalid}}
    t["usage"] = {"greedy": {"samples": n, "requests": n, "truncated": n_trunc, "truncation_rate": n_trunc / n,
                             "finish_reasons": {"length": n_trunc, "stop": n - n_trunc}}}
    if k:
        t["invalid"]["sc"] = {"count": 0, "rate": 0.0, "samples": 0, "truncated": 0, "samples_truncated": 0}
        t["usage"]["sc"] = {"samples": n * k, "requests": n, "truncated": 0, "truncation_rate": 0.0,
                            "finish_reasons": {"stop": n * k}}
    t["strata"] = {"meta_info": {}}
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    by = {s: [ids[i] for i in range(n) if status[i] == s] for s in ("correct", "wrong", "invalid")}
    return {"task": task, "ids": ids, "by_status": by, "truncated": [ids[i] for i in range(n) if truncated[i]],
            "step1": [ids[i] for i in range(n) if i % 3]}
