"""Issue 23: nothing lost, nothing forged. Damaged caches, full disks, unusable judge replies, odd
bytes from a server, hand-edited results and side files.

Server faults go through the in-package loopback server (medeval.testing.openai_server) in its `echo`
mode, a FAKE model (hash-derived answer letters, one FAKE token per word); the HTTP client, the cache
(a real SQLite file), scoring and the writers are the real code. A full disk cannot be made here
without root, so it is a labelled FAKE fault: `os.fsync` or a file write raising ENOSPC, or SQLite's
own `max_page_count` limit, which raises the same SQLITE_FULL a full disk does.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import medeval

from medeval.backends.openai_backend import OpenAIBackend
from medeval.backends.cache import Cache
from medeval.errors import MedevalError
from medeval.results import SamplesWriter, atomic_write
from medeval.runs.runner import RunConfig, run
from medeval.testing.openai_server import ECHO_MODEL, OpenAITestServer

ROOT = Path(__file__).resolve().parents[1]


def echo_run(srv, data_dir, out, cache, k=0, limit=3, tasks=("medqa",), samples="per_sample", **kw):
    backend = OpenAIBackend(ECHO_MODEL, base_url=srv.url, max_retries=0, timeout=10, samples=samples)
    cfg = RunConfig(tasks=list(tasks), limit=limit, self_consistency=k, max_tokens=8, data_dir=str(data_dir),
                    output_dir=str(out), cache_dir=str(cache), **kw)
    return run(cfg, backend=backend, progress=False)


def cli(*args, env=None):
    """The real `medeval` command in a subprocess: (exit code, stdout, stderr)."""
    here = str(Path(medeval.__file__).resolve().parents[1])   # the medeval under test
    p = subprocess.run([sys.executable, "-m", "medeval.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=here, env={**os.environ, "PYTHONPATH": here, **(env or {})}, timeout=120)
    return p.returncode, p.stdout, p.stderr


def command(*args):
    """`medeval ARGS` in this process: (exit code, output, the MedevalError raised or None)."""
    from typer.testing import CliRunner

    from medeval.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    error = r.exception if isinstance(r.exception, MedevalError) else None
    if r.exception is not None and error is None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.output, error


def fill(cache_dir: Path, rows: int = 400) -> Path:
    c = Cache(cache_dir)
    c.put([(f"k{i}", "{}", "b", "p", {"t": 0}, 0, "filler text " * 40, "stop", {}) for i in range(rows)])
    c.close()
    return cache_dir / "generations.sqlite"


DAMAGE = {
    "cut in half": lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]),
    "random bytes": lambda f: f.write_bytes(os.urandom(f.stat().st_size)),
    "broken header": lambda f: f.write_bytes(b"not sqlite at all" + f.read_bytes()[17:]),
    "a directory": lambda f: (f.unlink(), f.mkdir()),
}


# ------------------------------------------------------------------ 1. a damaged cache database
@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_cache_is_moved_aside_with_one_warning_and_the_run_goes_on(how, tmp_path, data_dir, monkeypatch,
                                                                            caplog):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    db = fill(tmp_path / "c")
    DAMAGE[how](db)
    with OpenAITestServer("echo") as srv, caplog.at_level(logging.WARNING, logger="medeval.backends.cache"):
        res = echo_run(srv, data_dir, tmp_path / "o", tmp_path / "c")
    assert res["cache"]["misses"] == 3 and (tmp_path / "o" / "results.json").is_file()
    aside = [p for p in (tmp_path / "c").iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert str(db) in warnings[0] and str(aside[0]) in warnings[0]
    assert Cache(tmp_path / "c").stats()["entries"] == 3     # the fresh cache holds this run's samples


def test_two_runs_that_find_one_damaged_cache_move_it_aside_once(tmp_path):
    db = fill(tmp_path / "c")
    DAMAGE["random bytes"](db)
    late = Cache(tmp_path / "c", heal=False)   # found the damaged file, has not moved it yet
    first = Cache(tmp_path / "c")               # moves it aside, starts a fresh cache
    first.put([("k", "{}", "b", "p", {}, 0, "kept", "stop", {})])
    late._move_aside()                          # must not move the fresh cache aside
    assert late.moved_to is None and Cache(tmp_path / "c").get(["k"])["k"][0] == "kept"
    assert len([p for p in (tmp_path / "c").iterdir() if ".damaged-" in p.name]) == 1


def test_cache_info_reports_damage_and_cache_check_verifies_integrity(tmp_path):
    db = fill(tmp_path / "c")
    code, out, error = command("cache", "check", "--cache-dir", tmp_path / "c")
    assert code == 0 and "ok" in out and error is None
    DAMAGE["cut in half"](db)
    code, out, error = command("cache", "info", "--cache-dir", tmp_path / "c")
    assert code == 0 and error is None and json.loads(out)["damaged"]
    code, out, error = command("cache", "check", "--cache-dir", tmp_path / "c")
    assert error is not None and "\n" not in str(error) and str(db) in str(error) and "damaged" in str(error)
    assert db.is_file(), "info and check only look; they move nothing"


# ------------------------------------------------------------------ 2. a full disk
def enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")   # FAKE: what a full disk raises


def test_a_full_disk_is_one_line_naming_the_directory_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    old = tmp_path / "results.json"
    old.write_text("old")
    monkeypatch.setattr("medeval.results.files.os.fsync", enospc)
    with pytest.raises(MedevalError) as e:
        atomic_write(old, "new")
    assert str(tmp_path) in str(e.value) and "No space left" in str(e.value) and "\n" not in str(e.value)
    w = SamplesWriter(tmp_path / "samples_x.jsonl")
    w.write({"id": "1"})
    with pytest.raises(MedevalError, match="samples_x.jsonl: cannot write it .No space left on device. in the directory"):
        w.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"] and old.read_text() == "old"
    # a writer dropped mid-way by an error elsewhere leaves nothing behind either
    monkeypatch.undo()
    w = SamplesWriter(tmp_path / "samples_y.jsonl")
    w.write({"id": "1"})
    del w
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_run_and_its_cache_on_a_full_disk_fail_in_one_line(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with OpenAITestServer("echo") as srv:
        with monkeypatch.context() as m:
            m.setattr("medeval.results.files.os.fsync", enospc)
            with pytest.raises(MedevalError, match=r"samples_medqa.jsonl: cannot write it \(No space left on device\)"):
                echo_run(srv, data_dir, tmp_path / "o", tmp_path / "c")
        assert not [p for p in (tmp_path / "o").iterdir() if p.name.endswith(".tmp")]
        cache = Cache(tmp_path / "c2")
        cache.db.execute("PRAGMA max_page_count=" + str(cache.db.execute("PRAGMA page_count").fetchone()[0]))
        with pytest.raises(MedevalError, match=r"generations.sqlite: cannot write to the generation cache .* is the "
                                               r"disk of .*c2 full\?"):
            cache.put([(f"k{i}", "{}", "b", "p", {}, 0, "x" * 5000, "stop", {}) for i in range(50)])


def test_reports_that_cannot_be_written_name_the_target_not_a_temporary_file(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with OpenAITestServer("echo") as srv:
        echo_run(srv, data_dir, tmp_path / "o", tmp_path / "c", limit=2)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = cli("view", tmp_path / "o", "-o", blocker / "page.html")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{blocker / 'page.html'}: cannot write it" in err and ".tmp" not in err


# ------------------------------------------------------------------ 3. only usable judge verdicts are cached
GRADER = "rubric-grader-FAKE"


class FakeGrader(OpenAITestServer):
    """FAKE grader: met iff the criterion text has an even number of characters (no model)."""

    def complete(self, path, body):
        prompt = body["messages"][-1]["content"]
        met = len(prompt.split("# Rubric criterion", 1)[1].split("# Instructions")[0].strip()) % 2 == 0
        content = json.dumps({"explanation": "fixed rule", "criteria_met": met})
        return 200, {"id": "g", "object": "chat.completion", "created": 0, "model": GRADER,
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}]}


def healthbench(srv, judge, data_dir, out, cache):
    backend = OpenAIBackend(ECHO_MODEL, base_url=srv.url, max_retries=0, timeout=10)
    cfg = RunConfig(tasks=["healthbench"], limit=1, max_tokens=8, data_dir=str(data_dir), judge=GRADER,
                    judge_base_url=judge.url, output_dir=str(out), cache_dir=str(cache))
    return run(cfg, backend=backend, progress=False)["tasks"]["healthbench"]


def test_empty_judge_replies_are_retried_counted_and_never_served_from_the_cache(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with OpenAITestServer("echo") as srv:
        with FakeGrader(model_name=GRADER) as fresh:
            good = healthbench(srv, fresh, data_dir, tmp_path / "fresh", tmp_path / "c-fresh")
        n = good["judge"]["criteria_graded"]
        with FakeGrader(model_name=GRADER, faults=["empty"] * (3 * n)) as judge:   # one bad minute, then fine
            bad = healthbench(srv, judge, data_dir, tmp_path / "bad", tmp_path / "c")
            assert len(judge.entries(status="empty")) == 3 * n        # asked, then asked again twice
            j = bad["judge"]
            assert (j["unparseable"], j["unusable_replies"], j["empty_replies"], j["reasks"]) == (n, 3 * n, 3 * n, 2 * n)
            assert bad["metrics"]["greedy"]["rubric_score"]["value"] == 0.0
            healed = healthbench(srv, judge, data_dir, tmp_path / "healed", tmp_path / "c")
            assert len(judge.entries(status=200)) == n, "the empty verdicts were not cached: asked again"
    assert healed["judge"]["calls"] == n and healed["judge"]["unparseable"] == 0
    assert healed["metrics"] == good["metrics"] and good["metrics"]["greedy"]["rubric_score"]["value"] > 0


def test_an_unusable_verdict_already_in_the_cache_is_asked_again_and_replaced(tmp_path, monkeypatch):
    from medeval.graders.chat import chat_model
    from medeval.graders.rubric import RubricGrader

    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with FakeGrader(model_name=GRADER) as judge:
        cache = Cache(tmp_path)
        grader = RubricGrader(chat_model(GRADER, judge.url, cache))
        prompt = "# Rubric criterion (5 points)\nSays hello.\n\n# Instructions\nJudge."
        key = grader.cache_keys(prompt)[0]
        cache.put([(key, "{}", "openai", "p", {}, 0, "Hard to say.", "stop", {})])   # as older versions stored it
        _, reply = grader.reply(prompt)
        assert len(judge.log) == 1 and isinstance(json.loads(reply["content"])["criteria_met"], bool)
        assert cache.get([key])[key][0] == reply["content"]    # the verdict replaced the unusable row


# ------------------------------------------------------------------ 12. lone surrogates in a server's reply
def test_a_lone_surrogate_in_a_reply_is_replaced_counted_and_the_run_goes_on(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with OpenAITestServer("echo", faults=["surrogate"]) as srv:
        res = echo_run(srv, data_dir, tmp_path / "o", tmp_path / "c")
        again = echo_run(srv, data_dir, tmp_path / "o2", tmp_path / "c")
    assert res["cache"]["replaced_surrogates"] == 1 and again["cache"]["misses"] == 0
    rows = [json.loads(line) for line in (tmp_path / "o" / "samples_medqa.jsonl").open(encoding="utf-8")]
    assert sum(r["greedy"]["outputs"][0].endswith("\ufffd") for r in rows) == 1
    assert all(r["greedy"]["pred"] for r in rows), "the replaced character does not hide the answer"
    assert (tmp_path / "o2" / "samples_medqa.jsonl").read_text() == (tmp_path / "o" / "samples_medqa.jsonl").read_text()


# ------------------------------------------------------------------ 4, 5. the gate is not moved by edited files
def two_models(tmp_path, data_dir, monkeypatch):
    """A baseline and a candidate run of two FAKE echo models (different served names: different identities)."""
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with OpenAITestServer("echo", model_name="echo-base-FAKE") as a, OpenAITestServer("echo", model_name="echo-cand-FAKE") as b:
        for srv, name in ((a, "base"), (b, "cand")):
            backend = OpenAIBackend(srv.model_name, base_url=srv.url, max_retries=0, timeout=10)
            run(RunConfig(tasks=["medqa"], limit=20, max_tokens=8, data_dir=str(data_dir),
                          output_dir=str(tmp_path / name), cache_dir=str(tmp_path / "c")), backend=backend, progress=False)
    return tmp_path / "base", tmp_path / "cand"


def edit_samples(run_dir: Path, change) -> Path:
    f = run_dir / "samples_medqa.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()]
    for r in rows:
        change(r)
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


def test_the_gate_decides_from_the_outputs_not_from_edited_flags(tmp_path, data_dir, monkeypatch):
    import shutil

    from medeval.reporting import gate as G

    base, cand = two_models(tmp_path, data_dir, monkeypatch)
    honest = G.run_gate(base, cand).results[0]
    assert honest.stats["candidate"] < 0.6

    def forge(r, extracted=False):
        r["greedy"].update(pred=r["gold"], correct=True)
        if extracted:
            r["greedy"]["extracted"] = [r["gold"]]

    forged = edit_samples(shutil.copytree(cand, tmp_path / "forged"), forge)
    deeper = edit_samples(shutil.copytree(cand, tmp_path / "deeper"), lambda r: forge(r, extracted=True))
    for run_dir in (forged, deeper):
        got = G.run_gate(base, run_dir).results[0]
        assert got.stats == honest.stats, "forged flags do not move the gate"
        assert any("do not follow from the outputs" in n for n in got.notes)
    # without the data file the run read, pred must still follow from the extracted answers
    block = json.loads((forged / "results.json").read_text())
    block["tasks"]["medqa"]["dataset"]["source"] = "local:/nonexistent/medqa/test.jsonl"
    (forged / "results.json").write_text(json.dumps(block))
    got = G.run_gate(base, forged).results[0]
    assert got.stats == honest.stats and any("do not follow from the extracted answers" in n for n in got.notes)


def test_the_same_model_refusal_cannot_be_bypassed_by_editing_results(tmp_path, data_dir, monkeypatch):
    import shutil

    from medeval.reporting import gate as G
    from medeval.results import ResultsError

    base, _ = two_models(tmp_path, data_dir, monkeypatch)
    assert G.run_gate(base, base).exit_code == 2
    for name, edit in (("no-model", lambda d: d.pop("model")),
                       ("other-hash", lambda d: d["model"].update(identity_hash="0" * 64)),
                       ("no-hash", lambda d: d["model"].pop("identity_hash"))):
        copy = shutil.copytree(base, tmp_path / name)
        data = json.loads((copy / "results.json").read_text())
        edit(data)
        (copy / "results.json").write_text(json.dumps(data))
        with pytest.raises(ResultsError, match=r"results.json: field 'model") as e:
            G.run_gate(base, copy)
        assert "\n" not in str(e.value)
    code, out, error = command("gate", "--baseline", base, "--candidate", tmp_path / "no-model")
    assert code == 2 and "field 'model' is missing" in out


# ------------------------------------------------------------------ 6. usage is a property of the cached samples
@pytest.mark.parametrize("samples", ["per_sample", "native"])
def test_usage_and_cost_are_the_same_fresh_grown_and_cached(samples, tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")

    def usage(res):
        return res["usage"]["generation"], res["tasks"]["pubmedqa"]["usage"]

    with OpenAITestServer("echo") as srv:
        go = lambda out, cache, k: echo_run(srv, data_dir, tmp_path / out, tmp_path / cache, k=k, tasks=("pubmedqa",),
                                            samples=samples, price_per_mtok="2,8")
        fresh = go("fresh", "c1", 5)
        go("k3", "c2", 3)
        grown = go("grown", "c2", 5)
        cached = go("cached", "c2", 5)
    assert cached["cache"]["misses"] == 0 and grown["cache"]["hits"] > 0
    assert usage(grown) == usage(fresh) and usage(cached) == usage(fresh)
    assert fresh["usage"]["generation"]["prompt_tokens"] > 0 and fresh["usage"]["generation"]["cost_usd"] > 0


# ------------------------------------------------------------------ 7, 8. side files are checked strictly
def side_file(tmp_path, name, rows) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def prepared(data_dir, **kw):
    from medeval.runs.config import RunConfig as C
    from medeval.runs.prepare import prepare
    from medeval.tasks.spec import Registry

    return prepare(Registry().tasks["medqa"], C(tasks=["medqa"], limit=3, data_dir=str(data_dir), **kw))


@pytest.mark.parametrize("rows,message", [
    ([{"id": "0", "kind": "reasoning"}, {"id": "0", "kind": "knowledge"}], r"row 2: id '0' is also row 1, with other values"),
    ([{"id": "0", "kind": {"nested": 1}}], r"id '0': label 'kind' is dict"),
    ([{"id": None, "kind": "reasoning"}], r"row 1: field 'id' is None"),
])
def test_bad_item_label_files_are_one_line_errors(rows, message, tmp_path, data_dir):
    with pytest.raises(MedevalError, match=message) as e:
        prepared(data_dir, item_labels=side_file(tmp_path, "labels.jsonl", rows))
    assert "labels.jsonl" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("rows,message", [
    ([{"id": "0", "prefill": "Wrong A."}, {"id": "0", "prefill": "Wrong B."}], r"row 2: id '0' is also row 1"),
    ([{"id": "0", "prefill": 3}], r"id '0': 'prefill' 3; each row needs 'prefill'"),
    ([{"id": "0", "trace": "x"}], r"id '0': no 'prefill' field"),
])
def test_bad_adversarial_files_are_one_line_errors(rows, message, tmp_path, data_dir):
    with pytest.raises(MedevalError, match=message):
        prepared(data_dir, adversarial=True, adversarial_file=side_file(tmp_path, "traces.jsonl", rows))


def test_side_files_that_match_no_item_warn_and_an_adversarial_file_needs_adversarial(tmp_path, data_dir, caplog):
    labels = side_file(tmp_path, "labels.jsonl", [{"id": "medqa-0", "kind": "reasoning"}])
    traces = side_file(tmp_path, "traces.jsonl", [{"id": "medqa-0", "prefill": "Wrong."}])
    with caplog.at_level(logging.WARNING, logger="medeval.tasks.item_files"):
        p = prepared(data_dir, item_labels=labels, adversarial=True, adversarial_file=traces)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and all("none of its 1 ids is an item id of this task" in w for w in warned)
    assert p.notes["item_labels"]["warning"] == warned[0] and p.notes["adversarial_traces"]["warning"] == warned[1]
    from medeval.runs.config import check_config

    cfg = RunConfig(tasks=["medqa"], adversarial_file=traces, self_consistency=0, temperature=0.7, top_p=0.9,
                    output_dir=str(tmp_path / "o"), no_cache=True)
    with pytest.raises(MedevalError, match=r"--adversarial-file .*traces.jsonl: pre-fills are used only in --adversarial"):
        check_config(cfg)


# ------------------------------------------------------------------ 9, 10, 11. score lines, render options, prices
def test_a_score_line_with_both_output_and_outputs_is_refused(tmp_path, data_dir):
    from medeval.runs.score_external import score_file

    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"id": "0", "output": "The answer is A", "outputs": ["B", "C"]}) + "\n")
    with pytest.raises(MedevalError, match=r"preds.jsonl: line 1: has both 'output' and 'outputs'"):
        score_file("medqa", preds, tmp_path / "o", "m", data_dir)


@pytest.mark.parametrize("args,message", [
    (["--max-tokens", "0"], "--max-tokens must be a positive number of tokens, got 0"),
    (["--chat-template-kwargs", "[1,2]"], "--chat-template-kwargs: expected a JSON object, got list"),
])
def test_render_refuses_what_run_refuses(args, message, data_dir):
    code, out, error = command("render", "--tasks", "medqa", "--limit", "1", "--data-dir", data_dir, *args)
    assert error is not None and message in str(error)


def test_an_empty_price_is_refused_not_dropped(tmp_path):
    cfg = RunConfig(tasks=["medqa"], price_per_mtok="", output_dir=str(tmp_path / "o"), no_cache=True)
    with pytest.raises(MedevalError, match=r"--price-per-mtok '': expected IN,OUT"):
        run(cfg, backend=object(), progress=False)   # object(): refused before any generation


# ------------------------------------------------------------------ also seen: two runs into one -o
def test_a_second_run_into_a_directory_in_use_is_warned(tmp_path, data_dir, monkeypatch, caplog):
    from medeval.runs.runner import _claim, _release

    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    (tmp_path / "o").mkdir()
    held = _claim(tmp_path / "o")   # as a first run holds it
    with OpenAITestServer("echo") as srv, caplog.at_level(logging.WARNING, logger="medeval.runs.runner"):
        echo_run(srv, data_dir, tmp_path / "o", tmp_path / "c", limit=1)
    warned = [r.getMessage() for r in caplog.records if "in use by another medeval run" in r.getMessage()]
    assert len(warned) == 1 and str(tmp_path / "o") in warned[0] and f"pid {os.getpid()}" in warned[0]
    _release(held)
    assert not (tmp_path / "o" / ".medeval-run.lock").exists()


def test_a_run_that_fails_releases_its_output_directory(tmp_path, data_dir):
    """The lock is released however a run ends: a later run in the same process (the sequential gate runs
    again and again) is not warned about itself."""
    cfg = RunConfig(tasks=["no_such_task"], data_dir=str(data_dir), output_dir=str(tmp_path / "o"),
                    cache_dir=str(tmp_path / "c"))
    with pytest.raises(MedevalError):
        run(cfg, progress=False)
    assert not (tmp_path / "o" / ".medeval-run.lock").exists()


# ------------------------------------------------------------------ also seen: the judge's own timeout
def test_the_judge_has_its_own_timeout(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with OpenAITestServer("echo") as srv, FakeGrader(model_name=GRADER, faults=["delay"] * 30, delay_s=3) as judge:
        backend = OpenAIBackend(ECHO_MODEL, base_url=srv.url, max_retries=0, timeout=10)
        cfg = RunConfig(tasks=["healthbench"], limit=1, max_tokens=8, data_dir=str(data_dir), judge=GRADER,
                        judge_base_url=judge.url, judge_timeout=0.5, output_dir=str(tmp_path / "o"),
                        cache_dir=str(tmp_path / "c"))
        from medeval.graders import registry as graders

        monkeypatch.setitem(graders.chat_model.__globals__["DEFAULTS"], "max_retries", 0)
        with pytest.raises(MedevalError, match=r"judge rubric-grader-FAKE .* no response within 0.5s"):
            run(cfg, backend=backend, progress=False)
    with pytest.raises(MedevalError, match="--judge-timeout must be a positive number of seconds"):
        run(RunConfig(tasks=["medqa"], judge_timeout=0, no_cache=True, output_dir=str(tmp_path / "o")),
            backend=object(), progress=False)


def test_a_cache_that_sqlite_refuses_at_once_as_locked_is_opened_on_a_later_try(tmp_path, monkeypatch):
    """Two processes opening a new cache file together both ask to switch it to WAL; SQLite answers one of them
    "database is locked" without waiting (a Ray shard failed so). Simulated (FAKE): the first two opens raise that."""
    import sqlite3

    real, calls = Cache._open, []

    def refused_twice(self):
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        real(self)

    monkeypatch.setattr(Cache, "_open", refused_twice)
    cache = Cache(tmp_path / "c")
    assert len(calls) == 3 and cache.damage is None and cache.stats()["entries"] == 0
    cache.close()

    calls.clear()
    monkeypatch.setattr(Cache, "_open", lambda self: (calls.append(1), (_ for _ in ()).throw(
        sqlite3.OperationalError("database is locked"))))
    with pytest.raises(MedevalError, match=r"generations.sqlite: cannot open the generation cache \(database is locked\)"):
        Cache(tmp_path / "d")
    assert len(calls) == 8   # tried a bounded number of times, then one line naming the file
