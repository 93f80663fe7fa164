"""The pipeline: task spec -> dataset -> prompts -> requests -> outputs -> answers -> metrics -> files."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import RESULTS_SCHEMA_VERSION, __version__
from .answers import gold_of, options_of
from .backends.base import Request, Sampling, prompt_hash
from .cache import Cache, NullCache, request_model_ident, sample_key
from .data import load_items, load_rows
from .errors import MedevalError
from .prompts import Renderer
from .results import atomic_write, git_revision, now_iso, package_versions
from .scoring import score_task
from .spec import Registry, Task

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    tasks: list[str]
    model: str = "embedded"
    backend: str = "auto"
    limit: int | None = None
    self_consistency: int | None = None  # k samples; 0 = greedy only (None: group default, else 0)
    temperature: float | None = None     # None: group default, else 0.7 (the Neeto card's SC setting)
    top_p: float | None = None           # None: group default, else 0.9
    seed: int = 1234
    max_tokens: int | None = None        # overrides every task's default
    data_dir: str | None = None
    task_dirs: list[str] = field(default_factory=list)
    output_dir: str = "runs/latest"
    cache_dir: str | None = None
    no_cache: bool = False
    prompt_variant: str | None = None
    system_prompt: str | None = None
    adversarial: bool = False
    adversarial_file: str | None = None  # JSONL {id, prefill}: per-item wrong traces for --adversarial
    item_labels: str | None = None       # JSONL/JSON/CSV {id, label...}: extra strata for every task
    judge: str = "none"
    judge_base_url: str | None = None
    bertscore_model: str | None = None
    backend_args: dict = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    defaults_from: dict = field(default_factory=dict)   # option -> group whose default filled it


FALLBACK = {"self_consistency": 0, "temperature": 0.7, "top_p": 0.9}


def apply_group_defaults(cfg: RunConfig, registry: Registry) -> RunConfig:
    """Options the user left unset take the defaults of the groups named in --tasks (a model card's
    decoding), then medeval's own (FALLBACK). Two named groups that disagree on an option are an error."""
    from dataclasses import replace

    chosen: dict = {}
    for name in cfg.tasks:
        g = registry.groups.get(name.strip())
        if g is None or g.defaults is None:
            continue
        for opt, value in g.defaults.model_dump(exclude_none=True).items():
            if getattr(cfg, opt) is not None:
                continue
            if opt in chosen and chosen[opt][1] != value:
                raise MedevalError(f"groups {chosen[opt][0]} and {g.group} set different defaults for {opt} "
                                   f"({chosen[opt][1]!r} vs {value!r}): give --{opt.replace('_', '-')} explicitly")
            chosen[opt] = (g.group, value)
    updates = {opt: v for opt, (_, v) in chosen.items()}
    updates.update({k: v for k, v in FALLBACK.items() if getattr(cfg, k) is None and k not in updates})
    return replace(cfg, **updates, defaults_from={opt: grp for opt, (grp, _) in chosen.items()})


@dataclass
class Prepared:
    task: Task
    ids: list[str]
    rows: list[dict]
    golds: list
    options: list[list[dict]]
    messages: list[tuple]
    renderer: Renderer
    source: str
    n_total: int
    data_hash: str
    ids_hash: str
    prefills: list | None = None          # adversarial mode: per-item pre-filled wrong trace (None: default)
    notes: dict = field(default_factory=dict)   # side files used (item labels, traces), for results.json


def prepare(task: Task, cfg: RunConfig) -> Prepared:
    variant = task.prompt.variants.get(cfg.prompt_variant) if cfg.prompt_variant else None
    if variant is not None:
        gen = task.generation.model_copy(update={k: v for k, v in (("max_tokens", variant.max_tokens),
                                                                   ("stop", variant.stop)) if v is not None})
        task = task.model_copy(update={"generation": gen})
    if cfg.system_prompt is not None:
        task = task.model_copy(update={"prompt": task.prompt.model_copy(update={"system": cfg.system_prompt})})
    from . import metrics

    for m in task.metrics:
        try:
            metrics.get(m)
        except KeyError as e:
            raise MedevalError(f"{task.source_file}: field 'metrics': {e.args[0]}") from None
    if task.answer.type == "rubric" and (cfg.judge or "none").strip().lower() == "none":
        raise MedevalError(f"task {task.name!r} is graded by a model against physician rubrics: pass --judge MODEL "
                           "(the II-Medical cards used gpt-4.1) and, for a server other than OpenAI's, "
                           "--judge-base-url URL")
    items = load_items(task, cfg.data_dir, cfg.limit)
    shots = load_rows(task, cfg.data_dir, task.fewshot.split)[0] if task.fewshot and task.fewshot.n else []
    renderer = Renderer(task, cfg.prompt_variant, shots)
    golds, options, messages = [], [], []
    for row, item_id in zip(items.rows, items.ids):
        golds.append(gold_of(task, row))
        options.append(options_of(task, row))
        messages.append(renderer.messages(row, item_id))
    from .item_files import adversarial_traces, attach_labels

    rows, extra, labels = attach_labels(task, items.ids, items.rows, cfg.data_dir, cfg.item_labels)
    if extra:
        task = task.model_copy(update={"strata": [*task.strata, *[s for s in extra if s not in task.strata]]})
    notes = {"item_labels": labels} if labels else {}
    prefills = None
    if cfg.adversarial:
        prefills, rec = adversarial_traces(task, items.ids, rows, cfg.data_dir, cfg.adversarial_file)
        if rec:
            notes["adversarial_traces"] = rec
    return Prepared(task, items.ids, rows, golds, options, messages, renderer, items.source,
                    items.n_total, items.data_hash(), items.ids_hash(), prefills, notes)


def modes_for(task: Task, cfg: RunConfig) -> list[str]:
    return ["greedy", "sc"] if cfg.self_consistency > 0 and task.votable else ["greedy"]


def build_requests(p: Prepared, cfg: RunConfig) -> dict[tuple[str, str], Request]:
    g = p.task.generation
    base = dict(max_tokens=cfg.max_tokens or g.max_tokens, stop=tuple(g.stop), seed=cfg.seed)
    out = {}
    for k, (item_id, msgs, opts, gold) in enumerate(zip(p.ids, p.messages, p.options, p.golds)):
        prefill = ((p.prefills and p.prefills[k]) or _adversarial_prefill(opts, gold)) if cfg.adversarial else ""
        for mode in modes_for(p.task, cfg):
            s = (Sampling(n=1, temperature=0.0, top_p=1.0, **base) if mode == "greedy" else
                 Sampling(n=cfg.self_consistency, temperature=cfg.temperature, top_p=cfg.top_p, **base))
            out[(item_id, mode)] = Request(f"{p.task.name}/{item_id}/{mode}", msgs, s, prefill, p.task.prompt.chat)
    return out


def adversarial_wrong(options: list[dict], gold) -> str | None:
    """The misleading answer of the adversarial mode: the first wrong option (choice tasks only)."""
    return next((o["letter"] for o in options if o["letter"] != gold), None)


def _adversarial_prefill(options: list[dict], gold) -> str:
    """The start of the assistant turn in adversarial mode: the wrong option stated as the answer."""
    wrong = adversarial_wrong(options, gold)
    return f"The answer is {wrong}. " if wrong else ""


def generate_all(backend, cache: Cache, requests: list[Request], progress: bool = True) -> dict[str, dict]:
    """Outputs for every request: from the cache where present, else from one backend call."""
    ident = request_model_ident(backend.describe())
    prompts = [backend.render(r) for r in requests]
    plan = []  # (request, prompt, prompt hash, keys)
    for r, text in zip(requests, prompts):
        ph = prompt_hash(text)
        plan.append((r, text, ph, [sample_key(ident, backend.name, ph, r.sampling, i) for i in range(r.sampling.n)]))
    cached = cache.get([k for *_, keys in plan for k in keys])
    results, todo = {}, []
    for r, text, ph, keys in plan:
        have = [cached.get(k) for k in keys]
        results[r.id] = {"prompt": text, "texts": [h[0] if h else None for h in have],
                         "finish": [h[1] if h else None for h in have], "cached": sum(h is not None for h in have),
                         "info": next((h[2] for h in have if h), {})}
        missing = [i for i, h in enumerate(have) if h is None]
        cache.hits += len(keys) - len(missing)
        cache.misses += len(missing)
        if missing:
            # k grew since the cached run: ask for the missing samples under a shifted seed
            s = r.sampling
            if len(missing) != s.n:
                s = Sampling(len(missing), s.temperature, s.top_p, s.max_tokens, s.stop, (s.seed or 0) + missing[0])
            todo.append((Request(r.id, r.messages, s, r.prefill, r.chat, r.chat_template_kwargs), r, ph, keys, missing))
    if not todo:
        return results
    columns = [TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task_bar = bar.add_task("gen", total=len(todo))
        for idx, out in backend.generate([t[0] for t in todo]):
            _, req, ph, keys, missing = todo[idx]
            if len(out.texts) != len(missing):
                raise MedevalError(f"backend returned {len(out.texts)} samples for {req.id}, expected {len(missing)}")
            finishes = out.finish_reasons or [None] * len(out.texts)
            model = json.dumps(ident, sort_keys=True, default=str)
            cache.put([(keys[i], model, backend.name, ph, req.sampling, i, t, f, out.info)
                       for i, t, f in zip(missing, out.texts, finishes)])
            res = results[req.id]
            for i, t, f in zip(missing, out.texts, finishes):
                res["texts"][i], res["finish"][i] = t, f
            res["info"] = out.info
            bar.advance(task_bar)
    return results


def make_backend(cfg: RunConfig):
    from .backends import create

    return create(cfg.backend, cfg.model, **cfg.backend_args)


def run(cfg: RunConfig, backend=None, progress: bool = True) -> dict:
    t0 = time.time()
    if cfg.limit is not None and cfg.limit <= 0:
        raise MedevalError(f"--limit must be a positive number of items, got {cfg.limit}")
    registry = Registry([Path(d) for d in cfg.task_dirs])
    cfg = apply_group_defaults(cfg, registry)
    tasks = registry.resolve(cfg.tasks)
    prepared = [prepare(t, cfg) for t in tasks]
    t_prep = time.time()
    if backend is None:
        backend = make_backend(cfg)
    t_load = time.time()
    cache = NullCache() if cfg.no_cache else Cache(cfg.cache_dir or default_cache_dir())
    reqs = {p.task.name: build_requests(p, cfg) for p in prepared}
    outputs = generate_all(backend, cache, [r for rs in reqs.values() for r in rs.values()], progress)
    t_gen = time.time()
    out_dir = Path(cfg.output_dir)
    task_results = {}
    for p in prepared:
        task_results[p.task.name] = score_task(p, reqs[p.task.name], outputs, modes_for(p.task, cfg),
                                               out_dir, cfg, backend)
    t_score = time.time()
    results = {
        "schema_version": RESULTS_SCHEMA_VERSION, "medeval_version": __version__, "created": now_iso(),
        "git_revision": git_revision(), "command": cfg.argv,
        "model": {**backend.describe(), "id": getattr(backend, "model_id", cfg.model)},
        "decoding": decoding_block(cfg), "seed": cfg.seed, "packages": package_versions(),
        "cache": {"hits": cache.hits, "misses": cache.misses, "dir": str(cache.dir) if cache.dir else None},
        "timings": {"prepare_s": t_prep - t0, "load_model_s": t_load - t_prep, "generate_s": t_gen - t_load,
                    "score_s": t_score - t_gen, "total_s": time.time() - t0},
        "tasks": task_results,
        "groups": group_scores(registry, tasks, task_results),
    }
    atomic_write(out_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False, default=str))
    cache.close()
    return results


def decoding_block(cfg: RunConfig) -> dict:
    d = {"greedy": {"temperature": 0.0, "top_p": 1.0, "max_tokens": cfg.max_tokens, "seed": cfg.seed}}
    if cfg.self_consistency:
        d["sc"] = {"k": cfg.self_consistency, "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": cfg.seed,
                   "max_tokens": cfg.max_tokens, "vote": "majority over extracted answers; ties -> earliest sample",
                   "sample_accuracy": "choice/label tasks: mean over items of the share of the k samples that "
                                      "are correct (the expected accuracy of one sampled answer)"}
    if cfg.prompt_variant:
        d["prompt_variant"] = cfg.prompt_variant
    if cfg.defaults_from:
        d["defaults_from_groups"] = dict(cfg.defaults_from)
    return d


def group_scores(registry: Registry, tasks: list[Task], task_results: dict) -> dict:
    out = {}
    for g in registry.groups_for(tasks):
        members = [t.name for t in registry.resolve(g.tasks)]
        block = {"tasks": members, "rule": "mean of task scores" if g.aggregate == "mean" else "weighted by n"}
        if g.metric:
            block["metric"] = (f"{g.metric} where a task reports it in that mode (sc), else the task's primary "
                               "metric (greedy: one sample, so the same quantity)")
        for mode in ("greedy", "sc"):
            vals = []
            for name in members:
                r = task_results[name]
                got = r["metrics"].get(mode, {})
                m = got.get(g.metric) if g.metric and g.metric in got else got.get(r["primary_metric"])
                if m is None:
                    break
                vals.append((m["value"], r["n"]))
            else:
                if g.aggregate == "mean":
                    block[mode] = {"value": sum(v for v, _ in vals) / len(vals)}
                else:
                    block[mode] = {"value": sum(v * n for v, n in vals) / sum(n for _, n in vals)}
        out[g.group] = block
    return out


def default_cache_dir() -> Path:
    from .backends.hf import medeval_home

    return medeval_home() / "cache"
