#!/usr/bin/env bash
# One command for the whole benchmark suite: benchmarks/run_all.sh [--quick] [--only a,b] [--quiet-wait S]
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" benchmarks/run_all.py "$@"
