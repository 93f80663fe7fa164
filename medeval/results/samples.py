"""One line of samples_<task>.jsonl (`SampleRecord`): one item, its prompt and gold, and a block per mode.

Scoring (scoring/score.py) writes them; merge, the gate (reporting/paired.py, verify.py) and the viewer
read them back through `SampleRecord.from_json`. `to_json` gives the line's fields in the order they
are written, so a line read and written again is the same bytes (tests/test_inputs_modes.py checks it
on a real run). docs/results.md documents the fields of a mode's block.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pathlib import Path

from .files import iter_jsonl
from .read import ResultsError, Run
from .schema import MODES


@dataclass
class SampleRecord:
    """id, prompt (as rendered; None where not known), gold, meta (the task's strata values), option_keys (the
    source's option keys, where they are not the shown letters), adversarial_prefill (--adversarial), and
    `modes`: mode name -> that mode's block (outputs, extracted, status, pred, correct, ...; or the
    loglikelihood picks). Fields this medeval does not know are kept in `extra`, written after the known
    ones and before the modes."""

    id: Any
    gold: Any
    prompt: Any = None
    meta: dict = field(default_factory=dict)
    option_keys: list | None = None
    adversarial_prefill: str | None = None
    modes: dict[str, dict] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    KNOWN = ("id", "prompt", "gold", "meta", "option_keys", "adversarial_prefill")

    @property
    def key(self) -> str:
        """The item id as the readers key it (a string)."""
        return str(self.id)

    def header(self) -> dict:
        """The line's fields other than the mode blocks, in written order."""
        out = {"id": self.id, "prompt": self.prompt, "gold": self.gold, "meta": self.meta}
        if self.option_keys is not None:
            out["option_keys"] = self.option_keys
        if self.adversarial_prefill is not None:
            out["adversarial_prefill"] = self.adversarial_prefill
        out.update(self.extra)
        return out

    def to_json(self) -> dict:
        return {**self.header(), **self.modes}

    @classmethod
    def from_json(cls, row: dict, where: str = "samples") -> SampleRecord:
        """A line as read (a dict). `where` names the file and line in the one-line error for a line
        without 'id' or 'gold'."""
        if not isinstance(row, dict) or "id" not in row or "gold" not in row:
            raise ResultsError(f"{where}: a samples row needs 'id' and 'gold'")
        modes = {k: v for k, v in row.items() if k in MODES}
        extra = {k: v for k, v in row.items() if k not in MODES and k not in cls.KNOWN}
        return cls(id=row["id"], gold=row["gold"], prompt=row.get("prompt"), meta=row.get("meta") or {},
                   option_keys=row.get("option_keys"), adversarial_prefill=row.get("adversarial_prefill"),
                   modes=modes, extra=extra)

    def block(self, mode: str) -> dict:
        """The block of `mode` ({} where the line has none)."""
        b = self.modes.get(mode)
        return b if isinstance(b, dict) else {}

    def has_pred(self, mode: str) -> bool:
        return isinstance(self.modes.get(mode), dict) and "pred" in self.modes[mode]


def read_samples(run: Run, task: str, reader: str) -> dict[str, SampleRecord]:
    """id -> SampleRecord of one task of a run, from the samples file its results.json names (a file inside
    the run directory, never elsewhere). `reader` says who needs it ("the gate") in the errors."""
    name = str(run.tasks[task].get("samples_file", f"samples_{task}.jsonl"))
    path = run.dir / name
    if Path(name).name != name or not path.resolve().is_relative_to(run.dir.resolve()):
        raise ResultsError(f"{run.file}: tasks.{task}.samples_file {name!r} is not a file inside the run directory "
                           f"{run.dir}; {reader} reads samples only from there")
    if not path.is_file():
        raise ResultsError(f"{path}: samples file of task {task!r} not found; {reader} needs the "
                           "samples_<task>.jsonl that `medeval run` writes next to results.json")
    rows = {}
    for lineno, line in iter_jsonl(path, ResultsError):
        row = SampleRecord.from_json(line, f"{path}: line {lineno}")
        if row.key in rows:
            raise ResultsError(f"{path}: line {lineno}: duplicate item id {row.key!r}")
        rows[row.key] = row
    return rows
