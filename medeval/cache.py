"""Persistent generation cache (SQLite, WAL mode, safe for concurrent runs).

One row per *sample*: the key covers the backend's typed identity (model,
resolved revision or weights fingerprint, dtype, quantization, context, tokenizer,
chat template, endpoint: backends/identity.py), the hash of the exact prompt
text, every decoding parameter and the sample index, so k self-consistency samples are k rows. Rows are committed as soon
as a request completes; an interrupted run re-asks only for what is missing.

This module is the storage only. Who reads and writes it is `caching.CachingBackend`, the wrapper that
puts any backend (the model under test, or a grader's model) behind the cache.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from .backends.base import Request, Sampling

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    params TEXT NOT NULL,
    sample_index INTEGER NOT NULL,
    text TEXT NOT NULL,
    finish TEXT,
    info TEXT,
    created REAL NOT NULL
);
"""


def sample_key(model: dict, backend: str, prompt_hash: str, sampling: Sampling, index: int) -> str:
    ident = {"model": model, "backend": backend, "prompt": prompt_hash, "params": sampling.key(), "index": index}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def score_key(model: dict, backend: str, prompt_hash: str, continuation: str) -> str:
    """The key of one loglikelihood score: the continuation's log-probability after the prompt."""
    ident = {"model": model, "backend": backend, "prompt": prompt_hash, "loglikelihood": continuation}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


class Cache:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory).expanduser()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "generations.sqlite"
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=60000")
        self.db.execute(SCHEMA)
        self.hits = self.misses = self.writes = 0

    def get(self, keys: list[str]) -> dict[str, tuple[str, str | None, dict]]:
        """key -> (text, finish reason, the backend's info for that request)."""
        out = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT key, text, finish, info FROM samples WHERE key IN ({','.join('?' * len(chunk))})"
            out.update({k: (t, f, json.loads(info) if info else {}) for k, t, f, info in self.db.execute(q, chunk)})
        return out

    def put(self, rows: list[tuple[str, str, str, str, Sampling | dict, int, str, str | None, dict]]) -> None:
        """rows: (key, model, backend, prompt_hash, sampling (or a dict of parameters), index, text, finish, info);
        one transaction."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR IGNORE INTO samples VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(k, m, b, p, json.dumps(s if isinstance(s, dict) else s.key(), sort_keys=True), i, t, f,
                  json.dumps(info, default=str), now)
                 for k, m, b, p, s, i, t, f, info in rows])
        self.writes += len(rows)

    def stats(self) -> dict:
        n, = self.db.execute("SELECT COUNT(*) FROM samples").fetchone()
        models = self.db.execute("SELECT model, backend, COUNT(*) FROM samples GROUP BY model, backend").fetchall()
        return {"path": str(self.path), "entries": n,
                "by_model": [{"model": _model_name(m), "backend": b, "entries": c} for m, b, c in models]}

    def clear(self) -> int:
        with self.db:
            n = self.db.execute("DELETE FROM samples").rowcount
        return n

    def close(self):
        self.db.close()


def _model_name(stored: str) -> str | None:
    ident = json.loads(stored)
    return ident.get("model") or ident.get("id")   # "id": rows written before typed identities


class NullCache(Cache):
    """--no-cache: nothing read, nothing written."""

    def __init__(self):
        self.dir, self.path = None, None
        self.hits = self.misses = self.writes = 0

    def get(self, keys):
        return {}

    def put(self, rows):
        pass

    def stats(self):
        return {"path": None, "entries": 0}

    def close(self):
        pass


__all__ = ["Cache", "NullCache", "sample_key", "score_key", "Request"]
