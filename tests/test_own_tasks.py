"""A researcher's own tasks (issue 24): row filters, a broken file beside good ones, `medeval tasks`
filters, custom metrics from a Python file beside the task, the leaderboard of what was run, progress
lines when stderr is a file. Real data from ../shared/data; the model tests use the embedded model on
2 items and are marked slow."""
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medeval.cli import app
from medeval.runs.config import RunConfig
from medeval.tasks.data import load_items
from medeval.errors import MedevalError
from medeval.runs.prepare import prepare
from medeval.tasks.spec import Registry

from conftest import read_rows

STEP1 = """\
name: my_step1
version: 1
base: _mcq_base.yaml
dataset:
  local: medqa/test.jsonl
  fields: [question, options, answer_idx]
  filter:
    - {field: meta_info, equals: step1}
    - {field: options, min_items: 4}
answer: {type: choice, options: options, gold: answer_idx, gold_format: letter}
"""

BROKEN = """\
name: broken
version: 1
dataset: {local: medqa/test.jsonl}
prompt: {template: mcq.jinja}
answer: {type: choice, options: options, gold: answer_idx, gold_format: lettr}
metrics: [accuracy]
"""


def own_tasks(tmp_path, **files) -> Path:
    d = tmp_path / "my_tasks"
    d.mkdir(exist_ok=True)
    for name, body in files.items():
        (d / name.replace("__", ".")).write_text(textwrap.dedent(body))
    return d


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_filter_keeps_the_rows_meeting_every_condition_and_counts_the_others(tmp_path, data_dir):
    d = own_tasks(tmp_path, my_step1__yaml=STEP1)
    task = Registry([d]).tasks["my_step1"]
    rows = read_rows("medqa")
    expected = [str(k) for k, r in enumerate(rows) if r["meta_info"] == "step1"]
    items = load_items(task, data_dir)
    assert items.ids == expected and 0 < len(expected) < len(rows)    # ids: the rows' indices in the file
    assert items.n_total == len(expected)
    assert items.selection == {"rows_in_split": len(rows), "filter": [{"field": "meta_info", "equals": "step1"},
                                                                      {"field": "options", "min_items": 4}],
                               "filtered_out": len(rows) - len(expected)}
    p = prepare(task, RunConfig(tasks=["my_step1"], data_dir=str(data_dir), limit=3))
    assert p.ids == expected[:3] and p.notes["selection"]["limit"] == 3 and p.notes["selection"]["subset"] == "first"
    # a seeded random subset of the filtered rows, in file order, the same for the same seed
    a = prepare(task, RunConfig(tasks=["my_step1"], data_dir=str(data_dir), limit=5, sample_seed=7))
    b = prepare(task, RunConfig(tasks=["my_step1"], data_dir=str(data_dir), limit=5, sample_seed=7))
    c = prepare(task, RunConfig(tasks=["my_step1"], data_dir=str(data_dir), limit=5, sample_seed=8))
    assert a.ids == b.ids != c.ids and set(a.ids) <= set(expected) and a.ids != expected[:5]
    assert a.ids == sorted(a.ids, key=int) and a.notes["selection"]["sample_seed"] == 7


@pytest.mark.parametrize("cond,needle", [
    ("{field: meta_inf, equals: step1}", "no row of .* has the field 'meta_inf'"),
    ("{field: meta_info, equals: step4}", "no row of .* meets every condition"),
    ("{field: meta_info}", "has no condition"),
    ("{field: meta_info, equal: step1}", "dataset.filter.0.equal"),
])
def test_a_filter_that_is_a_typo_is_an_error_not_an_empty_set(tmp_path, data_dir, cond, needle):
    body = STEP1.replace("- {field: meta_info, equals: step1}", "- " + cond)
    d = own_tasks(tmp_path, my_step1__yaml=body)
    with pytest.raises(MedevalError, match=needle):
        prepare(Registry([d]).resolve(["my_step1"])[0], RunConfig(tasks=["my_step1"], data_dir=str(data_dir)))


def test_a_broken_file_affects_only_itself(tmp_path, data_dir):
    d = own_tasks(tmp_path, my_step1__yaml=STEP1, broken__yaml=BROKEN,
                  mine__yaml="group: mine\ntasks: [my_step1, broken]\n",
                  medqa__yaml="name: medqa\nversion: [\n")   # a broken override hides the bundled medqa
    with pytest.raises(MedevalError, match="broken.yaml: field 'answer.gold_format'"):
        Registry([d])                                             # the library default: strict
    reg = Registry([d], strict=False)
    assert "my_step1" in reg.tasks and "medmcqa" in reg.tasks and "mine" in reg.groups
    assert set(reg.broken) == {"broken", "medqa"} and "medqa" not in reg.tasks
    assert reg.broken["broken"].startswith(f"{d / 'broken.yaml'}: field 'answer.gold_format'")
    for names in (["broken"], ["mine"], ["medqa"]):
        with pytest.raises(MedevalError, match=r"(broken|medqa)\.yaml"):
            reg.resolve(names)
    assert [t.name for t in reg.resolve(["my_step1"])] == ["my_step1"] and reg.groups_for(reg.resolve(["my_step1"])) == []
    r = cli("render", "--task-dir", d, "--tasks", "my_step1", "--limit", "1", "--data-dir", data_dir)
    assert r.exit_code == 0 and "my_step1" in r.output
    r = cli("render", "--task-dir", d, "--tasks", "broken", "--limit", "1", "--data-dir", data_dir)
    assert r.exit_code != 0


def test_tasks_lists_yours_first_and_apart_and_filters(tmp_path, data_dir):
    d = own_tasks(tmp_path, my_step1__yaml=STEP1, broken__yaml=BROKEN)
    r = cli("tasks", "--task-dir", d, "--data-dir", data_dir, "--only-mine")
    assert isinstance(r.exception, MedevalError)     # `medeval` prints it as `error: ...`, exit status 2
    out = " ".join(r.output.split()) + " " + str(r.exception)
    assert "my_step1" in out and "medmcqa" not in out and "filtered out" in out
    n = sum(1 for row in read_rows("medqa") if row["meta_info"] == "step1")
    assert f"{n} ({1273 - n} filtered out)" in out
    assert "broken: " in out and "answer.gold_format" in out and "1 task file(s) cannot be loaded" in out
    assert "my_step1:" not in str(r.exception)
    r = cli("tasks", "--task-dir", d)
    out = r.output
    assert out.index("my_tasks") < out.index("bundled tasks") < out.index("medmcqa")
    r = cli("tasks", "--group", "mmlu_medical")
    assert r.exit_code == 0 and "│ mmlu_anatomy " in r.output and "│ medqa " not in r.output
    r = cli("tasks", "openllm_mmlu_*")
    assert "│ openllm_mmlu_anatomy " in r.output and "│ openllm_medqa " not in r.output
    assert "│ mmlu_anatomy " not in r.output


def test_leaderboard_without_preset_shows_the_runs_tasks_and_marks_partial_cells(tmp_path):
    """FAKE runs from tests/results_factory.py (synthetic predictions): a 20-item cell of a 1273-item
    split beside full cells; a group's score in the runs."""
    from results_factory import TaskSpec, mask_with_accuracy, medqa_golds, preds_from_mask, write_run

    from medeval.reporting import board as L
    from medeval.reporting.charts import _items
    from medeval.reporting.presets import auto_preset
    from medeval.results import read_results

    def spec(n, acc, n_total=None, name=None):
        golds = medqa_golds(n)
        return TaskSpec(golds, preds_from_mask(golds, mask_with_accuracy(n, acc, seed=n)), n_total=n_total,
                        display_name=name)

    a = write_run(tmp_path / "a", "org/a", {"my_step1": spec(20, .5, 1273, "My step 1"), "zeta": spec(30, .6)})
    b = write_run(tmp_path / "b", "org/b", {"my_step1": spec(40, .7), "alpha": spec(10, .4)})
    data = json.loads((a / "results.json").read_text())
    data["groups"] = {"mine": {"tasks": ["zeta", "my_step1"], "greedy": {"value": 0.55}, "rule": "mean of task scores"}}
    (a / "results.json").write_text(json.dumps(data))
    out = tmp_path / "lb" / "README.md"
    r = cli("leaderboard", a, b, "-o", out)
    assert r.exit_code == 0, r.output
    md = out.read_text()
    head = next(line for line in md.splitlines() if line.startswith("| Model"))
    assert head == "| Model | Average | mine | zeta | My step 1 | alpha |"   # group first, its members in order
    row_a = next(line for line in md.splitlines() if line.startswith("| org/a"))
    cells = [c.strip() for c in row_a.split("|")[1:-1]]
    assert cells[4] == "50.00 (20/1273)" and cells[3] == "**60.00**"          # the 20-item cell is marked
    assert cells[2] == "**55.00** (50/1303)"                                 # the group counts its members' items
    assert cells[1] == "**55.00**\\* (1 of 2 partial)"    # groups stay out of the Average; alpha is missing
    assert "(n/N)" in md and "not part of the Average" in md
    page = (tmp_path / "lb" / "index.html").read_text()
    assert "50.00 (20/1273)" in page and "(1 of 2 partial)" in page
    assert (tmp_path / "lb" / "charts" / "my_step1.png").is_file()
    board = L.build([read_results(a), read_results(b)], auto_preset([read_results(a), read_results(b)]))
    assert _items(next(r for r in board.rows if r.label == "org/a"), "My step 1", ("greedy",)) == " (20/1273)"
    assert _items(next(r for r in board.rows if r.label == "org/b"), "My step 1", ("greedy",)) == ""
    # the card's layout stays available by name
    r = cli("leaderboard", a, "-o", out, "--preset", "neeto", "--no-html", "--no-charts")
    assert r.exit_code == 0 and "| MedQA |" in out.read_text()


PLUGIN = '''\
"""A metric of my own (tests/test_own_tasks.py)."""
from medeval.metrics import metric


def _answered(pred, gold):
    return float(pred is not None)


@metric("answered", item=_answered, answer_types=["choice"])
def answered(preds, golds, **_):
    """Share of items with an extracted answer."""
    return sum(_answered(p, g) for p, g in zip(preds, golds)) / len(golds)
'''


def test_plugins_are_checked_and_loaded_only_when_their_task_is_used(tmp_path, data_dir):
    from medeval import metrics

    body = STEP1.replace("name: my_step1", "name: my_answered") + "plugins: [answers_metric.py]\nmetrics: [answered, accuracy]\n"
    d = own_tasks(tmp_path, my_answered__yaml=body, answers_metric__py=PLUGIN.replace('"answered"', '"answered_t1"')
                  .replace("[answered,", "[answered_t1,"))
    (d / "my_answered.yaml").write_text(body.replace("[answered,", "[answered_t1,"))
    reg = Registry([d])                                   # listed: the plugin is not run
    assert "answered_t1" not in metrics.REGISTRY
    task = reg.resolve(["my_answered"])[0]               # used: run once, its metric registered
    assert metrics.get("answered_t1").fn([None, "A"], ["A", "A"]) == 0.5
    p = prepare(task, RunConfig(tasks=["my_answered"], data_dir=str(data_dir), limit=2))
    assert list(p.notes["plugins"]) == ["answers_metric.py"] and len(p.notes["plugins"]["answers_metric.py"]) == 64
    # a plugin may not replace a metric; a path or a missing file is refused
    (d / "evil.py").write_text("from medeval.metrics import metric\n@metric('accuracy')\ndef f(p, g, **_):\n    return 1.0\n")
    for plugins, needle in (("[evil.py]", "registers metric 'accuracy', which exists already"),
                            ("[../x.py]", "must be the name of a .py file"), ("[nope.py]", "'nope.py' not found")):
        (d / "my_answered.yaml").write_text(body.replace("[answers_metric.py]", plugins)
                                            .replace("[answered,", "[accuracy,"))
        with pytest.raises(MedevalError, match=needle):
            Registry([d], strict=False).resolve(["my_answered"])
    assert metrics.get("accuracy").fn(["A", "B"], ["A", "A"]) == 0.5


@pytest.mark.slow
def test_the_issue_check_own_tasks_run_end_to_end(tmp_path, data_dir, hf_backend, monkeypatch):
    """Issue 24's check: a task directory with a filter, a metric in a Python file beside it and a broken
    YAML. The good task runs (the real embedded model, 2 items) with stderr going to a file: progress lines
    appear; the filter's count and the custom metric are in results.json; the leaderboard shows them, (n/N)."""
    import io
    import stat
    import sys

    from rich.console import Console

    from medeval.reporting.summary import summary
    from medeval.runs.runner import run

    body = (STEP1.replace("name: my_step1", "name: my_answered") + "plugins: [answers_metric.py]\n"
            "metrics: [answered, accuracy]\n")
    d = own_tasks(tmp_path, my_answered__yaml=body, answers_metric__py=PLUGIN, broken__yaml=BROKEN)
    out = tmp_path / "runs" / "mine"
    r = cli("run", "--task-dir", d, "--data-dir", data_dir, "-o", out, "--tasks", "broken")   # asked for: its error
    assert r.exit_code != 0 and f"{d / 'broken.yaml'}: field 'answer.gold_format'" in str(r.exception)
    with open(tmp_path / "stderr.txt", "w") as err:
        monkeypatch.setattr(sys, "stderr", err)
        res = run(RunConfig(tasks=["my_answered"], task_dirs=[str(d)], data_dir=str(data_dir), limit=2,
                            max_tokens=8, output_dir=str(out), no_cache=True), backend=hf_backend, progress=True)
        monkeypatch.undo()
    log = (tmp_path / "stderr.txt").read_text()
    assert "medeval: generating 0/2 (0%)" in log and "medeval: generating 2/2 (100%)" in log, log
    text = io.StringIO()
    summary(res, Console(file=text, width=200, force_terminal=True, color_system=None))
    assert "greedy [95% CI]" in text.getvalue() and "acc_norm" not in text.getvalue()   # headers fit the task
    t = json.loads((out / "results.json").read_text())["tasks"]["my_answered"]
    n_step1 = sum(1 for row in read_rows("medqa") if row["meta_info"] == "step1")
    assert t["selection"]["filtered_out"] == 1273 - n_step1 and t["n_total"] == n_step1 and t["n"] == 2
    samples = [json.loads(line) for line in (out / "samples_my_answered.jsonl").read_text().splitlines()]
    assert t["primary_metric"] == "answered" and list(t["plugins"]) == ["answers_metric.py"]
    assert t["metrics"]["greedy"]["answered"]["value"] == sum(s["greedy"]["pred"] is not None for s in samples) / 2
    for f in ("results.json", "samples_my_answered.jsonl"):   # the user's umask, not mkstemp's 0600
        assert stat.S_IMODE((out / f).stat().st_mode) == 0o666 & ~_umask()
    lb = tmp_path / "lb" / "README.md"
    r = cli("leaderboard", out, "-o", lb, "--no-charts")
    assert r.exit_code == 0, r.output
    md = lb.read_text()
    assert "| Model | Average | my\\_answered |" in md and f"(2/{n_step1})" in md and "my\\_answered = answered" in md


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_judging_shows_progress_lines_when_stderr_is_a_file(tmp_path, monkeypatch):
    """FAKE judge: a loopback OpenAI-compatible server (medeval.testing) that answers every prompt 'none'."""
    import sys

    from medeval.graders.registry import Graders
    from medeval.testing.openai_server import OpenAITestServer

    class NoneJudge(OpenAITestServer):
        def complete(self, path, body):
            return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "fake-judge-FAKE",
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": "none"}}]}

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-FAKE")
    with NoneJudge(model_name="fake-judge-FAKE", api_key="sk-test-FAKE") as server:
        for progress, expected in ((True, True), (False, False)):
            cfg = RunConfig(tasks=["medqa"], extract_judge="fake-judge-FAKE", extract_judge_base_url=server.url,
                            no_cache=True)
            graders = Graders(cfg, progress=progress)
            log = tmp_path / f"stderr-{progress}.txt"
            with open(log, "w") as err:
                monkeypatch.setattr(sys, "stderr", err)
                graders.extract_for().ask_all({f"h{k}": f"prompt {k} {progress}" for k in range(3)})
                monkeypatch.undo()
                monkeypatch.setenv("OPENAI_API_KEY", "sk-test-FAKE")
            graders.close()
            text = log.read_text()
            assert ("medeval: judging 3/3 (100%)" in text) is expected and ("judging 0/3" in text) is expected, text
