"""`medeval run ... --launcher ray --shards N`: N shard runs as Ray tasks, then `merge`.

The driver connects to the cluster at RAY_ADDRESS (or starts a local one with `ray.init()`), submits
one task per shard (`runner.run` with `shard=(I, N)`), reports each shard as it finishes and merges
the N shards into --output-dir. Each task asks for the GPUs its backend needs (vllm: tensor x
pipeline parallel size; hf/auto: one when the cluster has GPUs and --device is not cpu; openai: none).
A task that raises a backend error or whose worker dies is retried by Ray (MAX_RETRIES); what it had
generated is already in that node's generation cache, so the retry only generates the rest.
Shard results travel back to the driver as file contents, so workers need no shared file system
(they do need medeval, the model and --data-dir at the same paths).
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from ..errors import MedevalError

MAX_RETRIES = 2


def gpus_per_shard(cfg, cluster_gpus: float) -> float:
    if cfg.backend == "openai":
        return 0
    if cfg.backend == "vllm":
        from ..backends import options_for

        _, opts = options_for("vllm", cfg.model_args, **cfg.backend_args)
        return (opts.get("tensor_parallel_size") or 1) * (opts.get("pipeline_parallel_size") or 1)
    if str(cfg.backend_args.get("device") or "").startswith("cpu"):
        return 0
    return 1 if cluster_gpus > 0 else 0


def run_shard(config: dict, index: int, count: int) -> dict[str, bytes]:
    """One shard, on a Ray worker: its output files (name -> content)."""
    from .runner import RunConfig, run

    cfg = RunConfig(**config)
    cfg.shard = (index, count)
    with tempfile.TemporaryDirectory(prefix=f"medeval-shard{index}-") as tmp:
        cfg.output_dir = tmp
        run(cfg, progress=False)
        return {f.name: f.read_bytes() for f in Path(tmp).iterdir() if f.is_file()}


def launch(cfg, launcher: str | None, shards: int | None, progress: bool = True) -> dict:
    if launcher is None:
        raise MedevalError("--shards N needs --launcher ray; without a launcher, run each shard with --shard I/N")
    if launcher != "ray":
        raise MedevalError(f"--launcher {launcher!r}: the only launcher is 'ray' (use --shard I/N with your own "
                           "scheduler, see docs/scaling.md)")
    if not shards or shards < 1:
        raise MedevalError("--launcher ray needs --shards N (N >= 1), e.g. --shards 8 for eight GPUs")
    if cfg.shard:
        raise MedevalError("--shard and --launcher ray do not combine: the launcher runs every shard itself")
    try:
        import ray
    except ImportError:
        raise MedevalError("--launcher ray needs Ray, which is not installed: pip install 'medeval[ray]'") from None
    from ..backends import options_for

    options_for(cfg.backend, cfg.model_args, **cfg.backend_args)   # bad options fail here, not on N workers
    started = not ray.is_initialized()
    if started:
        ray.init(logging_level="WARNING", log_to_driver=False)
    try:
        return _run_all(ray, cfg, shards, progress)
    finally:
        if started:
            ray.shutdown()


def _run_all(ray, cfg, count: int, progress: bool) -> dict:
    from rich.console import Console

    from ..backends import BackendError
    from .merge import merge

    console = Console(stderr=True, quiet=not progress)
    gpus = gpus_per_shard(cfg, ray.cluster_resources().get("GPU", 0))
    task = ray.remote(run_shard).options(num_gpus=gpus, max_retries=MAX_RETRIES,
                                         retry_exceptions=[BackendError, OSError])
    config = dataclasses.asdict(cfg)
    config.pop("shard")
    for k in ("data_dir", "cache_dir"):       # workers may start elsewhere: absolute paths
        if config[k]:
            config[k] = str(Path(config[k]).expanduser().resolve())
    config["task_dirs"] = [str(Path(d).expanduser().resolve()) for d in config["task_dirs"]]
    t0 = time.time()
    refs = {task.remote(config, i, count): i for i in range(count)}
    res = ray.cluster_resources()
    console.print(f"ray: {count} shards submitted ({gpus:g} GPU each) to a cluster of {res.get('CPU', 0):g} CPUs "
                  f"and {res.get('GPU', 0):g} GPUs")
    shard_root = Path(cfg.output_dir) / "shards"
    dirs, failed, pending = {}, {}, list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        i = refs[done[0]]
        try:
            files = ray.get(done[0])
        except Exception as e:  # noqa: BLE001 - the shard's own error, reported below
            cause = getattr(e, "cause", None) or e
            failed[i] = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
            console.print(f"[red]shard {i}/{count} failed[/]: {failed[i]}")
            continue
        d = shard_root / f"shard-{i}-of-{count}"
        d.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (d / name).write_bytes(content)
        dirs[i] = d
        console.print(f"shard {i}/{count} done ({len(dirs)}/{count}, {time.time() - t0:.0f} s)")
    if failed:
        first = min(failed)
        raise MedevalError(f"{len(failed)} of {count} shards failed after {MAX_RETRIES + 1} attempts (shard "
                           f"{first}/{count}: {failed[first]}); finished shards are in {shard_root}; fix the cause "
                           "and re-run the same command (generated samples are in the cache)")
    return merge([dirs[i] for i in range(count)], Path(cfg.output_dir), argv=cfg.argv)
