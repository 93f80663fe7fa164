"""--permute cyclic|random:N (issue 26): copies of choice items, CircularEval metrics, the position-bias table,
shard + merge, the gate on circular_accuracy, the view. Real medqa rows; FAKE backends where the answer must be
known exactly; the embedded model for the end-to-end runs (slow)."""
import json
import re
from pathlib import Path

import pytest

from conftest import DATA, dump_dom, invoke, needs_chromium, toy_choice_task  # noqa: F401
from medeval.backends.base import Output
from medeval.errors import MedevalError
from medeval.runs.config import RunConfig
from medeval.runs.runner import run
from medeval.tasks.permute import Permute, orders, parse, shown, to_original


class AlwaysA:
    """FAKE backend (labelled): answers "A" to every prompt, and records the prompts it was sent."""
    name, model_id = "fake", "fake-always-a"

    def __init__(self):
        self.prompts = {}

    def render(self, r):
        return r.messages[-1][1]

    def describe(self):
        return {"id": self.model_id}

    def identity(self):
        from medeval.backends.identity import Identity

        return Identity(backend="fake", model=self.model_id)

    def reply(self, prompt: str) -> str:
        return "The answer is A."

    def generate(self, reqs):
        for i, r in enumerate(reqs):
            self.prompts[r.id] = r.messages[-1][1]
            n, prompt = r.sampling.n, r.messages[-1][1]
            yield i, Output([self.reply(prompt)] * n, ["stop"] * n,
                            {"prompt_tokens": len(prompt) // 4, "completion_tokens": [5] * n})


class Longest(AlwaysA):
    """FAKE backend (labelled): answers the letter of the longest option text shown (the same option whatever
    the order, so a model with no position bias at all)."""
    model_id = "fake-longest"

    def reply(self, prompt: str) -> str:
        opts = re.findall(r"^([A-Z])[.)] (.*)$", prompt, flags=re.M)
        return f"The answer is {max(opts, key=lambda o: (len(o[1]), o[1]))[0]}."


def _run(tmp_path, backend, name="out", **kw):
    cfg = RunConfig(tasks=kw.pop("tasks", ["medqa"]), limit=kw.pop("limit", 20), data_dir=str(DATA), no_cache=True,
                    output_dir=str(tmp_path / name), **kw)
    return run(cfg, backend=backend, progress=False)


def _samples(d: Path, task="medqa"):
    return [json.loads(x) for x in (d / f"samples_{task}.jsonl").read_text().splitlines()]


def test_orders_parse_and_gold_follows_its_option():
    assert orders(4, parse("cyclic"), 1, "t/1") == [(0, 1, 2, 3), (1, 2, 3, 0), (2, 3, 0, 1), (3, 0, 1, 2)]
    r = orders(5, parse("random:6"), 1234, "medqa/7")
    assert r[0] == (0, 1, 2, 3, 4) and len(set(r)) == 6 and r == orders(5, Permute("random", 6), 1234, "medqa/7")
    assert r != orders(5, parse("random:6"), 99, "medqa/7")              # the run's seed draws them
    assert orders(2, parse("random:5"), 1, "t/1") == [(0, 1), (1, 0)]    # fewer distinct orders than asked
    assert orders(3, parse("none"), 1, "t/1") == [(0, 1, 2)]
    opts = [{"letter": L, "text": t} for L, t in zip("ABCD", ["w", "x", "y", "z"])]
    moved, gold = shown(opts, "B", (1, 2, 3, 0))
    assert [o["text"] for o in moved] == ["x", "y", "z", "w"] and [o["letter"] for o in moved] == list("ABCD")
    assert gold == "A" and to_original("A", (1, 2, 3, 0)) == "B" and to_original(None, (1, 0)) is None
    for bad in ("random", "random:1", "rotate", "random:x"):
        with pytest.raises(MedevalError, match="--permute"):
            parse(bad)


def test_always_a_scores_zero_circular_and_all_bias_at_a(tmp_path):
    fake = AlwaysA()
    res = _run(tmp_path, fake, permute="cyclic")
    assert len(fake.prompts) == 80 and res["cache"]["misses"] == 80          # 20 items x 4 rotations
    t = res["tasks"]["medqa"]
    g = t["metrics"]["greedy"]
    assert g["circular_accuracy"]["value"] == 0.0 and g["permuted_accuracy"]["value"] == 0.25
    assert g["permutation_consistency"]["value"] == 0.0
    assert g["circular_accuracy"]["n"] == 20                                 # items, not copies
    assert t["permutation"]["permute"] == "cyclic" and t["permutation"]["copies_min"] == 4
    pb = t["permutation"]["position_bias"]["greedy"]
    assert [(r["position"], r["predicted"]) for r in pb["table"]] == [("A", 80), ("B", 0), ("C", 0), ("D", 0)]
    assert sum(r["predicted"] for r in pb["table"]) == pb["predictions"] == 80
    assert [r["gold"] for r in pb["table"]] == [20, 20, 20, 20] and pb["chi_square"]["p_value"] < 1e-40
    assert res["decoding"]["permute"] == "cyclic"
    from medeval.reporting.summary import permutation_line

    assert "predicted A 100% B 0% C 0% D 0% (golds 25% 25% 25% 25%" in permutation_line(t["permutation"])
    plain = _run(tmp_path, AlwaysA(), name="plain")                          # the original order's accuracy stays
    assert plain["tasks"]["medqa"]["metrics"]["greedy"]["accuracy"] == g["accuracy"]
    assert "permutation" not in plain["tasks"]["medqa"] and "permute" not in plain["decoding"]
    for s in _samples(tmp_path / "out"):
        copies = s["greedy"]["permutation"]["copies"]
        assert [c["order"] for c in copies] == [list("ABCD"), list("BCDA"), list("CDAB"), list("DABC")]
        for c in copies:   # the gold follows its option; the pred is mapped back to the original letters
            assert c["order"][ord(c["gold"]) - 65] == s["gold"] and c["pred"] == c["order"][0]
        assert copies[0]["pred"] == s["greedy"]["pred"]
    s = _samples(tmp_path / "out")[0]                                         # the prompt shows the rotated options
    first, second = (fake.prompts[f"medqa/{s['id']}/greedy{k}"] for k in ("", "/perm1"))
    texts = lambda p: [t for _, t in re.findall(r"^([A-D])[.)] (.*)$", p, flags=re.M)]
    assert texts(second) == texts(first)[1:] + texts(first)[:1]


def test_a_position_free_model_is_consistent_and_circular_at_most_permuted(tmp_path):
    res = _run(tmp_path, Longest(), permute="random:3", limit=12, self_consistency=2)
    for mode in ("greedy", "sc"):   # self-consistency: k samples per copy, voted per copy
        g = res["tasks"]["medqa"]["metrics"][mode]
        assert g["permutation_consistency"]["value"] == 1.0
        assert g["circular_accuracy"]["value"] == g["permuted_accuracy"]["value"] == g["accuracy"]["value"]
    assert res["cache"]["misses"] == 12 * 3 * (1 + 2)
    rows = _samples(tmp_path / "out")
    assert all(len(s["greedy"]["permutation"]["copies"]) == 3 for s in rows)
    assert all(s["greedy"]["permutation"]["copies"][0]["order"] == list("ABCD") for s in rows)


def test_non_choice_tasks_run_unpermuted_and_say_so(tmp_path):
    res = _run(tmp_path, AlwaysA(), tasks=["medqa", "pubmedqa"], limit=3, permute="cyclic")
    p = res["tasks"]["pubmedqa"]["permutation"]
    assert p["applied"] is False and "unpermuted" in p["reason"] and p["permute"] == "cyclic"
    assert "circular_accuracy" not in res["tasks"]["pubmedqa"]["metrics"]["greedy"]
    assert all("permutation" not in s["greedy"] for s in _samples(tmp_path / "out", "pubmedqa"))
    with pytest.raises(MedevalError, match="--adversarial"):
        _run(tmp_path, AlwaysA(), name="adv", limit=3, permute="cyclic", adversarial=True)


def test_shards_merged_equal_the_unsharded_run_and_the_gate_pairs_by_item(tmp_path, report_app):
    from medeval.runs.merge import merge

    whole = _run(tmp_path, Longest(), name="whole", permute="cyclic", limit=10)
    for i in (0, 1):
        _run(tmp_path, Longest(), name=f"s{i}", permute="cyclic", limit=10, shard=(i, 2))
    merged = merge([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged")
    assert (tmp_path / "merged" / "samples_medqa.jsonl").read_bytes() == \
        (tmp_path / "whole" / "samples_medqa.jsonl").read_bytes()
    for k in ("metrics", "permutation", "usage"):
        assert merged["tasks"]["medqa"][k] == whole["tasks"]["medqa"][k]
    assert whole["tasks"]["medqa"]["usage"]["greedy"]["completion_tokens"] == 10 * 4 * 5   # the copies count
    _run(tmp_path, Longest(), name="other", permute="random:3", limit=10, shard=(1, 2))
    with pytest.raises(MedevalError, match="'permute' differs"):
        merge([tmp_path / "s0", tmp_path / "other"], tmp_path / "bad")
    _run(tmp_path, AlwaysA(), name="worse", permute="cyclic", limit=10)
    preset = tmp_path / "circ.yaml"   # the leaderboard takes the metric like any other
    preset.write_text("title: Circular\ncolumns:\n  - {name: MedQA circ, task: medqa, metric: circular_accuracy}\n")
    out = invoke(report_app, "leaderboard", tmp_path / "whole", tmp_path / "worse", "-o", tmp_path / "lb.md",
                 "--preset", preset, "--no-charts", "--no-html")
    assert out.exit_code == 0, out.output
    circ = whole["tasks"]["medqa"]["metrics"]["greedy"]["circular_accuracy"]["value"]
    assert f"{100 * circ:.2f}" in (tmp_path / "lb.md").read_text() and "0.00" in (tmp_path / "lb.md").read_text()
    out = invoke(report_app, "gate", "--baseline", tmp_path / "whole", "--candidate", tmp_path / "worse",
                 "--metric", "circular_accuracy", "--report-json", tmp_path / "gate.json")
    rep = json.loads((tmp_path / "gate.json").read_text())
    task = rep["tasks"][0]
    assert task["metric"] == "circular_accuracy", out.output
    assert task["stats"]["n"] == 10 and task["stats"]["candidate"] == 0.0                   # paired by item
    assert task["stats"]["baseline"] == whole["tasks"]["medqa"]["metrics"]["greedy"]["circular_accuracy"]["value"]
    _run(tmp_path, Longest(), name="random", permute="random:3", limit=10)
    out = invoke(report_app, "gate", "--baseline", tmp_path / "whole", "--candidate", tmp_path / "random",
                 "--metric", "circular_accuracy", "--allow-same-model")
    assert out.exit_code == 2 and "permutation.permute" in out.output
    _run(tmp_path, Longest(), name="plain", permute="none", limit=10)   # no copies: the task is named, not a traceback
    out = invoke(report_app, "gate", "--baseline", tmp_path / "whole", "--candidate", tmp_path / "plain",
                 "--metric", "circular_accuracy", "--allow-same-model")
    assert out.exit_code == 2 and "tasks.medqa has no circular_accuracy: the run was made without --permute" in \
        " ".join(out.output.split()), out.output


@pytest.mark.slow
def test_embedded_model_cyclic_generation_and_loglikelihood(tmp_path, hf_backend):
    """The real embedded model: medqa greedy (12 requests) and openllm_medqa loglikelihood, 3 items each."""
    res = run(RunConfig(tasks=["medqa", "openllm_medqa"], limit=3, data_dir=str(DATA), no_cache=True,
                        output_dir=str(tmp_path / "out"), permute="cyclic", max_tokens=32), backend=hf_backend,
              progress=False)
    assert res["cache"]["misses"] == 12 + 3 * 4 * 4   # greedy: 12 generations; loglikelihood: 12 prompts x 4 choices
    for name in ("medqa", "openllm_medqa"):
        t = res["tasks"][name]
        for mode in t["modes"]:
            m = t["metrics"][mode]
            assert m["circular_accuracy"]["value"] <= m["permuted_accuracy"]["value"] + 1e-12
            pb = t["permutation"]["position_bias"][mode]
            assert sum(r["predicted"] for r in pb["table"]) == pb["predictions"]
            assert pb["predictions"] + pb["no_answer"] == 12
    ll = _samples(tmp_path / "out", "openllm_medqa")
    for s in ll:
        cs = s["loglikelihood"]["permutation"]["copies"]
        assert cs[0]["pred"] == s["loglikelihood"]["pred"] and len(cs) == 4
        assert all(c["order"][ord(c["gold"]) - 65] == s["gold"] for c in cs)


@needs_chromium
def test_view_shows_the_position_bias_table(tmp_path):
    from medeval.reporting.view import run_page

    _run(tmp_path, AlwaysA(), permute="cyclic", limit=4)
    page = tmp_path / "view.html"
    page.write_text(run_page(tmp_path / "out"))
    dom = dump_dom(page.as_uri())
    table = re.search(r'<table class="position-bias" data-task="medqa" data-mode="greedy">.*?</table>', dom, re.S)
    assert table, dom[:2000]
    assert re.findall(r'class="num predicted">(\d+)<', table.group(0)) == ["16", "0", "0", "0"]
    dom = dump_dom(page.as_uri() + "#task=medqa&item=" + _samples(tmp_path / "out")[0]["id"])
    assert "shown orders (circular wrong, inconsistent)" in dom and "<code>BCDA</code>" in dom


TOY_ROWS = [{"q": "first", "opts": ["Aspirin", "Heparin", "Warfarin"], "ans": "B"},
            {"q": "second", "opts": ["Aspirin", "Heparin"], "ans": "A"}]


def _toy(tmp_path, template: str, metrics: str = "[accuracy]") -> dict:
    return dict(**toy_choice_task(tmp_path, TOY_ROWS, template, metrics), no_cache=True, permute="random:10")


def test_toy_fewer_orders_fixed_options_and_metric_names(tmp_path):
    listed = "{{ doc.q }}\n{% for o in options %}{{ o.letter }}. {{ o.text }}\n{% endfor %}Answer:"
    res = run(RunConfig(**_toy(tmp_path, listed), output_dir=str(tmp_path / "a")), backend=AlwaysA(), progress=False)
    perm = res["tasks"]["toy"]["permutation"]
    assert (perm["copies_min"], perm["copies_max"], perm["copies"]) == (2, 6, 8)   # 2! and 3! orders, not 10
    # the options inside another field, in the source order: the prompt cannot change, the task runs unpermuted
    res = run(RunConfig(**_toy(tmp_path, "{{ doc.q }} {{ doc.opts }}"), output_dir=str(tmp_path / "b")),
              backend=AlwaysA(), progress=False)
    perm = res["tasks"]["toy"]["permutation"]
    assert perm["applied"] is False and "cannot be changed" in perm["reason"]
    assert "circular_accuracy" not in res["tasks"]["toy"]["metrics"]["greedy"] and res["cache"]["misses"] == 2
    with pytest.raises(MedevalError, match="field 'metrics': circular_accuracy"):
        run(RunConfig(**_toy(tmp_path, listed, "[accuracy, circular_accuracy]"), output_dir=str(tmp_path / "c")),
            backend=AlwaysA(), progress=False)


def test_the_sequential_gate_refuses_a_permutation_metric_with_the_fix():
    """Its per-item scores would be single predictions, not one answer per shown order: refused up front."""
    from types import SimpleNamespace

    from medeval.reporting.policy import Policy, TaskPolicy
    from medeval.results import ResultsError
    from medeval.runs.seqgate import _differences

    run = SimpleNamespace(tasks={"medqa": {"primary_metric": "accuracy"}}, file="base/results.json")
    policy = Policy(default=TaskPolicy(metric="circular_accuracy"))
    with pytest.raises(ResultsError, match=r"does not compare 'circular_accuracy' .*`medeval gate --metric circular_accuracy`"):
        _differences("medqa", run, run, policy)
