"""`medeval merge`: shard directories -> the results.json and samples files of one unsharded run.

Checks first, each failure a one-line error naming what differs: every directory is a shard
(`medeval run --shard I/N`), all of one N, each index exactly once, and all of the same run
(configuration, medeval version, model identity, task versions, task/prompt hashes, full data
and item-id hashes). Then, per task, it prepares the full task as the run did (same data, same
item order), takes each item's outputs from the shard that owns it, and scores them with
`scoring.score_items`: metrics, intervals, strata, votes and the samples file are computed from
the samples, exactly as an unsharded run computes them. Shard metrics are never averaged.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ..errors import MedevalError
from ..scoring import modes as M
from ..metrics.base import RunOptions
from ..results import ResultsError, SampleRecord, read_results
from ..scoring.inputs import ItemOutputs, ScoringInput
from .shard import RUN_FIELDS, read_generation

TASK_FIELDS = ("version", "task_hash", "prompt_hash", "template", "modes")


def load_shards(dirs: list[Path]) -> list[tuple[Path, dict]]:
    shards = []
    for d in dirs:
        run = read_results(d)
        if not isinstance(run.data.get("shard"), dict):
            raise ResultsError(f"{run.file}: not a shard (no 'shard' block); merge takes the output directories of "
                               "`medeval run --shard I/N`")
        shards.append((run.dir, run.data))
    return shards


def check(shards: list[tuple[Path, dict]]) -> None:
    """Refuse shards that are not the N parts of one run."""
    (d0, r0), rest = shards[0], shards[1:]
    counts = sorted({r["shard"]["count"] for _, r in shards})
    if len(counts) > 1:
        raise MedevalError("shards of different N: " + ", ".join(
            f"{d} is {r['shard']['index']}/{r['shard']['count']}" for d, r in shards))
    for d, r in rest:
        what = _difference(r0, r)
        if what:
            raise MedevalError(f"{d} is not a shard of the same run as {d0}: {what}")
    seen: dict[int, Path] = {}
    for d, r in shards:
        i = r["shard"]["index"]
        if i in seen:
            raise MedevalError(f"shard {i}/{counts[0]} given twice: {seen[i]} and {d}")
        seen[i] = d
    missing = sorted(set(range(counts[0])) - set(seen))
    if missing:
        raise MedevalError(f"missing shard(s) {', '.join(f'{i}/{counts[0]}' for i in missing)} "
                           f"(have {', '.join(str(i) for i in sorted(seen))}); run them with --shard I/{counts[0]}")


def _difference(a: dict, b: dict) -> str | None:
    """What makes two shards' runs differ, in a few words; None when they are of one run."""
    ca, cb = a["shard"]["config"], b["shard"]["config"]
    for k in RUN_FIELDS:
        if ca.get(k) != cb.get(k):
            return f"configuration field {k!r} differs ({ca.get(k)!r} vs {cb.get(k)!r})"
    if a["medeval_version"] != b["medeval_version"]:
        return f"medeval version differs ({a['medeval_version']} vs {b['medeval_version']})"
    ha, hb = a["model"].get("identity_hash"), b["model"].get("identity_hash")
    if ha != hb:
        return f"model identity differs (identity_hash {str(ha)[:12]} vs {str(hb)[:12]})"
    if set(a["tasks"]) != set(b["tasks"]):
        return f"tasks differ ({', '.join(sorted(a['tasks']))} vs {', '.join(sorted(b['tasks']))})"
    for name in a["tasks"]:
        ta, tb = a["tasks"][name], b["tasks"][name]
        for k in TASK_FIELDS:
            if ta.get(k) != tb.get(k):
                return f"task {name}: {k} differs ({ta.get(k)!r} vs {tb.get(k)!r})"
        sa, sb = a["shard"]["tasks"][name], b["shard"]["tasks"][name]
        for k, label in (("data_hash", "data hash"), ("item_ids_hash", "item-id hash")):
            if sa[k] != sb[k]:
                return f"task {name}: the full task's {label} differs ({sa[k][:12]} vs {sb[k][:12]})"
    return None


def merge(dirs: list[Path], out_dir: Path, data_dir: str | None = None, task_dirs: list[str] | None = None,
          argv: list[str] | None = None) -> dict:
    """Merge shard directories into `out_dir`; returns the merged results."""
    from .config import RunConfig
    from .prepare import prepare
    from .runner import extraction_block, modes_for
    from .tail import evaluate
    from ..graders.self_answer import SelfCheck, applies
    from ..graders.registry import Graders
    from ..tasks.spec import Registry
    from .permuted import annotate   # --permute (issue 26)

    t0 = time.time()
    if not dirs:
        raise MedevalError("merge: give the shard directories, e.g. medeval merge runs/s0 runs/s1 -o runs/merged")
    shards = load_shards(dirs)
    out_dir = Path(out_dir)
    for d, _ in shards:
        if d.resolve() == out_dir.resolve():
            raise MedevalError(f"-o {out_dir}: is one of the shard directories; merge into a new directory")
    check(shards)
    r0 = shards[0][1]
    config = dict(r0["shard"]["config"])
    if data_dir is not None:
        config["data_dir"] = str(data_dir)
    if task_dirs:
        config["task_dirs"] = [str(t) for t in task_dirs]
    cfg = RunConfig(**{k: v for k, v in config.items() if k in {f.name for f in dataclasses.fields(RunConfig)}})
    cfg.output_dir = str(out_dir)
    registry = Registry([Path(d) for d in cfg.task_dirs], strict=False)
    tasks = registry.resolve(cfg.tasks)
    graders = Graders(cfg, tasks)   # the shards' judges, the extraction judge included (verdicts from the cache)
    self_check = SelfCheck.of(cfg)   # --extract-fallback / --extract-audit: the shards' recorded self-answers
    prepared, inputs, perms = [], {}, {}
    for task in tasks:
        p = prepare(task, cfg)
        _check_full_task(p, r0)
        prepared.append(p)
        perm = r0["tasks"][task.name].get("permutation") or {}   # --permute (issue 26): as the shards did it
        perms[task.name] = perm
        inputs[task.name] = _collect(p, modes_for(task, cfg), shards, self_check is not None and applies(task),
                                     permuted=perm.get("applied") is True)
    ordered = sorted(shards, key=lambda s: s[1]["shard"]["index"])

    def fields(task_results: dict) -> dict:
        return dict(
            **{k: r0[k] for k in ("schema_version", "medeval_version", "git_revision", "packages")},
            command=argv or [], model=r0["model"], decoding=r0["decoding"], seed=r0["seed"],
            cache={"hits": sum(r["cache"]["hits"] for _, r in shards),
                   "misses": sum(r["cache"]["misses"] for _, r in shards), "dir": r0["cache"].get("dir")},
            timings={"shards_total_s": [r["timings"].get("total_s") for _, r in ordered], "merge_s": time.time() - t0},
            merged={"count": len(shards), "partition": r0["shard"]["partition"],
                    "shards": [str(d) for d, _ in ordered]},
            extraction=extraction_block(cfg))

    def not_applied(p, block: dict) -> None:   # --permute (issue 26): why a task ran unpermuted, as the shards said
        perm = perms[p.task.name]
        annotate(block, cfg, p.task, perm.get("reason") if perm.get("applied") is False else None)

    return evaluate(prepared, inputs, out_dir, graders, fields,
                    run_options=RunOptions(bertscore_model=cfg.bertscore_model),   # run-wide metric choices
                    self_check=self_check, k=cfg.self_consistency, registry=registry, tasks=tasks,
                    task_extra=not_applied)


def _check_full_task(p, r0: dict) -> None:
    """The task prepared here must be the one the shards split: same spec, prompt, data and items."""
    name, rec, want = p.task.name, r0["tasks"][p.task.name], r0["shard"]["tasks"][p.task.name]
    pairs = (("task_hash", p.task.spec_hash(), rec["task_hash"], "the task file"),
             ("prompt_hash", p.renderer.prompt_hash(), rec["prompt_hash"], "the prompt template"),
             ("data_hash", p.data_hash, want["data_hash"], "the data"),
             ("item_ids_hash", p.ids_hash, want["item_ids_hash"], "the item ids"))
    for field, here, there, what in pairs:
        if here != there:
            raise MedevalError(f"task {name}: {what} here differ(s) from the shards' ({field} {here[:12]} vs "
                               f"{there[:12]}); merge with the same task files and --data-dir as the shards")


def _collect(p, modes: list[str], shards, self_answers: bool = False, permuted: bool = False) -> ScoringInput:
    """The task's outputs as scoring.score_items takes them, from the shards' samples and shard files
    (with `self_answers`: the self-answers each shard recorded under --extract-fallback / --extract-audit)."""
    from ..tasks.data import iter_jsonl

    owner: dict[str, Path] = {}
    outputs: dict = {m: {} for m in modes}
    wanted = set(p.ids)
    for d, r in shards:
        t = r["tasks"][p.task.name]
        samples_path = d / t["samples_file"]
        gen_path = d / r["shard"]["tasks"][p.task.name]["file"]
        for path in (samples_path, gen_path):
            if not path.is_file():
                raise MedevalError(f"{path}: missing; the shard did not finish, re-run it")
        gen = read_generation(gen_path)
        for n, row in iter_jsonl(samples_path):
            s = SampleRecord.from_json(row, f"{samples_path}: line {n}")
            item_id = s.key
            if item_id not in wanted:
                raise MedevalError(f"{samples_path}: line {n}: item {item_id!r} is not among the task's items")
            if item_id in owner:
                raise MedevalError(f"task {p.task.name}: item {item_id!r} is in two shards ({owner[item_id]} and {d})")
            owner[item_id] = d
            if item_id not in gen:
                raise MedevalError(f"{gen_path}: item {item_id!r} is missing; re-run the shard")
            for m in modes:
                if m not in s.modes or m not in gen[item_id]:
                    raise MedevalError(f"{samples_path}: line {n}: mode {m!r} is missing; re-run the shard")
                got = ItemOutputs(prompt=s.prompt, finish=gen[item_id][m]["finish"],
                                  info=gen[item_id][m]["info"], prefill=s.adversarial_prefill or "")
                block = s.block(m)
                if not M.get(m).generates:   # loglikelihood tasks: the per-choice scores, not texts
                    ll = s.block(M.LOGLIKELIHOOD.name)   # both modes' scores are in its block
                    got.scores = [{"logprob": lp, "tokens": n, "greedy": g}
                                  for lp, n, g in zip(ll["logprobs"], ll["tokens"], ll["greedy"])]
                else:
                    got.texts, got.n_path = block["outputs"], block.get("n_path")
                    got.tokens = (block.get("tokens") or {}).get("per_sample")
                    if self_answers:
                        if "self_answer" not in block:
                            raise MedevalError(f"{samples_path}: line {n}: mode {m!r} has no self_answer although "
                                               "the run used --extract-fallback/--extract-audit; re-run the shard")
                        got.self_answer = block["self_answer"]
                if permuted:   # --permute (issue 26): each copy's outputs (or scores) from the samples row
                    from ..scoring.permutation import copies_from_sample

                    src = m if M.get(m).generates else M.LOGLIKELIHOOD.name   # both loglikelihood modes: its block
                    got.copies = copies_from_sample(s.block(src), src, f"{samples_path}: line {n}")
                outputs[m][item_id] = got
    missing = [i for i in p.ids if i not in owner]
    if missing:
        raise MedevalError(f"task {p.task.name}: {len(missing)} item(s) in no shard (first: {missing[0]!r}); "
                           "a shard's samples file is incomplete, re-run that shard")
    return ScoringInput(list(modes), outputs)
