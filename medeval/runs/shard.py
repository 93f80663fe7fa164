"""`medeval run --shard I/N`: which items a shard evaluates, and what it records for `medeval merge`.

Partition: a task's item ids are sorted (as strings); the item of rank r goes to shard r mod N.
It depends only on the ids and N (not on the machine, the order of the data file or the model),
and it is balanced: shard sizes differ by at most one item per task.

A shard writes, beside its results.json and samples files, `shard_<task>.jsonl`: per item and
mode the finish reasons and the backend's info (what scoring reads that the samples lack), and
a `shard` block in results.json: (I, N), the run's configuration, and each full task's item-id
and data hashes, so that `merge` can check that the shards belong together and cover every item.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import MedevalError
from ..results import SamplesWriter, safe_child

PARTITION = "round-robin over sorted item ids"
# The configuration fields that define an evaluation: shards of one run agree on all of them.
# (Paths, caches and performance options may differ between machines; the model's identity,
# the task files and the data are compared through their hashes.)
RUN_FIELDS = ("tasks", "model", "limit", "sample_seed", "self_consistency", "temperature", "top_p", "seed", "max_tokens",
              "prompt_variant", "system_prompt", "adversarial", "judge", "judge_base_url", "bertscore_model",
              "extract_judge", "extract_judge_base_url", "extract_fallback", "extract_audit",
              "permute")


def parse(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N), with 0 <= I < N."""
    i, sep, n = text.partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index = count = -1
    if not sep or count < 1 or not 0 <= index < count:
        raise MedevalError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. --shard 0/4 for the first of four")
    return index, count


def assign(ids: list[str], count: int) -> dict[str, int]:
    """item id -> shard index."""
    return {item_id: rank % count for rank, item_id in enumerate(sorted(ids))}


def take(p, index: int, count: int):
    """The part of a prepared task (prepare.Prepared) that shard `index` of `count` evaluates."""
    if len(p.ids) < count:
        raise MedevalError(f"--shard {index}/{count}: task {p.task.name!r} has only {len(p.ids)} items; "
                           f"use at most {len(p.ids)} shards")
    owner = assign(p.ids, count)
    return p.select({item_id for item_id, shard in owner.items() if shard == index})


def config_dict(cfg) -> dict:
    """The run's configuration as recorded (everything but the output directory, argv and the shard)."""
    from ..backends.openai_backend import safe_url

    d = dataclasses.asdict(cfg)
    for k in ("output_dir", "argv", "shard"):
        d.pop(k, None)
    if d["backend_args"].get("base_url"):      # URLs may carry credentials: never written to results
        d["backend_args"]["base_url"] = safe_url(d["backend_args"]["base_url"])
    for k in ("judge_base_url", "extract_judge_base_url"):
        if d.get(k):
            d[k] = safe_url(d[k])
    return d


def record(cfg, full: list, parts: list, reqs: dict, outputs: dict, out_dir: Path) -> dict:
    """Write each task's shard_<task>.jsonl and return results.json's `shard` block."""
    tasks = {}
    for p, part in zip(full, parts):
        writer = SamplesWriter(safe_child(out_dir, f"shard_{p.task.name}.jsonl"))
        modes = sorted({mode for (_, mode) in reqs[p.task.name]})
        for item_id in part.ids:
            row = {"id": item_id}
            for mode in modes:
                got = outputs[reqs[p.task.name][(item_id, mode)].id]
                row[mode] = {"finish": got.get("finish"), "info": got.get("info") or {}}
            writer.write(row)
        writer.close()
        tasks[p.task.name] = {"n": len(p.ids), "item_ids_hash": p.ids_hash, "data_hash": p.data_hash,
                              "shard_n": len(part.ids), "file": writer.path.name}
    index, count = cfg.shard
    return {"index": index, "count": count, "partition": PARTITION, "config": config_dict(cfg), "tasks": tasks}


def read_generation(path: Path) -> dict[str, dict]:
    """A shard_<task>.jsonl file: item id -> {mode: {"finish": [...], "info": {...}}}."""
    from ..tasks.data import iter_jsonl

    out = {}
    for n, row in iter_jsonl(path):
        if "id" not in row:
            raise MedevalError(f"{path}: line {n}: field 'id' is missing; re-run the shard to rewrite the file")
        out[str(row["id"])] = row
    return out

