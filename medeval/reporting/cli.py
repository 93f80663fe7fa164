"""CLI commands that read result directories: `leaderboard`, `gate`, `compare`, `view`.

`register(app)` adds them to the main typer app (medeval/cli.py). Bad input
ends with a one-line `error: ...` on stderr and exit code 2, never a traceback.
The modules behind them (scipy, matplotlib) are imported only when a command runs.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import importlib

import typer

from ..errors import MedevalError
from ..scoring import modes as Modes
from ..results import GENERATION_MODES, LOGLIKELIHOOD_MODES, ResultsError, atomic_write, read_results


class _Lazy:
    """Import a reporting module (scipy, matplotlib) only when one of these commands runs."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name, __package__), attr)


B = _Lazy(".board")
P = _Lazy(".presets")
G = _Lazy(".gate")
GR = _Lazy(".gate_report")
POL = _Lazy(".policy")
V = _Lazy(".view")
HQ = _Lazy("..history.query")   # gate --baseline history:..., gate --history
OUT = {"markdown": _Lazy(".markdown"), "html": _Lazy(".html_page"), "charts": _Lazy(".charts")}


class Average(str, Enum):
    mean = "mean"
    weighted = "weighted"


# --mode values: each decoding mode, and "both" (greedy / sc in one cell)
ModeChoice = Enum("ModeChoice", {m: m for m in (*GENERATION_MODES, "both", *LOGLIKELIHOOD_MODES)}, type=str)


class Sided(str, Enum):
    one = "one"
    two = "two"


class Format(str, Enum):
    rich = "rich"
    markdown = "markdown"
    json = "json"


def _guard(fn):
    """Turn input errors into `error: ...` + exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MedevalError as e:   # ResultsError, and a report that cannot be written
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(G.CANNOT_COMPARE) from None
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            typer.echo(f"error: {where}{e.strerror or e}", err=True)
            raise typer.Exit(G.CANNOT_COMPARE) from None

    return wrapper


def _write(path: Path, text: str) -> None:
    """Atomically; a failure is one line naming `path` and its directory, and leaves no temporary file."""
    atomic_write(path, text)


def _print_table(report: G.GateReport, title: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rows = GR.table_rows(report)
    table = Table(title=f"{title}: {report.baseline.model_id} -> {report.candidate.model_id}")
    for h in (rows[0] if rows else ["Task"]):
        table.add_column(h, justify="left" if h in ("Task", "Metric", "Verdict") else "right")
    for r in rows:  # Text(): strings from result files are never read as rich markup
        table.add_row(*(Text(v) for v in r.values()))
    console = Console(width=None if sys.stdout.isatty() else 160)  # CI logs: do not squeeze to 80 columns
    console.print(table)
    console.print(Text(GR.method_text(report), style="dim"))
    for r in report.results:
        show_reason = r.verdict != "pass" and (report.kind == "gate" or not r.stats)
        for line in ([r.reason] if show_reason else []) + r.notes:
            console.print(Text(f"{r.task}: {line}"))
        if r.power.get("underpowered"):   # what the gate could not see, and the items it would need
            console.print(Text(f"{r.task}: {G.power_text(r.power)}"))


def leaderboard(
    results: Annotated[list[Path], typer.Argument(help="Result directories (or their results.json) written by "
                                                       "`medeval run`; runs of the same model and revision are merged.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Markdown file to write.")] = Path("leaderboard/README.md"),
    preset: Annotated[Optional[str], typer.Option(help="Column layout: a name under leaderboard/presets/ (neeto: the "
                                             "Neeto card's nine columns; ii_medical) or a path to your own YAML "
                                             "(columns: [{name, task, metric?}]). Default: one column per group "
                                             "and task found in the runs.")] = None,
    reported: Annotated[Optional[list[Path]], typer.Option(help="YAML of published scores with a cited `source:`, "
                                                                "or the name of one medeval ships (neeto_card, "
                                                                "ii_medical_8b_card, ii_medical_7b_preview_card); "
                                                                "its rows are marked as reported, not measured. "
                                                                "Repeatable.")] = None,
    average: Annotated[Average, typer.Option(help="mean: unweighted mean of the columns; weighted: weighted by "
                                                  "each column's item count n.")] = Average.mean,
    mode: Annotated[Optional[ModeChoice], typer.Option(help="Decoding to show: greedy, sc (self-consistency) or both "
                                                  "(cells read 'greedy / sc'); loglikelihood or loglikelihood_norm "
                                                  "for scoring: loglikelihood tasks (lm-eval's acc / acc_norm). "
                                                  "Default: the preset's mode, else greedy.")] = None,
    ci: Annotated[bool, typer.Option("--ci", help="Show the 95% bootstrap interval after each score.")] = False,
    decimals: Annotated[int, typer.Option(min=1, max=2, help="Decimals of the percentages.")] = 2,
    html: Annotated[Optional[Path], typer.Option(help="HTML page to write (default: index.html next to the "
                                                      "markdown).")] = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="Do not write the HTML page.")] = False,
    charts_dir: Annotated[Optional[Path], typer.Option(help="Folder for one PNG bar chart per column (default: "
                                                            "charts/ next to the markdown).")] = None,
    no_charts: Annotated[bool, typer.Option("--no-charts", help="Do not draw the charts.")] = False,
) -> None:
    """Build a model-card style leaderboard (markdown, sortable HTML, PNG charts) from result directories.

    One row per model, sorted by Average; `-` marks a task the model was not
    evaluated on; the best value of each column is bold. The average rule and
    the treatment of missing cells are printed under the table.
    """
    runs = [read_results(p) for p in results]
    reps = [P.load_reported(p, P.MARKERS[i % len(P.MARKERS)] * (1 + i // len(P.MARKERS)))
            for i, p in enumerate(reported or [])]
    the_preset = P.load_preset(preset) if preset else P.auto_preset(runs, reps)
    mode = mode or ModeChoice(the_preset.mode or _auto_mode(runs))
    modes = GENERATION_MODES if mode is ModeChoice.both else (mode.value,)
    board = B.build(runs, the_preset, modes, average.value, reps)
    charts = {}
    if not no_charts:
        written = OUT["charts"].write_charts(board, charts_dir or output.parent / "charts")
        charts = {name: Path(os.path.relpath(p, output.parent)).as_posix() for name, p in written.items()}
    _write(output, OUT["markdown"].to_markdown(board, decimals, ci, charts))
    typer.echo(f"wrote {output}")
    if not no_html:
        page = html or output.parent / "index.html"
        _write(page, OUT["html"].to_html(board, decimals, ci))
        typer.echo(f"wrote {page}")
    if charts:
        typer.echo(f"wrote {len(charts)} chart(s) to {charts_dir or output.parent / 'charts'}")


def _auto_mode(runs) -> str:
    """greedy, unless no run has a greedy score (only `scoring: loglikelihood` tasks): loglikelihood."""
    modes = {m for r in runs for t in r.tasks.values() for m in (t.get("modes") or [])}
    greedy, ll = Modes.GREEDY.name, Modes.LOGLIKELIHOOD.name
    return ll if modes and greedy not in modes and ll in modes else greedy


def gate(
    baseline: Annotated[Path, typer.Option(help="Result directory of the reference run (with samples files), or "
                                                "history:best | history:last-pass | history:NAME to take it from "
                                                "the history store (docs/history.md).")],
    candidate: Annotated[Path, typer.Option(help="Result directory of the run under test.")],
    policy: Annotated[Optional[Path], typer.Option(help="YAML: default/per-task tolerance, metric, mode, skip; "
                                                        "alpha; sided. See leaderboard/policy.example.yaml.")] = None,
    alpha: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Significance level (default: the "
                                                                          "policy's, else 0.05).")] = None,
    report_md: Annotated[Optional[Path], typer.Option(help="Write the markdown report (a PR comment) here.")] = None,
    report_json: Annotated[Optional[Path], typer.Option(help="Write the JSON report here.")] = None,
    allow_mismatch: Annotated[bool, typer.Option("--allow-mismatch", help="Compare despite different task "
                                                 "versions/prompts/item sets (on the common items) instead of "
                                                 "exiting 2.")] = False,
    sided: Annotated[Optional[Sided], typer.Option(help="one: H1 'candidate worse' (default); two: any "
                                                        "difference.")] = None,
    resamples: Annotated[int, typer.Option(min=100, help="Paired bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed; the same seed gives the same report.")] = 0,
    allow_same_model: Annotated[bool, typer.Option("--allow-same-model", help="Gate two runs of the same model "
                                                   "identity (e.g. to measure run-to-run noise) instead of "
                                                   "exiting 2.")] = False,
    html: Annotated[Optional[Path], typer.Option(help="Also write the comparison as one self-contained HTML page "
                                                      "(paired counts, verdicts, flipped items side by side).")] = None,
    history: Annotated[bool, typer.Option("--history", help="Add the candidate to the history store and record "
                                                            "the verdict (history:last-pass reads it).")] = False,
    store: Annotated[Optional[str], typer.Option(envvar="MEDEVAL_HISTORY_STORE", help="History store for history: "
                                                 "baselines and --history (default <medeval home>/history.sqlite)."
                                                 )] = None,
    metric: Annotated[Optional[str], typer.Option(help="Gate every task on this metric (over the policy's; e.g. "
                                                  "circular_accuracy of a --permute run).")] = None,
) -> None:
    """Fail a checkpoint that regresses: paired per-item comparison of CANDIDATE against BASELINE.

    A task fails when the candidate's drop exceeds its tolerance AND is
    significant at alpha (McNemar's exact test for accuracy-like metrics, a
    paired bootstrap otherwise). Exit codes: 0 pass, 1 regression, 2 cannot
    compare (bad input, tasks that differ in version, prompt or item set
    without --allow-mismatch, or both runs from the same model identity
    without --allow-same-model).
    """
    baseline, resolved = HQ.gate_baseline(baseline, candidate, store)
    if resolved:
        typer.echo(resolved)
    report = G.run_gate(baseline, candidate, POL.with_metric(POL.load_policy(policy), metric), alpha,
                        allow_mismatch, resamples, seed,
                        sided.value if sided else None, allow_same_model=allow_same_model)
    if history:
        typer.echo(HQ.record_gate(store, baseline, candidate, report.status, report.exit_code))
    if report_md:
        _write(report_md, GR.to_markdown(report))
    if report_json:
        _write(report_json, json.dumps(GR.to_json(report), indent=2) + "\n")
    if html:
        _write(html, V.compare_page(report))
    _print_table(report, "medeval gate")
    if report.same_model:
        typer.echo(GR.same_model_text(report))
    if html:
        typer.echo(f"wrote {html}")
    typer.echo(f"gate: {report.status} (exit {report.exit_code})")
    raise typer.Exit(report.exit_code)


def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more result directories: the first is the reference, "
                                                    "each other one is compared with it.")],
    format: Annotated[Format, typer.Option("--format", "-f", help="rich (terminal table), markdown or json.")] = Format.rich,
    policy: Annotated[Optional[Path], typer.Option(help="Same YAML as `gate` (metric, mode, tolerance per "
                                                        "task).")] = None,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="Significance level for the verdict column.")] = 0.05,
    sided: Annotated[Sided, typer.Option(help="two (default): any difference; one: 'candidate worse'.")] = Sided.two,
    resamples: Annotated[int, typer.Option(min=100, help="Paired bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Print the paired comparison table of `gate` without failing on regressions.

    Items are matched by id; tasks or items present on one side only are
    skipped and noted. Exit code 0, or 2 when an input cannot be read or no
    task can be compared.
    """
    if len(runs) < 2:
        raise ResultsError("compare needs at least two result directories")
    pol = POL.load_policy(policy)
    reports = [G.run_gate(runs[0], other, pol, alpha, True, resamples, seed, sided.value, kind="compare")
               for other in runs[1:]]
    if format is Format.json:
        typer.echo(json.dumps([GR.to_json(r) for r in reports], indent=2))
    for r in reports:
        if format is Format.markdown:
            typer.echo(GR.to_markdown(r, title="medeval compare"))
        elif format is Format.rich:
            _print_table(r, "medeval compare")
    if any(r.exit_code == G.CANNOT_COMPARE for r in reports):
        typer.echo("error: no task could be compared for at least one pair (see the table)", err=True)
        raise typer.Exit(G.CANNOT_COMPARE)


def view(
    run: Annotated[Optional[Path], typer.Argument(help="Result directory of a run (results.json and its "
                                                       "samples_<task>.jsonl files).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="HTML file to write (default: "
                                                   "RUN/view.html, or compare.html for --baseline/--candidate).")] = None,
    baseline: Annotated[Optional[Path], typer.Option(help="Comparison page: the reference run (as in `gate`).")] = None,
    candidate: Annotated[Optional[Path], typer.Option(help="Comparison page: the run under test.")] = None,
    policy: Annotated[Optional[Path], typer.Option(help="Comparison page: the gate policy YAML.")] = None,
    alpha: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Comparison page: significance level.")] = None,
    allow_mismatch: Annotated[bool, typer.Option("--allow-mismatch", help="Comparison page: compare tasks whose "
                                                 "versions, prompts or item sets differ, on the common items.")] = False,
    max_prompt_chars: Annotated[int, typer.Option(min=0, help="Cut longer prompts in the middle (a marker says "
                                                              "how much); 0 keeps every prompt whole.")] = 4000,
    max_output_chars: Annotated[int, typer.Option(min=0, help="Likewise for model outputs; 0 (default) keeps "
                                                              "them whole.")] = 0,
) -> None:
    """Write one self-contained HTML page (no network; data embedded) to read every item of a run.

    `medeval view RUN -o page.html`: the task table (metrics, intervals, invalid, ambiguous and truncation
    rates, tokens, cost) and per task every item, filterable by status, stratum and text, paginated.
    `medeval view --baseline A --candidate B -o page.html`: the gate's paired comparison, with the
    items that flipped shown side by side. The URL hash holds the filters (e.g. #task=medqa&status=wrong).
    """
    if run is not None and (baseline or candidate):
        raise ResultsError("pass either RUN or --baseline and --candidate, not both")
    if run is not None:
        page, out = V.run_page(run, max_prompt_chars, max_output_chars), output or run / "view.html"
    elif baseline and candidate:
        report = G.run_gate(baseline, candidate, POL.load_policy(policy), alpha, allow_mismatch)
        page, out = V.compare_page(report, max_prompt_chars, max_output_chars), output or Path("compare.html")
    else:
        raise ResultsError("nothing to show: pass a result directory (medeval view RUN -o page.html) or two "
                             "(medeval view --baseline A --candidate B -o page.html)")
    _write(out, page)
    typer.echo(f"wrote {out} ({len(page.encode()) / 1e6:.1f} MB)")


def register(app: typer.Typer) -> None:
    """Add `leaderboard`, `gate`, `compare` and `view` to the medeval CLI."""
    app.command("leaderboard")(_guard(leaderboard))
    app.command("gate")(_guard(gate))
    app.command("compare")(_guard(compare))
    app.command("view")(_guard(view))
