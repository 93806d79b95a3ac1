#!/usr/bin/env bash
# Issue 15 item 3: forward tokens per guided line on mbpp:validation 511-540
# with the default model, for the default egcfg (1,024-token signal cap,
# per-run layout, prefix reuse) or one lever changed. One thread per run, so
# two runs can share 2 cores: tokens and pass@1 do not depend on the clock.
# The database resumes; summarise with `egcfg report DB` and
# `scripts/tokens-per-line.py DB`.
#
#   scripts/levers.sh DB default|cap320|shared-code|by-candidate
set -euo pipefail
cd "$(dirname "$0")/.."
db="${1:?usage: scripts/levers.sh DB LEVER}"
lever="${2:?usage: scripts/levers.sh DB LEVER}"
bin="${EGCFG_BIN:-${CARGO_TARGET_DIR:-target}/release/egcfg}"
case "$lever" in
  default) extra=() ;;
  cap320) extra=(--signal-tokens 320) ;;
  shared-code | by-candidate) extra=(--signal-layout "$lever") ;;
  *) echo "unknown lever: $lever (default, cap320, shared-code, by-candidate)" >&2; exit 2 ;;
esac
echo "$lever: $(date -u +%FT%TZ), $(grep -m1 'model name' /proc/cpuinfo), egcfg $(git rev-parse --short HEAD)"
"$bin" bench --dataset mbpp:validation --ids "$(seq -s, -f 'Mbpp/%g' 511 540)" \
  --method egcfg --threads 1 --db "$db" "${extra[@]}"
