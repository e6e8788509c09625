#!/usr/bin/env bash
# Lints every shell script of the project with shellcheck (Debian's). A script shellcheck passed is remembered
# by its text, this script's text and shellcheck's version (a file per script under
# node_modules/.cache/clipper/shellcheck, as ESLint and Prettier keep theirs), and checked again once any of
# them changes: the 9 scripts took 0.9 CPU-s at every npm test. SHELLCHECK_CACHE names the folder; empty:
# every script every time.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
mapfile -t scripts < <(git ls-files --cached --others --exclude-standard -- '*.sh' '.ci/run' 2>/dev/null || find . -name '*.sh' -not -path './node_modules/*')
if ((${#scripts[@]} == 0)); then
  echo "shellcheck: no scripts"
  exit 0
fi
cache=${SHELLCHECK_CACHE-node_modules/.cache/clipper/shellcheck}
if [[ -z $cache ]]; then
  shellcheck "${scripts[@]}"
  echo "shellcheck: ${#scripts[@]} scripts clean"
  exit 0
fi
mkdir -p "$cache"
version=$(shellcheck --version | sed -n 's/^version: //p')
declare -A key
todo=()
for s in "${scripts[@]}"; do
  key[$s]=$({
    printf '%s\n%s\n' "$version" "$s"
    cat "$self" "$s"
    if [[ -e .shellcheckrc ]]; then cat .shellcheckrc; fi
  } | sha256sum | cut -c1-64)
  [[ -e $cache/${key[$s]} ]] || todo+=("$s")
done
if ((${#todo[@]} > 0)); then
  shellcheck "${todo[@]}"
  for s in "${todo[@]}"; do : >"$cache/${key[$s]}"; done
fi
echo "shellcheck: ${#scripts[@]} scripts clean (${#todo[@]} checked, the others unchanged since they passed)"
