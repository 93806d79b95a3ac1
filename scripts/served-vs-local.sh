#!/usr/bin/env bash
# The default `egcfg bench --method egcfg` on the same tasks twice in one
# sitting: with the local engine, and through the project's own llama-server
# (scripts/llama-server.sh) hosting the same model file on the same cores.
# The two sides alternate task by task (local first on odd tasks, served
# first on even ones), so that a change in the machine's load during the
# sitting falls on both. Both runs go into one database (a served run is
# keyed by the served model, `served:NAME`), and `egcfg report` shows them
# side by side: wall per task, and for the served run its requests and
# tokens.
#
#   scripts/served-vs-local.sh OUT_DIR [TASK_ID...]
#
# Defaults to mbpp:validation Mbpp/511..Mbpp/520 (issue 13's done-when).
# Needs a release build (`cargo build --release --workspace`). The database
# resumes, so an interrupted sitting can be finished later (but then the two
# sides are no longer from one sitting: say so).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/served-vs-local.sh OUT_DIR [TASK_ID...]}"
shift
ids=("$@")
if [ ${#ids[@]} -eq 0 ]; then
  for n in $(seq 511 520); do ids+=("Mbpp/$n"); done
fi
mkdir -p "$out"
bin="${CARGO_TARGET_DIR:-target}/release/egcfg"
model=$("$bin" model path qwen2.5-coder-0.5b-instruct)
server=$(scripts/llama-server.sh)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Eight slots of 8192 tokens: two attempts in flight keep two each (their
# conditional and unconditional streams), and each refresh's three
# candidates need two more (docs/servers.md, "Slots").
"$server" -m "$model" --host 127.0.0.1 --port "$port" -t 2 -tb 2 -np 8 -c 65536 \
  >"$out/llama-server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
  kill -0 "$server_pid" || { echo "llama-server died: see $out/llama-server.log" >&2; exit 1; }
  sleep 1
done

{
  echo "sitting: $(date -u +%FT%TZ)"
  grep -m1 'model name' /proc/cpuinfo
  echo "egcfg: $(git rev-parse --short HEAD)"
  echo "llama-server: $server -t 2 -tb 2 -np 8 -c 65536"
} | tee "$out/sitting.txt"

local_side() {
  "$bin" bench --dataset mbpp:validation --ids "$1" --method egcfg --threads 2 \
    --db "$out/bench.sqlite"
}
served_side() {
  "$bin" bench --dataset mbpp:validation --ids "$1" --method egcfg \
    --endpoint "http://127.0.0.1:$port" --db "$out/bench.sqlite"
}
for i in "${!ids[@]}"; do
  id="${ids[$i]}"
  echo "== $id $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$out/sitting.txt"
  if [ $((i % 2)) -eq 0 ]; then
    local_side "$id"; served_side "$id"
  else
    served_side "$id"; local_side "$id"
  fi
done
"$bin" report "$out/bench.sqlite" | tee "$out/report.txt"
