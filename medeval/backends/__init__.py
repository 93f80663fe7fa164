"""Backends turn batches of requests into raw text. `create` picks one by name."""
from __future__ import annotations

from ..errors import MedevalError
from .base import Backend, BackendError, Output, Request, Sampling

NAMES = ("auto", "hf", "vllm", "openai")


def resolve_name(name: str) -> str:
    if name not in NAMES:
        raise MedevalError(f"unknown backend {name!r}; choose one of: {', '.join(NAMES)}")
    if name != "auto":
        return name
    try:
        from .vllm_backend import vllm_available
    except ImportError:
        return "hf"
    return "vllm" if vllm_available() else "hf"


def create(name: str, model: str, **kwargs) -> Backend:
    """Build a backend. kwargs are that backend's constructor options (see its class)."""
    name = resolve_name(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if name == "hf":
        from .hf import HFBackend

        allowed = {"revision", "batch_size", "trust_remote_code", "dtype", "device", "context_policy",
                   "chat_template_kwargs"}
        return HFBackend(model, **_only(kwargs, allowed, name))
    if name == "vllm":
        from .vllm_backend import VLLMBackend

        allowed = {"revision", "trust_remote_code", "engine_args", "chat_template_kwargs", "batch_invariant"}
        return VLLMBackend(model, **_only(kwargs, allowed, name))
    from .openai_backend import OpenAIBackend

    allowed = {"base_url", "api", "concurrency", "max_retries", "timeout", "api_key_env", "extra_body",
               "prefill_flags", "tokenizer", "chat_template_kwargs", "samples"}
    return OpenAIBackend(model, **_only(kwargs, allowed, name))


def _only(kwargs: dict, allowed: set, name: str) -> dict:
    extra = sorted(set(kwargs) - allowed)
    if extra:
        raise MedevalError(f"backend {name!r} does not take option(s) {', '.join(extra)}; it takes: "
                           f"{', '.join(sorted(allowed))}")
    return kwargs


__all__ = ["Backend", "BackendError", "Output", "Request", "Sampling", "create", "resolve_name"]
