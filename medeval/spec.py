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
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import MedevalError

AnswerType = Literal["choice", "yesno", "label", "multilabel", "entities", "text", "span", "diagnosis", "rubric"]
VOTABLE = {"choice", "yesno", "label", "multilabel"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dataset(Strict):
    hub: str | None = None                 # hub path, e.g. GBaker/MedQA-USMLE-4-options
    config: str | None = None              # hub config name
    split: str = "test"
    local: str | None = None               # file under the data mirror, e.g. medqa/test.jsonl
    id_field: str | None = None            # item id; default: the row index
    access: Literal["public", "credentialed", "user-supplied"] = "public"
    how_to_get: str | None = None          # shown when the data is missing
    fields: list[str] = []                 # fields every row must have

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
    gold_format: Literal["letter", "index0", "index1", "label", "labels", "text", "texts", "entities"] = "label"
    options: str | list[str] | None = None # choice: a field holding a dict/list, or a list of fields
    labels: list[str] = []                 # yesno / label / multilabel / entities types
    aliases: dict[str, list[str]] = {}     # label -> other spellings the model may use
    none_label: str | None = "none"        # multilabel: what the model writes for "no label"

    @model_validator(mode="after")
    def _consistent(self):
        if self.type == "choice" and not self.options:
            raise ValueError("answer.type 'choice' needs answer.options (a field, or a list of fields)")
        if self.type in ("label", "multilabel", "entities") and not self.labels:
            raise ValueError(f"answer.type '{self.type}' needs answer.labels")
        if self.type == "yesno" and not self.labels:
            self.labels = ["yes", "no", "maybe"]
        return self


class Generation(Strict):
    max_tokens: int = Field(256, gt=0)
    stop: list[str] = []


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
    fewshot: FewShot | None = None
    strata: list[str] = []                 # dotted fields to report metrics by
    item_labels: ItemLabels | None = None  # per-item labels (strata) from a separate file keyed by item id
    adversarial: Adversarial | None = None # --adversarial: pre-fill a per-item wrong reasoning trace
    bootstrap_cluster: str | None = None   # dotted field: items sharing its value are resampled together
    self_consistency: bool | None = None   # default: on for votable answer types
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

    @property
    def votable(self) -> bool:
        return self.answer.type in VOTABLE if self.self_consistency is None else self.self_consistency

    def spec_hash(self) -> str:
        d = self.model_dump(exclude={"source_file"})
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


class GroupDefaults(Strict):
    """Run options a group's protocol fixes (e.g. a model card's decoding). They apply when the group
    is named in --tasks and the option is not given on the command line (runner.apply_group_defaults)."""
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
    """The bundled tasks/ or prompts/ directory (source checkout, or installed share/)."""
    here = Path(__file__).resolve().parent.parent / kind
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "medeval" / kind


def read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise MedevalError(f"{path}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise MedevalError(f"{path}:{where}: malformed YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    if not isinstance(data, dict):
        raise MedevalError(f"{path}: expected a mapping of fields (name:, version:, ...), got {type(data).__name__}")
    return data


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_base(path: Path, data: dict, seen=()) -> dict:
    if "base" not in data:
        return data
    base_path = (path.parent / data["base"]).resolve()
    if base_path.parent != path.parent.resolve():
        raise MedevalError(f"{path}: field 'base': {data['base']!r} must be a file in the same directory")
    if base_path in seen or not base_path.is_file():
        raise MedevalError(f"{path}: field 'base': {data['base']!r} not found (or circular)")
    parent = _resolve_base(base_path, read_yaml(base_path), (*seen, base_path))
    merged = _merge(parent, {k: v for k, v in data.items() if k != "base"})
    return merged


def _validation_message(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check the spelling (see docs/tasks.md)"
        elif e["type"] == "missing":
            msg = "required field is missing (see docs/tasks.md)"
        if isinstance(e.get("input"), bool):
            msg += " (YAML reads yes/no/on/off/true/false as booleans: put the value in quotes)"
        lines.append(f"{path}: field '{loc}': {msg}")
    return "\n".join(lines)


def load_file(path: Path) -> Task | Group:
    data = _resolve_base(path, read_yaml(path))
    data["source_file"] = str(path)
    try:
        return Group(**data) if "group" in data else Task(**data)
    except ValidationError as e:
        raise MedevalError(_validation_message(path, e)) from None


class Registry:
    """All tasks and groups found in the bundled directory plus user --task-dir's."""

    def __init__(self, task_dirs: list[Path] | None = None):
        dirs = [package_dir("tasks"), *[Path(d) for d in (task_dirs or [])]]
        env = os.environ.get("MEDEVAL_TASK_DIRS")
        if env:
            dirs += [Path(p) for p in env.split(os.pathsep) if p]
        self.tasks: dict[str, Task] = {}
        self.groups: dict[str, Group] = {}
        problems: list[str] = []
        for d in dirs:
            if not d.is_dir():
                raise MedevalError(f"task directory {d} does not exist")
            for path in sorted(d.glob("*.y*ml")):
                if path.name.startswith("_"):
                    continue
                try:
                    item = load_file(path)
                except MedevalError as e:   # report every broken file at once, one diagnosis each
                    problems.append(str(e))
                    continue
                if isinstance(item, Group):
                    self.groups[item.group] = item   # later directories override earlier ones
                else:
                    self.tasks[item.name] = item
        if problems:
            raise MedevalError("\n".join(problems))

    def resolve(self, names: list[str]) -> list[Task]:
        out: list[Task] = []
        for name in names:
            name = name.strip()
            if name in self.tasks:
                picked = [self.tasks[name]]
            elif name in self.groups:
                picked = self.resolve(self.groups[name].tasks)
            else:
                close = difflib.get_close_matches(name, [*self.tasks, *self.groups], n=3, cutoff=0.5)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise MedevalError(f"unknown task or group {name!r}.{hint} Run `medeval tasks` to list them.")
            out += [t for t in picked if t.name not in {x.name for x in out}]
        return out

    def groups_for(self, tasks: list[Task]) -> list[Group]:
        names = {t.name for t in tasks}
        return [g for g in self.groups.values() if {t.name for t in self.resolve(g.tasks)} <= names]
