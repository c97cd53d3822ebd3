#!/bin/bash
# compute-sanitizer over the GPU self-test, one kernel family at a time (the kernels issue's
# "memcheck and racecheck clean" check). Under memcheck the self-test runs ~10-100x slower, so
# every family gets its own time limit and a family that runs out is reported as unfinished,
# not as clean.
#
#   bash bench/sanitize.sh OUTDIR [--tools memcheck,racecheck] [--limit SECONDS] [--families a,b]
#
# Families are the case-name prefixes before the first '/' (`cnnergy selftest --list`).
# OUTDIR gets one log per (tool, family) and summary.md; exit 0 even when errors are found
# (the summary says so), 2 on usage errors.
set -uo pipefail
out=${1:?usage: bench/sanitize.sh OUTDIR [--tools memcheck,racecheck] [--limit S] [--families a,b]}
shift
tools=memcheck,racecheck
limit=300
families=""
while [ $# -gt 0 ]; do
  case $1 in
    --tools) tools=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --families) families=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=${CNNERGY_BIN:-target/release/cnnergy}
cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
mkdir -p "$out"
if [ -z "$families" ]; then
  families=$("$bin" selftest --list | grep / | cut -d/ -f1 | sort -u | tr '\n' ',')
fi
summary="$out/summary.md"
echo "| tool | family | cases passed | sanitizer errors | finished |" > "$summary"
echo "|---|---|---|---|---|" >> "$summary"
for tool in ${tools//,/ }; do
  for fam in ${families//,/ }; do
    log="$out/$tool-$fam.txt"
    timeout "$limit" "$cs" --tool "$tool" --error-exitcode 0 "$bin" selftest --filter "^$fam/" --seed 1 > "$log" 2>&1
    rc=$?
    passed=$(grep -c '^PASS' "$log")
    errs=$(grep -oE 'ERROR SUMMARY: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$')
    fin=yes
    [ "$rc" = 124 ] && fin="**no** (${limit} s limit)"
    echo "| $tool | $fam | $passed | ${errs:-n/a} | $fin |" >> "$summary"
  done
done
cat "$summary"
