"""--model-args parsing: typed values, clear errors. Needs no vllm (the schema is plain pydantic)."""
import pytest

from medeval.backends.model_args import (ModelArgs, ModelArgsError, describe_keys, parse_model_args,
                                         split_pairs)
from medeval.backends.vllm_backend import VLLMArgs

EXAMPLE = "tensor_parallel_size=2,dtype=bfloat16,enable_prefix_caching=True,max_model_len=8192,trust_remote_code=False"


def test_example_string_gives_typed_values():
    args = parse_model_args(EXAMPLE, VLLMArgs, "vllm")
    assert args == {"tensor_parallel_size": 2, "dtype": "bfloat16", "enable_prefix_caching": True,
                    "max_model_len": 8192, "trust_remote_code": False}
    assert type(args["tensor_parallel_size"]) is int and type(args["trust_remote_code"]) is bool


def test_each_backend_checks_its_own_keys_and_names_itself():
    from medeval.backends.hf import HFArgs
    from medeval.backends.openai_backend import OpenAIArgs

    assert parse_model_args("max_num_seqs=8", VLLMArgs, "vllm") == {"max_num_seqs": 8}
    with pytest.raises(ModelArgsError, match="unknown key 'batch_size' for the vllm backend"):
        parse_model_args("batch_size=8", VLLMArgs, "vllm")
    assert parse_model_args("batch_size=4,dtype=float32", HFArgs, "hf") == {"batch_size": 4, "dtype": "float32"}
    assert parse_model_args("batch_size=auto,attn_implementation=sdpa", HFArgs, "hf")["batch_size"] == "auto"
    assert parse_model_args('device_map=auto,max_memory={"0": "70GiB"}', HFArgs, "hf")["max_memory"] == {"0": "70GiB"}
    with pytest.raises(ModelArgsError, match=r"unknown key 'tensor_parallel_size' for the hf backend"):
        parse_model_args("tensor_parallel_size=2", HFArgs, "hf")
    with pytest.raises(ModelArgsError, match=r"for the hf backend: dtype=bf16"):
        parse_model_args("dtype=bf16", HFArgs, "hf")
    with pytest.raises(ModelArgsError, match=r"batch_size=0"):
        parse_model_args("batch_size=0", HFArgs, "hf")
    assert parse_model_args("concurrency=16,timeout=120,max_retries=0", OpenAIArgs, "openai") == {
        "concurrency": 16, "timeout": 120.0, "max_retries": 0}
    with pytest.raises(ModelArgsError, match=r"unknown key 'batch_size' for the openai backend"):
        parse_model_args("batch_size=4", OpenAIArgs, "openai")


def test_create_merges_flags_and_model_args_through_the_backend_schema():
    """create() refuses keys the chosen backend does not take (flags too) and flag/--model-args clashes,
    before any model is loaded."""
    from medeval.backends import create
    from medeval.errors import MedevalError

    with pytest.raises(MedevalError, match=r"the openai backend does not take --batch-size"):
        create("openai", "m", batch_size=4)
    with pytest.raises(MedevalError, match=r"--concurrency 4 and --model-args concurrency=8 disagree"):
        create("openai", "m", "concurrency=8", concurrency=4)
    with pytest.raises(MedevalError, match=r"unknown key 'engine_args' for the openai backend"):
        create("openai", "m", "engine_args=1")
    b = create("openai", "served", "concurrency=3,api=completions,tokenizer=x", base_url="http://127.0.0.1:9/v1")
    assert (b.concurrency, b.api, b.tokenizer, b.base_url) == (3, "completions", "x", "http://127.0.0.1:9/v1")


def test_only_given_keys_are_returned_and_empty_is_empty():
    assert parse_model_args("seed=7", VLLMArgs) == {"seed": 7}
    assert parse_model_args("", VLLMArgs) == {}
    assert parse_model_args(None, VLLMArgs) == {}
    assert parse_model_args("  ", VLLMArgs) == {}


def test_spaces_floats_and_lowercase_bools():
    args = parse_model_args(" gpu_memory_utilization = 0.85 , enforce_eager=false ", VLLMArgs)
    assert args == {"gpu_memory_utilization": 0.85, "enforce_eager": False}


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ModelArgsError, match=r"unknown key 'tensor_paralel_size' for the vllm backend\. "
                                             r"Did you mean 'tensor_parallel_size'\?"):
        parse_model_args("tensor_paralel_size=2", VLLMArgs, "vllm")


def test_bad_values_name_the_key_and_value():
    with pytest.raises(ModelArgsError, match=r"tensor_parallel_size=two: .*integer"):
        parse_model_args("tensor_parallel_size=two", VLLMArgs)
    with pytest.raises(ModelArgsError, match=r"tensor_parallel_size=0: .*greater than 0"):
        parse_model_args("tensor_parallel_size=0", VLLMArgs)
    with pytest.raises(ModelArgsError, match=r"gpu_memory_utilization=1.5: .*less than or equal to 1"):
        parse_model_args("gpu_memory_utilization=1.5", VLLMArgs)
    with pytest.raises(ModelArgsError, match=r"dtype=bf16: .*'bfloat16'"):
        parse_model_args("dtype=bf16", VLLMArgs)
    with pytest.raises(ModelArgsError, match=r"enable_prefix_caching=maybe: .*boolean"):
        parse_model_args("enable_prefix_caching=maybe", VLLMArgs)


@pytest.mark.parametrize("text, message", [
    ("tensor_parallel_size", r"'tensor_parallel_size' is not key=value"),
    ("=2", r"'=2' is not key=value"),
    ("seed=", r"seed= has no value"),
    ("seed=1,seed=2", r"seed is given twice"),
])
def test_malformed_strings(text, message):
    with pytest.raises(ModelArgsError, match=message):
        split_pairs(text)


def test_json_values_may_contain_commas():
    class WithDict(ModelArgs):
        chat_template_kwargs: dict = {}
        seed: int = 0

    args = parse_model_args('chat_template_kwargs={"enable_thinking": false, "x": [1, 2]},seed=3', WithDict)
    assert args == {"chat_template_kwargs": {"enable_thinking": False, "x": [1, 2]}, "seed": 3}
    with pytest.raises(ModelArgsError, match=r"chat_template_kwargs=\{oops is not valid JSON"):
        parse_model_args("chat_template_kwargs={oops", WithDict)


def test_describe_keys_lists_every_key():
    text = describe_keys(VLLMArgs)
    assert len(text.splitlines()) == len(VLLMArgs.model_fields)
    assert "batch_invariant: bool - set VLLM_BATCH_INVARIANT=1" in text.splitlines()
    assert "dtype: auto|half|float16|bfloat16|float|float32" in text.splitlines()
    assert "tensor_parallel_size: int" in text.splitlines()


@pytest.mark.slow
def test_hf_model_args_on_the_command_line(tmp_path, data_dir):
    """`medeval run --backend hf --model-args batch_size=4,dtype=float32` works and is recorded."""
    import json

    from conftest import invoke
    from medeval.cli import app

    res = invoke(app, "run", "--backend", "hf", "--model-args", "batch_size=4,dtype=float32", "--tasks", "medqa",
                 "--limit", "2", "--max-tokens", "2", "--data-dir", data_dir, "-o", tmp_path / "run", "--no-cache", "-q")
    assert res.exit_code == 0, res.output
    model = json.loads((tmp_path / "run" / "results.json").read_text())["model"]
    assert model["batch_size"] == 4 and model["dtype"] == "torch.float32" and model["identity"]["backend"] == "hf"
    bad = invoke(app, "run", "--backend", "hf", "--model-args", "tensor_parallel_size=2", "--tasks", "medqa",
                 "-o", tmp_path / "bad")
    assert bad.exit_code != 0 and not (tmp_path / "bad").exists()
