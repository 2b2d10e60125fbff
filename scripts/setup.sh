#!/usr/bin/env bash
# Create .venv and install sftmix-ray into it. Idempotent: a second run installs nothing new.
# torch goes first and pinned: with no torch present, an unpinned one pulls a multi-GB CUDA build on
# CPU-only machines. Set TORCH_SPEC to choose another build (e.g. a CUDA wheel on GPU nodes).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "$TORCH_SPEC"
.venv/bin/python -m pip install -q -e '.[test]'
