#!/usr/bin/env bash
# Lints every shell script of the project with shellcheck (Debian's).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t scripts < <(git ls-files --cached --others --exclude-standard -- '*.sh' '.ci/run' 2>/dev/null || find . -name '*.sh' -not -path './node_modules/*')
if ((${#scripts[@]} == 0)); then
  echo "shellcheck: no scripts"
  exit 0
fi
shellcheck "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"
