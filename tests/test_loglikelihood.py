"""Loglikelihood scoring (lm-eval's multiple_choice protocol) on the real embedded model and real data."""
import json

import pytest

from medeval.backends.base import Request
from medeval.scoring.loglikelihood import pick
from medeval.scoring.modes import protocol

pytestmark = pytest.mark.slow


def naive_logprob(backend, context: str, continuation: str) -> float:
    """Reference: one forward over context + continuation, summed log-probabilities of the continuation."""
    import torch

    ctx, cont = backend.split_pair(context, continuation, chat=False)
    ids = torch.tensor([ctx + cont])
    with torch.inference_mode():
        logp = torch.log_softmax(backend.model(ids).logits[0].float(), dim=-1)
    return sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))


def test_shared_context_scores_equal_a_full_forward_per_choice(hf_backend):
    conts = (" yes", " it is certainly not the case", " maybe", " absolutely certain")
    reqs = [Request("a", (("user", "Is aspirin an anti-inflammatory drug?\nAnswer:"),), chat=False, continuations=conts),
            Request("b", (("user", "Question: Which organ makes insulin?\nAnswer:"),), chat=False,
                    continuations=(" the pancreas", " the liver"))]
    got = dict(hf_backend.loglikelihood(reqs))
    assert sorted(got) == [0, 1]
    for i, r in enumerate(reqs):
        text = hf_backend.render(r)
        for j, c in enumerate(r.continuations):
            assert got[i].logprobs[j] == pytest.approx(naive_logprob(hf_backend, text, c), abs=2e-4)
            assert got[i].tokens[j] == len(hf_backend.split_pair(text, c, False)[1])
    assert got[0].tokens[1] > 1 and got[0].logprobs[1] < got[0].logprobs[0]


def test_trailing_space_of_the_context_moves_to_the_continuation(hf_backend):
    ctx, cont = hf_backend.split_pair("Answer: ", "B", chat=False)
    ctx2, cont2 = hf_backend.split_pair("Answer:", " B", chat=False)
    assert (ctx, cont) == (ctx2, cont2)


def test_pick_and_normalisation_follow_lm_eval():
    choices = [("yes", "yes"), ("no", "no"), ("maybe", "maybe")]
    scores = [{"logprob": -3.0, "tokens": 1, "greedy": False}, {"logprob": -2.5, "tokens": 1, "greedy": True},
              {"logprob": -4.0, "tokens": 1, "greedy": False}]
    assert pick("loglikelihood", scores, choices)[0] == "no"
    pred, block = pick("loglikelihood_norm", scores, choices)   # -1.0, -1.25, -0.8 per character
    assert pred == "maybe" and block["normalised"] == [-1.0, -1.25, -0.8]
    tie = [{"logprob": -1.0, "tokens": 1, "greedy": False}] * 2
    assert pick("loglikelihood", tie, [("A", "A"), ("B", "B")])[0] == "A"   # ties: the first, like argmax
    assert protocol("loglikelihood", 0) == "loglikelihood-0shot" and protocol("sc", 0, 10) == "generate-sc10"


@pytest.fixture(scope="module")
def ll_runs(hf_backend, data_dir, tmp_path_factory):
    from medeval.runs.runner import RunConfig, run

    out = tmp_path_factory.mktemp("ll")
    cfg = dict(tasks=["openllm_medqa", "openllm_mmlu_anatomy"], limit=3, data_dir=str(data_dir),
               cache_dir=str(out / "cache"), self_consistency=5)
    first = run(RunConfig(**cfg, output_dir=str(out / "a")), backend=hf_backend, progress=False)
    again = run(RunConfig(**cfg, output_dir=str(out / "b")), backend=hf_backend, progress=False)
    return first, again, out


def test_openllm_run_records_per_choice_logprobs_acc_and_acc_norm(ll_runs):
    first, again, out = ll_runs
    t = first["tasks"]["openllm_medqa"]
    assert t["modes"] == ["loglikelihood", "loglikelihood_norm"]          # -k does not apply
    assert t["protocols"] == {"loglikelihood": "loglikelihood-0shot", "loglikelihood_norm": "loglikelihood-norm-0shot"}
    for mode in t["modes"]:
        acc = t["metrics"][mode]["accuracy"]
        assert acc["n"] == 3 and acc["ci_low"] <= acc["value"] <= acc["ci_high"]
        assert t["invalid"][mode]["count"] == 0
    assert set(t["strata"]["meta_info"]) <= {"step1", "step2&3"}
    rows = [json.loads(line) for line in (out / "a" / "samples_openllm_medqa.jsonl").read_text().splitlines()]
    for r in rows:
        assert r["prompt"].startswith("Question: ") and r["prompt"].endswith("\nD. " + r["prompt"].split("\nD. ")[1])
        assert r["prompt"].endswith("Answer:")
        ll = r["loglikelihood"]
        assert ll["choices"] == ["A", "B", "C", "D"] and len(ll["logprobs"]) == 4 and ll["chars"] == [1] * 4
        assert ll["pred"] == ll["choices"][max(range(4), key=lambda j: ll["logprobs"][j])]
        assert ll["correct"] == (ll["pred"] == r["gold"]) and "pred" in r["loglikelihood_norm"]
    assert again["cache"]["misses"] == 0 and again["cache"]["hits"] == first["cache"]["misses"] == 2 * 3 * 4
    assert again["tasks"]["openllm_medqa"]["metrics"] == t["metrics"]
    mmlu = [json.loads(line) for line in (out / "a" / "samples_openllm_mmlu_anatomy.jsonl").read_text().splitlines()]
    assert mmlu[0]["prompt"].startswith("The following are multiple choice questions (with answers) about anatomy.\n\n")


def test_gate_and_leaderboard_read_loglikelihood_runs(ll_runs, report_app):
    from conftest import invoke

    _, _, out = ll_runs
    res = invoke(report_app, "gate", "--baseline", out / "a", "--candidate", out / "b", "--allow-same-model")
    assert res.exit_code == 0 and "accuracy (loglikelihood)" in res.output
    preset = out / "preset.yaml"
    preset.write_text("name: ll\ncolumns:\n  - {name: MedQA, task: openllm_medqa}\n  - {name: MMLU.an, task: openllm_mmlu_anatomy}\n")
    reported = out / "reported.yaml"
    reported.write_text("source: {title: a card}\nmode: loglikelihood\nprotocol_label: loglikelihood-5shot\nmodels:\n"
                        "  - {name: Some model, scores: {openllm_medqa: 60.0}}\n")
    res = invoke(report_app, "leaderboard", out / "a", "--preset", preset, "--mode", "loglikelihood",
                 "--reported", reported, "--mode", "loglikelihood", "-o", out / "board.md", "--no-html", "--no-charts")
    assert res.exit_code == 0, res.output
    board = (out / "board.md").read_text()
    assert "Protocol: loglikelihood-0shot" in board
    assert "MedQA (loglikelihood) mixes protocols" in board


def test_openai_backend_scores_with_echo_logprobs_like_the_hf_backend(hf_backend, tmp_path, data_dir):
    """`medeval run --backend openai` on a loglikelihood task against a real loopback server serving the
    embedded model: the same per-choice log-probabilities and picks as the HF backend."""
    from medeval.backends.hf import embedded_model_dir
    from medeval.backends.openai_backend import OpenAIBackend
    from medeval.runs.runner import RunConfig, run
    from medeval.testing.openai_server import HF_MODEL, OpenAITestServer

    common = dict(tasks=["openllm_pubmedqa"], limit=2, data_dir=str(data_dir), no_cache=True)
    with OpenAITestServer("hf", fault_rates={"500": 0.2}, seed=3) as srv:
        backend = OpenAIBackend(HF_MODEL, base_url=srv.url, tokenizer=str(embedded_model_dir()), max_retries=6)
        api = run(RunConfig(**common, output_dir=str(tmp_path / "api")), backend=backend, progress=False)
        sent = srv.entries(status=200)
    hf = run(RunConfig(**common, output_dir=str(tmp_path / "hf")), backend=hf_backend, progress=False)
    assert sent and all(e["body"]["echo"] and isinstance(e["body"]["prompt"], list) for e in sent)
    rows = {d: [json.loads(line) for line in (tmp_path / d / "samples_openllm_pubmedqa.jsonl").read_text().splitlines()]
            for d in ("api", "hf")}
    for a, h in zip(rows["api"], rows["hf"]):
        assert a["prompt"] == h["prompt"] and a["loglikelihood"]["pred"] == h["loglikelihood"]["pred"]
        assert a["loglikelihood"]["logprobs"] == pytest.approx(h["loglikelihood"]["logprobs"], abs=2e-4)
        assert a["loglikelihood"]["greedy"] == h["loglikelihood"]["greedy"]
    assert api["tasks"]["openllm_pubmedqa"]["metrics"] == hf["tasks"]["openllm_pubmedqa"]["metrics"]

    with OpenAITestServer("echo") as fake:   # FAKE model: no prompt logprobs, so a clear refusal
        from medeval.backends.base import BackendError

        bad = OpenAIBackend("medeval-echo-FAKE", base_url=fake.url, tokenizer=str(embedded_model_dir()),
                            max_retries=0)
        with pytest.raises(BackendError, match="loglikelihood tasks need a server that returns prompt logprobs"):
            run(RunConfig(**common, output_dir=str(tmp_path / "bad")), backend=bad, progress=False)
    with pytest.raises(BackendError, match="sends token ids.*needs tokenizer="):  # before any request
        run(RunConfig(**common, output_dir=str(tmp_path / "bad")),
            backend=OpenAIBackend(HF_MODEL, base_url=srv.url, prompt_format="token_ids"), progress=False)
