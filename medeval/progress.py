"""Progress of a long phase (generating, scoring choices, judging, scoring tasks), visible wherever stderr goes.

On a terminal, rich's live bar. Anywhere else (a CI log, `nohup`, a batch job's file) a live bar prints
nothing until the end, so one plain line goes to stderr every `MEDEVAL_PROGRESS_SECONDS` seconds
(default 30) or every 10% of the phase, whichever comes first, plus the first and the last:

    medeval: generating 120/1273 (9%), 2.1/s, ETA 9m09s

The rate is the mean since the phase began (rich's task clock); batched backends answer in bursts, so a
windowed rate would jump. The ETA is what is left at that rate. `enabled=False` (`medeval run -q`) shows nothing.
"""
from __future__ import annotations

import os
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

ENV_SECONDS = "MEDEVAL_PROGRESS_SECONDS"
STEP = 0.10   # a line at least every 10% of the phase


_warned: set[str] = set()


def seconds_between_lines(stream=None) -> float:
    """MEDEVAL_PROGRESS_SECONDS as a positive number; anything else is named once on `stream` and 30 is used."""
    raw = os.environ.get(ENV_SECONDS)
    try:
        value = float(raw) if raw is not None else 30.0
    except ValueError:
        value = float("nan")
    if value > 0 and value != float("inf"):
        return value
    if raw not in _warned:
        _warned.add(raw)
        print(f"medeval: {ENV_SECONDS}={raw!r} is not a positive number of seconds; progress lines come every 30 s "
              f"(fix: export {ENV_SECONDS}=30, or unset it)", file=stream or sys.stderr)
    return 30.0


class Phase:
    """`with Phase("generating", total, enabled) as advance: ... advance()`: a bar on a terminal, lines elsewhere."""

    def __init__(self, label: str, total: int, enabled: bool, remaining: bool = True, stream=None):
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.lines = enabled and not tty and total > 0
        columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        self.progress = Progress(*columns, *([TimeRemainingColumn()] if remaining else []),
                                 console=Console(file=self.stream), disable=not (enabled and tty),
                                 transient=False, speed_estimate_period=60.0)
        self.every = seconds_between_lines(self.stream)

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task(self.label, total=self.total)
        self.last_time, self.last_done = time.monotonic(), 0
        if self.lines:
            self._line(0)
        return self.advance

    def advance(self, steps: int = 1) -> None:
        self.progress.advance(self.task, steps)
        if not self.lines:
            return
        done = int(self.progress.tasks[0].completed)
        if (done >= self.total or done - self.last_done >= STEP * self.total
                or time.monotonic() - self.last_time >= self.every):
            self._line(done)

    def _line(self, done: int) -> None:
        task = self.progress.tasks[0]
        text = f"medeval: {self.label} {done}/{self.total} ({100 * done / self.total:.0f}%)"
        elapsed = task.elapsed or 0.0
        rate = done / elapsed if done and elapsed > 0 else None   # since the phase began: batched backends
                                                                   # answer in bursts, a windowed rate jumps
        if rate:
            text += f", {rate:.2f}/s" if rate < 10 else f", {rate:.0f}/s"
            if done < self.total:
                text += f", ETA {_duration((self.total - done) / rate)}"
        if done >= self.total:
            text += f", done in {_duration(elapsed)}"
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last_time, self.last_done = time.monotonic(), done

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"
