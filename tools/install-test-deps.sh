#!/usr/bin/env bash
# Installs what the tests run for real: PostgreSQL (with pgbench), PgBouncer, Prometheus's promtool
# and the shell linter, from Debian. Skips apt entirely when everything is already there. Needs root or sudo.
set -euo pipefail

missing=()
command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
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
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# Debian's packages would start services on a normal system; the tests start their own servers.
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends pgbouncer postgresql postgresql-contrib prometheus shellcheck >/dev/null
