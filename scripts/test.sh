#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. installs missing system packages (scripts/install-deps.sh);
#   2. checks formatting and lints;
#   3. fetches the end-to-end model once into $EGCFG_HOME (cached after that);
#   4. builds llama.cpp's llama-server once (scripts/llama-server.sh), for
#      the served backend's tests against a real server;
#   5. runs every unit and integration test in release mode (llama.cpp is
#      built once, for one profile, and tests of real models need the speed),
#      the explorer's test in headless Chromium among them, then the
#      method's tests once more without the engine's llama.cpp backend.
# Set EGCFG_SKIP_E2E=1 to run without the real-model end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# Tests share the machine: never let OpenMP spin on idle cores.
export OMP_WAIT_POLICY=passive
# CI clones afresh each time; keep its build outside the clone so llama.cpp
# is compiled once per machine rather than once per run.
if [ "${CI:-}" = "true" ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/egcfg/ci-target"
fi
target_dir="${CARGO_TARGET_DIR:-target}"

cargo fmt --all -- --check
cargo clippy --workspace --release --all-targets --locked -- -D warnings
cargo build --release --locked

if [ "${EGCFG_SKIP_E2E:-0}" != "1" ]; then
  e2e_model=qwen2.5-coder-0.5b-instruct
  if ! "$target_dir/release/egcfg" model fetch "$e2e_model"; then
    echo "test.sh: could not fetch $e2e_model for the end-to-end tests;" \
         "rerun with EGCFG_SKIP_E2E=1 to run everything else" >&2
    exit 1
  fi
  EGCFG_E2E_MODEL="$("$target_dir/release/egcfg" model path "$e2e_model")"
  export EGCFG_E2E_MODEL
fi

# The served backend's tests start this server themselves; built once per
# target directory, so later runs only check it is there.
EGCFG_LLAMA_SERVER="$(scripts/llama-server.sh)"
export EGCFG_LLAMA_SERVER

# install-deps.sh put Chromium here: the explorer's browser test must run,
# not skip.
EGCFG_BROWSER="$(command -v chromium)"
export EGCFG_BROWSER

# The harness's pure parts, in its own language (stdlib only).
python3 -B -m unittest discover -s crates/executor/src/python -p 'test_*.py'
# The rule that picks the default from the train curves (docs/tuning.md).
python3 -B -m unittest discover -s scripts/tests -p 'test_*.py'

cargo test --workspace --release --locked
# The method and its fake-engine tests build without llama.cpp: keep it so.
cargo test -p egcfg-method --no-default-features --release --locked
