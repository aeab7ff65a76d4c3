#!/usr/bin/env bash
# check-bindcov.sh: every public core function (declared in core/*.h) is
# called from its binding or listed in bindings/UNBOUND with a reason; every
# Lua function a binding registers is documented in docs/lua-api.md.
# A core module is bound in bindings/<module>.c, except the ones several
# modules build on or that one binding covers together (bindings_of).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
unbound=bindings/UNBOUND
bindings_of() {
  case "$1" in
    doc) echo bindings/tree.c bindings/yaml.c ;;                 # the document model: shared tree code
    encoding|digest|x509|sshkey) echo bindings/crypto.c ;;        # juju.crypto binds all four
    *) echo "bindings/$1.c" ;;
  esac
}
for h in core/*.h; do
  m=$(basename "$h" .h)
  [ "$m" = error ] && continue
  for fn in $(grep -oE '^[a-z_ ]*[ *]+(jj_[a-z0-9_]+)\(' "$h" | grep -oE 'jj_[a-z0-9_]+' | sort -u); do
    # shellcheck disable=SC2046
    if grep -qw "$fn" $(bindings_of "$m") 2>/dev/null; then continue; fi
    if grep -qE "^$fn[[:space:]]" "$unbound" 2>/dev/null; then continue; fi
    echo "bindcov: $fn ($h) is neither bound in $(bindings_of "$m") nor listed in $unbound" >&2
    status=1
  done
done
# Every registered Lua name appears in the API doc under its module.
for b in bindings/*.c; do
  m=$(basename "$b" .c)
  for name in $(grep -oE '\{"[a-z_0-9]+",' "$b" | grep -oE '[a-z_0-9]+' | sort -u); do
    case "$name" in __*|close) continue;; esac
    if ! grep -qE "\`($m\.|[A-Za-z]+:)?$name[\`(]" docs/lua-api.md; then
      echo "bindcov: juju.$m.$name is not documented in docs/lua-api.md" >&2
      status=1
    fi
  done
done
[ $status = 0 ] && echo "bindcov: ok"
exit $status
