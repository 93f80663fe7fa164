"""Hedged answers are counted as `ambiguous`, apart from `invalid`, in results.json and the samples."""
import json

import pytest

from conftest import toy_choice_task
from medeval.backends.base import Output
from medeval.runs.runner import RunConfig, run

ROWS = [{"q": "first", "opts": ["Aspirin", "Heparin", "Warfarin"], "ans": "B"},
        {"q": "second", "opts": ["Aspirin", "Heparin", "Warfarin"], "ans": "A"},
        {"q": "third", "opts": ["Aspirin", "Heparin", "Warfarin"], "ans": "C"}]
# greedy, then the 3 self-consistency samples, per item
REPLIES = {"0": ("The answer is B or C.", ["B or C", "Answer: A/B", "no idea"]),
           "1": ("no idea", ["no idea", "", "???"]),
           "2": ("Answer: C", ["C", "B or C", "C"])}


class Scripted:
    """FAKE backend (labelled): returns fixed replies so the counting can be checked exactly."""
    name, model_id = "fake", "fake"

    def render(self, r):
        return r.messages[-1][1]

    def describe(self):
        return {"id": "fake"}

    def identity(self):
        from medeval.backends.identity import Identity

        return Identity(backend="fake", model="fake")

    def generate(self, reqs):
        for i, r in enumerate(reqs):
            _, item, mode = r.id.split("/")
            greedy, sc = REPLIES[item]
            yield i, Output([greedy] if mode == "greedy" else sc)


def test_hedges_are_counted_as_ambiguous_not_invalid(tmp_path):
    res = run(RunConfig(**toy_choice_task(tmp_path, ROWS), no_cache=True, self_consistency=3, output_dir=str(tmp_path / "out")),
              backend=Scripted(), progress=False)
    t = res["tasks"]["toy"]
    assert t["ambiguous"]["greedy"] == {"count": 1, "rate": 1 / 3, "samples": 1}
    assert t["invalid"]["greedy"] == {"count": 1, "rate": 1 / 3, "samples": 1, "truncated": 0, "samples_truncated": 0}
    assert t["ambiguous"]["sc"] == {"count": 1, "rate": 1 / 3, "samples": 3}   # item 0: no vote, two hedges
    assert t["invalid"]["sc"] == {"count": 1, "rate": 1 / 3, "samples": 4, "truncated": 0, "samples_truncated": 0}
    assert t["metrics"]["greedy"]["accuracy"]["value"] == 1 / 3
    rows = [json.loads(l) for l in (tmp_path / "out" / "samples_toy.jsonl").read_text().splitlines()]
    assert rows[0]["greedy"]["status"] == ["ambiguous"] and rows[0]["greedy"]["pred_status"] == "ambiguous"
    assert rows[0]["sc"]["status"] == ["ambiguous", "ambiguous", "invalid"] and rows[0]["sc"]["pred"] is None
    assert rows[1]["greedy"]["pred_status"] == "invalid"
    assert rows[2]["sc"]["pred"] == "C" and "pred_status" not in rows[2]["sc"] and rows[2]["sc"]["correct"]


@pytest.mark.slow
def test_every_real_output_gets_one_status_and_the_counts_add_up(hf_backend, data_dir, tmp_path):
    res = run(RunConfig(tasks=["medqa", "pubmedqa"], data_dir=str(data_dir), limit=2, no_cache=True,
                        output_dir=str(tmp_path / "out")), backend=hf_backend, progress=False)
    for name, t in res["tasks"].items():
        rows = [json.loads(l) for l in (tmp_path / "out" / f"samples_{name}.jsonl").read_text().splitlines()]
        status = [r["greedy"]["status"][0] for r in rows]
        assert set(status) <= {"answer", "invalid", "ambiguous"} and len(status) == 2
        assert t["invalid"]["greedy"]["samples"] == status.count("invalid")
        assert t["ambiguous"]["greedy"]["samples"] == status.count("ambiguous")
        for r, s in zip(rows, status):
            assert (r["greedy"]["pred"] is None) == (s != "answer")
            assert r["greedy"].get("pred_status") == (None if s == "answer" else s)


class Truncating(Scripted):
    """FAKE backend (labelled): the same unfinished reply, cut off at the token limit for item 0 only."""

    def generate(self, reqs):
        for i, r in enumerate(reqs):
            item = r.id.split("/")[1]
            yield i, Output(["Heparin, because the"], finish_reasons=["length" if item == "0" else "stop"])


def test_a_truncated_output_is_read_only_through_a_final_answer(tmp_path):
    res = run(RunConfig(**toy_choice_task(tmp_path, ROWS[:2]), no_cache=True, output_dir=str(tmp_path / "out")), backend=Truncating(), progress=False)
    samples = [json.loads(l) for l in next((tmp_path / "out").rglob("samples_toy.jsonl")).read_text().splitlines()]
    by_id = {s["id"]: s["greedy"] for s in samples}
    assert by_id["0"]["status"] == ["invalid"] and by_id["0"]["finish_reasons"] == ["length"]
    assert by_id["1"]["extracted"] == ["B"]            # the same text, finished: read
    assert res["tasks"]["toy"]["invalid"]["greedy"]["truncated"] == 1
