"""The options of a run (`RunConfig`), the decoding defaults of the groups a run names, and the checks
every option passes before any work starts (one line naming the option and its fix)."""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import MedevalError
from ..paths import default_cache_dir
from ..tasks.spec import Registry


@dataclass
class RunConfig:
    tasks: list[str]
    model: str = "embedded"
    backend: str = "auto"
    limit: int | None = None
    sample_seed: int | None = None       # with limit: a seeded random subset instead of the first rows
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
    judge_timeout: float | None = None   # seconds per grader request (default: chat_grader.DEFAULTS, 120)
    extract_judge: str | None = None     # fallback model for outputs the extraction rules find invalid
    extract_judge_base_url: str | None = None
    extract_fallback: str | None = None  # "self": the evaluated model answers its invalid outputs (self_answer.py)
    extract_audit: bool = False          # the model's own answer on every output, compared with the rules'
    bertscore_model: str | None = None
    price_per_mtok: str | None = None     # "IN,OUT": USD per million input/output tokens of the model
    price_table: str | None = None        # YAML: model id -> {input, output}; also prices the judge
    backend_args: dict = field(default_factory=dict)   # options from flags, checked by the backend's Args
    model_args: str | None = None                      # the --model-args string, same schema
    argv: list[str] = field(default_factory=list)
    shard: tuple[int, int] | None = None               # (I, N): evaluate only shard I of N (medeval/runs/shard.py)
    item_ids: dict | None = None                       # task -> ids: evaluate only these items (the sequential gate's chunks)
    defaults_from: dict = field(default_factory=dict)   # option -> group whose default filled it
    permute: str = "none"                              # --permute none|cyclic|random:N (tasks/permute.py, issue 26)


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


def check_config(cfg: RunConfig) -> None:
    """Every option checked before any work: one line naming the option and the fix."""
    check_values(cfg)
    from ..backends.openai_backend import check_url

    for option, url in (("--base-url", cfg.backend_args.get("base_url")), ("--judge-base-url", cfg.judge_base_url)):
        if url is not None:
            check_url(url, option)
    writable_dir(cfg.output_dir, "--output-dir")
    if not cfg.no_cache:
        writable_dir(cfg.cache_dir or default_cache_dir(), "--cache-dir")


def check_values(cfg: RunConfig) -> None:
    """The option values `run` and `render` share (tasks, limit, -k, decoding), checked the same way."""
    if not [t for t in cfg.tasks if t.strip()]:
        raise MedevalError("--tasks names no task: pass comma-separated task or group names (see `medeval tasks`)")
    if cfg.limit is not None and cfg.limit <= 0:
        raise MedevalError(f"--limit must be a positive number of items, got {cfg.limit}")
    if cfg.sample_seed is not None and cfg.limit is None:
        raise MedevalError("--sample-seed draws a random subset of --limit N items: give --limit too")
    if cfg.self_consistency < 0:
        raise MedevalError(f"-k/--self-consistency must be 0 (greedy only) or more, got {cfg.self_consistency}")
    if cfg.max_tokens is not None and cfg.max_tokens <= 0:
        raise MedevalError(f"--max-tokens must be a positive number of tokens, got {cfg.max_tokens}")
    if not (math.isfinite(cfg.temperature) and cfg.temperature >= 0):
        raise MedevalError(f"--temperature must be a finite number >= 0, got {cfg.temperature}")
    if not 0 < cfg.top_p <= 1:
        raise MedevalError(f"--top-p must be in (0, 1], got {cfg.top_p}")
    if cfg.judge_timeout is not None and not (math.isfinite(cfg.judge_timeout) and cfg.judge_timeout > 0):
        raise MedevalError(f"--judge-timeout must be a positive number of seconds, got {cfg.judge_timeout}")
    from ..tasks.permute import parse as parse_permute   # --permute (issue 26)

    if parse_permute(cfg.permute) and cfg.adversarial:
        raise MedevalError(f"--permute {cfg.permute} with --adversarial: the pre-filled wrong answer names a letter "
                           "of the original order; run them separately")
    if cfg.adversarial_file and not cfg.adversarial:
        raise MedevalError(f"--adversarial-file {cfg.adversarial_file}: pre-fills are used only in --adversarial "
                           "mode; add --adversarial, or drop the file")


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
