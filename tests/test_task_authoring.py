"""Adding a dataset by YAML: base lookup, load-time checks, `medeval render`, `medeval score` on partial files."""
import json
import subprocess
import sys
import textwrap

import pytest

from medeval.errors import MedevalError
from medeval.runs.render import format_item, render_items, repeated_options
from medeval.runs.runner import RunConfig, prepare
from medeval.runs.score_external import score_file
from medeval.tasks.spec import Registry, package_dir

MEDEVAL = [sys.executable, "-m", "medeval.cli"]

# A user's MedQA copy that extends the *bundled* _mcq_base.yaml (the outside check's first stumble).
USER_MCQ = """\
name: my_medqa
version: 1
base: _mcq_base.yaml
dataset: {local: medqa/test.jsonl, fields: [question, options, answer_idx]}
answer: {type: choice, options: options, gold: answer_idx, gold_format: letter}
"""


def tasks_dir(tmp_path, **files):
    d = tmp_path / "tasks"
    d.mkdir(exist_ok=True)
    for name, body in files.items():
        (d / name.replace("__", ".")).write_text(textwrap.dedent(body))
    return d


def load_error(d) -> str:
    with pytest.raises(MedevalError) as e:
        Registry([d])
    return str(e.value)


def test_base_is_found_in_the_bundled_tasks_and_a_local_base_wins(tmp_path):
    d = tasks_dir(tmp_path, my_medqa__yaml=USER_MCQ)
    task = Registry([d]).tasks["my_medqa"]
    assert task.prompt.template == "mcq.jinja" and task.metrics == ["accuracy", "macro_f1"]
    (d / "_mcq_base.yaml").write_text("prompt: {template: mcq.jinja}\nmetrics: [accuracy]\n")
    assert Registry([d]).tasks["my_medqa"].metrics == ["accuracy"]


def test_a_missing_base_says_where_it_looked(tmp_path):
    d = tasks_dir(tmp_path, my_medqa__yaml=USER_MCQ.replace("_mcq_base.yaml", "_mcq_bse.yaml"))
    msg = load_error(d)
    assert "my_medqa.yaml: field 'base': '_mcq_bse.yaml' not found" in msg
    assert str(d.resolve()) in msg and str(package_dir("tasks").resolve()) in msg and "\n" not in msg


def test_a_circular_base_is_named(tmp_path):
    d = tasks_dir(tmp_path, my_medqa__yaml=USER_MCQ.replace("_mcq_base.yaml", "_a.yaml"),
                  _a__yaml="base: _b.yaml\n", _b__yaml="base: _a.yaml\n")
    assert "circular" in load_error(d)


@pytest.mark.parametrize("old,new,needle", [
    ("gold_format: letter}", "gold_format: label}", "'label' does not fit answer.type 'choice'"),
    ("options: options,", "options: [a],", "answer.options lists 1 fields"),
    ("options: options,", "options: options, labels: [x, y],", "not used by answer.type 'choice'"),
    ("type: choice, options: options, gold: answer_idx, gold_format: letter",
     "type: yesno, options: options, gold: answer_idx", "only used by answer.type 'choice'"),
    ("type: choice, options: options, gold: answer_idx, gold_format: letter",
     "type: label, labels: [a, b], aliases: {c: [cc]}, gold: answer_idx", "aliases has keys ['c']"),
    ("type: choice, options: options, gold: answer_idx, gold_format: letter",
     "type: label, labels: [a, a], gold: answer_idx", "must be distinct"),
    ("base: _mcq_base.yaml", "base: _mcq_base.yaml\nmetrics: [acuracy]", "unknown metric 'acuracy'; did you mean accuracy"),
    ("base: _mcq_base.yaml", "base: _mcq_base.yaml\nprompt: {template: nope.jinja}",
     "field 'prompt.template': template 'nope.jinja' not found"),
])
def test_answer_settings_templates_and_metrics_are_checked_when_files_load(tmp_path, old, new, needle):
    assert old in USER_MCQ
    msg = load_error(tasks_dir(tmp_path, my_medqa__yaml=USER_MCQ.replace(old, new)))
    assert "my_medqa.yaml: field" in msg and needle in msg and "\n" not in msg, msg


def test_a_misspelled_group_member_and_a_circle_of_groups_are_errors(tmp_path):
    d = tasks_dir(tmp_path, g__yaml="group: g\ntasks: [medqa, mmlu_anatomyy]\n")
    msg = load_error(d)
    assert "g.yaml: field 'tasks': 'mmlu_anatomyy' is not a task or group; did you mean mmlu_anatomy" in msg
    d = tasks_dir(tmp_path, g__yaml="group: g\ntasks: [medqa, h]\n", h__yaml="group: h\ntasks: [g]\n")
    assert "in a circle" in load_error(d)


def test_choice_gold_format_defaults_to_letter(tmp_path):
    d = tasks_dir(tmp_path, my_medqa__yaml=USER_MCQ.replace(", gold_format: letter", ""))
    assert Registry([d]).tasks["my_medqa"].answer.gold_format == "letter"


def test_index_gold_format_on_letter_golds_is_one_line_not_a_traceback(tmp_path, data_dir):
    d = tasks_dir(tmp_path, my_medqa__yaml=USER_MCQ.replace("gold_format: letter", "gold_format: index0"))
    task = Registry([d]).tasks["my_medqa"]
    with pytest.raises(MedevalError) as e:
        prepare(task, RunConfig(tasks=["my_medqa"], data_dir=str(data_dir), limit=2))
    assert "field 'answer.gold_format': index0 needs a whole-number index" in str(e.value)
    assert "use gold_format: letter" in str(e.value)


def cli(*args):
    return subprocess.run([*MEDEVAL, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_tasks_and_run_agree_on_a_bad_options_field(tmp_path, data_dir):
    """`medeval tasks --data-dir` prepares every row of every task, so it reports what `run` would."""
    d = tasks_dir(tmp_path, my_medqa__yaml=USER_MCQ.replace("options: options,", "options: choices,"))
    proc = cli("tasks", "--task-dir", d, "--data-dir", data_dir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "my_medqa.yaml: field 'answer.options': the row has no field 'choices'" in proc.stderr
    with pytest.raises(MedevalError, match="field 'answer.options': the row has no field 'choices'"):
        prepare(Registry([d]).tasks["my_medqa"], RunConfig(tasks=["my_medqa"], data_dir=str(data_dir), limit=1))


def test_render_shows_what_a_run_sends_without_a_model(data_dir):
    rows = [json.loads(l) for l in (data_dir / "medqa" / "test.jsonl").read_text().splitlines()[:3]]
    items = render_items(RunConfig(tasks=["medqa", "pubmedqa"], data_dir=str(data_dir), limit=3))
    medqa = [i for i in items if i["task"] == "medqa"]
    assert [i["id"] for i in medqa] == ["0", "1", "2"] and len(items) == 6
    for item, row in zip(medqa, rows):
        assert item["gold"] == row["answer_idx"]
        assert [o["text"] for o in item["options"]] == [row["options"][k] for k in sorted(row["options"])]
        user = item["messages"][-1]["content"]
        assert row["question"] in user and f"D. {row['options']['D']}" in user
        assert item["generation"] == {"max_tokens": 32, "stop": ["\n\n"]} and item["warnings"] == []
    pub = [i for i in items if i["task"] == "pubmedqa"][0]
    assert pub["gold"] in ("yes", "no", "maybe") and pub["options"] == []


def test_render_shows_the_scored_continuations_of_a_loglikelihood_task(data_dir):
    row = json.loads((data_dir / "medqa" / "test.jsonl").read_text().splitlines()[0])
    item, = render_items(RunConfig(tasks=["openllm_medqa"], data_dir=str(data_dir), limit=1))
    assert item["generation"] is None and item["continuations"] == [" A", " B", " C", " D"]
    assert row["question"] in item["messages"][-1]["content"] and item["gold"] == row["answer_idx"]
    assert "scored continuations: [' A', ' B', ' C', ' D']" in format_item(item)


def test_render_cli_prints_prompts_and_warns_about_options_listed_twice(tmp_path, data_dir):
    d = tasks_dir(tmp_path, twice__yaml=USER_MCQ.replace("my_medqa", "twice").replace(
        "base: _mcq_base.yaml", "base: _mcq_base.yaml\nprompt: {template: twice.jinja}"))
    (d / "twice.jinja").write_text("{{ doc.question }}\n{% for k, v in doc.options.items() %}{{ k }}) {{ v }}\n"
                                   "{% endfor %}{% for o in options %}{{ o.letter }}. {{ o.text }}\n{% endfor %}")
    proc = cli("render", "--task-dir", d, "--tasks", "twice", "--limit", "1", "--data-dir", data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "=== twice  id 0  (of 1273)" in proc.stdout and "gold: B" in proc.stdout
    assert "--- user ---" in proc.stdout and "WARNING: every option's text appears twice" in proc.stdout
    proc = cli("render", "--tasks", "medqa", "--limit", "2", "--json", "--data-dir", data_dir)
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert [l["id"] for l in lines] == ["0", "1"] and lines[0]["warnings"] == []


def test_repeated_options_needs_every_option_twice():
    opts = [{"letter": "A", "text": "Aspirin"}, {"letter": "B", "text": "Heparin"}]
    assert repeated_options((("user", "Aspirin or Heparin?\nA. Aspirin\nB. Heparin"),), opts)
    assert not repeated_options((("user", "Which?\nA. Aspirin\nB. Heparin"),), opts)


def test_score_warns_on_a_partial_predictions_file(tmp_path, data_dir):
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "output": "The answer is B or C"}) + "\n" for i in range(3)))
    res = score_file("medqa", preds, tmp_path / "out", "x", data_dir)
    t = res["tasks"]["medqa"]
    assert t["missing_predictions"] == 1270
    assert "predictions for 3 of 1273 items of task 'medqa'; 1270 items are missing" in t["warnings"][0]
    assert t["ambiguous"]["greedy"]["count"] == 3 and t["invalid"]["greedy"]["count"] == 0
    full = tmp_path / "full.jsonl"
    full.write_text("".join(json.dumps({"id": str(i), "output": "B"}) + "\n" for i in range(1273)))
    assert "warnings" not in score_file("medqa", full, tmp_path / "out2", "x", data_dir)["tasks"]["medqa"]


def test_score_names_the_id_scheme_when_ids_are_wrong(tmp_path, data_dir):
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": "q1", "output": "B"}) + "\n")
    with pytest.raises(MedevalError, match='ids are the row index as a string, "0" to "1272"'):
        score_file("medqa", preds, tmp_path / "out", "x", data_dir)
