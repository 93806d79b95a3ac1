#!/usr/bin/env bash
# Issue 14: the budget curve of greedy (`--method baseline`), best-of-N
# sampling (`--method sample`) and EG-CFG (`--method egcfg`) on the same
# tasks, with one model, into one database. Each method is a resumable
# `egcfg bench`; the sample curve runs its largest budget only and derives
# the smaller ones (docs/tuning.md §5). The tasks go in chunks of $CHUNK
# (default 5), every method finishing a chunk before the next starts, so a
# curve stopped part way still compares all methods on the same tasks (a
# curve takes many hours on two cores). Stop it at any time: the same
# command goes on where it stopped.
#
#   scripts/curve.sh DB validation|train [MODEL] [-- EGCFG_ARGS...]...
#
# validation: mbpp:validation Mbpp/511..Mbpp/550, issue 14's 40 reporting
#   tasks (never tune on them);
# train: the first 60 tasks of mbpp:train (Mbpp/601..), where defaults are
#   chosen.
# MODEL defaults to the default model. Each `-- EGCFG_ARGS...` group is one
# EG-CFG setting, run in the order given on every chunk (an empty group is
# the default setting; no group at all, the default alone), so the same
# database holds several EG-CFG settings beside one baseline and one sample
# curve, e.g. `-- -- --agents scripts/grids/spend.toml --start-rule
# affordable` for the default and one candidate. A group that names its own
# `--method` (e.g. `--method sample-then-egcfg`) runs that method instead.
# Budgets: $BUDGETS (default 3000,6000,12000: three points, the least the
# issue asks; 24000 doubles what sampling spends). Sampling also gets the
# smaller budgets $SAMPLE_BUDGETS (default 1000,1500,2000), derived from its
# largest run at the cost of scoring alone, where its curve bends. Threads:
# $THREADS (default 2). Binary: $EGCFG_BIN (default the release build).
# Summarise with `egcfg report DB [--html curve.html]` (the curve counts the
# tasks every run finished: `--leave-out HASH` sets aside a run made on
# fewer tasks, such as a one-off setting).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/curve.sh DB validation|train [MODEL] [-- EGCFG_ARGS...]..."
db="${1:?$usage}"
split="${2:?$usage}"
shift 2
model=qwen2.5-coder-0.5b-instruct
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  model="$1"
  shift
fi
# The EG-CFG settings: each is a string of shell-quoted arguments, so
# arguments with spaces survive.
settings=()
while [ $# -gt 0 ]; do
  [ "$1" = "--" ] || { echo "$usage" >&2; exit 2; }
  shift
  setting=""
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    setting+=" $(printf '%q' "$1")"
    shift
  done
  settings+=("$setting")
done
[ ${#settings[@]} -gt 0 ] || settings=("")
# The split's tasks by number: mbpp:train begins at Mbpp/601.
case "$split" in
  validation) first=511 last=550 ;;
  train) first=601 last=660 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
bin="${EGCFG_BIN:-${CARGO_TARGET_DIR:-target}/release/egcfg}"
budgets="${BUDGETS:-3000,6000,12000}"
sample_budgets="${SAMPLE_BUDGETS:-1000,1500,2000}"
threads="${THREADS:-2}"
chunk="${CHUNK:-5}"

echo "curve $split $model: $(date -u +%FT%TZ), $(grep -m1 'model name' /proc/cpuinfo), egcfg $(git rev-parse --short HEAD)"
for ((start = first; start <= last; start += chunk)); do
  end=$((start + chunk - 1 < last ? start + chunk - 1 : last))
  common=(--dataset "mbpp:$split" --ids "$(seq -s, -f 'Mbpp/%g' "$start" "$end")"
          --model "$model" --threads "$threads" --db "$db")
  echo "chunk Mbpp/$start..$end: $(date -u +%FT%TZ)"
  # Greedy spends a few hundred tokens whatever the budget: one run.
  "$bin" bench "${common[@]}" --method baseline
  "$bin" bench "${common[@]}" --method sample --max-tokens "$sample_budgets,$budgets"
  for setting in "${settings[@]}"; do
    eval "extra=($setting)"
    method=(--method egcfg)
    for arg in "${extra[@]}"; do
      [ "$arg" = "--method" ] && method=()
    done
    "$bin" bench "${common[@]}" "${method[@]}" --max-tokens "$budgets" "${extra[@]}"
  done
done
echo "curve $split $model done: $(date -u +%FT%TZ)"
