#!/usr/bin/env bash
# Layer benchmark on the GPU machine: cnnergy's kernels and PyTorch/cuDNN on the same
# layer shapes, in one call, then the comparison against the kernels issue's targets.
# Usage (on the GPU machine, from the repo root, with target/release/cnnergy carried):
#   bash bench/run_layers.sh OUTDIR [cnnergy bench-layers options...]
set -euo pipefail
out=${1:?output folder}
shift
mkdir -p "$out"
bin=target/release/cnnergy
"$bin" bench-layers --cases-out "$out/cases.json" --json "$out/cnnergy.json" "$@" > "$out/cnnergy.txt"
PYTHONUNBUFFERED=1 python3 bench/torch_layers.py "$out/cases.json" "$out/torch.json" 2> "$out/torch.err"
python3 bench/compare.py "$out/cnnergy.json" "$out/torch.json" "$out/compare.md"
