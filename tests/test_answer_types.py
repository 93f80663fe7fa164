"""Answer types and metric declarations: the seams a new answer type or metric plugs into.

The spec's accepted values come from the answer-type classes; each row is read once into an Item;
metrics say which answer types they apply to, whether they take the label set, and which run-wide
choice they read (made once per run). A new answer type is one class: the last test adds one in a
fresh interpreter and runs it from a task file to scored metrics."""
import dataclasses
import json
import subprocess
import sys
import textwrap
import typing

import pytest

from medeval import metrics
from medeval.tasks import answer_types, spec
from medeval.tasks.data import data_hash, ids_hash
from medeval.errors import MedevalError
from medeval.metrics.base import RUN_OPTIONS, RunOption, RunOptions
from medeval.runs.runner import RunConfig, prepare
from medeval.scoring.score import metric_options
from medeval.tasks.spec import Registry

from conftest import DATA

REG = Registry()


def test_the_spec_accepts_what_the_answer_types_declare():
    # the values the spec accepted when they were written out by hand, in the same order
    assert typing.get_args(spec.AnswerType) == ("choice", "yesno", "label", "multilabel", "entities", "text", "span",
                                                "diagnosis", "rubric")
    assert spec.VOTABLE == {"choice", "yesno", "label", "multilabel"}
    assert spec.GOLD_FORMATS == {"choice": ("letter", "index0", "index1", "text"), "yesno": ("label",),
                                 "label": ("label",), "multilabel": ("labels",), "entities": ("entities",),
                                 "span": ("texts", "text"), "text": ("text", "texts"), "diagnosis": ("text",),
                                 "rubric": ("rubric",)}
    assert {n for n in answer_types.names() if answer_types.get(n).correctness} == spec.VOTABLE


def test_prepare_reads_each_row_once_into_items_and_select_keeps_their_order():
    p = prepare(REG.tasks["medqa"], RunConfig(tasks=[], data_dir=str(DATA), limit=3))
    rows = [json.loads(line) for line in (DATA / "medqa" / "test.jsonl").open()][:3]
    assert [it.gold for it in p.items] == [r["answer_idx"] for r in rows]
    assert [it.options for it in p.items] == [answer_types.read(p.task, r)[1] for r in rows]
    assert all(it.messages[-1][0] == "user" and it.options[0]["text"] in it.messages[-1][1] for it in p.items)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.items[0].gold = "Z"
    part = p.select({p.ids[2], p.ids[0]})
    assert part.ids == [p.ids[0], p.ids[2]] and part.items == [p.items[0], p.items[2]]
    assert part.data_hash == data_hash(part.ids, [rows[0], rows[2]]) and part.ids_hash == ids_hash(part.ids)
    assert p.data_hash == data_hash(p.ids, rows) != part.data_hash     # the full task is untouched


def test_a_metric_that_does_not_fit_the_answer_type_is_refused_with_the_fix(tmp_path):
    (tmp_path / "my_mcq.yaml").write_text(textwrap.dedent("""\
        name: my_mcq
        version: 1
        base: _mcq_base.yaml
        dataset: {local: medqa/test.jsonl}
        answer: {type: choice, options: options, gold: answer_idx}
        metrics: [accuracy, rougeL]
        """))
    with pytest.raises(MedevalError) as e:
        Registry([tmp_path])
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'my_mcq.yaml'}: field 'metrics': metric 'rougeL' does not apply to "
                          "answer.type 'choice' (it applies to text); remove it or use one of: ")
    assert "accuracy" in msg.rsplit(":", 1)[1] and "macro_f1" in msg and "\n" not in msg
    for task in REG.tasks.values():   # every bundled task's metrics fit its answer type
        assert all(metrics.get(m).applies_to(task.answer.type) for m in task.metrics), task.name


def test_labels_go_to_the_metrics_that_declare_them_and_a_run_choice_is_made_once(monkeypatch):
    chosen = []
    monkeypatch.setitem(RUN_OPTIONS, "bertscore_model",
                        RunOption(lambda v: chosen.append(v) or {"model_type": f"m-{v}", "num_layers": 3},
                                  pinned_by="model_type"))
    p = prepare(REG.tasks["medqa"], RunConfig(tasks=[], data_dir=str(DATA), limit=2))
    assert metric_options(p.task, p.items) == {"accuracy": {}, "macro_f1": {"labels": ["A", "B", "C", "D"]}}
    ddi = metric_options(REG.tasks["ddi"], [])
    assert ddi["macro_f1_positive"]["labels"] == REG.tasks["ddi"].answer.labels
    assert ddi["macro_f1_positive"]["negative"] == "false"
    assert "labels" not in metric_options(REG.tasks["ncbi_disease"], [])["entity_macro_f1"]   # types, not labels
    summ = REG.tasks["pubmed_summ"]
    run = RunOptions(bertscore_model="x")
    for _ in range(3):     # three tasks of one run: one choice
        assert metric_options(summ, [], run)["bertscore_f1"] == {"model_type": "m-x", "num_layers": 3}
    assert chosen == ["x"] and metric_options(summ, [], run)["rougeL"] == {}
    pinned = summ.model_copy(update={"metric_options": {"bertscore_f1": {"model_type": "mine", "num_layers": 2}}})
    assert metric_options(pinned, [], RunOptions())["bertscore_f1"] == {"model_type": "mine", "num_layers": 2}
    assert chosen == ["x"]   # pinned by the task and no --bertscore-model: nothing chosen


NEW_TYPE = '''
import json, re, sys
from pathlib import Path
from medeval.tasks.answer_types import AnswerType, register
from medeval.tasks.extract import INVALID, Outcome, clean
from medeval.metrics import metric

@register
class Dose(AnswerType):                      # the one class a new answer type needs
    name = "dose"
    gold_formats = ("mg",)
    correctness = True
    def gold(self, task, raw, options):
        return float(raw)
    def outcome(self, task, text, row, options):
        found = {float(x) for x in re.findall(r"(\\d+(?:\\.\\d+)?)\\s*mg", clean(text))}
        if len(found) > 1:
            return Outcome(None, "ambiguous")
        return Outcome(found.pop(), "answer") if found else INVALID

@metric("dose_within_10pct", item=lambda p, g, **_: float(p is not None and abs(p - g) <= 0.1 * g),
        answer_types=("dose",))
def dose_within_10pct(preds, golds, **_):
    "Share of items whose dose is within 10% of the gold dose"
    return sum(p is not None and abs(p - g) <= 0.1 * g for p, g in zip(preds, golds)) / len(golds)

from medeval.runs.runner import RunConfig, prepare
from medeval.scoring.inputs import ScoringInput
from medeval.scoring.score import score_items
from medeval.tasks.spec import Registry

d = Path(sys.argv[1])
task = Registry([d]).tasks["doses"]
p = prepare(task, RunConfig(tasks=[], data_dir=str(d)))
replies = ["Give 5 mg daily.", "About 11 mg.", "Either 2 mg or 4 mg.", "I do not know."]
texts = {"greedy": {it.id: [r] for it, r in zip(p.items, replies)}}
res = score_items(p, ScoringInput.of_texts(["greedy"], texts), d / "out")
samples = [json.loads(l) for l in (d / "out" / "samples_doses.jsonl").open()]
print(json.dumps({"value": res["metrics"]["greedy"]["dose_within_10pct"]["value"], "votable": task.votable,
                  "status": [s["greedy"]["status"][0] for s in samples],
                  "correct": [s["greedy"]["correct"] for s in samples]}))
'''


def test_a_new_answer_type_is_one_class(tmp_path):
    """FAKE data (invented doses, no dataset text): a type registered by one class, and one metric for it,
    load from a task file, prepare, extract and score with no other change."""
    rows = [{"id": f"d{i}", "question": f"Dose of invented drug {i}?", "mg": mg} for i, mg in enumerate([5, 10, 3, 8])]
    (tmp_path / "doses").mkdir()
    (tmp_path / "doses" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "dose.jinja").write_text("{{ doc.question }}")
    (tmp_path / "doses.yaml").write_text("name: doses\nversion: 1\ndataset: {local: doses/test.jsonl, id_field: id}\n"
                                         "prompt: {template: dose.jinja}\nanswer: {type: dose, gold: mg}\n"
                                         "metrics: [dose_within_10pct]\n")
    proc = subprocess.run([sys.executable, "-c", NEW_TYPE, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"value": 0.5, "votable": False, "status": ["answer", "answer", "ambiguous", "invalid"],
                   "correct": [True, False, False, False]}
