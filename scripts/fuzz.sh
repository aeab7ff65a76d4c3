#!/usr/bin/env bash
# fuzz.sh [SECONDS] [TARGET]: builds the libFuzzer targets (tests/fuzz/fuzz_*.c)
# with clang in their own build dir and runs each (or only TARGET, e.g. "yaml"
# or "fuzz_yaml") for SECONDS (default 10) on a temporary copy of its seed
# corpus, so the repository is never written. Fails if any target crashes,
# leaks, times out or runs out of memory; the reproducer is kept in
# $FUZZ_BUILD_DIR/artifacts/ and the command to replay it is printed.
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (targets run
# side by side, default nproc), FUZZ_KEEP_CORPUS=DIR (copy each grown
# corpus to DIR/<name>/ to review and merge into tests/fuzz/corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-10}
ONLY=${2:-}
ONLY=${ONLY#fuzz_}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${FUZZ_JOBS:-$(nproc)}

case "$SECONDS_PER_TARGET" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$SECONDS_PER_TARGET'" >&2; exit 2 ;;
esac

targets=()
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  name=${name#fuzz_}
  if [ -z "$ONLY" ] || [ "$ONLY" = "$name" ]; then targets+=("$name"); fi
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz target named '$ONLY' (tests/fuzz/fuzz_*.c)" >&2
  exit 2
fi

# -O1 as libFuzzer recommends: fast enough, and sanitizer reports stay readable.
CC=clang cmake -S . -B "$BUILD" -DJUJU_FUZZ=ON -DCMAKE_BUILD_TYPE= -DCMAKE_C_FLAGS="-O1" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

ARTIFACTS="$(pwd)/$BUILD/artifacts"
mkdir -p "$ARTIFACTS"
WORK=$(mktemp -d /tmp/juju-fuzz-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Runs one target; its log goes to $WORK/<name>.log, exit status is the fuzzer's.
run_target() {
  local name=$1 exe corpus="$WORK/corpus-$1"
  exe="$(pwd)/$BUILD/tests/fuzz/fuzz_$1"
  mkdir -p "$corpus"
  if [ -d "tests/fuzz/corpus/$name" ]; then cp -R "tests/fuzz/corpus/$name/." "$corpus/"; fi
  local args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$name-")
  if [ -f "tests/fuzz/$name.dict" ]; then args+=(-dict="$(pwd)/tests/fuzz/$name.dict"); fi
  local rc=0
  # libFuzzer writes crash-*/leak-* files into its cwd unless told otherwise;
  # run inside the work dir so nothing lands in the repository.
  (cd "$WORK" && "$exe" "${args[@]}" "$corpus") >"$WORK/$name.log" 2>&1 || rc=$?
  if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
    mkdir -p "$FUZZ_KEEP_CORPUS/$name" && cp -R "$corpus/." "$FUZZ_KEEP_CORPUS/$name/"
  fi
  return "$rc"
}

echo "== fuzzing ${targets[*]} for ${SECONDS_PER_TARGET} s each ($JOBS at a time)"
failed=()
pids=()
names=()
flush() {
  local i
  for i in "${!pids[@]}"; do
    local name=${names[$i]} rc=0
    wait "${pids[$i]}" || rc=$?
    local stats
    stats=$(grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$WORK/$name.log" |
      sed 's/^stat:://; s/: */=/' | tr '\n' ' ' || true)
    if [ "$rc" -eq 0 ]; then
      echo "fuzz_$name: ok ($stats)"
    else
      failed+=("$name")
      echo "fuzz_$name: FAILED (exit $rc); from its log:"
      # The harness's or sanitizer's own message, then libFuzzer's summary.
      awk '!n && /^fuzz_[a-z0-9_]+: |ERROR: |runtime error|deadly signal|out-of-memory|timeout/ {n = 1}
           n && n++ <= 16 {print}' "$WORK/$name.log" | sed 's/^/  | /'
      grep -E '^(SUMMARY|artifact_prefix)' "$WORK/$name.log" | sort -u | sed 's/^/  | /' || true
      local a
      for a in "$ARTIFACTS/$name-"*; do
        [ -e "$a" ] || continue
        echo "  reproduce: $BUILD/tests/fuzz/fuzz_$name $a"
      done
    fi
  done
  pids=()
  names=()
}
for name in "${targets[@]}"; do
  rm -f "$ARTIFACTS/$name-"*
  run_target "$name" &
  pids+=($!)
  names+=("$name")
  if [ ${#pids[@]} -ge "$JOBS" ]; then flush; fi
done
flush

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} target(s) ran ${SECONDS_PER_TARGET} s without a failure"
