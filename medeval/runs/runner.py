"""The pipeline: task spec -> dataset -> prompts -> requests -> outputs -> answers -> metrics -> files."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ..tasks import answer_types
from ..accounting import load_price_table, parse_price, run_usage
from ..backends.base import Request
from ..backends.cache import Cache, NullCache
from ..backends.caching import CachingBackend
from .config import RunConfig, apply_group_defaults, check_config
from ..graders.registry import Graders
from ..scoring import modes as M
from ..backends.caching import score_all
from ..metrics.base import RunOptions
from ..paths import default_cache_dir
from .permuted import annotate, copy_requests   # --permute (issue 26)
from .prepare import Prepared, prepare
from ..scoring import permutation   # --permute (issue 26)
from ..scoring.inputs import ScoringInput
from .tail import evaluate
from ..graders.self_answer import CUE, SelfCheck, self_answers
from ..graders.self_answer import check as check_self_answer
from ..tasks.spec import Registry, Task

log = logging.getLogger(__name__)


def modes_for(task: Task, cfg: RunConfig) -> list[str]:
    """The names of the task's modes (scoring/modes.py), in report order."""
    return [m.name for m in M.of_task(task, cfg.self_consistency)]


def build_requests(p: Prepared, cfg: RunConfig) -> dict[tuple[str, str], Request]:
    """(item id, mode) -> its request: per item, one per generating mode (its sampling), and one shared by
    the modes that score the choices (the loglikelihood modes read the same scores)."""
    g, kind = p.task.generation, answer_types.of(p.task)
    base = dict(max_tokens=cfg.max_tokens or g.max_tokens, stop=tuple(g.stop), seed=cfg.seed)
    modes = M.of_task(p.task, cfg.self_consistency)
    scoring = [m for m in modes if not m.generates]
    out = {}
    for it in p.items:
        if scoring:
            delim = p.task.loglikelihood.target_delimiter
            conts = tuple(delim + text for _, text in kind.loglikelihood_choices(p.task, it.options))
            r = Request(f"{p.task.name}/{it.id}/loglikelihood", it.messages, chat=p.task.prompt.chat,
                        continuations=conts)
            out.update({(it.id, m.name): r for m in scoring})
        generating = [m for m in modes if m.generates]
        if not generating:
            continue
        prefill = (it.trace or kind.adversarial_prefill(it.options, it.gold)) if cfg.adversarial else ""
        for mode in generating:
            out[(it.id, mode.name)] = Request(f"{p.task.name}/{it.id}/{mode.name}", it.messages,
                                              mode.sampling(cfg, **base), prefill, p.task.prompt.chat)
    return out


def generate_all(backend, cache: Cache, requests: list[Request], progress: bool = True) -> dict[str, dict]:
    """Outputs for every request: from the cache where present, else from one backend call (caching.py)."""
    got = dict(CachingBackend(backend, cache, progress).generate(requests))
    return {r.id: got[k].as_dict() for k, r in enumerate(requests)}


def make_backend(cfg: RunConfig):
    from ..backends import create

    return create(cfg.backend, cfg.model, cfg.model_args, **cfg.backend_args)


def run(cfg: RunConfig, backend=None, progress: bool = True) -> dict:
    t0 = time.time()
    registry = Registry([Path(d) for d in cfg.task_dirs], strict=False)
    cfg = apply_group_defaults(cfg, registry)   # decoding the user left unset: the named group's, else medeval's
    if backend is None:  # bad backend options fail here, before any data is read or directory made
        from ..backends import options_for

        backend_cls, backend_opts = options_for(cfg.backend, cfg.model_args, **cfg.backend_args)
    else:
        backend_cls, backend_opts = type(backend), {"tokenizer": getattr(backend, "tokenizer", None)}
    check_config(cfg)
    prices = _prices(cfg)   # bad price input fails before any generation
    claim = _claim(Path(cfg.output_dir))
    try:   # the output directory's lock is released however the run ends (the sequential gate runs again)
        return _evaluate(cfg, registry, backend, backend_cls, backend_opts, prices, progress, t0)
    finally:
        _release(claim)


def _evaluate(cfg: RunConfig, registry: Registry, backend, backend_cls, backend_opts, prices, progress: bool,
              t0: float) -> dict:
    """The run itself, once its options are checked and its output directory claimed."""
    tasks = registry.resolve(cfg.tasks)
    check_self_answer(cfg, tasks, backend_cls, backend_opts)   # --extract-fallback / --extract-audit
    prepared = full = [prepare(t, cfg) for t in tasks]
    if cfg.shard:
        from .shard import take

        prepared = [take(p, *cfg.shard) for p in full]
    if cfg.item_ids is not None:   # the sequential gate (seqgate.py): the items of its chunks so far
        prepared = [p.select(set(cfg.item_ids.get(p.task.name, ()))) for p in prepared]
    judge_options = {"timeout": cfg.judge_timeout} if cfg.judge_timeout is not None else {}
    graders = Graders(cfg, tasks, progress=progress, **judge_options)   # built once, before generating: a missing key or bad URL fails now, not after
    t_prep = time.time()
    if backend is None:
        backend = make_backend(cfg)
    t_load = time.time()
    cache = NullCache() if cfg.no_cache else Cache(cfg.cache_dir or default_cache_dir())
    reqs = {p.task.name: build_requests(p, cfg) for p in prepared}
    permuted = {p.task.name: copy_requests(p, cfg, reqs[p.task.name], modes_for(p.task, cfg), f)   # --permute (issue 26)
                for p, f in zip(prepared, full)}
    unique = list({r.id: r for rs in reqs.values() for r in rs.values()}.values())
    unique += list({r.id: r for cs in permuted.values() for row in cs.values() for _, r in row[1:]}.values())
    outputs = generate_all(backend, cache, [r for r in unique if not r.continuations], progress)
    outputs.update(score_all(backend, cache, [r for r in unique if r.continuations], progress))
    t_gen = time.time()
    self_check = SelfCheck.of(cfg)
    own = (self_answers(prepared, reqs, outputs, lambda t: modes_for(t, cfg), backend, cache, self_check, progress)
           if self_check else {})
    t_self = time.time()
    if cache.repaired:
        log.warning("%d replies held lone UTF-16 surrogates (a character cut in half); each was replaced by "
                    "U+FFFD and kept (results.json: cache.replaced_surrogates)", cache.repaired)
    out_dir = Path(cfg.output_dir)
    inputs = {p.task.name: ScoringInput.of_run(p, reqs[p.task.name], outputs, modes_for(p.task, cfg), own)
              for p in prepared}
    for p in prepared:   # --permute (issue 26): each shown order's outputs, beside the item's own
        permutation.attach(inputs[p.task.name], permuted[p.task.name], outputs)

    def fields(task_results: dict) -> dict:
        t_score = time.time()
        shard = {}
        if cfg.shard:
            from .shard import record

            shard["shard"] = record(cfg, full, prepared, reqs, outputs, out_dir)
        return dict(
            command=cfg.argv, model=model_block(backend, cfg), decoding=decoding_block(cfg), seed=cfg.seed,
            cache={"hits": cache.hits, "misses": cache.misses, "dir": str(cache.dir) if cache.dir else None,
                   "replaced_surrogates": cache.repaired},
            timings={"prepare_s": t_prep - t0, "load_model_s": t_load - t_prep, "generate_s": t_gen - t_load,
                     **({"self_answer_s": t_self - t_gen} if self_check else {}),
                     "score_s": t_score - t_self, "total_s": time.time() - t0},
            usage=run_usage(task_results, *prices[:2], getattr(backend, "model_id", cfg.model), prices[2]),
            extraction=extraction_block(cfg), **shard)

    results = evaluate(prepared, inputs, out_dir, graders, fields,
                       run_options=RunOptions(bertscore_model=cfg.bertscore_model),   # run-wide metric choices
                       self_check=self_check, k=cfg.self_consistency, registry=registry, tasks=tasks,
                       task_extra=lambda p, block: annotate(block, cfg, p.task, permuted[p.task.name].reason),
                       progress=progress)
    cache.close()
    return results


def extraction_block(cfg) -> dict:
    """results.json's `extraction`: the options that read answers beyond the rules (the rules alone: all off)."""
    sc = SelfCheck.of(cfg)
    block = {"extract_judge": getattr(cfg, "extract_judge", None), "extract_fallback": "self" if sc and sc.fallback
             else None, "extract_audit": bool(sc and sc.audit)}
    if sc:
        block["self_answer_cue"] = CUE
    return block


LOCK = ".medeval-run.lock"


def _claim(out_dir: Path):
    """Hold an advisory lock on the output directory for the run; another run holding it gets a
    one-line warning (both would write results.json there: the last to finish wins)."""
    import fcntl
    import os

    path = out_dir / LOCK
    try:
        f = open(path, "a+")
    except OSError:   # the directory was checked writable; a lock is only a courtesy
        return None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        other = f.read().strip() or "?"
        f.close()
        log.warning("%s is in use by another medeval run (pid %s): both write results.json and the samples "
                    "files there, and the last to finish wins; give each run its own --output-dir", out_dir, other)
        return None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    import atexit

    atexit.register(_release, f)   # a run that fails leaves no lock file behind either
    return f


def _release(claim) -> None:
    if claim is not None and not claim.closed:
        Path(claim.name).unlink(missing_ok=True)
        claim.close()


def model_block(backend, cfg: RunConfig) -> dict:
    """results.json's `model`: the backend's description, its typed identity and that identity's hash."""
    ident = backend.identity()
    return {**backend.describe(), "id": getattr(backend, "model_id", cfg.model), "identity": ident.as_dict(),
            "identity_hash": ident.key()}


def _prices(cfg: RunConfig) -> tuple[dict | None, dict, str | None]:
    """(the model's price, the price table, where they came from) for the run's usage block."""
    own = parse_price(cfg.price_per_mtok) if cfg.price_per_mtok is not None else None   # "" is refused, not skipped
    table = load_price_table(cfg.price_table) if cfg.price_table is not None else {}
    where = [w for w, on in ((f"--price-per-mtok {cfg.price_per_mtok}", own), (f"--price-table {cfg.price_table}",
                                                                                 table)) if on]
    return own, table, "; ".join(where) or None


def decoding_block(cfg: RunConfig) -> dict:
    d = {m.name: block for m in M.ALL if (block := m.decoding(cfg)) is not None}   # greedy, and sc with -k
    if cfg.prompt_variant:
        d["prompt_variant"] = cfg.prompt_variant
    if getattr(cfg, "permute", "none") not in (None, "none"):   # --permute (issue 26)
        from ..tasks.permute import parse

        d["permute"] = parse(cfg.permute).label
    if cfg.defaults_from:
        d["defaults_from_groups"] = dict(cfg.defaults_from)
    return d
