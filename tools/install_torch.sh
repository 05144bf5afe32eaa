#!/usr/bin/env bash
# Install torch into the given Python's environment, before the project, so that pip does not choose a torch for it.
#   Default: TORCH_SPEC (torch==2.13.0) from the package index. On Linux x86-64 that is PyTorch's CUDA build
#   (several GB with its CUDA libraries; it runs on a CPU as well); on macOS and Windows the package index's
#   build is the CPU (and Apple GPU) one.
#   TORCH_INDEX_URL: install from that index instead. On a Linux machine without an NVIDIA GPU, PyTorch's own CPU
#   wheel index (its address is on PyTorch's "Get started" page, "CPU") gives a build of about 200 MB.
# Usage: tools/install_torch.sh .venv/bin/python
set -euo pipefail
py="$1"
spec="${TORCH_SPEC:-torch==2.13.0}"
pip=("$py" -m pip install --disable-pip-version-check)
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    echo "torch: $spec from $TORCH_INDEX_URL (TORCH_INDEX_URL)"
    exec "${pip[@]}" --index-url "$TORCH_INDEX_URL" "$spec"
fi
echo "torch: $spec from the package index (on Linux x86-64 a CUDA build of several GB; set TORCH_INDEX_URL to a CPU wheel index for a smaller one)"
exec "${pip[@]}" "$spec"
