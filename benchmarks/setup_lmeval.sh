#!/usr/bin/env bash
# A separate venv for lm-evaluation-harness (benchmarks/vs_lmeval.py), with the same torch and
# transformers as the project's venv so that both harnesses run the same model code.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-../.venv/bin/python}
TORCH=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
TRANSFORMERS=$("$PY" -c "import transformers; print(transformers.__version__)")
[ -x .venv-lmeval/bin/python ] || "$PY" -m venv .venv-lmeval
.venv-lmeval/bin/pip install -q "torch==$TORCH" "transformers==$TRANSFORMERS" "lm-eval[hf]==0.4.13"
.venv-lmeval/bin/python -c "import torch, transformers, lm_eval; print('lm-eval', lm_eval.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
