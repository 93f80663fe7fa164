"""Shared fixtures: the real data mirror and ONE embedded model for the whole session."""
import json
import os
import shutil
import subprocess
import tempfile
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


def read_rows(dataset: str, split: str = "test") -> list[dict]:
    """Rows of a dataset in the shared mirror."""
    with (DATA / dataset / f"{split}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def report_app():
    """A typer app with the leaderboard/gate/compare commands registered."""
    import typer

    from medeval.reporting.cli import register

    app = typer.Typer()
    register(app)
    return app


def invoke(app, *args):
    from typer.testing import CliRunner

    return CliRunner().invoke(app, [str(a) for a in args])


CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (apt-get install chromium)")


def chromium(url: str, *flags: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Headless Debian Chromium on `url` with a throwaway profile and no background traffic of its own.

    Pass `--dump-dom` (the DOM after the page's scripts ran, on stdout) or `--screenshot=PATH`."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", *flags, url],
            capture_output=True, text=True, timeout=timeout)


def dump_dom(url: str) -> str:
    return chromium(url, "--dump-dom").stdout


LLAMACPP_MODEL = "smollm2-135m-instruct-q4_1"   # the name llama_cpp.server serves the embedded GGUF under


@pytest.fixture(scope="session")
def llamacpp_server():
    """llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on the embedded GGUF,
    on a free loopback port, for the whole session: yields its base URL. `make test` builds llama-cpp-python."""
    import socket
    import sys
    import time
    import urllib.request

    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (`make test` builds it: "
                                            "pip install 'llama-cpp-python[server]')")
    from medeval.backends.hf import embedded_gguf

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf()),
                             "--model_alias", LLAMACPP_MODEL, "--host", "127.0.0.1", "--port", str(port),
                             "--n_ctx", "2048", "--n_threads", "2", "--seed", "0"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"llama_cpp.server did not start (exit {proc.poll()}): {log.read()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


TOY_CHOICE_TASK = """\
name: toy
version: 1
dataset: {local: toy/test.jsonl}
prompt: {template: toy.jinja}
answer: {type: choice, options: opts, gold: ans, gold_format: letter}
metrics: METRICS
"""


def toy_choice_task(root: Path, rows: list[dict], template: str = "{{ doc.q }}", metrics: str = "[accuracy]") -> dict:
    """A made-up choice task `toy` under `root` (tasks/toy.yaml, its template, data/toy/test.jsonl of `rows`
    with fields q, opts, ans): the RunConfig fields that find it."""
    import json

    (root / "tasks").mkdir(parents=True, exist_ok=True)
    (root / "tasks" / "toy.yaml").write_text(TOY_CHOICE_TASK.replace("METRICS", metrics))
    (root / "tasks" / "toy.jinja").write_text(template)
    (root / "data" / "toy").mkdir(parents=True, exist_ok=True)
    (root / "data" / "toy" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dict(tasks=["toy"], task_dirs=[str(root / "tasks")], data_dir=str(root / "data"))
