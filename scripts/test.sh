#!/usr/bin/env bash
# test.sh: installs the dependencies, builds under ASan+UBSan, and runs every
# check: CTest (C unit tests, busted specs, integration specs), luacheck, the
# layering check and the binding-coverage check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --with-test-tools
BUILD=${BUILD_DIR:-build-test}
cmake -S . -B "$BUILD" -DJUJU_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "== static checks"
luacheck -q lua providers tests scripts
lua5.4 scripts/check-layering.lua
bash scripts/check-bindcov.sh
echo "== tests"
ctest --test-dir "$BUILD" -j"$(nproc)" --output-on-failure
