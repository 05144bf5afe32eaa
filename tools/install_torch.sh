#!/usr/bin/env bash
# Install torch into the given Python's environment, the build that fits this machine:
#   - an NVIDIA GPU (nvidia-smi answers): the default build from the package index (CUDA);
#   - no NVIDIA GPU: the CPU build from PyTorch's CPU wheel index (about 200 MB instead of several GB),
#     falling back to the default index when that index cannot be reached (a mirror that serves a CPU build).
# TORCH_SPEC picks the version (default torch==2.13.0); TORCH_INDEX_URL overrides the index ("" = default index).
# Usage: tools/install_torch.sh .venv/bin/python
set -euo pipefail
py="$1"
spec="${TORCH_SPEC:-torch==2.13.0}"
cpu_index="https://download.pytorch.org/whl/cpu"
pip=("$py" -m pip install --disable-pip-version-check)
if [ -n "${TORCH_INDEX_URL+set}" ]; then
    if [ -n "$TORCH_INDEX_URL" ]; then
        echo "torch: $spec from $TORCH_INDEX_URL (TORCH_INDEX_URL)"
        exec "${pip[@]}" --index-url "$TORCH_INDEX_URL" "$spec"
    fi
    echo "torch: $spec from the default index (TORCH_INDEX_URL is empty)"
    exec "${pip[@]}" "$spec"
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "torch: NVIDIA GPU found, $spec with CUDA from the default index (several GB)"
    exec "${pip[@]}" "$spec"
fi
echo "torch: no NVIDIA GPU, $spec CPU build from PyTorch's CPU index (about 200 MB)"
if ! "${pip[@]}" --retries 0 --timeout 20 --index-url "$cpu_index" "$spec" 2>/dev/null; then
    echo "torch: PyTorch's CPU index cannot be reached here; installing $spec from the default index"
    "${pip[@]}" "$spec"
fi
