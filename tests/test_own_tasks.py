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
from medeval.config import RunConfig
from medeval.data import load_items
from medeval.errors import MedevalError
from medeval.prepare import prepare
from medeval.spec import Registry

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
    assert r.exit_code == 1
    out = " ".join(r.output.split())
    assert "my_step1" in out and "medmcqa" not in out and "filtered out" in out
    n = sum(1 for row in read_rows("medqa") if row["meta_info"] == "step1")
    assert f"{n} ({1273 - n} filtered out)" in out
    assert "broken: " in out and "answer.gold_format" in out and "1 task file(s) cannot be loaded" in out
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
    import re

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
