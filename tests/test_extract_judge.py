"""--extract-judge: a model maps outputs the rules find invalid to one option or none.

The server is a FAKE judge (no model): a subclass of medeval's OpenAI-protocol loopback test
server that answers from the rendered prompt by a fixed rule ("option number N" -> the N-th
allowed answer, "GARBLE" -> an unparseable reply, anything else -> none). Everything else
(HTTP, retries, the cache, parsing, scoring, the files) is the real code.
"""
import json
import re

import pytest

from medeval.graders.extract_judge import parse_choice
from medeval.runs.score_external import score_file
from medeval.testing.openai_server import OpenAITestServer

SECRET = "sk-test-DO-NOT-LEAK-5678"
SERVED = "fake-extract-judge-FAKE"


class FakeExtractJudge(OpenAITestServer):
    def complete(self, path, body):
        prompt = body["messages"][-1]["content"]
        keys = re.findall(r"^([A-J]|yes|no|maybe)(?::|$)", prompt.split("Allowed answers:")[1].split("<<<")[0], re.M)
        reply = prompt.split("<<<")[1].split(">>>")[0]
        m = re.search(r"option number (\d+)", reply)
        content = ("Hmm, probably the second one." if "GARBLE" in reply else
                   keys[int(m.group(1)) - 1] if m else "none")
        return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": SERVED,
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}]}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeExtractJudge(model_name=SERVED, api_key=SECRET) as s:
        yield s


@pytest.mark.parametrize("text,want", [
    ("B", "B"), (" **B** ", "B"), ("(C).", "C"), ("Answer: D", "D"), ("none", "none"), ("None.", "none"),
    ("<think>A or B?</think>B", "B"), ("B or C", None), ("The answer is B", None), ("K", None), ("", None),
    ("Yes", "yes"),
])
def test_parse_choice_accepts_only_one_allowed_answer(text, want):
    assert parse_choice(text, ["A", "B", "C", "D", "yes"]) == want


def posts(server):
    return len(server.entries(path="/v1/chat/completions"))


def test_extract_judge_on_invalid_outputs_only_cached_and_reported_beside_rules(server, tmp_path, data_dir):
    golds = [json.loads(l)["answer_idx"] for l in (data_dir / "medqa" / "test.jsonl").read_text().splitlines()[:6]]
    n_of = {l: str("ABCD".index(l) + 1) for l in "ABCD"}
    outputs = [f"I pick option number {n_of[golds[0]]}.",      # invalid for the rules -> the judge: gold
               "The answer is B or C.",                          # ambiguous: never sent
               f"The answer is {golds[2]}",                      # read by the rules: never sent
               "no idea",                                        # judge: none
               "GARBLE GARBLE",                                  # judge: unparseable
               None]
    preds = tmp_path / "p.jsonl"
    lines = [{"id": str(i), "output": o} for i, o in enumerate(outputs[:5])]
    lines.append({"id": "5", "outputs": [f"option number {n_of[golds[5]]}", "???", f"Answer: {golds[5]}"]})
    preds.write_text("".join(json.dumps(l) + "\n" for l in lines))
    kw = dict(extract_judge=SERVED, extract_judge_base_url=server.url, cache_dir=str(tmp_path / "cache"))
    res = score_file("medqa", preds, tmp_path / "out", "m", data_dir, **kw)
    t = res["tasks"]["medqa"]
    # rules only: items 2 and 5 (greedy "option number" is invalid, sc votes the rules' answer) ...
    assert t["metrics"]["greedy"]["accuracy"]["value"] == pytest.approx(1 / 6)
    assert t["invalid"]["greedy"]["count"] == 4 and t["ambiguous"]["greedy"]["count"] == 1
    xj = t["extract_judge"]
    assert xj["judge"] == SERVED and xj["applies_to"].startswith("outputs the rules found invalid")
    # ... with the judge: items 0, 2 and 5 right
    assert xj["metrics"]["greedy"]["accuracy"]["value"] == pytest.approx(3 / 6)
    assert xj["invalid"]["greedy"]["count"] == 2        # "no idea" -> none, GARBLE -> unparseable
    assert xj["outputs"]["greedy"] == {"answered": 2, "none": 1, "unparseable": 1}
    assert xj["outputs"]["sc"] == {"answered": 2, "none": 2, "unparseable": 1}   # single outputs vote alone
    assert posts(server) == 5      # one request per distinct prompt: items 0, 3, 4 and item 5's two invalid samples
    rows = [json.loads(l) for l in (tmp_path / "out" / "samples_medqa.jsonl").read_text().splitlines()]
    assert rows[0]["greedy"]["pred"] is None and rows[0]["greedy"]["pred_with_extract_judge"] == golds[0]
    assert rows[0]["greedy"]["extract_judge"][0]["verdict"] == golds[0] and rows[0]["greedy"]["correct_with_extract_judge"]
    assert rows[1]["greedy"]["extract_judge"] == [None] and rows[1]["greedy"]["pred_with_extract_judge"] is None
    assert rows[2]["greedy"]["extract_judge"] == [None]
    assert rows[3]["greedy"]["extract_judge"][0]["verdict"] == "none"
    assert rows[4]["greedy"]["extract_judge"][0]["verdict"] == "unparseable"
    assert rows[5]["sc"]["extracted_with_extract_judge"] == [golds[5], None, golds[5]]
    assert SECRET not in (tmp_path / "out" / "results.json").read_text()
    assert SECRET not in (tmp_path / "out" / "samples_medqa.jsonl").read_text()
    # a re-run asks nothing: every verdict comes from the cache
    again = score_file("medqa", preds, tmp_path / "out2", "m", data_dir, **kw)["tasks"]["medqa"]["extract_judge"]
    assert posts(server) == 5 and again["cache_hits"] == 5 and again["metrics"] == xj["metrics"]


def test_rules_only_is_the_default(tmp_path, data_dir, server):
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": "0", "output": "option number 2"}) + "\n")
    t = score_file("medqa", preds, tmp_path / "out", "m", data_dir)["tasks"]["medqa"]
    assert "extract_judge" not in t and posts(server) == 0
    row = json.loads((tmp_path / "out" / "samples_medqa.jsonl").read_text())
    assert "extract_judge" not in row["greedy"]
