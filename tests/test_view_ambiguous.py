"""`medeval view` shows the ambiguous rate beside the invalid rate and filters items by it.

The run is made by `medeval score` on a small made-up choice task, so the counts come from the real
extraction: two hedges ("B or C", "A or B") and one output that names no option, out of 8."""
import json
import re

from medeval.reporting import view as V
from medeval.runs.score_external import score_file
from conftest import dump_dom, needs_chromium

OUTPUTS = ["B", "B", "A", "B or C", "A or B", "nothing here", "B", "C"]


def make_run(tmp_path):
    (tmp_path / "data" / "amb").mkdir(parents=True)
    rows = [{"question": f"Which element, case {k}?", "options": {"A": "Iron", "C": "Zinc", "D": "Gold"}, "gold": "C"}
            for k in range(len(OUTPUTS))]
    (tmp_path / "data" / "amb" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "amb.yaml").write_text(
        "name: amb\nversion: 1\nbase: _mcq_base.yaml\ndataset: {local: amb/test.jsonl, fields: [question]}\n"
        "answer: {type: choice, options: options, gold: gold}\n")
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": str(i), "output": o}) + "\n" for i, o in enumerate(OUTPUTS)))
    res = score_file("amb", preds, tmp_path / "run", "x", tmp_path / "data", task_dirs=[tmp_path / "tasks"])
    return res["tasks"]["amb"]


def test_view_data_carries_the_ambiguous_rate_and_item_status(tmp_path):
    block = make_run(tmp_path)
    assert block["ambiguous"]["greedy"] == {"count": 2, "rate": 0.25, "samples": 2}
    assert block["invalid"]["greedy"]["count"] == 1
    task, = V.run_data(tmp_path / "run")["tasks"]
    assert task["ambiguous"] == block["ambiguous"] and task["invalid"] == block["invalid"]
    status = [it["modes"]["greedy"].get("pred_status") for it in task["items"]]
    assert status == [None, None, None, "ambiguous", "ambiguous", "invalid", None, None]
    page = V.run_page(tmp_path / "run")
    assert 'class: "num ambiguous-rate"' in page and '["ambiguous", "ambiguous"]' in page


@needs_chromium
def test_view_page_shows_the_ambiguous_column_and_filter(tmp_path):
    make_run(tmp_path)
    page = tmp_path / "page.html"
    page.write_text(V.run_page(tmp_path / "run"), encoding="utf-8")
    dom = dump_dom(page.as_uri())
    assert '<td class="num ambiguous-rate">25.0%</td>' in dom and '<td class="num invalid-rate">12.5%</td>' in dom
    dom = dump_dom(f"{page.as_uri()}#status=ambiguous")
    assert re.findall(r'<tr class="item" data-id="([^"]+)"', dom) == ["3", "4"]
