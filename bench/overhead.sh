#!/usr/bin/env bash
# Tracing overhead (issue: instrumentation): images/s of `cnnergy profile` with tracing off,
# CUPTI only, and CUPTI + NVML, for ResNet-50 at batch 1 (CUDA graphs) and batch 32, all in
# one run, modes interleaved and repeated so drift hits every mode alike.
# Usage (GPU machine, repo root, target/release/cnnergy present): bash bench/overhead.sh OUTDIR [REPS] [SECONDS]
set -uo pipefail
out=${1:?output folder}; reps=${2:-3}; secs=${3:-5}
bin=${CNNERGY_BIN:-target/release/cnnergy}
mkdir -p "$out"
declare -A flags=([off]="--no-cupti --no-nvml" [cupti]="--no-nvml" [cupti+nvml]="")
for r in $(seq 1 "$reps"); do
  for setting in "1 --graphs" "32 "; do
    set -- $setting; b=$1; g=${2:-}
    for mode in off cupti cupti+nvml; do
      tag="b$b-${mode}-r$r"
      # shellcheck disable=SC2086
      "$bin" profile resnet50 --dtype f16 --batch "$b" $g ${flags[$mode]} --seconds "$secs" --warmup 50 \
        -o "$out/$tag.cnt" --json "$out/$tag.json" > "$out/$tag.txt" 2>&1 || echo "FAIL $tag" >&2
      rm -f "$out/$tag.cnt"
    done
  done
done
python3 - "$out" <<'PY'
import json, sys, glob, statistics, os
out = sys.argv[1]
rows = {}
for f in glob.glob(os.path.join(out, "*.json")):
    tag = os.path.basename(f)[:-5]
    b, mode, _ = tag.split("-", 2)[0], tag.split("-")[1], None
    j = json.load(open(f))
    rows.setdefault((b, mode), []).append(j["images_per_s"])
print("| batch | mode | images/s (median of runs) | runs | slowdown vs off |")
print("|---|---|---|---|---|")
for b in ("b1", "b32"):
    base = statistics.median(rows.get((b, "off"), [float("nan")]))
    for mode in ("off", "cupti", "cupti+nvml"):
        v = rows.get((b, mode), [])
        if not v:
            print(f"| {b} | {mode} | FAIL | 0 | |"); continue
        m = statistics.median(v)
        print(f"| {b[1:]} | {mode} | {m:.1f} | {len(v)} | {100*(1-m/base):+.2f} % |")
PY
