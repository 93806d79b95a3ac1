#!/usr/bin/env bash
# Screenshots of `egcfg explore` for the README, taken by headless Chromium
# (scripts/install-deps.sh installs it):
#   scripts/screenshots.sh [DB]
# With DB, the explorer shows that database; without, a fresh one is made
# by running the greedy baseline and EG-CFG on three MBPP validation tasks
# with the default model (a few minutes on two cores). Writes
# docs/explore-run.png, docs/explore-task.png and docs/explore-token.png.
set -euo pipefail
cd "$(dirname "$0")/.."

export OMP_WAIT_POLICY=passive
cargo build --release --locked
egcfg="${CARGO_TARGET_DIR:-target}/release/egcfg"
work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

db="${1:-}"
if [ -z "$db" ]; then
  db="$work/runs.sqlite"
  ids=Mbpp/511,Mbpp/512,Mbpp/514
  "$egcfg" bench --dataset mbpp:validation --ids "$ids" --method baseline --db "$db"
  "$egcfg" bench --dataset mbpp:validation --ids "$ids" --method egcfg --max-tokens 4000 --db "$db"
fi

"$egcfg" explore "$db" --port 0 >"$work/address" 2>/dev/null &
server=$!
for _ in $(seq 50); do
  grep -q http "$work/address" 2>/dev/null && break
  sleep 0.1
done
url="$(grep -o 'http://[^ ]*' "$work/address")"
url="${url%/}"

shot() { # NAME PATH
  chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$work/profile" --hide-scrollbars --window-size=1280,860 \
    --screenshot="docs/$1.png" "$url$2" 2>/dev/null
  echo "wrote docs/$1.png ($url$2)"
}
dom() { # PATH
  chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$work/profile" --dump-dom "$url$1" 2>/dev/null
}
# The first link after an attribute on a page, as a path (empty if none).
link_after() { # PATH MARKER
  { dom "$1" | tr '\n' ' ' | grep -o "$2[^>]*href=\"[^\"]*\"" || true; } | head -1 |
    sed -e 's/.*href="//' -e 's/"$//' -e 's/&amp;/\&/g'
}

# The last run (EG-CFG, when the script made the database), its first task,
# and a guided token of that task.
run_path="$(dom / | grep -o 'href="/run?id=[0-9]*"' | tail -1 | sed -e 's/href="//' -e 's/"$//')"
shot explore-run "$run_path"
task_path="$(link_after "$run_path" 'data-task=')"
shot explore-task "$task_path"
# The first attempt where guidance changed a token, else the first guided
# token, else the first attempt.
token_path=""
for marker in 'data-changed="true"' 'data-changed="false"'; do
  for n in $(dom "$task_path" | grep -o 'data-attempt="[0-9]*"' | grep -o '[0-9]*'); do
    attempt_path="$(link_after "$task_path" "data-attempt=\"$n\"")"
    token_path="$(link_after "$attempt_path" "$marker")"
    [ -n "$token_path" ] && break 2
  done
done
shot explore-token "${token_path:-$(link_after "$task_path" 'data-attempt=')}"
