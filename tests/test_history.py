"""`medeval history` (store, show, export, trend page) and `gate --baseline history:...`, on SQLite and on a
real PostgreSQL server that these tests start (Debian's postgresql package; skipped, with the reason, where it
cannot start).

The three checkpoints are SYNTHETIC run directories (tests/results_factory.py): real MedQA gold answers with
planted predictions, so every accuracy, flip and never-right item is known exactly; self-consistency votes are
planted non-unanimous on a few items. One slow test runs the real embedded model (`medeval run --history`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest

from conftest import dump_dom, invoke, needs_chromium
from results_factory import TaskSpec, mask_with_accuracy, medqa_golds, preds_from_mask, write_run

N = 200
ACCS = (0.60, 0.66, 0.48)          # checkpoint 3 regresses by 18 points against the best (checkpoint 2)
EVIL = "<script>document.title='PWNED'</script><img src=x onerror=alert(1)>"
UNSTABLE = {"5": {"A": 2, "B": 1}, "17": {"C": 1, "D": 1, "A": 1}}   # item id -> planted SC votes (k = 3)


@pytest.fixture(scope="module")
def app():
    import typer

    from medeval.history.cli import register as register_history
    from medeval.reporting.cli import register

    a = typer.Typer()
    register(a)
    register_history(a)
    return a


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Three SYNTHETIC checkpoints of one training run on the first N MedQA items; the masks are returned."""
    root = tmp_path_factory.mktemp("ckpts")
    golds = medqa_golds(N)
    masks, dirs = [], []
    for i, acc in enumerate(ACCS):
        mask = mask_with_accuracy(N, acc, seed=10 + i)
        d = write_run(root / f"step-{i}", f"train/step-{1000 * (i + 1)}",
                      {"medqa": TaskSpec(golds, preds_from_mask(golds, mask), sc_preds=preds_from_mask(golds, mask))},
                      identity_hash=f"sha256-identity-{i}", created=f"2026-01-0{i + 1}T00:00:00+00:00")
        _plant_votes(d, evil=i == 1)
        masks.append(mask)
        dirs.append(d)
    return dirs, masks, golds


def _plant_votes(run: Path, evil: bool) -> None:
    f = run / "samples_medqa.jsonl"
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    for r in rows:
        votes = UNSTABLE.get(r["id"], {r["sc"]["pred"]: 3})
        r["sc"]["votes"] = votes
        r["sc"]["extracted"] = [k for k, v in votes.items() for _ in range(v)]
        if evil and r["id"] == "5":
            r["greedy"]["outputs"] = [EVIL]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))


# ------------------------------------------------------------------ a real PostgreSQL server
def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster in a temporary directory, on 127.0.0.1 only, trust auth for its one user.
    Run as root, the server runs as the `postgres` system user (PostgreSQL refuses root)."""
    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'medeval[postgres]')")
    as_user: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="medeval-pg-"))
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
        os.chown(data, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = data / "cluster"
    init = subprocess.run([*as_user, str(pg / "initdb"), "-D", str(cluster), "-U", "medeval", "--auth=trust",
                           "-E", "UTF8", "--locale=C"], capture_output=True, text=True)
    if init.returncode:
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
    start = subprocess.run([*as_user, str(pg / "pg_ctl"), "-D", str(cluster), "-l", str(data / "log"), "-w",
                            "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {data}", "start"],
                           capture_output=True, text=True)
    if start.returncode:
        log = (data / "log").read_text()[-300:] if (data / "log").exists() else start.stderr
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {log.strip()}")
    yield f"postgresql://medeval@127.0.0.1:{port}"
    subprocess.run([*as_user, str(pg / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """An empty store: an SQLite file, or a fresh database on the test's PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    server = request.getfixturevalue("postgres_server")
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(server.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
                           isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return f"{server}/{name}"


def _add_all(app, store, dirs):
    res = invoke(app, "history", "add", *dirs, "--store", store)
    assert res.exit_code == 0, res.output
    return res


# ------------------------------------------------------------------ the store
def test_add_is_idempotent_keys_items_and_refuses_a_changed_task_version(app, store, checkpoints, tmp_path):
    dirs, masks, golds = checkpoints
    res = _add_all(app, store, dirs)
    assert res.output.count("added: #") == 3
    again = invoke(app, "history", "add", dirs[1], "--store", store)
    assert again.exit_code == 0 and "already stored: #2" in again.output

    from medeval.history.store import Store

    st = Store(store)
    assert [r.name for r in st.runs()] == [f"train/step-{1000 * (i + 1)}" for i in range(3)]
    items = st.items("medqa")
    assert len(items) == 3 * N * 2                       # runs x items x modes, none twice
    keys = {(r["identity_hash"], r["version"], r["item_id"], r["mode"]) for r in items}
    assert len(keys) == len(items)
    greedy_2 = {r["item_id"]: r["correct"] for r in items if r["run_id"] == 2 and r["mode"] == "greedy"}
    assert [greedy_2[str(i)] for i in range(N)] == [float(m) for m in masks[1]]
    agreement = {r["item_id"]: r["agreement"] for r in items if r["run_id"] == 1 and r["mode"] == "sc"}
    assert agreement["5"] == pytest.approx(2 / 3) and agreement["17"] == pytest.approx(1 / 3) and agreement["0"] == 1.0

    v2 = write_run(tmp_path / "v2", "train/step-9000",
                   {"medqa": TaskSpec(golds, preds_from_mask(golds, masks[0]), version=2)}, identity_hash="other")
    bad = invoke(app, "history", "add", v2, "--store", store)
    assert bad.exit_code == 2
    assert "tasks.medqa.version is 2" in bad.output and "at version 1" in bad.output
    assert len(Store(store).runs()) == 3                 # nothing of the refused run was kept


def test_show_lists_checkpoints_in_order_with_intervals(app, store, checkpoints):
    dirs, masks, _ = checkpoints
    _add_all(app, store, dirs)
    res = invoke(app, "history", "show", "--task", "medqa", "--store", store)
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "train/step-" in ln]
    assert [re.search(r"train/step-\d+", ln).group() for ln in lines] == [f"train/step-{k}" for k in (1000, 2000, 3000)]
    for ln, d in zip(lines, dirs):
        block = json.loads((d / "results.json").read_text())["tasks"]["medqa"]["metrics"]["greedy"]["accuracy"]
        assert f"{100 * block['value']:.2f}" in ln
        assert f"[{100 * block['ci_low']:.2f}, {100 * block['ci_high']:.2f}]" in ln
    assert invoke(app, "history", "show", "--task", "nope", "--store", store).exit_code == 2


def test_export_csv_and_parquet(app, store, checkpoints, tmp_path):
    import pandas as pd

    dirs, masks, _ = checkpoints
    _add_all(app, store, dirs)
    assert invoke(app, "history", "export", "-o", tmp_path / "r.csv", "--store", store).exit_code == 0
    df = pd.read_csv(tmp_path / "r.csv")
    hashes = {json.loads((d / "results.json").read_text())["model"]["identity_hash"] for d in dirs}
    assert len(df) == 3 * 2 and set(df["identity_hash"]) == hashes and len(hashes) == 3
    greedy = df[df["mode"] == "greedy"].sort_values("run_id")
    assert list(greedy["value"]) == pytest.approx([m.mean() for m in masks])
    assert invoke(app, "history", "export", "-o", tmp_path / "i.parquet", "--items", "--store", store).exit_code == 0
    it = pd.read_parquet(tmp_path / "i.parquet")
    assert len(it) == 3 * N * 2 and it[(it["mode"] == "greedy")]["correct"].sum() == sum(m.sum() for m in masks)
    assert invoke(app, "history", "export", "-o", tmp_path / "x.xlsx", "--store", store).exit_code == 2


# ------------------------------------------------------------------ gate against history
def test_gate_history_best_last_pass_and_name(app, store, checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDEVAL_HOME", str(tmp_path / "home"))
    dirs, masks, _ = checkpoints
    # the first checkpoint is accepted by hand; the second passes its gate against it and is recorded
    assert invoke(app, "history", "add", dirs[0], "--passed", "--store", store).exit_code == 0
    res = invoke(app, "gate", "--baseline", "history:last-pass", "--candidate", dirs[1], "--store", store, "--history")
    assert res.exit_code == 0, res.output
    assert "baseline history:last-pass: #1 train/step-1000" in res.output and "recorded PASS for #2" in res.output
    # best = the highest accuracy (checkpoint 2, 66%): the 18-point drop of checkpoint 3 is caught
    res = invoke(app, "gate", "--baseline", "history:best", "--candidate", dirs[2], "--store", store, "--history")
    assert res.exit_code == 1, res.output
    assert "baseline history:best: #2 train/step-2000" in res.output and "recorded FAIL for #3" in res.output
    # last-pass still names checkpoint 2, not the failed one; a name finds its checkpoint
    res = invoke(app, "gate", "--baseline", "history:last-pass", "--candidate", dirs[2], "--store", store)
    assert res.exit_code == 1 and "#2 train/step-2000" in res.output
    res = invoke(app, "gate", "--baseline", "history:train/step-1000", "--candidate", dirs[1], "--store", store)
    assert res.exit_code == 0 and "#1 train/step-1000" in res.output
    res = invoke(app, "gate", "--baseline", "history:nope", "--candidate", dirs[1], "--store", store)
    assert res.exit_code == 2 and "no checkpoint named 'nope'" in res.output


def test_a_baseline_whose_directory_is_gone_is_rebuilt_from_the_store(app, checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDEVAL_HOME", str(tmp_path / "home"))
    dirs, _, _ = checkpoints
    store = str(tmp_path / "h.sqlite")
    moved = shutil.copytree(dirs[1], tmp_path / "elsewhere")
    assert invoke(app, "history", "add", moved, "--store", store).exit_code == 0
    shutil.rmtree(moved)                                  # the machine that ran it is gone
    res = invoke(app, "gate", "--baseline", "history:best", "--candidate", dirs[2], "--store", store)
    assert res.exit_code == 1, res.output
    rebuilt = next((tmp_path / "home" / "history" / "runs").iterdir())
    assert (rebuilt / "results.json").read_bytes() == (dirs[1] / "results.json").read_bytes()
    assert (rebuilt / "samples_medqa.jsonl").read_text() == (dirs[1] / "samples_medqa.jsonl").read_text()


# ------------------------------------------------------------------ the trend page
@needs_chromium
def test_trend_page_renders_the_charts_and_the_ledger_in_chromium(app, checkpoints, tmp_path):
    dirs, masks, golds = checkpoints
    store = str(tmp_path / "h.sqlite")
    _add_all(app, store, dirs)
    page = tmp_path / "trend.html"
    res = invoke(app, "history", "page", "-o", page, "--store", store)
    assert res.exit_code == 0, res.output
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "default-src 'none'" in text          # no script, no request
    assert re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text) is None and "<link" not in text
    dom = dump_dom(page.as_uri())
    assert "<title>medeval history</title>" in dom and "<img" not in dom   # a planted output stays text
    assert "&lt;script&gt;document.title='PWNED'" in dom
    assert dom.count('<circle class="pt"') == 3 and dom.count('class="ci"') == 3

    def ids_in(cls: str, chunk: str) -> list[str]:
        m = re.search(rf'class="ids {cls}"><b>(\d+)</b>(.*?)</(td|p)>', chunk, re.S)
        return int(m.group(1)), re.findall(r'<a href="#[^"]+">([^<]+)</a>', m.group(2))

    flips = re.findall(r'<tr class="flip">(.*?)</tr>', dom, re.S)
    assert len(flips) == 2
    for (a, b), chunk in zip(((0, 1), (1, 2)), flips):
        lost = sorted(str(i) for i in range(N) if masks[a][i] and not masks[b][i])
        gained = sorted(str(i) for i in range(N) if not masks[a][i] and masks[b][i])
        assert ids_in("lost", chunk) == (len(lost), lost) and ids_in("gained", chunk) == (len(gained), gained)
    never = sorted(str(i) for i in range(N) if not any(m[i] for m in masks))
    assert ids_in("never", dom) == (len(never), never) and never
    unstable = re.findall(r'<a href="#[^"]+">([^<]+) \((\d+)%\)</a>', dom)
    assert unstable == [("17", "33"), ("5", "67")]
    # every ledger item links to a section holding its prompt and each checkpoint's outputs
    anchors = set(re.findall(r'<a href="#([^"]+)">', dom))
    sections = dict(re.findall(r'<details class="item" id="([^"]+)" data-id="([^"]+)"', dom))
    assert anchors <= set(sections) and len(sections) == len(set(sum((ids_in(c, f)[1] for f in flips
                                                                       for c in ("lost", "gained")), [])) | set(never) | {"5", "17"})
    item = re.search(r'<details class="item" id="[^"]+" data-id="17">(.*?)</details>', dom, re.S).group(1)
    assert "question 17" in item and item.count('<pre class="output">') == 3 * (1 + 1)   # greedy + sc per checkpoint


# ------------------------------------------------------------------ medeval run --history, the real model
@pytest.mark.slow
def test_run_history_adds_the_finished_run(hf_backend, data_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import medeval.runs.runner
    from medeval.cli import app as main_app
    from medeval.history.store import Store

    monkeypatch.setattr(medeval.runs.runner, "make_backend", lambda cfg: hf_backend)   # the one shared real model
    store = str(tmp_path / "h.sqlite")
    args = ["run", "--tasks", "medqa", "--limit", "3", "--max-tokens", "8", "--data-dir", str(data_dir), "-o", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), "--quiet", "--history", "--store", store]
    res = CliRunner().invoke(main_app, args)
    assert res.exit_code == 0, res.output
    assert "added: #1" in res.output
    runs = Store(store).runs()
    assert len(runs) == 1 and runs[0].identity_hash and runs[0].run_dir == str((tmp_path / "run").resolve())
    items = [r for r in Store(store).items("medqa") if r["mode"] == "greedy"]
    rows = [json.loads(x) for x in (tmp_path / "run" / "samples_medqa.jsonl").read_text().splitlines()]
    assert sorted(r["item_id"] for r in items) == sorted(str(r["id"]) for r in rows)
    assert np.mean([r["correct"] for r in items]) == pytest.approx(
        json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["medqa"]["metrics"]["greedy"]["accuracy"]["value"])


def test_add_refuses_a_samples_file_that_resolves_outside_the_run_directory(app, checkpoints, tmp_path):
    """The store reads samples as the gate does: a samples_file that leaves the run directory (a symlink
    here) is refused, and nothing is stored."""
    import shutil

    from medeval.history.store import Store

    dirs, _, _ = checkpoints
    run = tmp_path / "run"
    shutil.copytree(dirs[0], run)
    (run / "samples_medqa.jsonl").unlink()
    (run / "samples_medqa.jsonl").symlink_to(dirs[1] / "samples_medqa.jsonl")
    store = str(tmp_path / "h.sqlite")
    res = invoke(app, "history", "add", run, "--store", store)
    assert res.exit_code == 2 and "not a file inside the run directory" in res.output, res.output
    assert Store(store).runs() == []
