"""Options exactly as the source gives them: letter gaps, lowercase and number keys, unordered dicts,
lists, 12/16/22 options, scored through `medeval score`; `medeval tasks --data-dir` reads every row.

The data sets are small and made up here (medical-sounding, not copied from any data set)."""
import json
import string
import textwrap

import pytest

from medeval.errors import MedevalError
from medeval.runs.render import check_data, format_item, render_items
from medeval.runs.runner import RunConfig, prepare
from medeval.runs.score_external import score_file
from medeval.tasks.spec import Registry

DRUGS = ["Iron", "Oxygen", "Gold", "Salt", "Zinc", "Copper", "Iodine", "Calcium", "Sodium", "Potassium",
         "Magnesium", "Selenium", "Lithium", "Cobalt", "Chromium", "Fluoride", "Boron", "Nickel", "Silicon",
         "Vanadium", "Molybdenum", "Manganese"]


def make_task(tmp_path, name, rows, options="options", gold="gold", gold_format="letter"):
    """A task directory and data directory holding one made-up choice task."""
    (tmp_path / "data" / name).mkdir(parents=True)
    (tmp_path / "data" / name / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = tmp_path / "tasks"
    tasks.mkdir(exist_ok=True)
    opts = json.dumps(options)
    (tasks / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        name: {name}
        version: 1
        base: _mcq_base.yaml
        dataset: {{local: {name}/test.jsonl, fields: [question]}}
        answer: {{type: choice, options: {opts}, gold: {gold}, gold_format: {gold_format}}}
        """))
    return tasks, tmp_path / "data"


def items(tasks, data, name):
    return prepare(Registry([tasks]).tasks[name], RunConfig(tasks=[name], data_dir=str(data))).items


def score(tmp_path, tasks, data, name, lines):
    preds = tmp_path / f"{name}_preds.jsonl"
    preds.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = score_file(name, preds, tmp_path / f"out_{name}", "x", data, task_dirs=[tasks])
    samples = [json.loads(l) for l in (tmp_path / f"out_{name}" / f"samples_{name}.jsonl").read_text().splitlines()]
    return res["tasks"][name], samples


def shown(it):
    return [(o["letter"], o["text"]) for o in it.options]


def test_letter_gap_keeps_the_gold_on_its_option_text(tmp_path):
    rows = [{"question": "Which element binds haemoglobin's oxygen site?",
             "options": {"A": "Iron", "C": "Oxygen", "D": "Gold", "E": "Salt"}, "gold": "C"},
            {"question": "Which is a noble metal?", "options": {"E": "Salt", "A": "Iron", "D": "Gold"}, "gold": "d"}]
    tasks, data = make_task(tmp_path, "gaps", rows)
    a, b = items(tasks, data, "gaps")
    assert shown(a) == [("A", "Iron"), ("B", "Oxygen"), ("C", "Gold"), ("D", "Salt")] and a.gold == "B"
    assert shown(b) == [("A", "Iron"), ("B", "Gold"), ("C", "Salt")] and b.gold == "B"   # unordered dict, lowercase gold
    # answered by the option's shown letter, by its text, and wrongly by the source's letter C
    block, samples = score(tmp_path, tasks, data, "gaps", [{"id": "0", "output": "Answer: B"},
                                                           {"id": "1", "output": "Gold"}])
    assert block["metrics"]["greedy"]["accuracy"]["value"] == 1.0
    assert samples[0]["option_keys"] == {"A": "A", "B": "C", "C": "D", "D": "E"}
    assert samples[1]["option_keys"] == {"A": "A", "B": "D", "C": "E"}
    # predictions in the source's keys (`key`): C is Oxygen, the gold; E (Salt) is wrong
    block, samples = score(tmp_path, tasks, data, "gaps", [{"id": "0", "key": "C"}, {"id": "1", "key": "E"}])
    assert [s["greedy"]["pred"] for s in samples] == ["B", "C"]
    assert [s["greedy"]["correct"] for s in samples] == [True, False]


def test_lowercase_and_number_keys(tmp_path):
    lower = [{"question": "Which trace element is in thyroxine?", "options": {"b": "Iodine", "a": "Iron", "c": "Zinc"},
              "gold": "b"}]
    tasks, data = make_task(tmp_path, "lower", lower)
    it, = items(tasks, data, "lower")
    assert shown(it) == [("A", "Iron"), ("B", "Iodine"), ("C", "Zinc")] and it.gold == "B"
    # number keys "1".."10" sort as numbers; an index1 gold of 10 is the option keyed "10"
    opts = {str(i + 1): DRUGS[i] for i in range(10)}
    rows = [{"question": "Which cation is mostly intracellular?", "options": dict(reversed(opts.items())), "gold": 10},
            {"question": "Which element is in vitamin B12?", "options": opts, "gold": "2"}]
    tasks, data = make_task(tmp_path / "n", "numbered", rows, gold_format="index1")
    a, b = items(tasks, data, "numbered")
    assert [o["text"] for o in a.options] == DRUGS[:10] and a.gold == "J" and a.options[9]["key"] == "10"
    assert b.gold == "B"
    block, samples = score(tmp_path, tasks, data, "numbered", [{"id": "0", "output": "The answer is J."},
                                                               {"id": "1", "key": 2}])
    assert block["metrics"]["greedy"]["accuracy"]["value"] == 1.0
    assert samples[0]["option_keys"]["J"] == "10" and samples[1]["greedy"]["pred"] == "B"
    # index0 on keys that start at 1 is refused (the gold is the key itself either way: the base must agree)
    tasks, data = make_task(tmp_path / "z", "numbered0", rows, gold_format="index0")
    with pytest.raises(MedevalError, match=r"line 1: .*index0, but the option keys .* start at 1; .*use gold_format: index1"):
        items(tasks, data, "numbered0")


@pytest.mark.parametrize("n", [12, 16, 22])
def test_up_to_26_options_from_a_list_and_a_dict(tmp_path, n):
    letters = string.ascii_uppercase[:n]
    rows = [{"question": f"Item {k}: which element?", "options": DRUGS[:n], "gold": k} for k in range(n)]
    tasks, data = make_task(tmp_path, f"list{n}", rows, gold_format="index0")
    got = items(tasks, data, f"list{n}")
    assert [it.gold for it in got] == list(letters) and shown(got[-1]) == list(zip(letters, DRUGS[:n]))
    lines = [{"id": str(k), "output": f"Answer: {letters[k]}" if k % 2 else f"\\boxed{{{letters[k]}}}"}
             for k in range(n)]
    block, samples = score(tmp_path, tasks, data, f"list{n}", lines)
    assert block["metrics"]["greedy"]["accuracy"]["value"] == 1.0 and "option_keys" not in samples[0]
    # the same as a dict keyed "1".."n", gold given as the key
    rows = [{"question": "q", "options": {str(i + 1): t for i, t in enumerate(DRUGS[:n])}, "gold": str(n)}]
    tasks, data = make_task(tmp_path / "d", f"dict{n}", rows)
    it, = items(tasks, data, f"dict{n}")
    assert it.gold == letters[-1] and it.options[-1]["text"] == DRUGS[n - 1]


def test_more_than_26_options_and_unknown_gold_keys_are_one_line_errors(tmp_path):
    rows = [{"question": "q", "options": {"A": "Iron", "C": "Oxygen"}, "gold": "B"}]
    tasks, data = make_task(tmp_path, "badgold", rows)
    with pytest.raises(MedevalError) as e:
        items(tasks, data, "badgold")
    msg = str(e.value)
    assert "badgold/test.jsonl: line 1" in msg and "field 'answer.gold'" in msg and "['A', 'C']" in msg
    assert "\n" not in msg
    rows = [{"question": "q", "options": [f"opt {i}" for i in range(27)], "gold": 0}]
    tasks, data = make_task(tmp_path / "m", "many", rows, gold_format="index0")
    with pytest.raises(MedevalError, match=r"line 1: .*answer.options.*27 options; 2 to 26"):
        items(tasks, data, "many")


def test_other_keys_keep_source_order_and_index_golds_need_letters_or_numbers(tmp_path):
    rows = [{"question": "q", "options": {"opt_x": "Iron", "opt_a": "Zinc"}, "gold": "opt_a"}]
    tasks, data = make_task(tmp_path, "other", rows)
    it, = items(tasks, data, "other")
    assert shown(it) == [("A", "Iron"), ("B", "Zinc")] and it.gold == "B"
    tasks, data = make_task(tmp_path / "i", "otheridx", [dict(rows[0], gold=1)], gold_format="index0")
    with pytest.raises(MedevalError, match="index0 needs options given as a list or keyed by letters or numbers"):
        items(tasks, data, "otheridx")


def test_gold_format_text_ignores_only_surrounding_whitespace(tmp_path):
    rows = [{"question": "Which fraction?", "options": ["<20%", ">20%", "Bb BB", "bb bb"], "gold": " >20% "},
            {"question": "Which genotype?", "options": ["<20%", ">20%", "Bb BB", "bb bb"], "gold": "bb bb"}]
    tasks, data = make_task(tmp_path, "texts", rows, gold_format="text")
    assert [it.gold for it in items(tasks, data, "texts")] == ["B", "D"]
    tasks, data = make_task(tmp_path / "b", "textbad", [dict(rows[1], gold="BB BB")], gold_format="text")
    with pytest.raises(MedevalError) as e:
        items(tasks, data, "textbad")
    assert "is not the text of any option" in str(e.value) and "['<20%', '>20%', 'Bb BB', 'bb bb']" in str(e.value)


def test_score_key_errors_name_the_line(tmp_path):
    rows = [{"question": "q", "options": {"A": "Iron", "C": "Oxygen"}, "gold": "C"}]
    tasks, data = make_task(tmp_path, "keys", rows)
    with pytest.raises(MedevalError, match=r"line 1: key 'B' is not an option key of item '0' \(its keys: \['A', 'C'\]\)"):
        score(tmp_path, tasks, data, "keys", [{"id": "0", "key": "B"}])
    with pytest.raises(MedevalError, match="exactly one of"):
        score(tmp_path, tasks, data, "keys", [{"id": "0", "key": "C", "output": "C"}])


def test_tasks_check_reads_every_row_and_names_the_first_bad_one(tmp_path):
    rows = [{"question": f"q{k}", "options": {"A": "Iron", "B": "Zinc", "C": "Gold"}, "gold": "A"} for k in range(300)]
    rows[236]["options"] = {"A": "Iron", "C": "Gold"}
    rows[236]["gold"] = "B"           # not a key of this row: only a check that reads row 237 finds it
    rows[250]["gold"] = "Q"
    tasks, data = make_task(tmp_path, "deep", rows)
    msg = check_data(Registry([tasks]).tasks["deep"], data)   # what `medeval tasks --data-dir` lists
    assert "deep/test.jsonl: line 237:" in msg and "field 'answer.gold'" in msg and "line 251" not in msg
    assert "\n" not in msg


def test_null_dict_entries_are_not_options_and_render_names_source_keys(tmp_path):
    opts = {k: None for k in "ABCDEFGHIJ"}
    opts.update({"A": "Iron", "B": "Zinc", "D": "Gold"})   # a hub struct: absent options padded with null
    tasks, data = make_task(tmp_path, "padded", [{"question": "q", "options": opts, "gold": "D"}])
    it, = items(tasks, data, "padded")
    assert shown(it) == [("A", "Iron"), ("B", "Zinc"), ("C", "Gold")] and it.gold == "C"
    item, = render_items(RunConfig(tasks=["padded"], data_dir=str(data), task_dirs=[str(tasks)]))
    assert "  option C: Gold   (source key D)" in format_item(item).splitlines()
    assert item["options"][2] == {"letter": "C", "text": "Gold", "key": "D"}


def test_a_list_of_up_to_26_option_fields(tmp_path):
    fields = [f"op{i}" for i in range(12)]
    rows = [{"question": "q", **{f: DRUGS[i] for i, f in enumerate(fields)}, "gold": 12}]
    tasks, data = make_task(tmp_path, "fields12", rows, options=fields, gold_format="index1")
    it, = items(tasks, data, "fields12")
    assert it.gold == "L" and it.options[-1] == {"letter": "L", "text": DRUGS[11]}
    tasks, _ = make_task(tmp_path / "x", "fields27", rows, options=[f"op{i}" for i in range(27)])
    with pytest.raises(MedevalError, match="lists 27 fields; a choice task needs 2 to 26"):
        Registry([tasks])
