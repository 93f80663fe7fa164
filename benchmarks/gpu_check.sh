#!/usr/bin/env bash
# The GPU check (issue 10): HF on CUDA end to end (bf16, batch_size auto, greedy + SC), real out-of-memory
# recovery under a memory cap, vLLM end to end, and both backends' throughput against the raw engines;
# issue 21: --extract-fallback self and --extract-audit on vLLM (prompt logprobs), resumed from the cache.
# Under 5 minutes on one GPU. Writes benchmarks/results/gpu_check.json (record it in benchmarks/RESULTS.md).
#
#   benchmarks/gpu_check.sh [--data-dir DIR] [--tokenizer DIR] [--skip vllm_e2e,...]
#   benchmarks/gpu_check.sh --smoke        # CPU, tiny model: checks the script itself
#
# On a GPU machine without a package index, install vLLM first with shared/gpu/install-vllm.sh and export
# what it prints; carry the MedQA test file and a tokenizer directory (the embedded model's converted
# directory minus model.safetensors, ~3.5 MB) into an ignored folder of the checkout and pass them here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1
exec timeout 290 "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
