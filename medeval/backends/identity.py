"""What a model's outputs belong to: the typed identity every backend reports.

`Identity` holds everything that changes a backend's outputs for a given prompt
and decoding: the model and its resolved revision, a fingerprint of local
weights, dtype, quantization, context length and policy, tokenizer and chat
template, and the endpoint for served models. The cache key, the `model.identity`
block of results.json and the gate's same-model check all derive from it (see
docs/backends.md, "Model identity").

Performance-only settings (batch size, concurrency, GPU memory share, parallel
sizes) are not part of it: they do not change which model answers.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..results.provenance import identity_hash

# Files whose content is hashed in full (small): config, tokenizer, chat template, generation defaults.
SMALL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja",
               "chat_template.json", "added_tokens.json", "preprocessor_config.json", "quantization_config.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack")
CHUNK = 1 << 20  # bytes read at the start, middle and end of each weight file


@dataclass(frozen=True)
class Identity:
    """Everything that makes one backend's outputs differ from another's. Two runs share cached
    samples only when their identities are equal."""

    backend: str
    model: str                          # hub id, local path, served model name, or the embedded model's id
    revision: str | None = None         # as requested (branch, tag, commit)
    commit: str | None = None           # as resolved (hub commit hash, package version)
    weights: str | None = None          # fingerprint of a local checkpoint directory (fingerprint_dir)
    dtype: str | None = None
    quantization: str | None = None
    max_context: int | None = None
    context_policy: str | None = None
    tokenizer: str | None = None        # fingerprint of the tokenizer (vocabulary and special tokens)
    chat_template: str | None = None    # sha256 of the chat template text
    chat_template_kwargs: dict = field(default_factory=dict)
    endpoint: str | None = None         # OpenAI-compatible base URL (without credentials)
    options: dict = field(default_factory=dict)  # other backend options that change outputs

    def as_dict(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        """A stable hash of the whole identity (the cache's model key)."""
        return identity_hash(self.as_dict())


def sha256_text(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def local_dir(model: str) -> Path | None:
    """The checkpoint directory when `model` names one on disk, else None (a hub id)."""
    path = Path(model).expanduser()
    return path.resolve() if path.is_dir() else None


def hub_commit(model: str, revision: str | None = None, cache_dir: str | None = None) -> str | None:
    """The commit a hub id resolves to, read from the local hub cache (no network); None if unknown."""
    if revision and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision
    if "/" not in model or local_dir(model):
        return None
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return None
    ref = Path(cache_dir or HF_HUB_CACHE) / f"models--{model.replace('/', '--')}" / "refs" / (revision or "main")
    return ref.read_text().strip() if ref.is_file() else None


def _sampled_hash(path: Path, size: int) -> str:
    """sha256 of the first, middle and last CHUNK bytes: cheap on a 16 GB file, and any re-save of
    trained weights changes them (a rewrite that keeps them also changes the mtime, which is recorded too)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for offset in sorted({0, max(0, size // 2 - CHUNK // 2), max(0, size - CHUNK)}):
            f.seek(offset)
            h.update(f.read(CHUNK))
    return h.hexdigest()


def fingerprint_dir(directory: str | Path) -> str:
    """A fingerprint of a local checkpoint that changes when it is rewritten in place, without reading it all.

    Weight files: relative name, size, mtime (ns) and a hash of three 1 MiB samples. Config, tokenizer
    and chat-template files: their whole content. Reads at most about 3 MiB per weight file.
    """
    root = Path(directory)
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if name.endswith(WEIGHT_SUFFIXES):
                st = path.stat()
                entries.append([rel, st.st_size, st.st_mtime_ns, _sampled_hash(path, st.st_size)])
            elif name in SMALL_FILES:
                entries.append([rel, hashlib.sha256(path.read_bytes()).hexdigest()])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def tokenizer_fingerprint(tok) -> str:
    """The vocabulary (with added and special tokens) of a transformers tokenizer, hashed."""
    h = hashlib.sha256(type(tok).__name__.encode())
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:  # fast tokenizers: the whole tokenizer.json, normaliser and merges included
        h.update(backend.to_str().encode("utf-8"))
    else:
        h.update(json.dumps(sorted(tok.get_vocab().items())).encode("utf-8"))
    h.update(json.dumps(tok.special_tokens_map, sort_keys=True, default=str).encode("utf-8"))
    return h.hexdigest()
