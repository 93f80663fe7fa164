"""Prompt rendering: Jinja templates in a sandbox, undefined variables are errors.

Templates see `doc` (the dataset row), `options` (a list of {letter, text} for
multiple choice), `letters`, `labels` and `task`. Few-shot examples become
earlier user/assistant turns of the same chat.
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from .answers import gold_of, options_of
from .data import get_field
from .errors import MedevalError
from .spec import Task, package_dir


def _env(task: Task) -> ImmutableSandboxedEnvironment:
    dirs = []
    if task.source_file:
        dirs.append(str(Path(task.source_file).parent))
    dirs.append(str(package_dir("prompts")))
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(dirs, encoding="utf-8"),
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
        trim_blocks=True, lstrip_blocks=True)


class Renderer:
    """Compiles a task's templates once and renders items into chat messages."""

    def __init__(self, task: Task, variant: str | None = None, fewshot_rows: list[dict] | None = None):
        self.task = task
        name = task.prompt.template
        if variant:
            if variant not in task.prompt.variants:
                raise MedevalError(f"{task.source_file}: field 'prompt.variants': no variant {variant!r} "
                                   f"(has: {', '.join(task.prompt.variants) or 'none'})")
            name = task.prompt.variants[variant].template
        env = _env(task)
        if name is None:   # prompt.messages: the row holds the conversation itself (HealthBench)
            self.template, self.source = None, f"messages from field {task.prompt.messages}"
            self.target = None
            self.system = env.from_string(task.prompt.system) if task.prompt.system else None
            self.template_name, self.fewshot_rows = "(conversation)", []
            return
        try:
            self.template = env.get_template(name)
            self.source = env.loader.get_source(env, name)[0]
            self.target = env.from_string(task.fewshot.target) if task.fewshot else None
            self.system = env.from_string(task.prompt.system) if task.prompt.system else None
        except jinja2.TemplateNotFound:
            raise MedevalError(f"{task.source_file}: field 'prompt.template': template {name!r} not found in "
                               f"the task's directory or {package_dir('prompts')}") from None
        except jinja2.TemplateSyntaxError as e:
            raise MedevalError(f"{e.filename or name}: line {e.lineno}: Jinja syntax error: {e.message}") from None
        except UnicodeDecodeError:
            raise MedevalError(f"template {name!r}: not UTF-8; save it as UTF-8") from None
        self.template_name = name
        self.fewshot_rows = fewshot_rows or []

    def prompt_hash(self) -> str:
        parts = [self.source, self.task.prompt.system or "", repr(self.task.fewshot), str(self.task.prompt.chat)]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def _context(self, row: dict) -> dict:
        options = options_of(self.task, row)
        ctx = {"doc": row, "options": options, "letters": [o["letter"] for o in options],
               "labels": self.task.answer.labels, "task": {"name": self.task.name}}
        for var, path in self.task.prompt.vars.items():
            try:
                ctx[var] = get_field(row, path)
            except KeyError:
                raise MedevalError(f"{self.task.source_file}: field 'prompt.vars.{var}': the dataset row has no "
                                   f"field {path!r} (row fields: {', '.join(sorted(row))})") from None
        return ctx

    def _render(self, tmpl, ctx: dict, what: str) -> str:
        try:
            return tmpl.render(**ctx).strip()
        except jinja2.UndefinedError as e:
            raise MedevalError(f"template {self.template_name!r} ({what}): {e.message}; the dataset row lacks "
                               "that field or the template misspells it") from None
        except SecurityError as e:
            raise MedevalError(f"template {self.template_name!r}: refused by the sandbox: {e}") from None
        except jinja2.TemplateError as e:
            raise MedevalError(f"template {self.template_name!r} ({what}): {e}") from None

    def messages(self, row: dict, item_id: str = "?") -> tuple[tuple[str, str], ...]:
        msgs: list[tuple[str, str]] = []
        if self.system:
            msgs.append(("system", self._render(self.system, {}, "system prompt")))
        if self.template is None:
            return tuple(msgs) + self._conversation(row, item_id)
        for ex in self._shots(item_id):
            ctx = self._context(ex)
            msgs.append(("user", self._render(self.template, ctx, "few-shot example")))
            msgs.append(("assistant", self._render(self.target, {**ctx, "gold": gold_of(self.task, ex)}, "few-shot target")))
        msgs.append(("user", self._render(self.template, self._context(row), f"item {item_id}")))
        return tuple(msgs)

    def _conversation(self, row: dict, item_id: str) -> tuple[tuple[str, str], ...]:
        field = self.task.prompt.messages
        try:
            conv = get_field(row, field)
        except KeyError:
            raise MedevalError(f"{self.task.source_file}: field 'prompt.messages': item {item_id} has no field "
                               f"{field!r}") from None
        ok = isinstance(conv, list) and conv and all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str) for m in conv)
        if not ok or conv[-1]["role"] != "user":
            raise MedevalError(f"{self.task.source_file}: field 'prompt.messages': item {item_id}: {field!r} must be "
                               "a non-empty list of {role: system|user|assistant, content: text} ending with a "
                               "user turn")
        return tuple((m["role"], m["content"]) for m in conv)

    def _shots(self, item_id: str) -> list[dict]:
        fs = self.task.fewshot
        if not fs or not fs.n or not self.fewshot_rows:
            return []
        rng = random.Random(f"{fs.seed}:{item_id}")
        return rng.sample(self.fewshot_rows, min(fs.n, len(self.fewshot_rows)))
