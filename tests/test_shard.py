"""Sharded runs: the partition, three shards + merge == one run (byte for byte, SC included),
merge's refusals, and a real local Ray cluster running --launcher ray --shards 2.

Why the comparison is meaningful: the shards generate every sample into one cache and the unsharded
run then takes all of its samples from that cache (asserted: 0 generated). The model's outputs are
thus the same by construction, and what is compared is everything sharding and merging can get
wrong: which items each shard takes, item and sample order, votes, metrics, bootstrap intervals,
strata, groups. (Generating again without the cache would not be a fair check: HF greedy decoding
runs in padded batches sorted by length, and a different batch mix may change float rounding and
so, rarely, a token. SC samples are generated per prompt with a seed of (seed, prompt), so they
do not depend on the batch mix. Checked by hand once: `--limit 12 -k 2` unsharded with --no-cache
and batches of 8 gave samples byte-identical to three shards' with batches of 4.)
"""
import json
import shutil

import pytest

from medeval.errors import MedevalError
from medeval.runs.merge import merge
from medeval.runs.runner import RunConfig, run
from medeval.runs.shard import assign, parse


def test_partition_is_balanced_deterministic_and_independent_of_order():
    ids = [f"q{k}" for k in range(37)]
    a = assign(ids, 5)
    assert a == assign(list(reversed(ids)), 5)          # depends on the ids, not their order in the file
    sizes = [sum(v == i for v in a.values()) for i in range(5)]
    assert sum(sizes) == 37 and max(sizes) - min(sizes) <= 1
    assert parse("2/3") == (2, 3)
    for bad in ("3/3", "-1/3", "1", "a/b", "0/0"):
        with pytest.raises(MedevalError, match="expected I/N"):
            parse(bad)


def test_recorded_configuration_never_holds_url_credentials():
    from medeval.runs.shard import config_dict

    cfg = RunConfig(tasks=["medqa"], backend_args={"base_url": "http://user:s3cret@host:8000/v1?key=s3cret"},
                    judge_base_url="https://u:s3cret@judge/v1", output_dir="x", argv=["medeval"], shard=(0, 2))
    d = config_dict(cfg)
    assert "s3cret" not in str(d) and d["backend_args"]["base_url"] == "http://host:8000/v1"
    assert not {"output_dir", "argv", "shard"} & set(d)


def test_ray_missing_is_one_clear_line(monkeypatch, tmp_path):
    import sys

    from medeval.runs.launch_ray import launch

    monkeypatch.setitem(sys.modules, "ray", None)        # simulates an environment without Ray
    with pytest.raises(MedevalError, match=r"pip install 'medeval\[ray\]'") as e:
        launch(RunConfig(tasks=["medqa"], output_dir=str(tmp_path)), "ray", 2)
    assert "\n" not in str(e.value)


def _cfg(data_dir, tmp, name, **kw):
    base = dict(tasks=["medqa", "pubmedqa"], limit=6, self_consistency=2, max_tokens=4, data_dir=str(data_dir),
                cache_dir=str(tmp / "cache"), output_dir=str(tmp / name))
    return RunConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, data_dir, hf_backend):
    """medeval run --tasks medqa,pubmedqa --limit 6 -k 2 --max-tokens 4 --shard I/3 for I = 0, 1, 2,
    merged, and the same run unsharded on the same cache. (The issue's --limit 12 is the same with
    twice the model time; docs/scaling.md shows that run.)"""
    tmp = tmp_path_factory.mktemp("shards")
    shards = [run(_cfg(data_dir, tmp, f"s{i}", shard=(i, 3)), backend=hf_backend, progress=False) for i in range(3)]
    merged = merge([tmp / f"s{i}" for i in range(3)], tmp / "merged")
    single = run(_cfg(data_dir, tmp, "single"), backend=hf_backend, progress=False)
    return tmp, shards, merged, single


@pytest.mark.slow
def test_three_shards_merged_equal_one_run(sharded):
    tmp, shards, merged, single = sharded
    assert sum(s["cache"]["misses"] for s in shards) == 2 * 6 * (1 + 2)   # the shards generated every sample
    assert single["cache"]["misses"] == 0                                    # the single run generated none
    assert [s["tasks"]["medqa"]["n"] for s in shards] == [2, 2, 2]
    for task in ("medqa", "pubmedqa"):
        one = (tmp / "single" / f"samples_{task}.jsonl").read_bytes()
        assert (tmp / "merged" / f"samples_{task}.jsonl").read_bytes() == one
        rows = [json.loads(line) for line in one.splitlines()]
        assert all(len(r["sc"]["outputs"]) == 2 and "votes" in r["sc"] for r in rows)
        a, b = dict(merged["tasks"][task]), dict(single["tasks"][task])
        a.pop("timings"), b.pop("timings")
        assert a == b                          # metrics, intervals, strata, invalid counts, hashes: exactly
    assert merged["groups"] == single["groups"]
    on_disk = json.loads((tmp / "merged" / "results.json").read_text())
    assert on_disk["merged"]["count"] == 3 and on_disk["tasks"]["pubmedqa"]["strata"] == single["tasks"]["pubmedqa"]["strata"]


def _refused(dirs, out, match):
    with pytest.raises(MedevalError, match=match) as e:
        merge(dirs, out)
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.slow
def test_merge_refuses_missing_duplicated_mixed_and_mismatched_shards(sharded, data_dir, hf_backend):
    tmp, *_ = sharded
    s = [tmp / f"s{i}" for i in range(3)]
    _refused(s[:2], tmp / "m1", r"missing shard\(s\) 2/3")
    shutil.copytree(s[1], tmp / "s1-copy")
    _refused([*s, tmp / "s1-copy"], tmp / "m2", r"shard 1/3 given twice")
    # real runs on the same cache (all samples reused): shard 0 of 2, and shard 2 of 3 with another --limit
    run(_cfg(data_dir, tmp, "half0", shard=(0, 2)), backend=hf_backend, progress=False)
    _refused([*s, tmp / "half0"], tmp / "m3", r"shards of different N")
    other = run(_cfg(data_dir, tmp, "lim5", limit=5, shard=(2, 3)), backend=hf_backend, progress=False)
    assert other["cache"]["misses"] == 0
    _refused([s[0], s[1], tmp / "lim5"], tmp / "m4", r"not a shard of the same run.*'limit' differs \(6 vs 5\)")
    # a copy of a real shard whose recorded model identity was changed (as if another checkpoint had run it)
    shutil.copytree(s[2], tmp / "s2-other-model")
    res = json.loads((tmp / "s2-other-model" / "results.json").read_text())
    res["model"]["identity_hash"] = "0" * 64
    (tmp / "s2-other-model" / "results.json").write_text(json.dumps(res))
    _refused([s[0], s[1], tmp / "s2-other-model"], tmp / "m5", r"model identity differs")
    _refused([tmp / "single"], tmp / "m6", r"not a shard")
    _refused(s, s[0], r"is one of the shard directories")
    assert not any((tmp / f"m{k}").exists() for k in range(1, 6))   # nothing written on refusal


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster (no fake), shared by the Ray tests; started as `launch` would start it."""
    ray = pytest.importorskip("ray", reason="Ray is an optional dependency: pip install 'medeval[ray]'")
    ray.init(logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_launcher_two_shards_on_a_local_cluster_equals_one_run(ray_cluster, tmp_path, data_dir, hf_backend):
    from medeval.runs.launch_ray import launch

    cfg = dict(tasks=["medqa"], limit=4, max_tokens=4, data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"))
    launched = launch(RunConfig(**cfg, output_dir=str(tmp_path / "ray")), "ray", 2, progress=False)
    assert launched["merged"]["count"] == 2 and launched["cache"]["misses"] == 4
    assert sorted(p.name for p in (tmp_path / "ray" / "shards").iterdir()) == ["shard-0-of-2", "shard-1-of-2"]
    single = run(RunConfig(**cfg, output_dir=str(tmp_path / "one")), backend=hf_backend, progress=False)
    assert single["cache"]["misses"] == 0        # the Ray workers' samples, reused
    assert (tmp_path / "ray" / "samples_medqa.jsonl").read_bytes() == (tmp_path / "one" / "samples_medqa.jsonl").read_bytes()
    a, b = dict(launched["tasks"]["medqa"]), dict(single["tasks"]["medqa"])
    a.pop("timings"), b.pop("timings")
    assert a == b


@pytest.mark.slow
def test_ray_retries_a_failed_shard_which_reuses_its_cached_samples(ray_cluster, tmp_path, data_dir):
    """The 3rd request the server sees fails (HTTP 500, no client retries): that shard's task raises a
    BackendError, Ray runs it again, and only the failed request is asked again (the others are cached)."""
    from medeval.runs.launch_ray import launch
    from medeval.testing.openai_server import ECHO_MODEL, OpenAITestServer

    with OpenAITestServer("echo", faults=["ok", "ok", "500"]) as srv:   # FAKE model: hash-derived answers
        common = dict(tasks=["medqa"], limit=6, model=ECHO_MODEL, backend="openai", data_dir=str(data_dir),
                      cache_dir=str(tmp_path / "cache"),
                      backend_args={"base_url": srv.url, "max_retries": 0, "concurrency": 1})
        launched = launch(RunConfig(**common, output_dir=str(tmp_path / "ray")), "ray", 2, progress=False)
        assert [e["status"] for e in srv.log].count(500) == 1
        assert len(srv.log) == 6 + 1
        single = run(RunConfig(**common, output_dir=str(tmp_path / "one")), progress=False)
    assert single["cache"]["misses"] == 0 and len(srv.log) == 7
    assert (tmp_path / "ray" / "samples_medqa.jsonl").read_bytes() == (tmp_path / "one" / "samples_medqa.jsonl").read_bytes()
    assert launched["tasks"]["medqa"]["metrics"] == single["tasks"]["medqa"]["metrics"]


@pytest.mark.slow
def test_ray_reports_shards_that_still_fail_in_one_line(ray_cluster, tmp_path, data_dir):
    from medeval.runs.launch_ray import MAX_RETRIES, launch
    from medeval.testing.openai_server import ECHO_MODEL, OpenAITestServer

    with OpenAITestServer("echo", faults=["500"] * 50) as srv:              # FAKE model, always failing
        cfg = RunConfig(tasks=["medqa"], limit=4, model=ECHO_MODEL, backend="openai", data_dir=str(data_dir),
                        cache_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "ray"),
                        backend_args={"base_url": srv.url, "max_retries": 0, "concurrency": 1})
        with pytest.raises(MedevalError, match=r"2 of 2 shards failed after 3 attempts \(shard 0/2: BackendError: .*HTTP 500") as e:
            launch(cfg, "ray", 2, progress=False)
        assert len(srv.log) == 2 * (MAX_RETRIES + 1)          # each attempt of each shard: one failed request
    assert "\n" not in str(e.value)
    assert not (tmp_path / "ray" / "results.json").exists()


@pytest.mark.slow
def test_loglikelihood_task_shards_merge_to_one_run(tmp_path, data_dir, hf_backend):
    """Shards of a `scoring: loglikelihood` task carry per-choice scores; merged == one run."""
    cfg = dict(tasks=["openllm_medqa"], limit=4, data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"))
    for i in range(2):
        run(RunConfig(**cfg, output_dir=str(tmp_path / f"s{i}"), shard=(i, 2)), backend=hf_backend, progress=False)
    merged = merge([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged")
    single = run(RunConfig(**cfg, output_dir=str(tmp_path / "one")), backend=hf_backend, progress=False)
    assert single["cache"]["misses"] == 0
    a, b = dict(merged["tasks"]["openllm_medqa"]), dict(single["tasks"]["openllm_medqa"])
    a.pop("timings"), b.pop("timings")
    assert a == b and a["modes"] == ["loglikelihood", "loglikelihood_norm"]
    one = (tmp_path / "one" / "samples_openllm_medqa.jsonl").read_bytes()
    assert (tmp_path / "merged" / "samples_openllm_medqa.jsonl").read_bytes() == one
