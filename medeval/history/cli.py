"""`medeval history add | list | show | export | page` (docs/history.md).

`register(app)` adds the `history` group to the main typer app (medeval/cli.py). Bad input ends with a one-line
`error: ...` on stderr and exit code 2.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..results import ResultsError

STORE = typer.Option("--store", envvar="MEDEVAL_HISTORY_STORE",
                     help="History store: an SQLite file path or URL, or postgresql://USER@HOST/DB (psycopg). "
                          "Default: <medeval home>/history.sqlite.")

history_app = typer.Typer(no_args_is_help=True, help="The history store of checkpoints: add runs, list, show a "
                                                     "task's trend, export, write the trend page.")


def _guard(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ResultsError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except OSError as e:
            typer.echo(f"error: {(e.filename + ': ') if e.filename else ''}{e.strerror or e}", err=True)
            raise typer.Exit(2) from None
    return wrapper


def _console():
    from rich.console import Console
    return Console(width=None if sys.stdout.isatty() else 160)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def add_runs(run_dirs: list[Path], store: Optional[str], name: Optional[str] = None, passed: bool = False) -> list:
    """Add run directories to a store and say what happened (shared with `medeval run --history`)."""
    from .store import Store

    if name and len(run_dirs) > 1:
        raise ResultsError("--name names one checkpoint; pass one RUN_DIR with it")
    st = Store(store)
    out = []
    for d in run_dirs:
        run, new = st.add(d, name)
        if passed:
            st.record_gate(run.id, None, "PASS", 0, "accepted by hand (history add --passed)")
        typer.echo(f"{'added' if new else 'already stored'}: #{run.id} {run.name} ({d}) -> {st.label}")
        out.append(run)
    return out


@_guard
def add(
    run_dirs: Annotated[list[Path], typer.Argument(help="Result directories written by `medeval run`.")],
    store: Annotated[Optional[str], STORE] = None,
    name: Annotated[Optional[str], typer.Option(help="Checkpoint name (default: the model id, @revision unless "
                                                     "main); `gate --baseline history:NAME` finds it.")] = None,
    passed: Annotated[bool, typer.Option("--passed", help="Record the run as accepted (a PASS verdict), e.g. the "
                                                          "first checkpoint, so history:last-pass can find it.")] = False,
) -> None:
    """Add runs (results and every item's outcome) to the history store; adding a run again changes nothing.

    A task whose version differs from the one stored under its name is refused (exit 2)."""
    add_runs(run_dirs, store, name, passed)


@_guard
def list_runs(store: Annotated[Optional[str], STORE] = None) -> None:
    """List the stored runs in the order they were added, with their tasks and last gate verdict."""
    from rich.table import Table
    from rich.text import Text

    from .store import Store

    st = Store(store)
    gates = {g["run_id"]: g["status"] for g in st.gates()}
    tasks: dict[int, set] = {}
    for r in st.task_results():
        tasks.setdefault(r["run_id"], set()).add(r["task"])
    table = Table(title=f"medeval history: {st.label}")
    for h in ("#", "Checkpoint", "Model", "Identity", "Created", "Tasks", "Gate"):
        table.add_column(h)
    for r in st.runs():
        table.add_row(*(Text(str(v)) for v in (r.id, r.name, r.model_id, (r.identity_hash or "-")[:12],
                                               r.created or "-", ", ".join(sorted(tasks.get(r.id, ()))),
                                               gates.get(r.id, "-"))))
    _console().print(table)


@_guard
def show(
    task: Annotated[str, typer.Option("--task", "-t", help="Task name, as in results.json.")],
    store: Annotated[Optional[str], STORE] = None,
) -> None:
    """A task across checkpoints: one row per stored run (in the order added), the primary metric in each mode
    with its 95% interval and n."""
    from rich.table import Table
    from rich.text import Text

    from .query import checkpoint_table
    from .store import Store

    st = Store(store)
    rows = checkpoint_table(st, task)
    modes = sorted({r["mode"] for r in rows}, key=lambda m: (m != "greedy", m))
    metric = rows[0]["metric"]
    table = Table(title=f"{task}: {metric} (%) per checkpoint, 95% interval")
    for h in ["#", "Checkpoint", "Version"] + [f"{m}" for m in modes] + [f"{m} 95% CI" for m in modes] + ["n"]:
        table.add_column(h, justify="left" if h == "Checkpoint" else "right")
    by_run: dict[int, dict] = {}
    for r in rows:
        by_run.setdefault(r["run_id"], {})[r["mode"]] = r
    for rid, ms in by_run.items():
        any_r = next(iter(ms.values()))
        vals = [_pct(ms[m]["value"]) if m in ms else "-" for m in modes]
        cis = [f"[{_pct(ms[m]['ci_low'])}, {_pct(ms[m]['ci_high'])}]" if m in ms else "-" for m in modes]
        table.add_row(*(Text(str(v)) for v in [rid, any_r["name"], any_r["version"], *vals, *cis, any_r["n"]]))
    _console().print(table)


@_guard
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .csv or .parquet.")],
    items: Annotated[bool, typer.Option("--items", help="Export per-item outcomes instead of the metric blocks.")] = False,
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="Only this task.")] = None,
    store: Annotated[Optional[str], STORE] = None,
) -> None:
    """Export the store as a table (pandas): one row per run, task, mode and metric (or per item with --items)."""
    import pandas as pd

    from .store import Store

    st = Store(store)
    runs = {r.id: r for r in st.runs()}
    rows = st.items(task) if items else st.task_results(task)
    for r in rows:
        run = runs[r["run_id"]]
        r.update(model_id=run.model_id, revision=run.revision, identity_hash=run.identity_hash, created=run.created,
                 run_dir=run.run_dir)
    df = pd.DataFrame(rows)
    suffix = output.suffix.lower()
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(output, index=False)
    elif suffix == ".parquet":
        try:
            df.to_parquet(output, index=False)
        except ImportError as e:
            raise ResultsError(f"{output}: writing Parquet needs pyarrow ({e}); pip install pyarrow, or "
                               "write .csv") from None
    else:
        raise ResultsError(f"{output}: unknown export format {suffix or '(none)'!r}; name a .csv or .parquet file")
    typer.echo(f"wrote {output} ({len(df)} rows)")


@_guard
def page(
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path("trend.html"),
    task: Annotated[Optional[list[str]], typer.Option("--task", "-t", help="Only these tasks (repeatable).")] = None,
    max_prompt_chars: Annotated[int, typer.Option(min=0, help="Cut longer prompts in the middle; 0 keeps them "
                                                              "whole.")] = 4000,
    store: Annotated[Optional[str], STORE] = None,
) -> None:
    """Write the trend page: per task a chart of the primary metric across checkpoints with 95% intervals, and
    the item ledger (flips between consecutive checkpoints, items never right, items unstable under SC), each
    item with its prompt and outputs. One self-contained HTML file, no network."""
    from ..results import atomic_write
    from .page import trend_page
    from .store import Store

    html = trend_page(Store(store), task, max_prompt_chars)
    atomic_write(output, html)
    typer.echo(f"wrote {output} ({len(html.encode()) / 1e6:.2f} MB)")


def register(app: typer.Typer) -> None:
    history_app.command("add")(add)
    history_app.command("list")(list_runs)
    history_app.command("show")(show)
    history_app.command("export")(export)
    history_app.command("page")(page)
    app.add_typer(history_app, name="history")
