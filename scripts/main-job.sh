#!/usr/bin/env bash
# main-job.sh: install, build, and bootstrap the default local environment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
JUJU=build/bin/juju
export JUJU_HOME=${JUJU_HOME:-$HOME/.juju}
[ -f "$JUJU_HOME/environments.yaml" ] || "$JUJU" init
"$JUJU" bootstrap
