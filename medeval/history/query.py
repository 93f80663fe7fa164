"""Questions asked of the history store: the checkpoint table of a task, the item ledger, and which stored
run `gate --baseline history:...` means (docs/history.md)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..results import ResultsError, read_results
from .store import Store, StoredRun

PREFIX = "history:"


def main_mode(modes) -> str:
    """The mode a task's series is read in: greedy where the run has it, else its first mode by name."""
    modes = sorted(set(modes))
    return "greedy" if "greedy" in modes else modes[0]


def checkpoint_table(store: Store, task: str) -> list[dict]:
    """One row per stored run holding `task`, in the order added: the primary metric in each mode with its
    interval and n."""
    rows = [r for r in store.task_results(task) if r["is_primary"]]
    if not rows:
        known = sorted({r["task"] for r in store.task_results()})
        raise ResultsError(f"history store {store.label}: no run of task {task!r} (tasks stored: "
                           f"{', '.join(known) or 'none'}); add runs with `medeval history add RUN_DIR`")
    return rows


def primary_series(store: Store, task: str) -> tuple[str, str, list[dict]]:
    """(metric, mode, [{run_id, name, value, ci_low, ci_high, n}]) of a task in the order the runs were added."""
    rows = checkpoint_table(store, task)
    mode = main_mode(r["mode"] for r in rows)
    series = [r for r in rows if r["mode"] == mode]
    return series[0]["metric"], mode, series


def ledger(store: Store, task: str) -> dict:
    """The item ledger of a task: flips between consecutive checkpoints (in the main mode), items no
    checkpoint got right, and items whose self-consistency samples disagree.

    * flips: for each pair of consecutive runs holding the task, the items right in one and wrong in the other
      (items scored 0/1; an item missing from one side is not a flip);
    * never_right: items held by at least two runs and right (correct == 1) in none;
    * unstable: items whose SC samples were not unanimous (agreement < 1) in at least one run, with the lowest
      agreement seen."""
    items = store.items(task)
    if not items:
        raise ResultsError(f"history store {store.label}: no items of task {task!r}")
    mode = main_mode(r["mode"] for r in items)
    runs: dict[int, str] = {}
    outcome: dict[int, dict] = defaultdict(dict)
    for r in items:
        if r["mode"] == mode:
            runs.setdefault(r["run_id"], r["name"])
            outcome[r["run_id"]][r["item_id"]] = r
    order = sorted(runs)
    flips = []
    for a, b in zip(order, order[1:]):
        lost, gained = [], []
        for iid, rb in outcome[b].items():
            ra = outcome[a].get(iid)
            if ra is None or ra["correct"] not in (0.0, 1.0) or rb["correct"] not in (0.0, 1.0):
                continue
            if ra["correct"] == 1.0 and rb["correct"] == 0.0:
                lost.append(iid)
            elif ra["correct"] == 0.0 and rb["correct"] == 1.0:
                gained.append(iid)
        flips.append({"from_run": a, "from": runs[a], "to_run": b, "to": runs[b], "lost": sorted(lost),
                      "gained": sorted(gained)})
    seen: dict[str, list] = defaultdict(list)
    for rid in order:
        for iid, r in outcome[rid].items():
            seen[iid].append(r["correct"])
    never = sorted(i for i, cs in seen.items() if len(cs) >= 2 and all(c != 1.0 for c in cs))
    low: dict[str, tuple] = {}
    for r in items:
        ag = r["agreement"]
        if ag is not None and ag < 1.0 and (r["item_id"] not in low or ag < low[r["item_id"]][0]):
            low[r["item_id"]] = (ag, r["run_id"], r["mode"])
    unstable = [{"item_id": i, "agreement": v[0], "run_id": v[1], "mode": v[2]}
                for i, v in sorted(low.items(), key=lambda kv: (kv[1][0], kv[0]))]
    return {"task": task, "mode": mode, "runs": [{"run_id": r, "name": runs[r]} for r in order],
            "flips": flips, "never_right": never, "unstable": unstable,
            "gold": {i: r["gold"] for rid in order for i, r in outcome[rid].items()},
            "outcome": {rid: {i: (r["correct"], r["pred"]) for i, r in outcome[rid].items()} for rid in order}}


# ------------------------------------------------------------------ gate baselines
def _task_key(store: Store, run_id: int) -> dict:
    data = store.results_json(run_id)
    return {t: str(b.get("version")) for t, b in data["tasks"].items()}


def _score(store: Store, run_id: int, tasks: list[str]) -> float:
    vals = []
    for task in tasks:
        rows = [r for r in store.task_results(task) if r["run_id"] == run_id and r["is_primary"]]
        mode = main_mode(r["mode"] for r in rows)
        vals += [r["value"] for r in rows if r["mode"] == mode and r["value"] is not None]
    return sum(vals) / len(vals) if vals else float("-inf")


def resolve_baseline(store: Store, spec: str, candidate: str | Path | None) -> tuple[StoredRun, Path]:
    """The stored run `history:best|last-pass|NAME` names, and a directory holding it (store.materialise).

    * best: the run with the highest mean primary metric (main mode) over the candidate's tasks, among the
      runs holding all of them at the candidate's task versions;
    * last-pass: the last run added whose latest recorded gate verdict is PASS (`gate --history`, or
      `history add --passed` for the first checkpoint);
    * NAME: the last run added under that checkpoint name.
    Runs of the candidate's own model identity (and the candidate itself) are never chosen."""
    which = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    cand = read_results(candidate) if candidate is not None else None   # None: before the run (run --gate-against)
    pool = [r for r in store.runs() if cand is None or not (
        (cand.identity_hash and r.identity_hash == cand.identity_hash) or Path(r.run_dir) == cand.dir.resolve())]
    if not which:
        raise ResultsError(f"--baseline {spec!r}: name best, last-pass or a checkpoint, e.g. history:best")
    if which == "best" and cand is None:
        raise ResultsError("history:best is chosen over the candidate's tasks, which a run has not written yet; "
                           "use history:last-pass or history:NAME with --gate-against")
    if which == "best":
        want = {t: str(b.get("version")) for t, b in cand.tasks.items()}
        fit = [r for r in pool if all(_task_key(store, r.id).get(t) == v for t, v in want.items())]
        if not fit:
            raise ResultsError(f"--baseline history:best: no run in the history store {store.label} holds the "
                               f"candidate's tasks ({', '.join(f'{t} v{v}' for t, v in want.items())}) from another "
                               "model; add one with `medeval history add RUN_DIR`")
        best = max(fit, key=lambda r: (_score(store, r.id, list(want)), r.id))
    elif which == "last-pass":
        latest: dict[int, str] = {}
        for g in store.gates():
            latest[g["run_id"]] = g["status"]
        passed = [r for r in pool if latest.get(r.id) == "PASS"]
        if not passed:
            raise ResultsError(f"--baseline history:last-pass: no run in the history store {store.label} has "
                               "passed a gate; record verdicts with `medeval gate --history`, or accept a first "
                               "checkpoint with `medeval history add RUN_DIR --passed`")
        best = passed[-1]
    else:
        named = [r for r in pool if r.name == which]
        if not named:
            names = sorted({r.name for r in store.runs()})
            raise ResultsError(f"--baseline {spec}: no checkpoint named {which!r} in the history store "
                               f"{store.label} (names: {', '.join(names) or 'none'})")
        best = named[-1]
    return best, store.materialise(best)


# ------------------------------------------------------------------ the gate's two hooks
def gate_baseline(baseline: str | Path, candidate: str | Path | None, store: str | None) -> tuple[Path, str | None]:
    """`gate --baseline`: a directory as given, or the run a `history:` spec resolves to, with a line saying which."""
    spec = str(baseline)
    if not spec.startswith(PREFIX):
        return Path(baseline), None
    st = Store(store)
    run, path = resolve_baseline(st, spec, candidate)
    return path, f"baseline {spec}: #{run.id} {run.name} ({path}) from {st.label}"


def record_gate(store: str | None, baseline: Path, candidate: Path, status: str, exit_code: int) -> str:
    """`gate --history`: add the candidate to the store (if new) and record the verdict against it."""
    import hashlib

    st = Store(store)
    cand, _ = st.add(candidate)
    base_file = Path(baseline) / "results.json" if Path(baseline).is_dir() else Path(baseline)
    base = st.find(hashlib.sha256(base_file.read_bytes()).hexdigest()) if base_file.is_file() else None
    st.record_gate(cand.id, base.id if base else None, status, exit_code)
    return f"recorded {status} for #{cand.id} {cand.name} in {st.label}"
