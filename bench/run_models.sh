#!/usr/bin/env bash
# Whole-model speed on the GPU machine: `cnnergy run MODEL --device gpu` and PyTorch eager
# (bench/torch_models.py) on the six built-in models, then bench/compare_models.py's table
# against the targets (batch 1: >= 2x PyTorch's images/s; batch 128 fp16: >= 0.8x for
# ResNet-50, VGG-16 and MobileNetV2).
#
# Usage (from the repo root, with target/release/cnnergy built):
#   bash bench/run_models.sh OUTDIR [--models a,b] [--batches 1,32,128] [--dtypes f32,tf32,f16]
#                                   [--seconds S] [--no-nographs] [--skip-torch] [--skip-cnnergy]
# cnnergy runs with --graphs (CUDA graph replay) at every batch and also without at batches > 1
# (--no-nographs drops those). Each setting times >= ~1 s. A failing setting leaves
# OUTDIR/cnnergy/<setting>.err, which the comparison shows as FAIL with its last line.
# Six models x 3 batches x 2 dtypes: about 5 minutes on an H100/H200. --dtypes tf32 runs cnnergy's
# TF32 mode (f32 data, TF32 tensor-core convs and linear layers) against PyTorch fp32 with TF32
# convolutions and TF32 matmuls (torch_models.py).
set -uo pipefail
out=${1:?output folder}
shift
models=alexnet,vgg16,resnet50,googlenet,mobilenet_v2,squeezenet1_0
batches=1,32,128
dtypes=f32,f16
seconds=1.0
nographs=1
torch=1
cnn=1
while [ $# -gt 0 ]; do
  case "$1" in
    --models) models=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --dtypes) dtypes=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --no-nographs) nographs=0; shift ;;
    --skip-torch) torch=0; shift ;;
    --skip-cnnergy) cnn=0; shift ;;
    *) echo "run_models.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin=${CNNERGY_BIN:-target/release/cnnergy}
mkdir -p "$out/cnnergy"
t0=$(date +%s)

if [ "$cnn" = 1 ]; then
  if [ ! -x "$bin" ]; then echo "run_models.sh: $bin not found (cargo build --release)" >&2; exit 1; fi
  # iters: about `seconds` of timing at the measured speed is cnnergy's default (>= 1 s).
  for m in ${models//,/ }; do
    for dt in ${dtypes//,/ }; do
      for b in ${batches//,/ }; do
        modes=graphs
        if [ "$b" != 1 ] && [ "$nographs" = 1 ]; then modes="graphs nographs"; fi
        for mode in $modes; do
          tag="$m.$dt.b$b.$mode"
          flags=()
          [ "$mode" = graphs ] && flags+=(--graphs)
          rm -f "$out/cnnergy/$tag.json" "$out/cnnergy/$tag.err"
          if timeout 120 "$bin" run "$m" --device gpu --batch "$b" --dtype "$dt" ${flags[@]+"${flags[@]}"} \
              --json "$out/cnnergy/$tag.json" > "$out/cnnergy/$tag.txt" 2> "$out/cnnergy/$tag.stderr"; then
            echo "cnnergy $tag: ok" >&2
          else
            rc=$?
            { tail -n 20 "$out/cnnergy/$tag.stderr"; [ "$rc" = 124 ] && echo "timeout after 120 s"; echo "exit $rc"; } \
              > "$out/cnnergy/$tag.err"
            rm -f "$out/cnnergy/$tag.json"
            echo "cnnergy $tag: FAIL ($(grep -v '^exit' "$out/cnnergy/$tag.err" | tail -n 1))" >&2
          fi
          [ -s "$out/cnnergy/$tag.stderr" ] || rm -f "$out/cnnergy/$tag.stderr"
        done
      done
    done
  done
fi

if [ "$torch" = 1 ]; then
  PYTHONUNBUFFERED=1 python3 bench/torch_models.py "$out/torch.json" --models "$models" --batches "$batches" \
    --dtypes "$dtypes" --seconds "$seconds" 2> "$out/torch.err" || echo "torch_models.py failed: $(tail -n 1 "$out/torch.err")" >&2
fi

python3 bench/compare_models.py "$out/cnnergy" "$out/torch.json" "$out/compare.md"
echo "run_models.sh: $(( $(date +%s) - t0 )) s" >&2
