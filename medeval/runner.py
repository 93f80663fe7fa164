"""The pipeline: task spec -> dataset -> prompts -> requests -> outputs -> answers -> metrics -> files."""
from __future__ import annotations

import inspect
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import answer_types, metrics
from .accounting import load_price_table, parse_price, run_usage
from .backends.base import Request, Sampling
from .cache import Cache, NullCache
from .caching import CachingBackend
from .data import data_hash, ids_hash, load_items, load_rows
from .errors import MedevalError
from .graders import Graders
from .loglikelihood import MODES as LL_MODES
from .loglikelihood import score_all
from .metrics.base import RunOptions
from .paths import default_cache_dir
from .prompts import Renderer
from .results import MODES, run_results, write_results
from .scoring import score_task
from .spec import Registry, Task, metric_problems

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
    extract_judge: str | None = None     # fallback model for outputs the extraction rules find invalid
    extract_judge_base_url: str | None = None
    bertscore_model: str | None = None
    price_per_mtok: str | None = None     # "IN,OUT": USD per million input/output tokens of the model
    price_table: str | None = None        # YAML: model id -> {input, output}; also prices the judge
    backend_args: dict = field(default_factory=dict)   # options from flags, checked by the backend's Args
    model_args: str | None = None                      # the --model-args string, same schema
    argv: list[str] = field(default_factory=list)
    shard: tuple[int, int] | None = None               # (I, N): evaluate only shard I of N (medeval/shard.py)
    defaults_from: dict = field(default_factory=dict)   # option -> group whose default filled it


FALLBACK = {"self_consistency": 0, "temperature": 0.7, "top_p": 0.9}


def apply_group_defaults(cfg: RunConfig, registry: Registry) -> RunConfig:
    """Options the user left unset take the defaults of the groups named in --tasks (a model card's
    decoding), then medeval's own (FALLBACK). Two named groups that disagree on an option are an error."""
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


@dataclass(frozen=True)
class Item:
    """One evaluated item, normalised once from its dataset row."""
    id: str
    row: dict                      # the dataset row (with `item_labels` when a labels file names the item)
    gold: object                   # canonical gold answer (answer_types)
    options: list[dict]            # [{letter, text}] for choice tasks, else []
    messages: tuple                # the rendered prompt: ((role, content), ...)
    trace: str | None = None       # --adversarial: this item's wrong reasoning trace (None: the short pre-fill)


@dataclass
class Prepared:
    """A task ready to run: its items, each read once, and where they came from (hashes for results.json)."""
    task: Task
    items: list[Item]
    renderer: Renderer
    source: str
    n_total: int
    data_hash: str
    ids_hash: str
    notes: dict = field(default_factory=dict)   # side files used (item labels, traces), for results.json

    @property
    def ids(self) -> list[str]:
        return [it.id for it in self.items]

    def select(self, keep) -> Prepared:
        """The same task restricted to the items whose id is in `keep`, with the hashes of those items."""
        items = [it for it in self.items if it.id in keep]
        ids = [it.id for it in items]
        return replace(self, items=items, data_hash=data_hash(ids, [it.row for it in items]), ids_hash=ids_hash(ids))


def prepare(task: Task, cfg: RunConfig) -> Prepared:
    """Load a task's items and read each row once: gold, options, prompt, side files."""
    task = _configured(task, cfg)
    items = load_items(task, cfg.data_dir, cfg.limit)
    shots = load_rows(task, cfg.data_dir, task.fewshot.split)[0] if task.fewshot and task.fewshot.n else []
    renderer = Renderer(task, cfg.prompt_variant, shots)
    read = []   # (gold, options, messages) per row
    for k, (row, item_id) in enumerate(zip(items.rows, items.ids)):
        try:
            gold, options = answer_types.read(task, row)
        except MedevalError as e:  # name the data file and line as well as the task field
            raise MedevalError(f"{items.where(k)}: {e}") from None
        read.append((gold, options, renderer.messages(row, item_id, options)))
    from .item_files import adversarial_traces, attach_labels

    rows, extra, labels = attach_labels(task, items.ids, items.rows, cfg.data_dir, cfg.item_labels)
    if extra:
        task = task.model_copy(update={"strata": [*task.strata, *[s for s in extra if s not in task.strata]]})
    notes = {"item_labels": labels} if labels else {}
    traces = [None] * len(rows)
    if cfg.adversarial:
        found, rec = adversarial_traces(task, items.ids, rows, cfg.data_dir, cfg.adversarial_file)
        traces = found or traces
        if rec:
            notes["adversarial_traces"] = rec
    built = [Item(i, row, *r, trace) for i, row, r, trace in zip(items.ids, rows, read, traces)]
    return Prepared(task, built, renderer, items.source, items.n_total, items.data_hash(), items.ids_hash(), notes)


def _configured(task: Task, cfg: RunConfig) -> Task:
    """The task as this run uses it (prompt variant, system prompt), its metrics checked."""
    variant = task.prompt.variants.get(cfg.prompt_variant) if cfg.prompt_variant else None
    if variant is not None:
        gen = task.generation.model_copy(update={k: v for k, v in (("max_tokens", variant.max_tokens),
                                                                   ("stop", variant.stop)) if v is not None})
        task = task.model_copy(update={"generation": gen})
    if cfg.system_prompt is not None:
        task = task.model_copy(update={"prompt": task.prompt.model_copy(update={"system": cfg.system_prompt})})
    for m in task.metrics:
        try:
            metrics.get(m)
        except KeyError as e:
            raise MedevalError(f"{task.source_file}: field 'metrics': {e.args[0]}") from None
    for problem in metric_problems(task)[:1]:   # a metric that does not fit the answer type
        raise MedevalError(problem)
    check_metric_options(task)
    return task


def check_metric_options(task: Task) -> None:
    """metric_options: a metric the task computes -> keyword options that metric takes."""
    for name, opts in task.metric_options.items():
        if name not in task.metrics:
            raise MedevalError(f"{task.source_file}: field 'metric_options.{name}': not one of the task's metrics "
                               f"({', '.join(task.metrics)}); remove it or fix the spelling")
        params = list(inspect.signature(metrics.get(name).fn).parameters.values())[2:]  # after (preds, golds)
        if any(p.kind == p.VAR_KEYWORD and p.name != "_" for p in params):   # **options: takes any
            continue
        allowed = [p.name for p in params if p.kind != p.VAR_KEYWORD]       # **_ swallows the run's extras
        unknown = sorted(set(opts) - set(allowed))
        if unknown:
            raise MedevalError(f"{task.source_file}: field 'metric_options.{name}.{unknown[0]}': metric {name!r} "
                               f"takes no such option (it takes: {', '.join(allowed) or 'none'})")


def modes_for(task: Task, cfg: RunConfig) -> list[str]:
    if task.scoring == "loglikelihood":
        return list(LL_MODES)
    return ["greedy", "sc"] if cfg.self_consistency > 0 and task.votable else ["greedy"]


def build_requests(p: Prepared, cfg: RunConfig) -> dict[tuple[str, str], Request]:
    g, kind = p.task.generation, answer_types.of(p.task)
    base = dict(max_tokens=cfg.max_tokens or g.max_tokens, stop=tuple(g.stop), seed=cfg.seed)
    out = {}
    if p.task.scoring == "loglikelihood":  # one request per item; both modes read its scores
        delim = p.task.loglikelihood.target_delimiter
        for it in p.items:
            conts = tuple(delim + text for _, text in kind.loglikelihood_choices(p.task, it.options))
            r = Request(f"{p.task.name}/{it.id}/loglikelihood", it.messages, chat=p.task.prompt.chat,
                        continuations=conts)
            out.update({(it.id, mode): r for mode in LL_MODES})
        return out
    for it in p.items:
        prefill = (it.trace or kind.adversarial_prefill(it.options, it.gold)) if cfg.adversarial else ""
        for mode in modes_for(p.task, cfg):
            s = (Sampling(n=1, temperature=0.0, top_p=1.0, **base) if mode == "greedy" else
                 Sampling(n=cfg.self_consistency, temperature=cfg.temperature, top_p=cfg.top_p, **base))
            out[(it.id, mode)] = Request(f"{p.task.name}/{it.id}/{mode}", it.messages, s, prefill, p.task.prompt.chat)
    return out


def generate_all(backend, cache: Cache, requests: list[Request], progress: bool = True) -> dict[str, dict]:
    """Outputs for every request: from the cache where present, else from one backend call (caching.py)."""
    got = dict(CachingBackend(backend, cache, progress).generate(requests))
    return {r.id: got[k].as_dict() for k, r in enumerate(requests)}


def make_backend(cfg: RunConfig):
    from .backends import create

    return create(cfg.backend, cfg.model, cfg.model_args, **cfg.backend_args)


def check_config(cfg: RunConfig) -> None:
    """Every option checked before any work: one line naming the option and the fix."""
    if not [t for t in cfg.tasks if t.strip()]:
        raise MedevalError("--tasks names no task: pass comma-separated task or group names (see `medeval tasks`)")
    if cfg.limit is not None and cfg.limit <= 0:
        raise MedevalError(f"--limit must be a positive number of items, got {cfg.limit}")
    if cfg.self_consistency < 0:
        raise MedevalError(f"-k/--self-consistency must be 0 (greedy only) or more, got {cfg.self_consistency}")
    if cfg.max_tokens is not None and cfg.max_tokens <= 0:
        raise MedevalError(f"--max-tokens must be a positive number of tokens, got {cfg.max_tokens}")
    if not (math.isfinite(cfg.temperature) and cfg.temperature >= 0):
        raise MedevalError(f"--temperature must be a finite number >= 0, got {cfg.temperature}")
    if not 0 < cfg.top_p <= 1:
        raise MedevalError(f"--top-p must be in (0, 1], got {cfg.top_p}")
    from .backends.openai_backend import check_url

    for option, url in (("--base-url", cfg.backend_args.get("base_url")), ("--judge-base-url", cfg.judge_base_url)):
        if url is not None:
            check_url(url, option)
    writable_dir(cfg.output_dir, "--output-dir")
    if not cfg.no_cache:
        writable_dir(cfg.cache_dir or default_cache_dir(), "--cache-dir")


def writable_dir(path, option: str) -> Path:
    """Create `path` if needed and prove a file can be written there, before hours of generation."""
    d = Path(path).expanduser()
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=d):
            pass
    except OSError as e:
        why = "it is a file" if d.is_file() else (e.strerror or type(e).__name__).lower()
        raise MedevalError(f"{option} {d}: cannot write there ({why}); pass a directory you can write to") from None
    return d


def run(cfg: RunConfig, backend=None, progress: bool = True) -> dict:
    t0 = time.time()
    registry = Registry([Path(d) for d in cfg.task_dirs])
    cfg = apply_group_defaults(cfg, registry)   # decoding the user left unset: the named group's, else medeval's
    if backend is None:  # bad backend options fail here, before any data is read or directory made
        from .backends import options_for

        options_for(cfg.backend, cfg.model_args, **cfg.backend_args)
    check_config(cfg)
    prices = _prices(cfg)   # bad price input fails before any generation
    tasks = registry.resolve(cfg.tasks)
    prepared = full = [prepare(t, cfg) for t in tasks]
    if cfg.shard:
        from .shard import take

        prepared = [take(p, *cfg.shard) for p in full]
    graders = Graders(cfg, tasks)   # built once, before generating: a missing key or bad URL fails now, not after
    t_prep = time.time()
    if backend is None:
        backend = make_backend(cfg)
    t_load = time.time()
    cache = NullCache() if cfg.no_cache else Cache(cfg.cache_dir or default_cache_dir())
    reqs = {p.task.name: build_requests(p, cfg) for p in prepared}
    unique = list({r.id: r for rs in reqs.values() for r in rs.values()}.values())
    outputs = generate_all(backend, cache, [r for r in unique if not r.continuations], progress)
    outputs.update(score_all(backend, cache, [r for r in unique if r.continuations], progress))
    t_gen = time.time()
    out_dir = Path(cfg.output_dir)
    task_results = {}
    run_options = RunOptions(bertscore_model=cfg.bertscore_model)   # run-wide metric choices, made once
    for p in prepared:
        task_results[p.task.name] = score_task(p, reqs[p.task.name], outputs, modes_for(p.task, cfg), out_dir,
                                               judge=graders.for_task(p.task), extract_judge=graders.extract,
                                               run_options=run_options, self_consistency=cfg.self_consistency)
    graders.close()
    t_score = time.time()
    model_id = getattr(backend, "model_id", cfg.model)
    shard = {}
    if cfg.shard:
        from .shard import record

        shard["shard"] = record(cfg, full, prepared, reqs, outputs, out_dir)
    results = run_results(
        command=cfg.argv, model=model_block(backend, cfg), decoding=decoding_block(cfg), seed=cfg.seed,
        cache={"hits": cache.hits, "misses": cache.misses, "dir": str(cache.dir) if cache.dir else None},
        timings={"prepare_s": t_prep - t0, "load_model_s": t_load - t_prep, "generate_s": t_gen - t_load,
                 "score_s": t_score - t_gen, "total_s": time.time() - t0},
        tasks=task_results, groups=group_scores(registry, tasks, task_results),
        usage=run_usage(task_results, *prices[:2], model_id, prices[2]), **shard)
    write_results(out_dir, results)
    cache.close()
    return results


def model_block(backend, cfg: RunConfig) -> dict:
    """results.json's `model`: the backend's description, its typed identity and that identity's hash."""
    ident = backend.identity()
    return {**backend.describe(), "id": getattr(backend, "model_id", cfg.model), "identity": ident.as_dict(),
            "identity_hash": ident.key()}


def _prices(cfg: RunConfig) -> tuple[dict | None, dict, str | None]:
    """(the model's price, the price table, where they came from) for the run's usage block."""
    own = parse_price(cfg.price_per_mtok) if cfg.price_per_mtok else None
    table = load_price_table(cfg.price_table) if cfg.price_table else {}
    where = [w for w, on in ((f"--price-per-mtok {cfg.price_per_mtok}", own), (f"--price-table {cfg.price_table}",
                                                                                 table)) if on]
    return own, table, "; ".join(where) or None


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
        for mode in MODES:
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

