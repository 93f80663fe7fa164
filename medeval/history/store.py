"""The history store: every checkpoint's results and per-item outcomes in one database (docs/history.md).

One code path (SQLAlchemy Core) serves both backends: the default, an SQLite file under medeval's home
(`medeval.paths.medeval_home() / "history.sqlite"`), and PostgreSQL for a team (`--store
postgresql://user@host/db`, driven by psycopg 3). Tables:

* runs: one row per ingested run directory, keyed by the SHA-256 of its results.json (adding the same run
  again changes nothing); its checkpoint name, model id, revision, identity hash, the directory it was read
  from, and a copy of results.json;
* task_results: each (run, task, mode, metric) block: value, 95% interval, n, task version;
* items: each (run, task, mode, item id) outcome: correct (the sample row's 0/1 or score), pred, gold,
  self-consistency agreement; with the identity hash and task version beside it, so an outcome is keyed by
  identity hash, task version, item id and mode;
* samples: the samples row of each item as written by `medeval run` (JSON), so that a run can be written
  back to a directory (`materialise`) when the one it was read from is gone;
* gates: gate verdicts recorded against a run (`medeval gate --history`), which `history:last-pass` reads.

A task keeps one version per store: adding a run whose task version differs from the one stored under the
same task name is refused (a changed task is a new series, not a point on the old one).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..paths import medeval_home
from ..results import ResultsError, Run, atomic_write, now_iso, read_results
from ..results.samples import read_samples

STORE_ENV = "MEDEVAL_HISTORY_STORE"

META = sa.MetaData()
RUNS = sa.Table(
    "runs", META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("model_id", sa.Text, nullable=False),
    sa.Column("revision", sa.Text),
    sa.Column("identity_hash", sa.Text),
    sa.Column("created", sa.Text),
    sa.Column("added", sa.Text, nullable=False),
    sa.Column("run_dir", sa.Text, nullable=False),
    sa.Column("results_json", sa.Text, nullable=False),
)
TASK_RESULTS = sa.Table(
    "task_results", META,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("task", sa.Text, primary_key=True),
    sa.Column("mode", sa.Text, primary_key=True),
    sa.Column("metric", sa.Text, primary_key=True),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("is_primary", sa.Boolean, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("ci_low", sa.Float),
    sa.Column("ci_high", sa.Float),
    sa.Column("n", sa.Integer),
)
ITEMS = sa.Table(
    "items", META,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("task", sa.Text, primary_key=True),
    sa.Column("mode", sa.Text, primary_key=True),
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("identity_hash", sa.Text),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("correct", sa.Float),
    sa.Column("pred", sa.Text),
    sa.Column("gold", sa.Text),
    sa.Column("agreement", sa.Float),
    sa.Index("ix_items_key", "identity_hash", "task", "version", "item_id", "mode"),
)
SAMPLES = sa.Table(
    "samples", META,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("task", sa.Text, primary_key=True),
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("row_json", sa.Text, nullable=False),
)
GATES = sa.Table(
    "gates", META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("baseline_run_id", sa.Integer, sa.ForeignKey("runs.id")),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("added", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
)


def default_store() -> str:
    """$MEDEVAL_HISTORY_STORE, else sqlite:///<medeval home>/history.sqlite."""
    return os.environ.get(STORE_ENV) or f"sqlite:///{medeval_home() / 'history.sqlite'}"


def engine_url(store: str | Path | None) -> str:
    """An SQLAlchemy URL from --store: a URL as given (postgresql:// goes through psycopg 3), a bare path an
    SQLite file."""
    s = str(store) if store else default_store()
    if s.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + s.split("://", 1)[1]
    if "://" not in s:
        return f"sqlite:///{Path(s).expanduser().resolve()}"
    return s


def _redacted(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for messages
        return "<store>"


@dataclass
class StoredRun:
    id: int
    name: str
    model_id: str
    revision: str | None
    identity_hash: str | None
    created: str | None
    added: str
    run_dir: str
    content_hash: str


class Store:
    """A history store at an SQLAlchemy URL (tables created on first use)."""

    def __init__(self, store: str | Path | None = None):
        self.url = engine_url(store)
        if self.url.startswith("sqlite:///"):
            Path(self.url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(self.url)
            META.create_all(self.engine)
        except (sa.exc.OperationalError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
            raise ResultsError(f"history store {_redacted(self.url)}: cannot open it ({str(e).splitlines()[0]}); "
                               "pass --store sqlite:///PATH or postgresql://USER@HOST/DB") from None

    @property
    def label(self) -> str:
        return _redacted(self.url)

    # ------------------------------------------------------------------ adding
    def add(self, run_dir: str | Path, name: str | None = None) -> tuple[StoredRun, bool]:
        """Ingest one run directory; (the stored run, True if it was new). Same results.json twice: no change."""
        run = read_results(run_dir)
        raw = run.file.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        with self.engine.begin() as conn:
            old = conn.execute(sa.select(RUNS).where(RUNS.c.content_hash == digest)).first()
            if old is not None:
                return _stored(old), False
            self._check_versions(conn, run)
            samples = {task: _read_samples(run, task) for task in run.tasks}
            rid = conn.execute(RUNS.insert().values(
                content_hash=digest, name=name or default_name(run), model_id=run.model_id, revision=run.revision,
                identity_hash=run.identity_hash, created=run.data.get("created"), added=now_iso(),
                run_dir=str(run.dir.resolve()), results_json=raw.decode("utf-8"))).inserted_primary_key[0]
            blocks, items, rows = [], [], []
            for task, t in run.tasks.items():
                version = str(t.get("version"))
                primary = t.get("primary_metric")
                for mode, metrics in (t.get("metrics") or {}).items():
                    for metric, b in (metrics or {}).items():
                        if not isinstance(b, dict):
                            continue
                        blocks.append(dict(run_id=rid, task=task, mode=mode, metric=metric, version=version,
                                           is_primary=metric == primary, value=_num(b.get("value")),
                                           ci_low=_num(b.get("ci_low")), ci_high=_num(b.get("ci_high")),
                                           n=b.get("n") if isinstance(b.get("n"), int) else None))
                for pos, row in enumerate(samples[task]):
                    iid = str(row["id"])
                    rows.append(dict(run_id=rid, task=task, item_id=iid, position=pos, row_json=json.dumps(row)))
                    for mode in t.get("modes") or []:
                        m = row.get(mode)
                        if not isinstance(m, dict):
                            continue
                        items.append(dict(run_id=rid, task=task, mode=mode, item_id=iid,
                                          identity_hash=run.identity_hash, version=version,
                                          correct=_num(m.get("correct")), pred=_text(m.get("pred")),
                                          gold=_text(row.get("gold")), agreement=_agreement(m)))
            for table, values in ((TASK_RESULTS, blocks), (ITEMS, items), (SAMPLES, rows)):
                if values:
                    conn.execute(table.insert(), values)
            new = conn.execute(sa.select(RUNS).where(RUNS.c.id == rid)).first()
        return _stored(new), True

    def _check_versions(self, conn, run: Run) -> None:
        for task, t in run.tasks.items():
            version = str(t.get("version"))
            stored = conn.execute(sa.select(TASK_RESULTS.c.version, RUNS.c.run_dir)
                                  .join(RUNS, RUNS.c.id == TASK_RESULTS.c.run_id)
                                  .where(TASK_RESULTS.c.task == task, TASK_RESULTS.c.version != version)
                                  .limit(1)).first()
            if stored is not None:
                raise ResultsError(f"{run.file}: tasks.{task}.version is {version}, but the history store "
                                   f"{self.label} holds task {task!r} at version {stored.version} (from "
                                   f"{stored.run_dir}); a changed task starts a new series: use another --store "
                                   "or rename the task")

    def record_gate(self, run_id: int, baseline_run_id: int | None, status: str, exit_code: int,
                    note: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(GATES.insert().values(run_id=run_id, baseline_run_id=baseline_run_id, status=status,
                                               exit_code=exit_code, added=now_iso(), note=note))

    # ------------------------------------------------------------------ reading
    def runs(self) -> list[StoredRun]:
        """Every run, in the order it was added."""
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(sa.select(RUNS).order_by(RUNS.c.id))]

    def find(self, content_hash: str) -> StoredRun | None:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(RUNS).where(RUNS.c.content_hash == content_hash)).first()
        return _stored(r) if r else None

    def task_results(self, task: str | None = None) -> list[dict]:
        q = (sa.select(TASK_RESULTS, RUNS.c.name, RUNS.c.model_id).join(RUNS, RUNS.c.id == TASK_RESULTS.c.run_id)
             .order_by(TASK_RESULTS.c.task, TASK_RESULTS.c.run_id, TASK_RESULTS.c.mode, TASK_RESULTS.c.metric))
        if task:
            q = q.where(TASK_RESULTS.c.task == task)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def items(self, task: str | None = None) -> list[dict]:
        q = (sa.select(ITEMS, RUNS.c.name).join(RUNS, RUNS.c.id == ITEMS.c.run_id)
             .order_by(ITEMS.c.task, ITEMS.c.run_id, ITEMS.c.mode, ITEMS.c.item_id))
        if task:
            q = q.where(ITEMS.c.task == task)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def sample_rows(self, run_id: int, task: str, item_ids: list | None = None) -> list[dict]:
        q = (sa.select(SAMPLES.c.row_json).where(SAMPLES.c.run_id == run_id, SAMPLES.c.task == task)
             .order_by(SAMPLES.c.position))
        if item_ids is not None:
            q = q.where(SAMPLES.c.item_id.in_(list(item_ids)))
        with self.engine.connect() as conn:
            return [json.loads(r.row_json) for r in conn.execute(q)]

    def gates(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(GATES).order_by(GATES.c.id))]

    def results_json(self, run_id: int) -> dict:
        with self.engine.connect() as conn:
            return json.loads(conn.execute(sa.select(RUNS.c.results_json).where(RUNS.c.id == run_id)).scalar_one())

    def materialise(self, run: StoredRun, root: Path | None = None) -> Path:
        """A directory holding the stored run: the one it was added from when it still holds the same
        results.json, else a copy written from the store (results.json and samples files) under
        <medeval home>/history/runs/<content hash>/."""
        src = Path(run.run_dir) / "results.json"
        if src.is_file() and hashlib.sha256(src.read_bytes()).hexdigest() == run.content_hash:
            return Path(run.run_dir)
        out = (root or medeval_home() / "history" / "runs") / run.content_hash[:16]
        data = self.results_json(run.id)
        out.mkdir(parents=True, exist_ok=True)
        for task, t in data["tasks"].items():
            name = Path(str(t.get("samples_file") or f"samples_{task}.jsonl")).name
            rows = self.sample_rows(run.id, task)
            atomic_write(out / name, "".join(json.dumps(r) + "\n" for r in rows))
        with self.engine.connect() as conn:
            raw = conn.execute(sa.select(RUNS.c.results_json).where(RUNS.c.id == run.id)).scalar_one()
        atomic_write(out / "results.json", raw)
        return out


def default_name(run: Run) -> str:
    """A checkpoint's name when --name is not given: the model id, with @revision unless it is main."""
    rev = run.revision
    return run.model_id + (f"@{rev}" if rev and rev != "main" else "")


def _stored(r) -> StoredRun:
    return StoredRun(r.id, r.name, r.model_id, r.revision, r.identity_hash, r.created, r.added, r.run_dir,
                     r.content_hash)


def _num(v):
    if isinstance(v, bool):
        return float(v)
    return float(v) if isinstance(v, (int, float)) else None


def _text(v):
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def _agreement(m: dict) -> float | None:
    """Self-consistency: the share of the k samples that voted for the most common answer (None for one sample)."""
    votes = m.get("votes")
    if isinstance(votes, dict) and votes:
        counts = [v for v in votes.values() if isinstance(v, (int, float))]
        k = len(m.get("extracted") or []) or sum(counts)
        return max(counts) / k if k and counts else None
    ext = m.get("extracted")
    if isinstance(ext, list) and len(ext) > 1:
        keys = [json.dumps(e, sort_keys=True) for e in ext]
        return max(keys.count(k) for k in set(keys)) / len(keys)
    return None


def _read_samples(run: Run, task: str) -> list[dict]:
    """The task's samples rows as written, in file order (the history store keeps every item's outcome)."""
    return [r.to_json() for r in read_samples(run, task, "the history store").values()]
