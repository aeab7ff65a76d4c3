#!/usr/bin/env bash
# bench/run.sh [--quick]: builds a Release (unsanitized) tree in
# $BENCH_BUILD_DIR (default build-bench) and runs the benchmarks
# (bench/run.lua) under its juju. Prints Markdown tables and writes
# bench/results.json (bench/manual-results.json for bench/manual.lua).
# Takes about 5 minutes; --quick runs fewer repetitions
# (a smoke test of the instrument, not numbers to quote); --startup runs only
# the start-up rows (juju version/help, dummy CLI bootstrap, its fsyncs and
# crypto floor). bench/ha.lua (the Dqlite state servers) runs last. Not run
# by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BENCH_BUILD_DIR:-build-bench}

# The peak-memory figures come from GNU time (`/usr/bin/time -f %M`).
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends time
  else
    echo "bench: /usr/bin/time is missing (Debian package 'time')" >&2
    exit 1
  fi
fi

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DJUJU_SANITIZE=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target juju jujud >/dev/null
# The binding modules (targets juju_<module>): whatever the tree defines today.
mapfile -t bindings < <(cmake --build "$BUILD" --target help | sed -n 's/^\.\.\. \(juju_[a-z0-9_]*\).*/\1/p')
cmake --build "$BUILD" -j"$(nproc)" --target "${bindings[@]}" >/dev/null

BENCH_BUILD_DIR="$(pwd)/$BUILD" "$BUILD/bin/juju" lua bench/run.lua "$@"
# --startup: the start-up rows only (bench/results-startup.json).
for a in "$@"; do [ "$a" = --startup ] && exit 0; done

# The manual provider against a loopback harness sshd (needs root for the
# mount namespace): bootstrap vs the OpenSSH floor, SFTP vs scp. Writes
# bench/manual-results.json; skipped with a note when not root.
BENCH_BUILD_DIR="$(pwd)/$BUILD" "$BUILD/bin/juju" lua bench/manual.lua "$@"

# Each emulated cloud (bench/cloud.lua; needs root: instances are test
# hosts): API calls per bootstrap next to Juju 1.25's sequence, wall time
# by step. Writes bench/cloud-results.json; skipped with a note when not root.
BENCH_BUILD_DIR="$(pwd)/$BUILD" "$BUILD/bin/juju" lua bench/cloud.lua "$@"

# The highly available Dqlite state (bench/ha.lua): heartbeat upserts on
# SQLite vs Dqlite on 1 and 3 nodes (each node a process), failover after
# SIGKILL of the leader, `juju ensure-availability -n 3` on the local
# provider. Writes bench/ha-results.json and bench/ha.md.
BENCH_BUILD_DIR="$(pwd)/$BUILD" "$BUILD/bin/juju" lua bench/ha.lua "$@"
