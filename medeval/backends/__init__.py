"""Backends turn batches of requests into raw text. `create` picks one by name.

Adding a backend: write one module with a class that has `name`, `Args` (a ModelArgs schema of
every option it takes, flags and --model-args alike), `render`, `generate`, `identity` and
`describe` (see base.py), then add its name to `_CLASSES` below. docs/backends.md has the steps.
"""
from __future__ import annotations

import importlib

from ..errors import MedevalError
from .base import Backend, BackendError, Output, Request, Sampling
from .identity import Identity
from .model_args import parse_model_args, validate_options

NAMES = ("auto", "hf", "vllm", "openai")
_CLASSES = {"hf": ("hf", "HFBackend"), "vllm": ("vllm_backend", "VLLMBackend"),
            "openai": ("openai_backend", "OpenAIBackend")}


def resolve_name(name: str) -> str:
    if name not in NAMES:
        raise MedevalError(f"unknown backend {name!r}; choose one of: {', '.join(NAMES)}")
    if name != "auto":
        return name
    from .vllm_backend import vllm_available

    return "vllm" if vllm_available() else "hf"


def backend_class(name: str) -> type:
    module, cls = _CLASSES[resolve_name(name)]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def options_for(name: str, model_args: str | None = None, **options) -> tuple[type, dict]:
    """(backend class, its validated options). `options` come from command-line flags, `model_args` is the
    --model-args string; both are checked against the chosen backend's own `Args` schema. Loads nothing,
    so a run can check them before any work."""
    cls = backend_class(name)
    given = {k: v for k, v in options.items() if v is not None}
    extra = parse_model_args(model_args, cls.Args, cls.name)
    clash = sorted(k for k in set(given) & set(extra) if given[k] != extra[k])
    if clash:
        k = clash[0]
        raise MedevalError(f"--{k.replace('_', '-')} {given[k]} and --model-args {k}={extra[k]} disagree: give it once")
    return cls, validate_options({**given, **extra}, cls.Args, cls.name)


def create(name: str, model: str, model_args: str | None = None, **options) -> Backend:
    """Build a backend from its flags' options and the --model-args string (see options_for)."""
    cls, merged = options_for(name, model_args, **options)
    build = getattr(cls, "from_options", None)
    return build(model, merged) if build else cls(model, **merged)


__all__ = ["Backend", "BackendError", "Identity", "Output", "Request", "Sampling", "backend_class", "create",
           "options_for", "resolve_name"]
