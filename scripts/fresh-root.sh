#!/usr/bin/env bash
# Builds (once) and prints the path of a minimal Debian 12 root for fresh
# test hosts: mmdebstrap's minbase plus openssh-server and sudo, nothing of
# the build machine's libraries. Cached under $JUJU_FRESH_ROOT_CACHE (default
# /tmp/juju-fresh-root) in a directory keyed by suite, mirror and package
# list ($JUJU_FRESH_ROOT_PACKAGES, default openssh-server,sudo: juju.testing.instance
# adds systemd and cloud-init); a second run only prints the path. Needs root and mmdebstrap
# (scripts/install-deps.sh installs it); the first build takes a minute or two.
#
#   root=$(scripts/fresh-root.sh)      # -> /tmp/juju-fresh-root/<key>/root
set -euo pipefail

SUITE=bookworm
PACKAGES=${JUJU_FRESH_ROOT_PACKAGES:-openssh-server,sudo}
# The mirror this machine's apt uses (deb822 or one-line sources), else Debian's.
mirror=$(grep -hoE '^(URIs:[[:space:]]*|deb[[:space:]]+)(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]*debian/?([[:space:]]|$)' \
  /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -v security | head -n1 \
  | grep -oE 'https?://[^[:space:]]*' || true)
mirror=${JUJU_FRESH_ROOT_MIRROR:-${mirror:-http://deb.debian.org/debian}}
cache=${JUJU_FRESH_ROOT_CACHE:-/tmp/juju-fresh-root}
key=$(printf '%s\n' "v1" "$SUITE" "$mirror" "$PACKAGES" "$(uname -m)" | sha256sum | cut -c1-16)
dir=$cache/$SUITE-$key

# /tmp is shared: only a cache this user owns, not writable by others, is used.
if [ -e "$cache" ] && { [ "$(stat -c %u "$cache")" != "$(id -u)" ] || [ -n "$(find "$cache" -maxdepth 0 -perm /022)" ]; }; then
  echo "fresh-root: $cache is not owned by $(id -un) or is writable by others; remove it or set JUJU_FRESH_ROOT_CACHE" >&2
  exit 1
fi
if [ -f "$dir/ok" ]; then
  echo "$dir/root"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "fresh-root: building $dir needs root" >&2
  exit 1
fi
command -v mmdebstrap >/dev/null || {
  echo "fresh-root: mmdebstrap is not installed (run scripts/install-deps.sh)" >&2
  exit 1
}
mkdir -p "$cache"
chmod 0755 "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$dir/ok" ]; then echo "$dir/root"; exit 0; fi
tmp=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# minbase: Essential and apt; openssh-server and sudo on top. mmdebstrap
# keeps daemons from starting (policy-rc.d) while it installs.
# shellcheck disable=SC2016 # "$1" is expanded by mmdebstrap's hook shell
mmdebstrap --quiet --mode=root --variant=minbase --include="$PACKAGES" \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  "$SUITE" "$tmp/root" "$mirror" >&2
printf 'suite=%s\nmirror=%s\npackages=%s\n' "$SUITE" "$mirror" "$PACKAGES" > "$tmp/ok"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir/root"
