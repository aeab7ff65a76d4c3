#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages (Debian 12, as root).
# Idempotent: a second run only checks. (mmdebstrap builds the fresh Debian
# root of the fresh-host tests: scripts/fresh-root.sh.)
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git ca-certificates
  lua5.4 liblua5.4-dev
  libyaml-dev libssl-dev libssh2-1-dev libcurl4-openssl-dev
  libmongoc-dev libsqlite3-dev libarchive-dev libexpat1-dev zlib1g-dev
  lua-busted lua-cjson lua-check
  openssh-server openssh-client openssl
  python3-mockupdb
  shellcheck
  clang libclang-rt-14-dev valgrind
  procps iproute2 util-linux sudo hyperfine
  mmdebstrap
  # Cloud API emulators (../shared/spec/toolchain.md, "Cloud API emulators"):
  # the Go fakes build in GOPATH mode from these; node runs the npm ones.
  golang-go golang-gopkg-goose.v1-dev golang-github-juju-gomaasapi-dev
  golang-github-joyent-gosdc-dev python3-botocore nodejs
  # The replicated state store (state-store: dqlite): libdqlite's node API in
  # jujud, go-dqlite's shell and app package as the independent client and peer.
  libdqlite-dev libraft-dev go-dqlite golang-github-canonical-go-dqlite-dev
)
# Debian splits npm from nodejs; NodeSource's nodejs carries its own.
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
# npm packages, pinned: s3rver (S3 object semantics), azurite (Azure blob,
# checks SharedKey), http-signature + sshpk (an independent verifier of
# Joyent's HTTP Signature). Installed globally under $(npm root -g).
NPM_PKGS=(s3rver@3.7.1 azurite@3.35.0 http-signature@1.4.0 sshpk@1.18.0)
# cloud-init is large; only the tests need its schema checker. python3-azure
# (the legacy azure.servicemanagement SDK) checks the azure provider's
# request bodies in tests/servers/azure-mgmt.
if [ "${1:-}" = "--with-test-tools" ] || [ "${JUJU_INSTALL_TEST_TOOLS:-}" = 1 ]; then
  PKGS+=(cloud-init python3-azure)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
npm_missing=()
npm_root=$(npm root -g)
for spec in "${NPM_PKGS[@]}"; do
  name=${spec%@*} want=${spec##*@}
  have=$(node -e "try{console.log(require('$npm_root/$name/package.json').version)}catch(e){}" 2>/dev/null || true)
  [ "$have" = "$want" ] || npm_missing+=("$spec")
done
if [ ${#npm_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing npm packages: ${npm_missing[*]}; run this script as root" >&2
    exit 1
  fi
  npm install -g --no-fund --no-audit "${npm_missing[@]}"
fi
echo "install-deps: all packages present"
