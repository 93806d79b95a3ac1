#!/usr/bin/env bash
# egcfg's engine against llama.cpp called directly (examples/llama_direct),
# twice idle, then twice beside a loop of `egcfg bench exec` started from
# this same session (processes of one session share the CPU by nice value;
# see docs/speed.md). Needs a release build with the example:
#   cargo build --release --workspace --examples
# No environment variable is set on purpose: the defaults are measured.
set -u
cd "$(dirname "$0")/.."
unset OMP_WAIT_POLICY
bin="${CARGO_TARGET_DIR:-target}/release"
M=$("$bin"/egcfg model path qwen2.5-coder-0.5b-instruct)
grep -m1 'model name' /proc/cpuinfo
for i in 1 2; do
  echo "== idle $i egcfg $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"; "$bin"/egcfg bench engine --threads 2 --model "$M" 2>&1 | tail -12
  echo "== idle $i llama_direct $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"; "$bin"/examples/llama_direct "$M" 2 2>&1 | tail -12
done
( while true; do "$bin"/egcfg bench exec >/dev/null 2>&1; done ) &
loop=$!
sleep 5
for i in 1 2; do
  echo "== beside $i egcfg $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"; "$bin"/egcfg bench engine --threads 2 --model "$M" 2>&1 | tail -12
  echo "== beside $i llama_direct $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"; "$bin"/examples/llama_direct "$M" 2 2>&1 | tail -12
done
kill "$loop"; pkill -f "egcfg bench exec"
