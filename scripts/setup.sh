#!/usr/bin/env bash
# Create .venv and install the project. torch==2.13.0 goes first: on these machines it is a CPU
# wheel from local disk, while an unpinned torch (pulled in by sentence-transformers) is a
# multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
