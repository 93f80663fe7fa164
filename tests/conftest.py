"""Shared fixtures: the real data mirror and ONE embedded model for the whole session."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

# Tests never touch the user's cache; the converted embedded model is shared across runs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    if not DATA.is_dir():
        raise pytest.UsageError(f"the shared data mirror is missing at {DATA}: clone the project beside shared/")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def hf_backend():
    """The embedded SmolLM2-135M-Instruct, loaded once (a real model, about 1 s per answer on 2 cores)."""
    from medeval.backends.hf import HFBackend

    return HFBackend("embedded", batch_size=8)
