"""HF backend behaviour on the real embedded model: batching, stops, long prompts, out-of-memory splits."""
import pytest

from medeval.backends.base import Request, Sampling

pytestmark = pytest.mark.slow


def req(i, text, **s):
    return Request(f"r{i}", (("user", text),), Sampling(**{"max_tokens": 8, **s}))


def test_batched_greedy_equals_one_at_a_time_and_stops_cut_the_text(hf_backend):
    prompts = ["Name a bone of the arm.", "What organ pumps blood?", "Is aspirin an NSAID? Answer yes or no."]
    batched = dict(hf_backend.generate([req(i, p) for i, p in enumerate(prompts)]))
    for i, p in enumerate(prompts):
        alone = dict(hf_backend.generate([req(i, p)]))[0]
        assert alone.texts == batched[i].texts
    stopped = dict(hf_backend.generate([req(0, prompts[0], stop=(" ",))]))[0]
    assert " " not in stopped.texts[0] and stopped.finish_reasons == ["stop"]


def test_completion_tokens_are_counted_per_sample(hf_backend):
    """Token counts are the generated tokens: max_tokens when cut ("length"), fewer at a stop string or EOS."""
    r = req(0, "Describe the heart in detail.", max_tokens=5)
    cut = dict(hf_backend.generate([r]))[0]
    assert cut.finish_reasons == ["length"] and cut.info["completion_tokens"] == [5]
    assert cut.info["prompt_tokens"] == len(hf_backend.tok(hf_backend.render(r), add_special_tokens=False)["input_ids"])
    stopped = dict(hf_backend.generate([req(1, "Name a bone of the arm.", stop=(" ",), max_tokens=12)]))[0]
    assert stopped.finish_reasons == ["stop"] and 1 <= stopped.info["completion_tokens"][0] < 12
    text_tokens = len(hf_backend.tok(stopped.texts[0], add_special_tokens=False)["input_ids"])
    assert stopped.info["completion_tokens"][0] >= text_tokens   # the text before the stop string, plus it
    sampled = dict(hf_backend.generate([req(2, "Name a symptom of flu.", n=3, temperature=0.9, seed=3)]))[0]
    assert len(sampled.info["completion_tokens"]) == 3 and all(0 < c <= 8 for c in sampled.info["completion_tokens"])
    assert all(c == 8 for c, f in zip(sampled.info["completion_tokens"], sampled.finish_reasons) if f == "length")


def test_n_samples_come_from_one_request_and_are_reproducible(hf_backend):
    r = req(0, "Name a common symptom of flu.", n=4, temperature=0.9, top_p=0.95, seed=11)
    first = dict(hf_backend.generate([r]))[0]
    again = dict(hf_backend.generate([req(5, "something else", n=2, temperature=0.9, seed=1), r]))[1]
    assert len(first.texts) == 4 and first.texts == again.texts   # independent of the other requests
    assert len(set(first.texts)) > 1


def test_long_prompts_are_truncated_or_skipped_and_counted(hf_backend, monkeypatch):
    long = "The patient reports chest pain. " * 200
    monkeypatch.setattr(hf_backend, "max_context", 96)
    out = dict(hf_backend.generate([req(0, long)]))[0]
    assert out.info["truncated"] and out.info["prompt_tokens"] > 96
    monkeypatch.setattr(hf_backend, "context_policy", "skip")
    out = dict(hf_backend.generate([req(0, long), req(1, "Hi")]))
    assert out[0].info == {"skipped": "too_long", "prompt_tokens": out[0].info["prompt_tokens"], "completion_tokens": [0]}
    assert out[1].texts[0] != "" and "skipped" not in out[1].info


def test_out_of_memory_batches_are_split_and_retried(hf_backend, monkeypatch):
    """FAKE out-of-memory (no GPU here): the model raises for batches of more than one prompt."""
    import torch

    real = hf_backend.model.generate
    sizes = []

    def flaky(**kw):
        rows = kw["input_ids"].shape[0]
        sizes.append(rows)
        if rows > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(**kw)

    monkeypatch.setattr(hf_backend.model, "generate", flaky)
    monkeypatch.setattr(hf_backend, "batch_cap", None)
    monkeypatch.setattr(hf_backend, "oom_splits", 0)
    monkeypatch.setattr(hf_backend, "largest_fit", 0)
    prompts = ["Name a vitamin.", "Name a vein.", "Name an enzyme."]
    out = dict(hf_backend.generate([req(i, p) for i, p in enumerate(prompts)]))
    assert sorted(out) == [0, 1, 2] and all(o.texts[0] for o in out.values())
    # 3 failed; the cap (1) is remembered, so the remaining 2 are never tried together
    assert sizes == [3, 1, 1, 1] and hf_backend.oom_splits == 1 and hf_backend.batch_cap == 1
    sizes.clear()
    dict(hf_backend.generate([req(i, p) for i, p in enumerate(prompts)]))
    assert sizes == [1, 1, 1] and hf_backend.describe()["batch_size_largest_fit"] == 1


def test_the_failed_attempts_tensors_are_freed_before_the_retry(hf_backend, monkeypatch):
    """FAKE out-of-memory: the failing forward allocates a tensor that only its frame holds, then raises.
    A retry made inside the `except` block would still hold it through the traceback (on a GPU that
    memory is what the retry needs); the retry must start only after it is gone."""
    import weakref

    import torch

    real = hf_backend.model.generate
    held = []

    def flaky(**kw):
        if held:
            assert held[0]() is None, "the failed attempt's activations are still alive at the retry"
            return real(**kw)
        activations = torch.zeros(kw["input_ids"].shape[0], 1024, 1024)  # what a forward would hold
        held.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(hf_backend.model, "generate", flaky)
    monkeypatch.setattr(hf_backend, "batch_cap", None)
    out = dict(hf_backend.generate([req(i, p) for i, p in enumerate(["Name a vitamin.", "Name a vein."])]))
    assert sorted(out) == [0, 1] and held and held[0]() is None


LLAMA3 = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
          "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
QWEN = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking is defined and not "
        "enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}")


@pytest.mark.parametrize("template", [LLAMA3, QWEN])
def test_chat_templates_come_out_exactly_as_the_tokenizer_defines_them(hf_backend, monkeypatch, template):
    monkeypatch.setattr(hf_backend.tok, "chat_template", template)
    msgs = (("system", "Be brief."), ("user", "Name a bone."))
    r = Request("t", msgs, Sampling(), chat_template_kwargs=(("enable_thinking", False),))
    want = hf_backend.tok.apply_chat_template([{"role": a, "content": c} for a, c in msgs], tokenize=False,
                                              add_generation_prompt=True, enable_thinking=False)
    assert hf_backend.render(r) == want
    assert hf_backend.render(Request("t", msgs, Sampling(), prefill="The answer is")) .endswith("The answer is")


def test_shared_prefix_sampling_gives_the_same_samples_as_num_return_sequences(hf_backend, monkeypatch):
    r = req(0, "Name two symptoms of anaemia.", n=5, temperature=0.8, top_p=0.9, seed=21, max_tokens=12)
    shared = dict(hf_backend.generate([r]))[0]
    monkeypatch.setattr(hf_backend, "share_prefix", False)
    plain = dict(hf_backend.generate([r]))[0]
    assert shared.texts == plain.texts and len(set(plain.texts)) > 1


def test_truncation_counts_survive_a_cached_rerun(hf_backend, data_dir, tmp_path, monkeypatch):
    from medeval.runs.runner import RunConfig, run

    monkeypatch.setattr(hf_backend, "max_context", 160)
    cfg = dict(tasks=["pubmedqa"], limit=2, max_tokens=4, data_dir=str(data_dir), cache_dir=str(tmp_path / "c"))
    first = run(RunConfig(**cfg, output_dir=str(tmp_path / "a")), backend=hf_backend, progress=False)
    again = run(RunConfig(**cfg, output_dir=str(tmp_path / "b")), backend=hf_backend, progress=False)
    assert first["tasks"]["pubmedqa"]["skipped"] == {"truncated_left": 2}
    assert again["cache"]["misses"] == 0 and again["tasks"]["pubmedqa"]["skipped"] == {"truncated_left": 2}


def test_each_sample_depends_only_on_seed_prompt_and_index(hf_backend):
    """k=3 then the 2 missing samples (indices 3, 4) equals a fresh k=5, on both sampling paths."""
    from dataclasses import replace

    r5 = req(0, "Name a common symptom of flu.", n=5, temperature=0.9, top_p=0.9, seed=7, max_tokens=10)
    fresh = dict(hf_backend.generate([r5]))[0].texts
    r3 = replace(r5, sampling=replace(r5.sampling, n=3))
    rest = replace(r5, sampling=replace(r5.sampling, n=2), sample_indices=(3, 4))
    one = replace(r5, sampling=replace(r5.sampling, n=1), sample_indices=(4,))   # the plain (n=1) path
    got = dict(hf_backend.generate([r3, rest, one]))
    assert got[0].texts + got[1].texts == fresh and got[2].texts == fresh[4:]
    assert len(set(fresh)) > 1
