"""A whole `medeval run` through the OpenAI backend, against a real loopback server that serves the
embedded model and injects 429s, 500s and dropped connections."""
import json

import pytest

from medeval.backends.openai_backend import OpenAIBackend
from medeval.runs.runner import RunConfig, run
from medeval.testing.openai_server import HF_MODEL, OpenAITestServer

pytestmark = pytest.mark.slow
SECRET = "sk-medeval-RUN-2b7d91c4e6"


def shape(x):
    if isinstance(x, dict):
        return {k: shape(v) for k, v in x.items()}
    return "leaf"


def test_openai_run_matches_the_hf_run_in_shape_and_never_records_the_key(tmp_path, data_dir, hf_backend,
                                                                          monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    common = dict(tasks=["medqa", "pubmedqa"], limit=3, self_consistency=2, max_tokens=8, data_dir=str(data_dir),
                  no_cache=True)
    faults = {"429": 0.15, "500": 0.15, "drop": 0.1}
    with OpenAITestServer("hf", fault_rates=faults, seed=7, api_key=SECRET) as srv:
        backend = OpenAIBackend(HF_MODEL, base_url=srv.url, max_retries=8, timeout=120, concurrency=4)
        via_api = run(RunConfig(**common, output_dir=str(tmp_path / "api")), backend=backend, progress=False)
        served = srv.entries(status=200)
        injected = [e for e in srv.log if e.get("status") != 200]
    via_hf = run(RunConfig(**common, output_dir=str(tmp_path / "hf")), backend=hf_backend, progress=False)

    assert injected, "the server should have injected faults"
    # every request was answered once: 2 tasks x 3 items x (greedy + two per-sample seeded ones)
    assert len({json.dumps(e["body"], sort_keys=True) for e in served}) == len(served)
    for name in ("medqa", "pubmedqa"):
        a, h = via_api["tasks"][name], via_hf["tasks"][name]
        assert shape(a) == shape(h)
        assert a["n"] == 3 and set(a["metrics"]) == {"greedy", "sc"}
        rows = [json.loads(l) for l in (tmp_path / "api" / a["samples_file"]).read_text().splitlines()]
        assert all(len(r["sc"]["outputs"]) == 2 and r["greedy"]["outputs"][0] is not None for r in rows)
        assert all(r["sc"]["n_path"] == ["per_sample"] * 2 and r["greedy"]["n_path"] == ["single"] for r in rows)
    written = "".join(p.read_text() for p in (tmp_path / "api").iterdir())
    captured = capsys.readouterr()
    assert SECRET not in written + captured.out + captured.err + json.dumps(via_api, default=str)
