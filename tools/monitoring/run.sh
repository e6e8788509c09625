#!/usr/bin/env bash
# The live monitoring check (not part of `npm test`): builds the real pgbouncer_exporter v0.12.1 into
# .harness/bin, then runs main.ts (local PostgreSQL + PgBouncer from the rendered ini, the exporter, a real
# Prometheus with the rendered scrape job and rules, a pgbench overload). Arguments go to main.ts, e.g.
#   tools/monitoring/run.sh --server-cap 5 --for 15 --scrape 5
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
version="v0.12.1"
module="github.com/prometheus-community/pgbouncer_exporter"
bin_dir="$root/.harness/bin"
exporter="$bin_dir/pgbouncer_exporter"
mkdir -p "$bin_dir"

# PgBouncer is the release the stacks deploy, found by the harness (tools/install-test-deps.sh builds it)
for tool in go prometheus; do
  command -v "$tool" >/dev/null || { echo "monitoring: $tool is not installed" >&2; exit 2; }
done

# a plain `go build` leaves the version string empty, so the build records what it built
stamp="$exporter.version"
if [[ ! -x "$exporter" || "$(cat "$stamp" 2>/dev/null)" != "$module@$version" ]]; then
  echo "monitoring: building $module@$version" >&2
  if ! GOBIN="$bin_dir" go install "$module@$version"; then
    # `go install` also asks the proxy for the module's version list (deprecation check); where that
    # endpoint is refused, fetch the pinned release itself and build it from the module cache.
    echo "monitoring: go install failed; building from the downloaded module instead" >&2
    fetch="$(mktemp -d)"
    trap 'rm -rf "$fetch"' EXIT
    src="$(cd "$fetch" && go mod init e2e-fetch >/dev/null 2>&1 && go mod download -json "$module@$version" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -n "$src" && -d "$src" ]] || { echo "monitoring: could not download $module@$version" >&2; exit 2; }
    (cd "$src" && go build -o "$exporter" .)
  fi
  echo "$module@$version" >"$stamp"
fi
echo "monitoring: exporter $(cat "$stamp") at $exporter" >&2

npx ts-node --transpile-only --swc tools/monitoring/main.ts --exporter "$exporter" "$@"
