#!/usr/bin/env bash
# Installs what the tests run for real: PostgreSQL (with pgbench), Prometheus's promtool and the shell linter
# from Debian; Debian's PgBouncer (1.18, only for the tests of the version gating); and the PgBouncer release
# the stacks deploy (components/pgbouncer/pgbouncer-release.json), built from its release tarball after a
# sha256 check, and the same release with tools/harness/patches/pgbouncer-<version>-peer-pool-cancels.patch
# (for the fleet's cancel tests only; the stacks deploy the stock release); with Go, actionlint and the
# dashboard validator (Grafana's dashboard schema); and psycopg (PyPI, in a venv of Debian's python3), the
# real driver of the fleet's cancel tests.
# The builds are cached per machine (~/.cache/clipper-pgbouncer/pgbouncer-<version>/,
# pgbouncer-<version>+peer-pool-cancels-<patch sha256>/, dashboard-schema-<key>/) and copied into the
# project's gitignored .deps/pgbouncer/, .deps/pgbouncer-peer-pool-cancels/ and .deps/dashboard-schema/, which
# the tests run. Skips apt entirely when everything is there.
# Needs root or sudo for apt, and Go 1.22 or later (the Go module proxy) for the dashboard validator.
#
# Environment:
#   PGBOUNCER_TARBALL  the release tarball to build from (e.g. the upstream pgbouncer-<version>.tar.gz);
#                      default ../shared/vendor/pgbouncer/ beside the project. Its sha256 must match.
#   PGBOUNCER_TARBALL_SHA256  the sha256 to check that tarball against instead (upstream's published one,
#                      should it differ from the vendored file's)
#   PGBOUNCER_BIN      a pgbouncer binary of the release to use as it is (no build); the harness uses it too.
#                      A `pgbouncer` on PATH that reports the release is used as it is as well. The patched
#                      build is made from the tarball in every case.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
release_json="${root}/components/pgbouncer/pgbouncer-release.json"
field() { node -p "require(process.argv[1])[process.argv[2]]" "$release_json" "$1"; }
version=$(field version)
sha256=$(field sha256)
upstream_url=$(field upstreamUrl)
vendored="${root}/../shared/$(field vendoredTarball)"
prefix="${root}/.deps/pgbouncer"
cache_root="${XDG_CACHE_HOME:-${HOME}/.cache}/clipper-pgbouncer"
cache="${cache_root}/pgbouncer-${version}"

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=false
apt_install() {
  if [[ $apt_updated == false ]]; then
    "${sudo_cmd[@]}" apt-get update -qq
    apt_updated=true
  fi
  # Debian's packages would start services on a normal system; the tests start their own servers.
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
[[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
command -v pgbench >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/pgbench" >/dev/null || missing+=(postgresql-contrib)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)

# actionlint checks the GitHub workflows; it is a Go module (the Go toolchain and module proxy are enough).
actionlint_version=v1.7.12
if ! command -v actionlint >/dev/null 2>&1 && [[ ! -x "${HOME}/go/bin/actionlint" ]]; then
  if command -v go >/dev/null 2>&1; then
    echo "install-test-deps: building actionlint ${actionlint_version}"
    go install "github.com/rhysd/actionlint/cmd/actionlint@${actionlint_version}"
  else
    echo "install-test-deps: no Go toolchain, so no actionlint: the workflow lint test will be skipped"
  fi
fi

if ((${#missing[@]} == 0)); then
  echo "install-test-deps: Debian packages all present"
else
  echo "install-test-deps: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# --- the dashboard validator (tools/monitoring/dashboard-schema), over Grafana's dashboard schema ---
# A Go program over the schema types Grafana publishes (github.com/grafana/grafana-foundation-sdk/go, from
# the Go module proxy). Built once per machine into ~/.cache/clipper-pgbouncer/dashboard-schema-<key>/,
# the key being the SDK version and a hash of the program's go.mod, go.sum and sources (a change to any of
# them builds anew), then copied into .deps/dashboard-schema/ with the key beside it, which the test
# compares with the sources. A second run builds and copies nothing.
schema_src="${root}/tools/monitoring/dashboard-schema"
schema_dir="${root}/.deps/dashboard-schema"
sdk_module=github.com/grafana/grafana-foundation-sdk/go
sdk_version=$(awk -v m="$sdk_module" '$1 == m { print $2 } $1 == "require" && $2 == m { print $3 }' "${schema_src}/go.mod")
[[ -n $sdk_version ]] || {
  echo "install-test-deps: no ${sdk_module} version in ${schema_src}/go.mod" >&2
  exit 1
}
# The same bytes as test/integration/dashboard-schema.test.ts hashes: go.mod, go.sum, then *.go by name.
schema_key="${sdk_version}-$(cd "$schema_src" && export LC_ALL=C && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
if [[ -x "${schema_dir}/dashboard-schema" && $(cat "${schema_dir}/key" 2>/dev/null) == "$schema_key" ]]; then
  echo "install-test-deps: dashboard validator (grafana-foundation-sdk ${sdk_version}) in ${schema_dir}"
else
  command -v go >/dev/null 2>&1 || {
    echo "install-test-deps: no Go toolchain (go 1.22 or later): cannot build the dashboard validator that" >&2
    echo "  test/integration/dashboard-schema.test.ts runs" >&2
    exit 1
  }
  schema_cache="${cache_root}/dashboard-schema-${schema_key}"
  mkdir -p "$cache_root"
  exec 8>"${cache_root}/dashboard-schema.lock"
  flock 8
  if [[ ! -x "${schema_cache}/dashboard-schema" ]]; then
    echo "install-test-deps: building the dashboard validator (grafana-foundation-sdk ${sdk_version}) into ${schema_cache}"
    started=$SECONDS
    rm -rf "${schema_cache}.tmp"
    mkdir -p "${schema_cache}.tmp"
    # go.sum pins the SDK (-mod=readonly: never rewritten); no toolchain download; GOGC=400 saves the
    # compiler a quarter of its time (tools/e2e/toolchain/toolchain.sh).
    (cd "$schema_src" && GOTOOLCHAIN=local CGO_ENABLED=0 GOGC=${GOGC:-400} \
      go build -mod=readonly -buildvcs=false -trimpath -o "${schema_cache}.tmp/dashboard-schema" .)
    rm -rf "$schema_cache"
    mv "${schema_cache}.tmp" "$schema_cache"
    echo "install-test-deps: built the dashboard validator in $((SECONDS - started)) s"
  fi
  flock -u 8
  rm -rf "$schema_dir"
  mkdir -p "$schema_dir"
  cp "${schema_cache}/dashboard-schema" "${schema_dir}/dashboard-schema"
  echo "$schema_key" >"${schema_dir}/key"
  echo "install-test-deps: dashboard validator (grafana-foundation-sdk ${sdk_version}) in ${schema_dir}"
fi

# --- psycopg, a real driver for the fleet's cancel tests (tools/test/support/psycopg-cancel.py) ---
# psycopg 3 with its binary wheel (libpq inside) from PyPI, in a venv of Debian's python3, built once per
# machine into ~/.cache/clipper-pgbouncer/psycopg-<version>-py<python>/ and copied into .deps/psycopg/
# (a venv runs from a copy when called by its bin/python). A second run installs and copies nothing.
psycopg_version=$(sed -n 's/^psycopg\[binary\]==//p' "${root}/tools/test/support/psycopg-requirements.txt")
[[ -n $psycopg_version ]] || {
  echo "install-test-deps: no psycopg[binary]==<version> in tools/test/support/psycopg-requirements.txt" >&2
  exit 1
}
python=/usr/bin/python3
if [[ ! -x $python ]] || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "install-test-deps: installing python3-venv (the psycopg venv)"
  apt_install python3 python3-venv
fi
psycopg_key="${psycopg_version}-py$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
psycopg_dir="${root}/.deps/psycopg"
has_psycopg() { [[ -x $1/bin/python ]] && [[ $("$1/bin/python" -c 'import psycopg; print(psycopg.__version__)' 2>/dev/null) == "$psycopg_version" ]]; }
if has_psycopg "$psycopg_dir" && [[ $(cat "${psycopg_dir}/key" 2>/dev/null) == "$psycopg_key" ]]; then
  echo "install-test-deps: psycopg ${psycopg_version} in ${psycopg_dir}"
else
  psycopg_cache="${cache_root}/psycopg-${psycopg_key}"
  mkdir -p "$cache_root"
  exec 7>"${cache_root}/psycopg.lock"
  flock 7
  if ! has_psycopg "$psycopg_cache"; then
    echo "install-test-deps: installing psycopg ${psycopg_version} into ${psycopg_cache}"
    rm -rf "${psycopg_cache}.tmp"
    "$python" -m venv "${psycopg_cache}.tmp"
    "${psycopg_cache}.tmp/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir \
      -r "${root}/tools/test/support/psycopg-requirements.txt"
    rm -rf "$psycopg_cache"
    mv "${psycopg_cache}.tmp" "$psycopg_cache"
  fi
  flock -u 7
  rm -rf "$psycopg_dir"
  mkdir -p "$(dirname "$psycopg_dir")"
  cp -a "$psycopg_cache" "$psycopg_dir"
  echo "$psycopg_key" >"${psycopg_dir}/key"
  has_psycopg "$psycopg_dir"
  echo "install-test-deps: psycopg ${psycopg_version} in ${psycopg_dir}"
fi

# --- PgBouncer ${version}: the release the stacks deploy, and the same release with the peer-pool patch ---

# True when $1 is an executable whose first --version line is "PgBouncer <version>".
is_release() {
  [[ -x $1 ]] && [[ $("$1" --version 2>/dev/null | head -n 1) == "PgBouncer ${version}" ]]
}

# Builds PgBouncer ${version} from the checked release tarball into $1 (through $1.tmp, so that a failed
# build leaves no cache behind), with the patch $2 applied when given, and writes $3 into $1/key. The caller
# holds the lock (one build at a time per machine: a second run waits, then finds the cache filled).
work=
trap 'rm -rf "${work:-}"' EXIT
build_pgbouncer() {
  local into=$1 patch=${2:-} key=${3:-}
  local tarball=${PGBOUNCER_TARBALL:-$vendored}
  if [[ ! -f $tarball ]]; then
    echo "install-test-deps: no PgBouncer ${version} tarball at ${tarball}." >&2
    if [[ -n $patch ]]; then
      echo "  Download ${upstream_url} and set PGBOUNCER_TARBALL to it (sha256 ${sha256}): the fleet's" >&2
      echo "  cancel tests also run that release built with ${patch#"${root}/"}, which PGBOUNCER_BIN cannot be." >&2
    else
      echo "  Download ${upstream_url} and set PGBOUNCER_TARBALL to it (sha256 ${sha256})," >&2
      echo "  or set PGBOUNCER_BIN to a pgbouncer ${version} binary." >&2
    fi
    exit 1
  fi
  local expected=${PGBOUNCER_TARBALL_SHA256:-$sha256} actual
  actual=$(sha256sum "$tarball" | cut -d' ' -f1)
  if [[ $actual != "$expected" ]]; then
    echo "install-test-deps: ${tarball} has sha256 ${actual}, expected ${expected}; not building it." >&2
    echo "  If it is upstream's ${upstream_url} and upstream publishes ${actual}," >&2
    echo "  set PGBOUNCER_TARBALL_SHA256 to that value." >&2
    exit 1
  fi
  local build_deps=(gcc make libc6-dev pkg-config libevent-dev libssl-dev libc-ares-dev) need=() p
  if [[ -n $patch ]]; then build_deps+=(patch); fi
  for p in "${build_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if ((${#need[@]} > 0)); then
    echo "install-test-deps: installing the PgBouncer build dependencies ${need[*]}"
    apt_install "${need[@]}"
  fi
  echo "install-test-deps: building PgBouncer ${version}${patch:+ with ${patch#"${root}/"}} into ${into}"
  work=$(mktemp -d)
  local started=$SECONDS
  tar xzf "$tarball" -C "$work"
  rm -rf "${into}.tmp"
  (
    cd "${work}/pgbouncer-${version}"
    if [[ -n $patch ]]; then
      patch -p1 --batch --forward <"$patch" >"${work}/patch.log" 2>&1 || {
        cat "${work}/patch.log" >&2
        exit 1
      }
    fi
    ./configure --prefix="${into}.tmp" >"${work}/configure.log" 2>&1 || {
      tail -n 30 "${work}/configure.log" >&2
      exit 1
    }
    make -j"$(nproc)" >"${work}/make.log" 2>&1 || {
      tail -n 30 "${work}/make.log" >&2
      exit 1
    }
    make install >>"${work}/make.log" 2>&1
  )
  is_release "${into}.tmp/bin/pgbouncer" || {
    echo "install-test-deps: the build does not report PgBouncer ${version}" >&2
    exit 1
  }
  if [[ -n $key ]]; then echo "$key" >"${into}.tmp/key"; fi
  rm -rf "$into"
  mv "${into}.tmp" "$into"
  rm -rf "$work"
  echo "install-test-deps: built PgBouncer ${version}${patch:+ with the patch} in $((SECONDS - started)) s"
}

# Copies a build from the cache into the project (a copy, not a link: the harness runs pgbouncer as the
# postgres user, who cannot enter a private home).
copy_pgbouncer() {
  local from=$1 to=$2
  rm -rf "$to"
  mkdir -p "$(dirname "$to")"
  cp -a "$from" "$to"
  chmod -R a+rX "$to"
  is_release "${to}/bin/pgbouncer"
}

mkdir -p "$cache_root"
exec 9>"${cache_root}/pgbouncer.lock"

# The release the stacks deploy: PGBOUNCER_BIN, a pgbouncer on PATH, or .deps/pgbouncer/, else built.
stock_pgbouncer() {
  if [[ -n ${PGBOUNCER_BIN:-} ]]; then
    if is_release "$PGBOUNCER_BIN"; then
      echo "install-test-deps: PgBouncer ${version} from PGBOUNCER_BIN=${PGBOUNCER_BIN}"
      return 0
    fi
    echo "install-test-deps: PGBOUNCER_BIN=${PGBOUNCER_BIN} is not an executable PgBouncer ${version}" >&2
    exit 1
  fi
  local on_path
  on_path=$(command -v pgbouncer 2>/dev/null || true)
  if [[ -n $on_path ]] && is_release "$on_path"; then
    echo "install-test-deps: PgBouncer ${version} on PATH (${on_path})"
    return 0
  fi
  if is_release "${prefix}/bin/pgbouncer"; then
    echo "install-test-deps: PgBouncer ${version} in ${prefix}"
    return 0
  fi
  flock 9
  # not `is_release || build_pgbouncer`: errexit does not apply inside a function called in a condition
  if ! is_release "${cache}/bin/pgbouncer"; then build_pgbouncer "$cache"; fi
  flock -u 9
  copy_pgbouncer "$cache" "$prefix"
  echo "install-test-deps: PgBouncer ${version} in ${prefix}"
}
stock_pgbouncer

# The same release with tools/harness/patches/pgbouncer-<version>-peer-pool-cancels.patch (the fleet's cancel
# tests; not what the stacks deploy): always built from the tarball, cached as its own version, keyed by the
# patch's sha256 too, so that a changed patch builds anew.
patched_pgbouncer() {
  local patch="${root}/tools/harness/patches/pgbouncer-${version}-peer-pool-cancels.patch"
  [[ -f $patch ]] || {
    echo "install-test-deps: no ${patch#"${root}/"}: the fleet's cancel tests run PgBouncer ${version} with the" >&2
    echo "  peer-pool patch (docs/testing.md); port it to ${version}, or drop it if the release has the fix" >&2
    exit 1
  }
  local key
  key="${version}+peer-pool-cancels-$(sha256sum "$patch" | cut -c1-16)"
  local into="${cache_root}/pgbouncer-${key}" to="${root}/.deps/pgbouncer-peer-pool-cancels"
  if is_release "${to}/bin/pgbouncer" && [[ $(cat "${to}/key" 2>/dev/null) == "$key" ]]; then
    echo "install-test-deps: PgBouncer ${key} in ${to}"
    return 0
  fi
  flock 9
  if ! is_release "${into}/bin/pgbouncer" || [[ $(cat "${into}/key" 2>/dev/null) != "$key" ]]; then
    build_pgbouncer "$into" "$patch" "$key"
  fi
  flock -u 9
  copy_pgbouncer "$into" "$to"
  echo "install-test-deps: PgBouncer ${key} in ${to}"
}
patched_pgbouncer
