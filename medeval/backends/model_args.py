"""Parse a `--model-args` string such as `tensor_parallel_size=2,dtype=bfloat16`.

Each backend declares the keys it accepts as a `ModelArgs` subclass (a pydantic
model). This module splits the string into key/value pairs; pydantic converts
and checks the values ("2" -> 2, "True" -> True, ranges, choices). Unknown keys
and bad values raise `ModelArgsError`, whose message names the key and the fix.

A value that starts with `{` or `[` is read as JSON, so it may contain commas:
`chat_template_kwargs={"enable_thinking": false, "x": 1}`.
"""
from __future__ import annotations

import difflib
import json
import re
import types
import typing

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import MedevalError

FLAG = "--model-args"
EXAMPLE = "tensor_parallel_size=2,dtype=bfloat16"

# A comma starts a new pair only when `key=` follows it; commas inside a JSON
# value are followed by a quote, a digit or a bracket, never by `key=`.
_PAIR_START = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")


class ModelArgsError(MedevalError, ValueError):
    """The --model-args string cannot be used; the message says how to fix it."""


class ModelArgs(BaseModel):
    """Base class for a backend's --model-args keys. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


def split_pairs(text: str | None) -> dict[str, object]:
    """`"a=1,b=x"` -> `{"a": "1", "b": "x"}`; JSON values are decoded."""
    pairs: dict[str, object] = {}
    if not text or not text.strip():
        return pairs
    for part in _PAIR_START.split(text.strip()):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not key:
            raise ModelArgsError(
                f"{FLAG}: {part.strip()!r} is not key=value. Separate pairs with commas, "
                f"e.g. {FLAG} {EXAMPLE}"
            )
        if not value:
            raise ModelArgsError(f"{FLAG}: {key}= has no value; write e.g. {key}=<value> or drop it")
        if key in pairs:
            raise ModelArgsError(f"{FLAG}: {key} is given twice; keep one")
        if value[0] in "{[":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise ModelArgsError(f"{FLAG}: {key}={value} is not valid JSON ({e})") from e
        pairs[key] = value
    return pairs


def parse_model_args(text: str | None, schema: type[ModelArgs] | None = None, backend: str = "") -> dict:
    """Typed keyword arguments for the keys given in `text` (defaults are not added).

    `schema` is the backend's ModelArgs subclass; None means the vllm backend's,
    the one backend whose engine takes --model-args today.
    """
    if schema is None:
        from .vllm_backend import VLLMArgs

        schema, backend = VLLMArgs, backend or "vllm"
    pairs = split_pairs(text)
    known = sorted(schema.model_fields)
    where = f" for the {backend} backend" if backend else ""
    for key in pairs:
        if key not in schema.model_fields:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ModelArgsError(
                f"{FLAG}: unknown key {key!r}{where}.{hint} Known keys: {', '.join(known)}"
            )
    try:
        parsed = schema.model_validate(pairs)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"]) or "?"
            problems.append(f"{key}={pairs.get(key, err.get('input'))!s}: {err['msg']}")
        raise ModelArgsError(f"{FLAG}{where}: " + "; ".join(problems)) from None
    return parsed.model_dump(exclude_unset=True)


def _type_name(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "|".join(map(str, args))
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def describe_keys(schema: type[ModelArgs]) -> str:
    """One line per key (`name: type - description`), for --help texts."""
    lines = []
    for name, field in sorted(schema.model_fields.items()):
        doc = f" - {field.description}" if field.description else ""
        lines.append(f"{name}: {_type_name(field.annotation)}{doc}")
    return "\n".join(lines)
