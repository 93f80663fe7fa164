"""Test helpers that are also useful outside the test suite (benchmarks, demos).

`openai_server.OpenAITestServer` is a real OpenAI-protocol HTTP server on
localhost with fault injection; its `echo` generator is a FAKE model.
"""
from __future__ import annotations


def load_embedded_model():
    """(model, tokenizer) of the embedded SmolLM2-135M-Instruct, on CPU, in eval mode."""
    from medeval.backends.hf import EMBEDDED, load_model

    model, tok, _ = load_model(EMBEDDED, device="cpu")
    return model, tok
