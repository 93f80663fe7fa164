"""Prompt rendering: Jinja templates in a sandbox, undefined variables are errors.

Templates see `doc` (the dataset row), `options` (a list of {letter, text} for
multiple choice), `letters`, `labels` and `task`. Few-shot examples become
earlier user/assistant turns of the same chat.
"""
from __future__ import annotations

import hashlib
import random
import re
from functools import wraps
from pathlib import Path

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from . import answer_types
from ..fields import get_field
from ..errors import MedevalError
from .spec import Task, package_dir

# Bounds on one rendering, so a template cannot hang or exhaust the machine (docs/tasks.md).
MAX_OUTPUT = 1_000_000     # characters a template may produce
MAX_LOOP = 100_000         # loop iterations, all loops of one rendering together
MAX_SIZE = 1_000_000       # the longest string or list `*`, a width or a count argument may ask for
MAX_POWER_BITS = 4096      # the largest number `**` may produce
_WIDTH = re.compile(r"%[-#0 +]*(\d+)|\{[^{}]*?:[^{}]*?(\d+)[^{}]*\}")
SIZED_FILTERS = ("center", "indent", "wordwrap", "truncate", "format", "batch", "slice")


def _too_big(*values) -> bool:
    return any(isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_SIZE for v in values)


def _wide(text) -> bool:
    """A %-format or str.format spec in `text` with a width above MAX_SIZE."""
    return isinstance(text, str) and any(int(a or b) > MAX_SIZE for a, b in _WIDTH.findall(text))


class _Loader(jinja2.FileSystemLoader):
    """Templates from the task's directory or the bundled prompts/, never through a symlink that
    leaves them; remembers every template it read, so included ones count in the prompt hash."""

    def __init__(self, dirs: list[str]):
        super().__init__(dirs, encoding="utf-8")
        self.loaded: dict[str, str] = {}

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        real = Path(filename).resolve()
        if not any(real.is_relative_to(Path(d).resolve()) for d in self.searchpath):
            raise MedevalError(f"template {template!r}: {filename} leads to {real}, outside the task's directory "
                               "and the bundled prompts/; copy the template into the task's directory")
        self.loaded[template] = source
        return source, filename, uptodate


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox plus limits on loops, sizes and output (the sandbox bounds range())."""

    intercepted_binops = frozenset(["*", "**", "%"])

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.budget = MAX_LOOP
        self.filters["_medeval_loop"] = self._count
        for name in SIZED_FILTERS:
            self.filters[name] = self._sized(self.filters[name])

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):   # every loop's iterable goes through the counter
            loop.iter = nodes.Filter(loop.iter, "_medeval_loop", [], [], None, None, lineno=loop.lineno)
        return tree

    def _count(self, iterable):
        for x in iterable:
            self.budget -= 1
            if self.budget < 0:
                raise SecurityError(f"more than {MAX_LOOP} loop iterations in one rendering")
            yield x

    @staticmethod
    def _sized(f):
        @wraps(f)
        def bounded(*args, **kwargs):
            if _too_big(*args[1:], *kwargs.values()) or _wide(args[0] if args else None):
                raise SecurityError(f"filter argument larger than {MAX_SIZE}")
            return f(*args, **kwargs)
        return bounded

    def call_binop(self, context, operator, left, right):
        if operator == "*":
            seq, times = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_SIZE:
                raise SecurityError(f"'*' would make a sequence longer than {MAX_SIZE}")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(abs(left), 2).bit_length() * right > MAX_POWER_BITS:
                raise SecurityError(f"'**' would make a number above 2**{MAX_POWER_BITS}")
        elif operator == "%" and _wide(left):
            raise SecurityError(f"a format width above {MAX_SIZE}")
        return super().call_binop(context, operator, left, right)

    def call(self, context, obj, *args, **kwargs):
        if _too_big(*args, *kwargs.values()):
            raise SecurityError(f"call argument larger than {MAX_SIZE}")
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value):
        """str.format / format_map, refused when a width in the format string is above MAX_SIZE."""
        if _wide(getattr(value, "__self__", None)):
            def refuse(*args, **kwargs):
                raise SecurityError(f"a format width above {MAX_SIZE}")
            return refuse
        return super().wrap_str_format(value)

    def render(self, template, ctx: dict) -> str:
        """The rendered text, within MAX_LOOP iterations and MAX_OUTPUT characters."""
        self.budget, size, out = MAX_LOOP, 0, []
        for piece in template.generate(**ctx):
            size += len(piece)
            if size > MAX_OUTPUT:
                raise SecurityError(f"output longer than {MAX_OUTPUT} characters")
            out.append(piece)
        return "".join(out)


def _env(task: Task) -> BoundedSandbox:
    dirs = []
    if task.source_file:
        dirs.append(str(Path(task.source_file).parent))
    dirs.append(str(package_dir("prompts")))
    return BoundedSandbox(
        loader=_Loader(dirs), undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
        trim_blocks=True, lstrip_blocks=True)


def _referenced(env: BoundedSandbox, name: str, seen: set) -> None:
    """Load every template `name` includes, imports or extends by a constant name (recursively)."""
    source = env.loader.get_source(env, name)[0]
    for ref in meta.find_referenced_templates(env.parse(source)):
        if ref is not None and ref not in seen:
            seen.add(ref)
            _referenced(env, ref, seen)


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
        env = self.env = _env(task)
        if name is None:   # prompt.messages: the row holds the conversation itself (HealthBench)
            self.template, self.source = None, f"messages from field {task.prompt.messages}"
            self.target = None
            self.system = env.from_string(task.prompt.system) if task.prompt.system else None
            self.template_name, self.fewshot_rows = "(conversation)", []
            return
        try:
            self.template = env.get_template(name)
            self.source = env.loader.get_source(env, name)[0]
            _referenced(env, name, {name})
            self.target = env.from_string(task.fewshot.target) if task.fewshot else None
            self.system = env.from_string(task.prompt.system) if task.prompt.system else None
        except jinja2.TemplateNotFound as e:
            what = f"template {name!r}" if e.name == name else f"template {e.name!r} (included by {name!r})"
            raise MedevalError(f"{task.source_file}: field 'prompt.template': {what} not found in "
                               f"the task's directory or {package_dir('prompts')}") from None
        except jinja2.TemplateSyntaxError as e:
            raise MedevalError(f"{e.filename or name}: line {e.lineno}: Jinja syntax error: {e.message}") from None
        except UnicodeDecodeError:
            raise MedevalError(f"template {name!r}: not UTF-8; save it as UTF-8") from None
        self.template_name = name
        self.fewshot_rows = fewshot_rows or []

    def prompt_hash(self) -> str:
        """The template, every template it pulls in ({% include %}, import, extends), system prompt,
        few-shot settings and chat flag."""
        parts = [self.source, self.task.prompt.system or "", repr(self.task.fewshot), str(self.task.prompt.chat)]
        parts += [f"{n}\x00{src}" for n, src in sorted(self.env.loader.loaded.items()) if n != self.template_name]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def _context(self, row: dict, options: list[dict] | None = None) -> dict:
        options = answer_types.of(self.task).options(self.task, row) if options is None else options
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
            return self.env.render(tmpl, ctx).strip()
        except (OverflowError, MemoryError, RecursionError) as e:
            raise MedevalError(f"template {self.template_name!r} ({what}): refused: {e or type(e).__name__}; "
                               "templates are bounded (see docs/tasks.md)") from None
        except jinja2.UndefinedError as e:
            raise MedevalError(f"template {self.template_name!r} ({what}): {e.message}; the dataset row lacks "
                               "that field or the template misspells it") from None
        except SecurityError as e:
            raise MedevalError(f"template {self.template_name!r}: refused by the sandbox: {e}") from None
        except jinja2.TemplateError as e:
            raise MedevalError(f"template {self.template_name!r} ({what}): {e}") from None

    def messages(self, row: dict, item_id: str = "?", options: list[dict] | None = None) -> tuple[tuple[str, str], ...]:
        """The chat for one row (`options`: the row's options when already read)."""
        msgs: list[tuple[str, str]] = []
        if self.system:
            msgs.append(("system", self._render(self.system, {}, "system prompt")))
        if self.template is None:
            return tuple(msgs) + self._conversation(row, item_id)
        for ex in self._shots(item_id):
            ctx = self._context(ex)
            msgs.append(("user", self._render(self.template, ctx, "few-shot example")))
            gold = answer_types.read(self.task, ex)[0]
            msgs.append(("assistant", self._render(self.target, {**ctx, "gold": gold}, "few-shot target")))
        msgs.append(("user", self._render(self.template, self._context(row, options), f"item {item_id}")))
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
