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
import logging
import os
import re
import sqlite3
import time
from pathlib import Path

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .base import Request, Sampling
from ..errors import MedevalError

log = logging.getLogger(__name__)
DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")   # what a damaged file raises; "locked" or "busy" are not damage
FULL = ("SQLITE_FULL", "SQLITE_IOERR")           # the disk is full or failing
SURROGATE = re.compile("[\ud800-\udfff]")      # a lone UTF-16 surrogate (a pair is decoded into one character)

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


def damage_of(err: BaseException) -> bool:
    return getattr(err, "sqlite_errorname", None) in DAMAGED or "malformed" in str(err) or "not a database" in str(err)


def replace_surrogates(text: str) -> tuple[str, int]:
    """`text` with every lone UTF-16 surrogate replaced by U+FFFD (SQLite and UTF-8 files cannot hold
    one), and how many were replaced."""
    return SURROGATE.subn("\ufffd", text) if isinstance(text, str) else (text, 0)


class Cache:
    """The cache file `generations.sqlite` in `directory`. Opening checks it (`PRAGMA quick_check`): a
    damaged file (a crash, a full disk, a copy cut short) is moved aside to
    `generations.sqlite.damaged-<time>-<pid>` with a one-line warning naming both files, and the run goes on
    with a fresh, empty cache (`heal=False`: the damage is recorded in `self.damage` instead, for
    `medeval cache info`). Rows of the damaged file are not copied over: a damaged page can hold a
    changed text that still reads, and a wrong cached answer is worse than a regenerated one."""

    def __init__(self, directory: str | Path, heal: bool = True):
        self.dir = Path(directory).expanduser()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "generations.sqlite"
        self.hits = self.misses = self.writes = self.repaired = 0
        self.damage: str | None = None
        self.moved_to: Path | None = None
        self._inode = _inode(self.path)   # the file found: another process may replace it once it is damaged
        try:
            self._open_when_free()
        except sqlite3.DatabaseError as e:
            if not (self.path.is_dir() or damage_of(e)):   # locked, unreadable, full: not damage
                raise self._failure(e, "open") from None
            self.damage = str(e)
            if not heal:
                return
            self._move_aside()
            try:
                self._open_when_free()
            except sqlite3.DatabaseError as e2:
                raise self._failure(e2, "open") from None

    def _open_when_free(self) -> None:
        """_open, tried again when SQLite answers "locked" at once: two processes that open a new cache file
        together both ask to switch it to WAL, and SQLite refuses one of them without waiting (its deadlock
        rule), so the one refused rolls back and tries again a moment later."""
        for attempt in Retrying(retry=retry_if_exception(_busy), stop=stop_after_attempt(8), reraise=True,
                                wait=wait_random_exponential(multiplier=0.05, max=2)):
            with attempt:
                self._open()

    def _open(self) -> None:
        if self.path.is_dir():
            raise sqlite3.DatabaseError(f"{self.path} is a directory, not a cache file")
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            self.db.execute("PRAGMA busy_timeout=60000")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(SCHEMA)
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                found = "; ".join(problems).replace("\n", "; ")
                raise sqlite3.DatabaseError(f"database disk image is malformed: {found[:200]}")
        except BaseException:
            self.db.close()
            raise

    def _move_aside(self) -> None:
        """Rename the damaged file (and its -wal/-shm companions) out of the way; warn in one line."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{os.getpid()}")
        try:
            if _inode(self.path) != self._inode:   # another process sharing the cache moved it (and made a fresh one)
                raise FileNotFoundError(self.path)
            os.replace(self.path, target)
        except FileNotFoundError:
            target = None
        except OSError as e:
            raise MedevalError(f"{self.path}: the generation cache is damaged ({self.damage}) and cannot be "
                               f"moved aside ({e.strerror}); delete it, or pass another --cache-dir or --no-cache") from None
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists() and target is not None:
                os.replace(side, target.with_name(target.name + suffix))
        self.moved_to = target
        if target is not None:
            log.warning("the generation cache %s is damaged (%s); moved it aside to %s and continuing with a fresh "
                        "cache", self.path, self.damage, target)

    def _failure(self, err: sqlite3.Error, what: str) -> MedevalError:
        """One line naming the cache file and the directory for an error SQLite raised."""
        name = getattr(err, "sqlite_errorname", "")
        if name in FULL or "full" in str(err) or "disk I/O" in str(err):
            return MedevalError(f"{self.path}: cannot {what} the generation cache ({err}): is the disk of {self.dir} "
                                "full? Free space there, or pass another --cache-dir or --no-cache")
        if damage_of(err):
            return MedevalError(f"{self.path}: the generation cache is damaged ({err}); `medeval cache check` "
                                "reports it and the next run moves it aside")
        return MedevalError(f"{self.path}: cannot {what} the generation cache ({err}); pass another --cache-dir "
                            "or --no-cache")

    def get(self, keys: list[str]) -> dict[str, tuple[str, str | None, dict]]:
        """key -> (text, finish reason, the backend's info for that request)."""
        out = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT key, text, finish, info FROM samples WHERE key IN ({','.join('?' * len(chunk))})"
            try:
                rows = self.db.execute(q, chunk).fetchall()
            except sqlite3.DatabaseError as e:
                raise self._failure(e, "read") from None
            out.update({k: (t, f, json.loads(info) if info else {}) for k, t, f, info in rows})
        return out

    def put(self, rows: list[tuple[str, str, str, str, Sampling | dict, int, str, str | None, dict]],
            replace: bool = False) -> None:
        """rows: (key, model, backend, prompt_hash, sampling (or a dict of parameters), index, text, finish, info);
        one transaction. `replace`: overwrite rows already there (a grader's unusable reply asked again)."""
        now = time.time()
        verb = "REPLACE" if replace else "IGNORE"
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany(
                    f"INSERT OR {verb} INTO samples VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(k, m, b, p, json.dumps(s if isinstance(s, dict) else s.key(), sort_keys=True), i, t, f,
                      json.dumps(info, default=str), now)
                     for k, m, b, p, s, i, t, f, info in rows])
        except sqlite3.DatabaseError as e:
            raise self._failure(e, "write to") from None
        self.writes += len(rows)

    def stats(self) -> dict:
        if self.damage is not None and self.moved_to is None:
            return {"path": str(self.path), "damaged": self.damage,
                    "fix": "the next `medeval run` moves it aside and starts a fresh cache; "
                           "`medeval cache clear` does it now"}
        try:
            n, = self.db.execute("SELECT COUNT(*) FROM samples").fetchone()
            models = self.db.execute("SELECT model, backend, COUNT(*) FROM samples GROUP BY model, backend").fetchall()
        except sqlite3.DatabaseError as e:
            raise self._failure(e, "read") from None
        return {"path": str(self.path), "entries": n,
                "by_model": [{"model": _model_name(m), "backend": b, "entries": c} for m, b, c in models]}

    def check(self) -> list[str]:
        """`PRAGMA integrity_check`: [] when the file is sound, else SQLite's findings (at most 20)."""
        if self.damage is not None and self.moved_to is None:
            return [self.damage]
        try:
            found = [r[0] for r in self.db.execute("PRAGMA integrity_check(20)")]
        except sqlite3.DatabaseError as e:
            return [str(e)]
        return [] if found == ["ok"] else found

    def clear(self) -> int:
        try:
            with self.db:
                n = self.db.execute("DELETE FROM samples").rowcount
        except sqlite3.DatabaseError as e:
            raise self._failure(e, "clear") from None
        return n

    def close(self):
        if getattr(self, "db", None) is not None:
            self.db.close()


def _busy(err: BaseException) -> bool:
    return isinstance(err, sqlite3.OperationalError) and ("locked" in str(err) or "busy" in str(err))


def _inode(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _model_name(stored: str) -> str | None:
    ident = json.loads(stored)
    return ident.get("model") or ident.get("id")   # "id": rows written before typed identities


class NullCache(Cache):
    """--no-cache: nothing read, nothing written."""

    def __init__(self):
        self.dir, self.path = None, None
        self.hits = self.misses = self.writes = self.repaired = 0
        self.damage = self.moved_to = None

    def get(self, keys):
        return {}

    def put(self, rows, replace=False):
        pass

    def stats(self):
        return {"path": None, "entries": 0}

    def close(self):
        pass


__all__ = ["Cache", "NullCache", "sample_key", "score_key", "Request"]
