"""Task and group specifications: YAML files validated with pydantic.

A file in a task directory is a task (it has `name`), a group (it has `group`),
or a shared base that other files extend with `base: _file.yaml` (names that
start with `_` are never tasks). docs/tasks.md documents every field.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import answer_types
from .. import metrics
from ..errors import MedevalError
from ..fields import get_field
from ..paths import bundled_dir
from ..safe_yaml import load_mapping

# What `answer.type` and `answer.gold_format` accept, derived from the answer types (medeval/tasks/answer_types/)
AnswerType = Literal[answer_types.names()]
VOTABLE = {name for name in answer_types.names() if answer_types.get(name).votable}
# gold formats each answer type accepts; the first is the default when a file gives none
GOLD_FORMATS = {name: answer_types.get(name).gold_formats for name in answer_types.names()}
GoldFormat = Literal[tuple(dict.fromkeys(f for formats in GOLD_FORMATS.values() for f in formats))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RowFilter(Strict):
    """One entry of `dataset.filter`: a condition on a dotted field. A row is evaluated when it meets every
    condition of every entry; the others are left out and counted (results.json: `selection`)."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    field: str                             # dotted field of the row
    equals: Any = None                     # the value is exactly this
    not_equals: Any = None                 # the value is not this (a row without the field is kept)
    in_: list | None = Field(None, alias="in")   # the value is one of these
    not_in: list | None = None             # the value is none of these (a row without the field is kept)
    empty: bool | None = None              # true: missing, null, "", [] or {}; false: anything else
    min_items: int | None = Field(None, ge=0)   # a list, mapping or string with at least this many items
    max_items: int | None = Field(None, ge=0)   # ... at most this many

    @model_validator(mode="after")
    def _some_condition(self):
        if not self.model_fields_set - {"field"}:
            raise ValueError(f"filter on {self.field!r} has no condition; add one of: equals, not_equals, in, "
                             "not_in, empty, min_items, max_items")
        return self

    def keeps(self, row: dict) -> bool:
        """Whether `row` meets this condition."""
        try:
            v, present = get_field(row, self.field), True
        except KeyError:
            v, present = None, False
        given = self.model_fields_set
        if "equals" in given and not (present and v == self.equals):
            return False
        if "not_equals" in given and present and v == self.not_equals:
            return False
        if "in_" in given and not (present and v in self.in_):
            return False
        if "not_in" in given and present and v in self.not_in:
            return False
        if "empty" in given and (v is None or v == "" or v == [] or v == {}) != self.empty:
            return False
        if given & {"min_items", "max_items"}:
            if not isinstance(v, (list, dict, str)):
                return False
            if self.min_items is not None and len(v) < self.min_items:
                return False
            if self.max_items is not None and len(v) > self.max_items:
                return False
        return True

    def describe(self) -> dict:
        """The condition as written in the task file (for results.json)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class Dataset(Strict):
    hub: str | None = None                 # hub path, e.g. GBaker/MedQA-USMLE-4-options
    config: str | None = None              # hub config name
    split: str = "test"
    local: str | None = None               # file under the data mirror, e.g. medqa/test.jsonl
    id_field: str | None = None            # item id; default: the row index
    access: Literal["public", "credentialed", "user-supplied"] = "public"
    how_to_get: str | None = None          # shown when the data is missing
    fields: list[str] = []                 # fields every row must have
    filter: list[RowFilter] = []           # rows to evaluate: those meeting every condition

    @model_validator(mode="after")
    def _somewhere(self):
        if not self.hub and not self.local:
            raise ValueError("dataset needs `hub` (a hub path), `local` (a file in the data mirror), or both")
        return self


class Variant(Strict):
    template: str                          # alternative template file
    max_tokens: int | None = Field(None, gt=0)
    stop: list[str] | None = None


class Prompt(Strict):
    template: str | None = None            # file in prompts/ or beside the task file
    messages: str | None = None            # or: a dotted field holding the chat itself, [{role, content}]
    system: str | None = None              # optional system prompt
    chat: bool = True                      # apply the model's chat template
    vars: dict[str, str] = {}              # template variable -> dotted dataset field
    variants: dict[str, Variant] = {}      # named alternatives (e.g. reasoning), chosen with --prompt-variant

    @model_validator(mode="after")
    def _one_source(self):
        if (self.template is None) == (self.messages is None):
            raise ValueError("prompt needs exactly one of `template` (a Jinja file) or `messages` (a field "
                             "holding the conversation)")
        return self


class Answer(Strict):
    type: AnswerType
    gold: str                              # field (dotted path) holding the gold answer
    gold_format: GoldFormat = "label"
    options: str | list[str] | None = None # choice: a field holding a dict/list, or a list of fields
    labels: list[str] = []                 # yesno / label / multilabel / entities types
    aliases: dict[str, list[str]] = {}     # label -> other spellings the model may use
    none_label: str | None = "none"        # multilabel: what the model writes for "no label"

    @model_validator(mode="after")
    def _consistent(self):
        t = self.type
        if "gold_format" not in self.model_fields_set:
            self.gold_format = GOLD_FORMATS[t][0]
        if self.gold_format not in GOLD_FORMATS[t]:
            raise ValueError(f"answer.gold_format {self.gold_format!r} does not fit answer.type {t!r}; "
                             f"use one of: {', '.join(GOLD_FORMATS[t])}")
        kind = answer_types.get(t)
        kind.check(self)   # the type's own rules (options of a choice task, ...): ValueError if broken
        if kind.needs_labels and not self.labels:
            raise ValueError(f"answer.type '{t}' needs answer.labels")
        if not self.labels and kind.default_labels:
            self.labels = list(kind.default_labels)
        if len(set(self.labels)) != len(self.labels) or not all(str(l).strip() for l in self.labels):
            raise ValueError("answer.labels must be distinct, non-empty labels")
        unknown = [k for k in self.aliases if k not in self.labels]
        if unknown:
            raise ValueError(f"answer.aliases has keys {unknown} that are not in answer.labels {self.labels}")
        return self


class Generation(Strict):
    max_tokens: int = Field(256, gt=0)
    stop: list[str] = []


class Loglikelihood(Strict):
    """`scoring: loglikelihood`: the answer is the choice whose continuation is most probable after the prompt."""

    choices: Literal["letters", "texts", "labels"] = "letters"  # what is scored: option letters, option
                                                                  # texts (cloze), or the answer labels
    target_delimiter: str = " "            # put between the prompt and each choice (lm-eval's default)


class FewShot(Strict):
    split: str                             # split the examples come from (same dataset)
    n: int = Field(3, ge=0)
    seed: int = 0
    target: str = "{{ gold }}"             # assistant turn for each example (Jinja)


class ItemLabels(Strict):
    file: str                              # JSONL/JSON/CSV; relative paths are under --data-dir
    id_field: str = "id"                   # the column holding the task's item id
    fields: list[str] = []                 # columns to read (default: all but id); each is a stratum
                                           # named item_labels.<column>


class Adversarial(Strict):
    field: str | None = None               # dotted row field holding a wrong reasoning trace to pre-fill
    file: str | None = None                # or a file {id, prefill} keyed by item id (under --data-dir)


NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"   # also keeps samples_<name>.jsonl inside the output directory


class Task(Strict):
    name: str = Field(pattern=NAME)
    display_name: str | None = None
    version: int
    description: str = ""
    base: str | None = None
    dataset: Dataset
    prompt: Prompt
    answer: Answer
    metrics: list[str]
    primary_metric: str | None = None
    metric_options: dict[str, dict[str, Any]] = {}
    generation: Generation = Generation()
    scoring: Literal["generate", "loglikelihood"] = "generate"
    loglikelihood: Loglikelihood = Loglikelihood()
    fewshot: FewShot | None = None
    strata: list[str] = []                 # dotted fields to report metrics by
    item_labels: ItemLabels | None = None  # per-item labels (strata) from a separate file keyed by item id
    adversarial: Adversarial | None = None # --adversarial: pre-fill a per-item wrong reasoning trace
    bootstrap_cluster: str | None = None   # dotted field: items sharing its value are resampled together
    self_consistency: bool | None = None   # default: on for votable answer types
    plugins: list[str] = []                # Python files beside the task file that register metrics
    source_file: str | None = None

    @model_validator(mode="after")
    def _primary(self):
        if not self.metrics:
            raise ValueError("metrics must name at least one metric")
        if self.primary_metric is None:
            self.primary_metric = self.metrics[0]
        elif self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric {self.primary_metric!r} is not in metrics {self.metrics}")
        return self

    @model_validator(mode="after")
    def _scorable(self):
        kind, t = self.loglikelihood.choices, self.answer.type
        if self.scoring == "loglikelihood" and kind not in answer_types.get(t).loglikelihood:
            fit = [n for n in answer_types.names() if kind in answer_types.get(n).loglikelihood]
            own = answer_types.get(t).loglikelihood
            hint = f"; use {own[0]!r} for answer.type {t!r}" if own else f"; answer.type {t!r} cannot be scored so"
            raise ValueError(f"loglikelihood.choices {kind!r} needs answer.type "
                             f"{' or '.join(repr(n) for n in fit)}{hint}")
        return self

    @property
    def votable(self) -> bool:
        return self.answer.type in VOTABLE if self.self_consistency is None else self.self_consistency

    def spec_hash(self) -> str:
        d = self.model_dump(exclude={"source_file"})
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


class GroupDefaults(Strict):
    """Run options a group's protocol fixes (e.g. a model card's decoding). They apply when the group
    is named in --tasks and the option is not given on the command line (config.apply_group_defaults)."""
    prompt_variant: str | None = None
    self_consistency: int | None = Field(None, ge=0)   # samples per item (-k)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, gt=0)


class Group(Strict):
    group: str = Field(pattern=NAME)
    display_name: str | None = None
    description: str = ""
    tasks: list[str]
    aggregate: Literal["mean", "weighted"] = "mean"
    metric: str | None = None              # metric averaged per mode where a task reports it (else primary)
    defaults: GroupDefaults | None = None
    source_file: str | None = None


# --------------------------------------------------------------------------
def package_dir(kind: str) -> Path:
    """The bundled tasks/ or prompts/ directory (inside an installed package, or the source checkout)."""
    return bundled_dir(kind)


def read_yaml(path: Path) -> dict:
    """A task, group or base file's fields (yaml.safe_load, bounded: medeval/safe_yaml.py)."""
    return load_mapping(path, "task")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_base(path: Path, data: dict, seen: tuple = ()) -> dict:
    """Merge `base:` files: looked up beside the task file, then in the bundled tasks directory."""
    if "base" not in data:
        return data
    name = data["base"]
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise MedevalError(f"{path}: field 'base': {name!r} must be a file name such as _mcq_base.yaml "
                           "(no directory), found beside the task file or among the bundled tasks")
    places = [path.parent.resolve(), package_dir("tasks").resolve()]
    base_path = next((d / name for d in places if (d / name).is_file()), None)
    if base_path is None:
        raise MedevalError(f"{path}: field 'base': {name!r} not found; looked in {places[0]} and in the "
                           f"bundled tasks {places[1]}")
    seen = seen or (path.resolve(),)
    if base_path.resolve() in seen:
        raise MedevalError(f"{path}: field 'base': {name!r} is circular "
                           f"({' -> '.join(p.name for p in (*seen, base_path))})")
    parent = _resolve_base(base_path, read_yaml(base_path), (*seen, base_path.resolve()))
    return _merge(parent, {k: v for k, v in data.items() if k != "base"})


def _validation_message(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check the spelling (see docs/tasks.md)"
        elif e["type"] == "missing":
            msg = "required field is missing (see docs/tasks.md)"
        if isinstance(e.get("input"), bool):
            msg += " (YAML reads yes/no/on/off/true/false as booleans: put the value in quotes)"
        lines.append(f"{path}: field '{loc}': {msg}")
    return "\n".join(lines)


def _declared_name(path: Path) -> str:
    """The `name` (or `group`) a task file declares, if it can be read at all; else the file's stem."""
    try:
        data = read_yaml(path)
    except MedevalError:
        return path.stem
    name = data.get("name", data.get("group"))
    return name if isinstance(name, str) and name else path.stem


def load_file(path: Path) -> Task | Group:
    data = _resolve_base(path, read_yaml(path))
    data["source_file"] = str(path)
    try:
        return Group(**data) if "group" in data else Task(**data)
    except ValidationError as e:
        raise MedevalError(_validation_message(path, e)) from None


class Registry:
    """All tasks and groups found in the bundled directory plus user --task-dir's.

    A file that cannot be loaded (bad YAML, an unknown field, a missing template, ...) is recorded in
    `broken` (its task or group name, else the file's stem -> its error) and affects only itself:
    `resolve` raises its error when it is asked for. `strict=True` (the default, for library use)
    raises every problem at once instead; the commands pass `strict=False`."""

    def __init__(self, task_dirs: list[Path] | None = None, strict: bool = True):
        user = [Path(d) for d in (task_dirs or [])]
        env = os.environ.get("MEDEVAL_TASK_DIRS")
        if env:
            user += [Path(p) for p in env.split(os.pathsep) if p]
        dirs = [package_dir("tasks"), *user]
        self.user_dirs = user
        self.tasks: dict[str, Task] = {}
        self.groups: dict[str, Group] = {}
        self.broken: dict[str, str] = {}     # name (else file stem) -> the file's error
        self.origin: dict[str, Path] = {}    # task or group name (or broken name) -> its task directory
        problems: list[str] = []

        def fail(path: Path, d: Path, message: str, name: str | None = None) -> None:
            name = name or _declared_name(path)
            problems.append(message)
            self.broken[name] = message
            self.origin[name] = d
            self.tasks.pop(name, None)
            self.groups.pop(name, None)

        for d in dirs:
            if not d.is_dir():
                raise MedevalError(f"task directory {d} does not exist")
            for path in sorted(d.glob("*.y*ml")):
                if path.name.startswith("_"):
                    continue
                if not path.resolve().is_relative_to(d.resolve()):
                    fail(path, d, f"{path}: a symlink to {path.resolve()}, outside the task directory {d}; "
                                  "copy the file into the directory instead", path.stem)   # never read it
                    continue
                try:
                    item = load_file(path)
                except MedevalError as e:   # report every broken file at once, one diagnosis each
                    fail(path, d, str(e))
                    continue
                name = item.group if isinstance(item, Group) else item.name
                if isinstance(item, Group):
                    self.groups[name] = item   # later directories override earlier ones
                else:
                    self.tasks[name] = item
                self.broken.pop(name, None)
                self.origin[name] = d
        found = {name: check(item, self) for name, item in [*self.tasks.items(), *self.groups.items()]}
        for name, lines in found.items():
            if lines:
                problems += lines
                self.broken[name] = "\n".join(lines)
                self.tasks.pop(name, None)
                self.groups.pop(name, None)
        if problems and strict:
            raise MedevalError("\n".join(problems))

    def mine(self, name: str) -> bool:
        """Whether a task or group comes from a --task-dir (or MEDEVAL_TASK_DIRS) rather than the bundled ones."""
        return self.origin.get(name) in self.user_dirs

    def resolve(self, names: list[str]) -> list[Task]:
        out: list[Task] = []
        for name in names:
            name = name.strip()
            if name in self.broken:
                raise MedevalError(self.broken[name])
            if name in self.tasks:
                picked = [self.tasks[name]]
            elif name in self.groups:
                picked = self.resolve(self.groups[name].tasks)
            else:
                close = difflib.get_close_matches(name, [*self.tasks, *self.groups], n=3, cutoff=0.5)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise MedevalError(f"unknown task or group {name!r}.{hint} Run `medeval tasks` to list them.")
            out += [t for t in picked if t.name not in {x.name for x in out}]
        for t in out:
            if t.plugins:   # a task's own code runs only when the task is used
                load_plugins(t)
                for problem in metric_problems(t)[:1]:
                    raise MedevalError(problem)
        return out

    def groups_for(self, tasks: list[Task]) -> list[Group]:
        names, out = {t.name for t in tasks}, []
        for g in self.groups.values():
            try:
                members = self.resolve(g.tasks)
            except MedevalError:   # a broken member: the group is not scored (the member was not run)
                continue
            if {t.name for t in members} <= names:
                out.append(g)
        return out


def _cycle(name: str, registry: Registry, path: tuple) -> bool:
    if name in path:
        return True
    g = registry.groups.get(name)
    return bool(g) and any(_cycle(m, registry, (*path, name)) for m in g.tasks if m in registry.groups)


def check(item: Task | Group, registry: Registry) -> list[str]:
    """Load-time checks that need more than one file: group members, templates, metric names.
    One line per problem, naming the file, the field and the fix."""
    src = item.source_file
    if isinstance(item, Group):
        out = []
        for name in item.tasks:
            if name not in registry.tasks and name not in registry.groups and name not in registry.broken:
                close = difflib.get_close_matches(name, [*registry.tasks, *registry.groups], n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else "; run `medeval tasks` to list tasks"
                out.append(f"{src}: field 'tasks': {name!r} is not a task or group{hint}")
        if _cycle(item.group, registry, ()):
            out.append(f"{src}: field 'tasks': groups include each other in a circle; remove one of the links")
        return out
    out = []
    dirs = [Path(src).parent] if src else []
    dirs.append(package_dir("prompts"))
    templates = [("prompt.template", item.prompt.template)] if item.prompt.template else []  # None: prompt.messages
    templates += [(f"prompt.variants.{k}.template", v.template) for k, v in item.prompt.variants.items()]
    for field_name, tmpl in templates:
        if not any((d / tmpl).is_file() for d in dirs):
            out.append(f"{src}: field '{field_name}': template {tmpl!r} not found in "
                       f"{' or '.join(str(d) for d in dirs)}")
    if item.plugins:   # checked when the task is used and its plugins are loaded (resolve, prepare)
        try:
            plugin_files(item)
        except MedevalError as e:
            out.append(str(e))
        return out + [p for p in metric_problems(item) if "unknown metric" not in p]
    return out + metric_problems(item)


# --------------------------------------------------------------------------
# Plugins: Python files beside a task file, named in its `plugins:`, that register metrics with
# medeval.metrics.metric. Code the user chose to run (as lm-eval's `!function`): loaded only when a
# task that names it is resolved or prepared, only from the task file's own directory, never from data.
_PLUGINS: dict[Path, str] = {}   # resolved file -> its sha256 (each file is executed once per process)


def plugin_files(task: Task) -> list[Path]:
    """The task's plugin files, checked: plain `.py` names, in the task file's directory, no symlink out."""
    out = []
    for k, name in enumerate(task.plugins):
        where = f"{task.source_file}: field 'plugins.{k}'"
        if not isinstance(name, str) or Path(name).name != name or not name.endswith(".py"):
            raise MedevalError(f"{where}: {name!r} must be the name of a .py file beside the task file "
                               "(no directory)")
        if task.source_file is None:
            raise MedevalError(f"task {task.name!r}: plugins need a task file to be found beside")
        home = Path(task.source_file).parent.resolve()
        path = Path(task.source_file).parent / name
        if not path.is_file():
            raise MedevalError(f"{where}: {name!r} not found in {home}; put the file beside the task file")
        if path.resolve().parent != home:
            raise MedevalError(f"{where}: {name!r} is a symlink to {path.resolve()}, outside the task's directory; "
                               "copy the file into the directory instead")
        out.append(path.resolve())
    return out


def load_plugins(task: Task) -> dict[str, str]:
    """Run the task's plugin files once each (they register metrics); {file name: sha256} for results.json.
    A plugin may add metrics, never replace one medeval or another plugin already registered."""
    import importlib.util

    got = {}
    for path in plugin_files(task):
        if path not in _PLUGINS:
            code = path.read_bytes()
            before = dict(metrics.REGISTRY)
            mod_name = f"medeval_plugin_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as e:   # the user's code: report where, not a traceback (--debug shows it)
                metrics.REGISTRY.clear()
                metrics.REGISTRY.update(before)
                raise MedevalError(f"{task.source_file}: field 'plugins': {path.name} failed to load: "
                                   f"{type(e).__name__}: {e}") from e
            replaced = sorted(k for k in before if metrics.REGISTRY[k] is not before[k])
            if replaced:
                metrics.REGISTRY.update({k: before[k] for k in replaced})
                raise MedevalError(f"{path}: registers metric {replaced[0]!r}, which exists already; give your "
                                   "metric its own name")
            _PLUGINS[path] = hashlib.sha256(code).hexdigest()
        got[path.name] = _PLUGINS[path]
    return got


def metric_problems(task: Task) -> list[str]:
    """Each metric of the task must exist and apply to its answer type (one line per problem)."""
    out, src, known = [], task.source_file, metrics.names()
    for m in task.metrics:
        if m not in known:
            close = difflib.get_close_matches(m, known, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else "see docs/metrics.md"
            out.append(f"{src}: field 'metrics': unknown metric {m!r}; {hint}")
        elif not metrics.get(m).applies_to(task.answer.type):
            fits = [n for n in known if metrics.get(n).applies_to(task.answer.type)]
            out.append(f"{src}: field 'metrics': metric {m!r} does not apply to answer.type "
                       f"{task.answer.type!r} (it applies to {', '.join(sorted(metrics.get(m).answer_types))}); "
                       f"remove it or use one of: {', '.join(fits)}")
    return out
