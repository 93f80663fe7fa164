"""A task made ready to run: its rows loaded and each read once into an `Item` (id, row, gold, options,
rendered messages, adversarial trace), with the hashes results.json records. `prepare(task, cfg)` is
used by `medeval run`, `render`, `score` and `merge` alike, so all of them read items the same way."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace

from ..tasks import answer_types
from .. import metrics
from .config import RunConfig
from ..tasks.data import data_hash, ids_hash, load_items, load_rows
from ..errors import MedevalError
from ..tasks.prompts import Renderer
from ..tasks.spec import Task, load_plugins, metric_problems


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
    items = load_items(task, cfg.data_dir, cfg.limit, cfg.sample_seed)
    shots = load_rows(task, cfg.data_dir, task.fewshot.split)[0] if task.fewshot and task.fewshot.n else []
    renderer = Renderer(task, cfg.prompt_variant, shots)
    read = []   # (gold, options, messages) per row
    for k, (row, item_id) in enumerate(zip(items.rows, items.ids)):
        try:
            gold, options = answer_types.read(task, row)
        except MedevalError as e:  # name the data file and line as well as the task field
            raise MedevalError(f"{items.where(k)}: {e}") from None
        read.append((gold, options, renderer.messages(row, item_id, options)))
    from ..tasks.item_files import adversarial_traces, attach_labels

    rows, extra, labels = attach_labels(task, items.ids, items.rows, cfg.data_dir, cfg.item_labels)
    if extra:
        task = task.model_copy(update={"strata": [*task.strata, *[s for s in extra if s not in task.strata]]})
    notes = {"item_labels": labels} if labels else {}
    if items.selection:
        notes["selection"] = items.selection
    if task.plugins:
        notes["plugins"] = load_plugins(task)
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
    load_plugins(task)   # the task's own metrics (plugins: beside the task file), once per process
    for problem in metric_problems(task)[:1]:   # an unknown metric, or one that does not fit the answer type
        raise MedevalError(problem)
    check_metric_options(task)
    from ..metrics.permutation import PERMUTATION_METRICS   # --permute (issue 26)

    for name in (m for m in task.metrics if m in PERMUTATION_METRICS):
        raise MedevalError(f"{task.source_file}: field 'metrics': {name} is reported by --permute cyclic|random:N "
                           "beside the task's metrics (docs/permutation.md); remove it from the task's metrics")
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
