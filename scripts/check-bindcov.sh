#!/usr/bin/env bash
# check-bindcov.sh: every public core function (declared in core/*.h) is
# called from its binding or listed in bindings/UNBOUND with a reason; every
# Lua function a binding registers is documented in docs/lua-api.md.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
unbound=bindings/UNBOUND
# A core module is bound by bindings/<module>.c, or by the one binding whose
# header comment says "Binds ... core/<module>.h" (a module split out of
# another one keeps its Lua home: bindings/ssh.c binds core/knownhosts.h).
binding_of() {
  local other
  other=$(grep -lE "^ \* Binds .*core/$1\.h" bindings/*.c 2>/dev/null | head -n 1)
  echo "${other:-bindings/$1.c}"
}
for h in core/*.h; do
  m=$(basename "$h" .h)
  [ "$m" = error ] && continue
  b=$(binding_of "$m")
  for fn in $(grep -oE '^[a-z_ ]*[ *]+(jj_[a-z0-9_]+)\(' "$h" | grep -oE 'jj_[a-z0-9_]+' | sort -u); do
    if grep -qw "$fn" "$b" 2>/dev/null; then continue; fi
    if grep -qE "^$fn[[:space:]]" "$unbound" 2>/dev/null; then continue; fi
    echo "bindcov: $fn ($h) is neither bound in $b nor listed in $unbound" >&2
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
