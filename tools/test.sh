#!/usr/bin/env bash
# `npm test`: every check and every test tier of both packages, run at once. Most tiers wait on servers
# (PostgreSQL, PgBouncer, promtool, the policy pack), so they overlap with the CPU-bound checks. Each job's
# output goes to a log of its own and is printed, with its time, when the job ends; the run fails if any
# job failed. tsc, ESLint and Prettier keep caches in node_modules/.cache/clipper (a fresh clone has none).
#
#   bash tools/test.sh [job...]      jobs: typecheck eslint prettier shellcheck unit integration docs
#                                    tools-unit tools-integration (default: these), fleet
# Environment: CLIPPER_TEST_JOBS, the parallel mocha workers of the tools' integration tier (default 8).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
bin=node_modules/.bin
cache=node_modules/.cache/clipper
mkdir -p "$cache"
logs=$(mktemp -d)
workers=${CLIPPER_TEST_JOBS:-8}
trap 'rm -rf "$logs"' EXIT

# The tools' integration files, the longest first: mocha's workers take the files in the order given, and a
# long file taken last made the tail of the run (the lockout sequences, 17 s each, began 50 s in; 6 to 15
# core-seconds idle by the end). In the order of the seconds each took in a full npm test (2026-12-07, from
# 51 for cancels-stock down to 1; timed by a mocha root hook that logged each file's start and end, not kept
# here), but the load smoke's pgbench runs (load-smoke, 8 s alone): they judge a
# cold pool's growth within 3 s, and started with the 8 workers' loads and the static checks, the pool had
# grown to 18 of its 20 servers; they start once the long files have begun to end. A file not named here
# follows them, in its glob's order.
long_first=(
  fleet/cancels-stock fleet/reload fleet/failures-roll fleet/cancels-patched fleet/scale
  lockout/cold-bursts-and-rotation load-smoke-fault fleet/rotation fleet/failures-reload
  fleet/failures-restart lockout/sequences-two-processes lockout/sequences-one-process load-smoke
  release-behaviour lockout/outage credentials-login fleet-load tls/pooler-tls tls/server-name
  lockout/first-login harness-pgbouncer lockout/control-verifier tls/postgres-hostssl
)
tools_integration_files() {
  local f named=() rest=()
  declare -A seen
  for f in "${long_first[@]}"; do
    f=test/integration/$f.test.ts
    [[ -f tools/$f ]] || {
      echo "test.sh: tools/$f is named in long_first but does not exist" >&2
      return 1
    }
    named+=("$f")
    seen[$f]=1
  done
  shopt -s globstar
  for f in tools/test/integration/**/*.test.ts; do
    f=${f#tools/}
    [[ -n ${seen[$f]:-} ]] || rest+=("$f")
  done
  printf "'%s' " "${named[@]}" "${rest[@]}"
}
ti_files=$(tools_integration_files) || exit 2

declare -A commands=(
  [typecheck]="node_modules/typescript7/bin/tsc --noEmit --incremental --tsBuildInfoFile $cache/tsc.tsbuildinfo"
  [eslint]="$bin/eslint --cache --cache-location $cache/eslint ."
  [prettier]="$bin/prettier --check --log-level warn --cache --cache-location $cache/prettier ."
  [shellcheck]="bash tools/shellcheck.sh"
  [unit]="$bin/mocha --reporter dot 'test/unit/**/*.test.ts' 'test/program/**/*.test.ts'"
  [integration]="$bin/mocha --reporter dot --parallel --jobs 3 'test/integration/**/*.test.ts'"
  [docs]="$bin/mocha --reporter dot 'test/docs/**/*.test.ts'"
  [tools-unit]="cd tools && ../$bin/mocha --reporter dot 'test/unit/**/*.test.ts'"
  [tools-integration]="cd tools && ../$bin/mocha --reporter dot --parallel --jobs $workers $ti_files"
  [fleet]="cd tools && ../$bin/mocha --reporter dot --parallel --jobs $workers 'test/integration/fleet/**/*.test.ts'"
)
# The longest first, so that they start before the CPU-bound checks take the cores. `fleet` (the fleet's
# files alone, which tools-integration includes) is not in the default.
order=(tools-integration integration unit tools-unit docs typecheck eslint prettier shellcheck)
# The static checks run at the lowest priority (nice 19): nothing they do is timed, while the tiers judge
# PgBouncer's timing on these cores (the load smoke's cold start among them). On a fresh clone, whose caches are
# cold, ESLint and Prettier took 81 and 61 s beside the tiers, and the load smoke's cold pool had not grown in
# its 3 s run (2026-12-07). On a warm run they take a few CPU-seconds.
declare -A niced=([typecheck]=1 [eslint]=1 [prettier]=1 [shellcheck]=1)
if (($# > 0)); then order=("$@"); fi

now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }

# The engines package.json declares; .ci/run and the README's prerequisite put Node 24 or newer first on PATH.
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)'; then
  echo "test.sh: the tests need Node.js 22 or newer, found $(node --version); run: eval \"\$(bash tools/node.sh)\"" >&2
  exit 2
fi

# The tests' throwaway files (PostgreSQL clusters copied from a template, fleets' generations, logs) on a
# tmpfs where the machine has one with room (a container's is often 64 MiB; the tiers held 633 MiB at once
# with 8 workers): on ext4, copying and creating them took 5 to 6 of the tools' integration tier's 115
# CPU-s (inode allocation and journaling in the kernel). TMPDIR set by the caller wins.
if [[ -z ${TMPDIR:-} ]] && [[ -d /dev/shm && -w /dev/shm ]] && [[ $(stat -f -c %T /dev/shm) == tmpfs ]] &&
  (($(df --output=avail -B1M /dev/shm | tail -1) >= 2048)); then
  export TMPDIR=/dev/shm/clipper-test-$UID
  mkdir -p "$TMPDIR" && chmod 1777 "$TMPDIR"
fi

# V8's compile cache for every Node.js process the jobs start (the mocha workers each load the Pulumi SDK, which
# loads TypeScript's 9 MB compiler for its closure serializer; ESLint loads it too): the code of each module
# compiled once and kept, keyed by Node's version and the module's text. NODE_COMPILE_CACHE set by the caller wins.
export NODE_COMPILE_CACHE=${NODE_COMPILE_CACHE:-$PWD/$cache/v8}

begin=$(now_ms)
declare -A pids
for job in "${order[@]}"; do
  [[ -n ${commands[$job]:-} ]] || {
    echo "test.sh: no job $job (jobs: ${!commands[*]})" >&2
    exit 2
  }
  (
    start=$(now_ms)
    if [[ -n ${niced[$job]:-} ]]; then
      nice -n 19 bash -c "${commands[$job]}" >"$logs/$job.log" 2>&1
    else
      bash -c "${commands[$job]}" >"$logs/$job.log" 2>&1
    fi
    echo "$? $(($(now_ms) - start))" >"$logs/$job.end"
  ) &
  pids[$job]=$!
done

failed=()
for job in "${order[@]}"; do
  wait "${pids[$job]}"
  read -r rc ms <"$logs/$job.end"
  summary=$(grep -E '^ *[0-9]+ (passing|failing|pending)' "$logs/$job.log" | tr -s ' ' | tr '\n' ' ')
  # the seeds the lockout sequences drew (one per mocha worker): CLIPPER_LOCKOUT_SEED=<seed> replays one
  summary+=$(grep -oE 'CLIPPER_LOCKOUT_SEED=[0-9]+' "$logs/$job.log" | sort -u | tr '\n' ' ')
  if ((rc == 0)); then
    printf 'ok    %-18s %6s s  %s\n' "$job" "$(seconds "$ms")" "$summary"
  else
    printf 'FAIL  %-18s %6s s  %s\n' "$job" "$(seconds "$ms")" "$summary"
    sed 's/^/    /' "$logs/$job.log"
    failed+=("$job")
  fi
done
echo "all jobs: $(seconds $(($(now_ms) - begin))) s"
if ((${#failed[@]} > 0)); then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
