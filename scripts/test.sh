#!/usr/bin/env bash
# test.sh: installs the dependencies, builds under ASan+UBSan, and runs every
# check: CTest (C unit tests, busted specs, integration specs), luacheck, the
# layering check and the binding-coverage check; then the instruments: the
# libFuzzer targets for 10 s each, the binding specs again under an aggressive
# garbage collector, and valgrind over a fast subset of the C tests.
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

echo "== fuzzing (clang, libFuzzer; scripts/fuzz.sh SECONDS TARGET runs longer)"
FUZZ_BUILD_DIR="$BUILD-fuzz" bash scripts/fuzz.sh 10

echo "== binding specs under an aggressive garbage collector (tests/gc_helper.lua)"
gc_specs=()
for m in yaml json xml crypto mac sign gzip fs sys http storage tools config sqlite dqlite_client mongo ssh proc dqlitenode; do
  if [ -f "tests/spec/${m}_spec.lua" ]; then gc_specs+=("tests/spec/${m}_spec.lua"); fi
done
JUJU_TEST_BUILD_DIR="$(pwd)/$BUILD" JUJU_TEST_SOURCE_DIR="$(pwd)" JUJU_TEST_SHARED="$(pwd)/../shared" \
  "$BUILD/bin/juju" lua /usr/bin/busted --helper=tests/gc_helper.lua --lpath='tests/?.lua' \
  -o utfTerminal "${gc_specs[@]}"

echo "== valgrind memcheck over C tests (no sanitizers, -O1 -g)"
PLAIN="$BUILD-valgrind"
cmake -S . -B "$PLAIN" -DCMAKE_BUILD_TYPE= -DCMAKE_C_FLAGS="-O1 -g" >/dev/null
vg_tests=()
# crypto first: it is the slowest under valgrind (key generation).
for m in crypto sign yaml json xml mac gzip config fs storage tools sys http sqlite dqlite proc knownhosts ssh mongo dqlitenode; do
  if [ -f "tests/c/test_$m.c" ]; then vg_tests+=("test_$m"); fi
done
cmake --build "$PLAIN" -j"$(nproc)" --target "${vg_tests[@]}"
rm -f "$PLAIN/valgrind-failed"
running=0
for t in "${vg_tests[@]}"; do
  echo "valgrind $t"
  (JUJU_TEST_SHARED="$(pwd)/../shared" JUJU_TEST_SOURCE_DIR="$(pwd)" \
    valgrind -q --error-exitcode=1 --leak-check=full --show-leak-kinds=definite \
    --suppressions=tests/c/valgrind.supp \
    --errors-for-leak-kinds=definite "$PLAIN/tests/c/$t" >"$PLAIN/$t.valgrind.log" 2>&1 ||
    echo "$t" >>"$PLAIN/valgrind-failed") &
  running=$((running + 1))
  if [ "$running" -ge "$(nproc)" ]; then wait -n; running=$((running - 1)); fi
done
wait
if [ -s "$PLAIN/valgrind-failed" ]; then
  while read -r t; do echo "--- $t"; cat "$PLAIN/$t.valgrind.log"; done <"$PLAIN/valgrind-failed"
  echo "valgrind: errors, definite leaks or failed tests (logs in $PLAIN/)" >&2
  exit 1
fi
echo "== all checks passed"
