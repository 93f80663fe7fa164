"""Parse a `--model-args` string such as `tensor_parallel_size=2,dtype=bfloat16`.

Each backend declares the keys it accepts as a `ModelArgs` subclass (a pydantic
model), its `Args`, next to the backend itself. This module splits the string into key/value pairs; pydantic converts
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


def parse_model_args(text: str | None, schema: type[ModelArgs], backend: str = "") -> dict:
    """Typed keyword arguments for the keys given in `text` (defaults are not added).

    `schema` is the chosen backend's ModelArgs subclass (its `Args`).
    """
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
        raise ModelArgsError(f"{FLAG}{where}: {_explain(e, pairs)}") from None
    return parsed.model_dump(exclude_unset=True)


def _explain(e: ValidationError, given: dict) -> str:
    """`key=value: why` per bad key; the alternatives of a union are joined with 'or'."""
    why: dict[str, list[str]] = {}
    for err in e.errors():
        key = str(err["loc"][0]) if err["loc"] else "?"
        why.setdefault(key, []).append(err["msg"])
    return "; ".join(f"{k}={given.get(k)!s}: {' or '.join(dict.fromkeys(m))}" for k, m in why.items())


def validate_options(options: dict, schema: type[ModelArgs], backend: str) -> dict:
    """Check options that came from command-line flags (and --model-args) against a backend's schema."""
    unknown = sorted(set(options) - set(schema.model_fields))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ModelArgsError(f"the {backend} backend does not take {flags}; its options are: "
                             f"{', '.join(sorted(schema.model_fields))}")
    try:
        return schema.model_validate(options).model_dump(exclude_unset=True)
    except ValidationError as e:
        raise ModelArgsError(f"the {backend} backend: {_explain(e, options)}") from None


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
