#!/usr/bin/env bash
# ONNX correctness on the GPU machine: exports the six torchvision models (and, unless told
# otherwise, ResNet-50 etc. through the dynamo exporter and a list of other torchvision CNNs),
# runs each file through `cnnergy run X.onnx --device gpu --input ... --logits-out ...` in f32
# and f16, and compares the logits with PyTorch fp32 (TF32 off).
# Usage (from the repo root, with target/release/cnnergy built):
#   bash bench/onnx_check.sh OUTDIR [bench/onnx_check.py options, e.g. --extra '' --dynamo resnet50]
# OUTDIR gets only small results (onnx_check.json, onnx_check.md, onnx_check.log); the ONNX files
# go to --workdir (default $TMPDIR/cnnergy-onnx-check) and are deleted after use.
set -uo pipefail
out=${1:?output folder}
shift
mkdir -p "$out"
PYTHONUNBUFFERED=1 python3 bench/onnx_check.py "$out" "$@" 2> >(tail -c 200000 > "$out/onnx_check.err") | tee "$out/onnx_check.log"
exit "${PIPESTATUS[0]}"
