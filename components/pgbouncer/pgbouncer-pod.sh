# shellcheck shell=sh
# pgbouncer-pod: PID 1 of a PgBouncer container. Runs one PgBouncer process of a pooler pod, keeps it on the
# newest configuration PgBouncer accepts without a restart, and drains it so that clients keep working and
# their cancel requests keep arriving. Rendered into the pod by ./pod-script.ts; the local fleet
# (tools/fleet/) runs the same text.
#
# Configuration. The kubelet updates mounted ConfigMaps and Secrets in place, by an atomic swap of each
# folder's `..data` link. This script:
#   - snapshots the mounted files (the shared ini, the auth file, the TLS files) into a generation folder of
#     its own and points `current` at it, so PgBouncer reads only files that were validated together;
#   - runs PgBouncer on a tiny ini of its own process: an `%include` of the shared ini, which ends inside
#     [pgbouncer], then this process's unix socket folder and peer_id (the pod's ordinal x processes +
#     process), so_reuseport when the pod runs several, then its own pod's peers over their sockets. A
#     second [pgbouncer] header would reset the section to its defaults, so the process's lines continue
#     the section instead;
#   - when the mounts change, validates the new generation with a throwaway PgBouncer on a private socket,
#     and only then switches `current` and sends SIGHUP (PgBouncer reads the server CA at every new server
#     connection, not only on SIGHUP). Valid: PgBouncer loads it, and every login of its auth file logs in
#     to PostgreSQL through it (the server-login check: the password, the server CA, the host, as the
#     clients' pools would use them). A refusal keeps the generation that serves; PostgreSQL not answering
#     (refused connection, starting up, full) leaves the change waiting, checked again. The files a
#     container starts with get the same check: while it fails, the process stays unready (checked again
#     each interval), which stops a rolling update at that pod. PgBouncer 1.25.2 applies a config it fails to load
#     in part: the [pgbouncer] header resets the section to defaults and loading stops at the bad line, so
#     every later setting is lost (client_tls_sslmode falls back to disable). It must never see one;
#   - gates the change on a canary: pod ordinal 0 applies it at once; every other pod waits
#     PGBOUNCER_CANARY_HOLD_SECONDS, then applies it only while the canary is ready (PGBOUNCER_CANARY names a
#     headless Service that selects pod 0 and publishes only ready addresses).
#
# Readiness (the file PGBOUNCER_SOCKET_DIR/ready, which the probe tests): PgBouncer is listening, and no
# server login failed in the last PGBOUNCER_FAILURE_SECONDS for a reason a restarting PostgreSQL does not
# give (a refused password, a certificate or TLS error, a host that does not resolve; not a refused
# connection, "the database system is starting up" or "too many clients"), and the files it started with
# pass the server-login check. On the canary, a change that the check refused, or after which a server
# login failed within the hold, keeps it unready until the next change, so the other pods hold it back.
#
# Drain (the preStop hook sends INT; the pod has left the Service's endpoints by then):
#   1. TERM to PgBouncer (SHUTDOWN WAIT_FOR_CLIENTS): connected clients keep being served, new logins are
#      refused, PgBouncer exits once the last client has gone. It closes its TCP listener, so a relay, a
#      second PgBouncer with no database, takes the port (once PgBouncer has let go of it) and forwards
#      cancel requests that peers send here to this pod's processes over their unix sockets, which stay open.
#   2. After PGBOUNCER_DRAIN_SECONDS, if clients remain: USR1 (PAUSE: running transactions finish, no new one
#      starts; a cancel can no longer reach PostgreSQL), then, once PgBouncer holds no server connection,
#      QUIT. The clients left then see their connection closed between transactions, never one aborted.
# TERM from the kubelet comes once the hook has returned or the grace period is over: it stops PgBouncer at
# once (a TERM with no drain begun starts one instead).
#
# POSIX sh, and from Debian's base or busybox: cp getent grep ln ls mkdir mkfifo mv rm sleep tail.
#
# Environment (the pod spec sets every one):
#   PGBOUNCER_POD_NAME             the pod's name, `<statefulset>-<ordinal>` (downward API)
#   PGBOUNCER_PROCESS, _PROCESSES  this process's number (1-based), and the PgBouncer processes of a pod
#   PGBOUNCER_PORT                 the shared ini's listen_port: the port of every process and peer
#   PGBOUNCER_LISTEN_ADDR          the shared ini's listen_addr, for the relay
#   PGBOUNCER_SOURCES              the mounted folders, separated by spaces
#   PGBOUNCER_CURRENT              the folder the shared ini's file paths name: `<applied>/current`
#   PGBOUNCER_SOCKET_DIR           this process's unix socket folder: `<socket root>/<process>`
#   PGBOUNCER_CHECK_SECONDS        how often the mounts are compared
#   PGBOUNCER_CANARY               the canary's DNS name; empty: every pod applies a change at once
#   PGBOUNCER_CANARY_HOLD_SECONDS  how long a change waits behind the canary
#   PGBOUNCER_FAILURE_SECONDS      how long a failed server login keeps the process unready
#   PGBOUNCER_DRAIN_SECONDS        how long a drain waits for clients to leave
#   PGBOUNCER_CHECK_LOGINS         how many logins the server-login check may open (the pool budget counts them)
#   PGBOUNCER_BIN                  the pgbouncer binary (default: pgbouncer on PATH)
set -u

p=$PGBOUNCER_PROCESS
procs=$PGBOUNCER_PROCESSES
port=$PGBOUNCER_PORT
current=$PGBOUNCER_CURRENT
applied=${current%/*}
sock=$PGBOUNCER_SOCKET_DIR
sock_root=${sock%/*}
every=$PGBOUNCER_CHECK_SECONDS
canary=$PGBOUNCER_CANARY
hold=$PGBOUNCER_CANARY_HOLD_SECONDS
failure_window=$PGBOUNCER_FAILURE_SECONDS
drain_seconds=$PGBOUNCER_DRAIN_SECONDS
check_logins=$PGBOUNCER_CHECK_LOGINS
bin=${PGBOUNCER_BIN:-pgbouncer}
pod=$PGBOUNCER_POD_NAME

say() { echo "pgbouncer-pod[$p]: $*" >&2; }
# The script's clock, whole seconds since boot, into $clock: read by the shell itself, no process started
# (the loop reads it every second), and monotonic (a step of the wall clock does not move it).
read_clock() { read -r clock _ </proc/uptime && clock=${clock%%.*}; }
now() { read_clock && echo "$clock"; }

ordinal=${pod##*-}
case $ordinal in
'' | *[!0-9]*)
  say "PGBOUNCER_POD_NAME \"$pod\" does not end in -<ordinal>"
  exit 2
  ;;
esac
peer_id=$((ordinal * procs + p))
# The relay's own peer_id: above any process's (ordinal x processes + process stays far below it).
relay_id=65535
is_canary=false
[ -n "$canary" ] && [ "$ordinal" -eq 0 ] && is_canary=true

# The mounts' state: each source's `..data` target, which the kubelet's atomic writer changes on every update.
# Called in a command substitution: its `cd` stays in that subshell. `cd -P` and `$PWD` are the shell's own,
# where a `readlink` per source was a process per source at every check.
fingerprint() {
  f=""
  for s in $PGBOUNCER_SOURCES; do
    if cd -P "$s/..data" 2>/dev/null; then f="$f ${PWD##*/}"; else f="$f "; fi
  done
  echo "$f"
}

# snapshot N: every mounted file, its link resolved, into gen-N.
snapshot() {
  g="$applied/gen-$1"
  rm -rf "$g" && mkdir -p "$g" || return 1
  for s in $PGBOUNCER_SOURCES; do
    for f in "$s"/*; do
      if [ -f "$f" ]; then cp "$f" "$g/${f##*/}" || return 1; fi
    done
  done
}

point() { ln -sfn "gen-$1" "$current"; }

# This pod's processes as [peers] lines, over their unix sockets.
peers_over_sockets() {
  q=1
  while [ "$q" -le "$procs" ]; do
    echo "$((ordinal * procs + q)) = host=$sock_root/$q port=$port"
    q=$((q + 1))
  done
}

# The ini PgBouncer runs: the shared one, then this process's lines (they continue [pgbouncer]).
process_ini() {
  echo "; pgbouncer-pod: process $p of $pod (peer $peer_id); the shared settings: $current/pgbouncer.ini"
  echo "%include $current/pgbouncer.ini"
  echo "unix_socket_dir = $1"
  echo "peer_id = $peer_id"
  if [ "$procs" -gt 1 ]; then
    # the pod's processes share the port: each must set it, or the second one's bind fails
    echo "so_reuseport = 1"
    echo "[peers]"
    peers_over_sockets
  fi
}

# The shared ini must end inside [pgbouncer]: this process's lines continue that section.
ends_in_pgbouncer() {
  last=$(grep '^\[' "$1" | tail -n 1)
  [ "$last" = "[pgbouncer]" ] && return 0
  say "the shared ini's last section is ${last:-none}, not [pgbouncer]: a process's own settings must continue it"
  return 1
}

# The server-login check's [databases] lines, for generation folder `$1`: for every login whose password its
# auth file holds (not a SCRAM or md5 verifier: PgBouncer cannot log in with those on its own), a database of
# one server connection as that user, opened at once (a forced user with min_pool_size), on the connection
# string of the shared ini's first database: its host, port, TLS mode and server CA are the clients' pools'.
check_databases() {
  conn="" auth="" section=""
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    "["*"]"*) section=$line ;;
    ";"* | "#"* | "") ;;
    "auth_file"*=*) [ "$section" = "[pgbouncer]" ] && auth=${line#*= } ;;
    *=*) [ "$section" = "[databases]" ] && [ -z "$conn" ] && conn=${line#*=} ;;
    esac
  done <"$1/pgbouncer.ini"
  [ -n "$conn" ] && [ -n "$auth" ] || return 0
  k=0
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    '"'*'" "'*'"'*) ;;
    *) continue ;;
    esac
    user=${line#\"} && user=${user%%\"*}
    secret=${line#\"*\" \"} && secret=${secret%\"*}
    case $secret in
    "SCRAM-SHA-256\$"* | md5*) continue ;;
    esac
    k=$((k + 1))
    if [ "$k" -gt "$check_logins" ]; then
      say "the auth file holds more logins with a password than the ${check_logins} the check may open; $user is not checked"
      continue
    fi
    echo "pgbouncer_pod_check_$k =$conn user=$user pool_size=1 min_pool_size=1"
  done <"$1/${auth##*/}"
}

# How a server login in log line `$1` ended, into $outcome: `ok`, `broken` (a refused password, a certificate
# that does not verify, a host that does not resolve, SSL refused: a restarting PostgreSQL gives none of
# these), `transient` (a refused connection or one cut as TLS starts, "the database system is starting up" or
# "… shutting down", "too many clients"), or empty. A variable, not output: the log watcher runs it on every line, without a subshell.
login_outcome() {
  case $1 in
  *"server login ok"*) outcome=ok ;;
  *"server login failed"*"the database system is "* | *"server login failed"*"too many clients"*) outcome=transient ;;
  # a connection PostgreSQL dropped while it stopped: refused, or cut before or during TLS's start
  *"closing because: connect failed"* | *"closing because: TLS startup failed"*) outcome=transient ;;
  *"server login failed"* | *"server DNS lookup failed"* | *"TLS handshake error"* | *"server refused SSL"*) outcome=broken ;;
  *) outcome="" ;;
  esac
}

# validate N: a throwaway PgBouncer on generation N, on a private socket and no TCP. It must load, and every
# login of the auth file must log in to PostgreSQL through it (check_databases): 0 valid; 1 refused (the
# reason said); 2 undecided, PostgreSQL did not answer (refused the connection, is starting or full): the
# change waits. It reads gen-N's files where the shared ini names `current`'s: `current` still points at the
# generation that serves, because PgBouncer reads some files outside a reload (the server CA, at every new
# server connection), and must never read one that was not validated.
validate() {
  g="$applied/gen-$1"
  c="$applied/check"
  ends_in_pgbouncer "$g/pgbouncer.ini" || return 1
  rm -rf "$c" && mkdir -p "$c" || return 1
  {
    while IFS= read -r line || [ -n "$line" ]; do
      case $line in
      *"$current/"*) printf '%s\n' "${line%%"$current/"*}$g/${line#*"$current/"}" ;;
      *) printf '%s\n' "$line" ;;
      esac
    done <"$g/pgbouncer.ini"
    echo "unix_socket_dir = $c"
    echo "peer_id = $peer_id"
    echo "listen_addr ="
    echo "pidfile ="
    echo "logfile ="
    # debug lines: "server login ok" is one
    echo "verbose = 1"
    echo "[databases]"
    check_databases "$g"
  } >"$c/check.ini"
  logins=$(grep -c '^pgbouncer_pod_check_' "$c/check.ini")
  "$bin" "$c/check.ini" 2>"$c/check.log" &
  cpid=$!
  n=0 verdict=1 why="it did not start"
  while [ "$n" -lt 100 ]; do
    if grep -q "process up" "$c/check.log"; then
      verdict=0
      break
    fi
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
    n=$((n + 1))
  done
  if [ "$verdict" = 0 ] && [ "$logins" -gt 0 ]; then
    # each login once: PgBouncer does not retry a failed one within server_login_retry
    verdict=2 why="PostgreSQL did not answer within 10 s"
    n=0
    while [ "$n" -lt 100 ]; do
      ok=0 broken="" transient=""
      while IFS= read -r line; do
        login_outcome "$line"
        case $outcome in
        ok) ok=$((ok + 1)) ;;
        broken) broken=$line ;;
        transient) transient=$line ;;
        esac
      done <"$c/check.log"
      if [ -n "$broken" ]; then
        verdict=1 why="a server login failed: $broken"
        break
      elif [ -n "$transient" ]; then
        verdict=2 why="PostgreSQL refused the check's login for now: $transient"
        break
      elif [ "$ok" -ge "$logins" ]; then
        verdict=0
        break
      fi
      sleep 0.1
      n=$((n + 1))
    done
  fi
  # TERM, not QUIT: a command started with & in a non-interactive sh starts with SIGINT and SIGQUIT
  # ignored, until PgBouncer sets its handlers; a QUIT sent before that is lost. TERM closes the check's
  # server connections at once all the same.
  kill -TERM "$cpid" 2>/dev/null
  wait "$cpid" 2>/dev/null
  [ "$verdict" = 0 ] && return 0
  say "generation $1: $why"
  if [ "$verdict" = 1 ]; then
    grep -E "ERROR|FATAL|WARNING" "$c/check.log" | while IFS= read -r line; do say "  $line"; done
  fi
  return "$verdict"
}

# Reads PgBouncer's log (its stderr, through a FIFO), passes every line on, and stamps a server login that
# failed for a reason a restarting PostgreSQL does not give. A certificate error is logged on its own line
# ("TLS handshake error: …", server or client), and the server's close follows it.
watch_log() {
  tls=false
  while IFS= read -r line; do
    printf '%s\n' "$line" >&2
    failed=false
    login_outcome "$line"
    case $line in
    *"TLS handshake error"*)
      # a client's or a server's: the server's close follows it
      tls=true
      continue
      ;;
    *" S-"*"closing because: server conn crashed?"*) [ "$tls" = true ] && failed=true ;;
    *) [ "$outcome" = broken ] && failed=true ;;
    esac
    tls=false
    if [ "$failed" = true ]; then
      now >"$applied/failed.tmp" && mv "$applied/failed.tmp" "$applied/failed"
    fi
  done
}

# PgBouncer's TCP sockets in state $1 (01 established, 0A listening) on the pod's port ($2 = on) or on others
# ($2 = off): how many.
tcp_sockets() {
  # ls, not find: busybox's find has no -printf. One process for every descriptor, not one each.
  # shellcheck disable=SC2012
  inodes=" $(ls -l "/proc/$pid/fd" 2>/dev/null | while IFS= read -r line; do
    case $line in *"socket:["*) t=${line##*socket:[} && printf '%s ' "${t%]}" ;; esac
  done)"
  n=0
  lp=$(printf '%04X' "$port")
  for table in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$table" ] || continue
    # grep keeps the lines in state $1: sh's read takes a byte at a time, and a node's table can hold
    # thousands of connections (a tenth of a second each time, on a loaded node)
    while read -r _ local _ _ _ _ _ _ _ inode _; do
      [ -n "$inode" ] || continue
      case $local in *:"$lp") [ "$2" = on ] || continue ;; *) [ "$2" = off ] || continue ;; esac
      case $inodes in *" $inode "*) n=$((n + 1)) ;; esac
    done <<EOF
$(grep -E "^ *[0-9]+: [0-9A-F]+:[0-9A-F]{4} [0-9A-F]+:[0-9A-F]{4} $1 " "$table")
EOF
  done
  echo "$n"
}

# Server connections PgBouncer holds: its established TCP sockets but those of clients (on its own port).
server_connections() { tcp_sockets 01 off; }

ready_file="$sock/ready"
# A draining pod is never ready again: the INT trap can run between the main loop's drain check and its
# readiness verdict (a trap runs once the command under way has finished), and that verdict is stale then.
set_ready() {
  if [ "$1" = true ] && [ "${drain:-no}" != no ]; then return; fi
  if [ "$1" = true ]; then
    if [ ! -e "$ready_file" ]; then : >"$ready_file" && say "ready"; fi
  elif [ -e "$ready_file" ]; then
    rm -f "$ready_file"
    say "not ready: $2"
  fi
}

relay=""
# The relay, once PgBouncer has closed its TCP listener: the relay cannot bind the port before (one process a
# pod has no so_reuseport), and a loaded node can run PgBouncer's TERM handler after the relay's start. Run
# at the drain's start and at every tick of it until the relay is up; a relay that exits is started again.
# shellcheck disable=SC2317 # run by the drain
relay_when_free() {
  # a PgBouncer that has exited has no draining clients to forward cancels to
  kill -0 "$pid" 2>/dev/null || return
  if [ -n "$relay" ]; then
    kill -0 "$relay" 2>/dev/null && return
    say "the relay (pid $relay) exited; starting it again"
    relay=""
  fi
  [ "$(tcp_sockets 0A on)" -eq 0 ] && start_relay
}

# shellcheck disable=SC2317 # run by the drain
start_relay() {
  r="$applied/relay"
  mkdir -p "$r" || return
  {
    echo "; pgbouncer-pod: forwards cancel requests to the draining processes of $pod"
    echo "[peers]"
    peers_over_sockets
    echo "[pgbouncer]"
    echo "listen_addr = $PGBOUNCER_LISTEN_ADDR"
    echo "listen_port = $port"
    [ "$procs" -gt 1 ] && echo "so_reuseport = 1"
    echo "unix_socket_dir ="
    echo "pidfile ="
    echo "logfile ="
    echo "peer_id = $relay_id"
  } >"$r/relay.ini"
  "$bin" "$r/relay.ini" 2>"$r/relay.log" &
  relay=$!
  say "relay (pid $relay) forwards cancel requests on port $port to this pod's processes"
}

# `pgbouncer-pod --login-outcome LINE`: print how the script reads a PgBouncer log line (login_outcome), and do
# nothing else (the tests hold it to PgBouncer's real lines).
if [ "${1:-}" = --login-outcome ]; then
  login_outcome "${2:-}"
  echo "${outcome:-none}"
  exit 0
fi

# `pgbouncer-pod --process-ini`: print the ini this process would run, and do nothing else (the tests compare
# the harness's standalone processes with it).
if [ "${1:-}" = --process-ini ]; then
  process_ini "$sock"
  exit 0
fi

# --- start: generation 1, the mounts as they are ---
mkdir -p "$applied" "$sock" || exit 1
gen=1
seen=$(fingerprint)
if ! snapshot "$gen" || ! point "$gen"; then
  say "cannot copy the mounted files into $applied"
  exit 1
fi
ends_in_pgbouncer "$current/pgbouncer.ini" || exit 1
process_ini "$sock" >"$applied/pgbouncer-$p.ini" || exit 1
fifo="$applied/log.fifo"
rm -f "$fifo" && mkfifo "$fifo" || exit 1
watch_log <"$fifo" &
"$bin" "$applied/pgbouncer-$p.ini" 2>"$fifo" &
pid=$!
say "started PgBouncer (pid $pid) as peer $peer_id, generation $gen"

drain=no drain_at=0
# shellcheck disable=SC2317 # run by the INT trap
begin_drain() {
  [ "$drain" = no ] || return
  drain=clients drain_at=$(now)
  set_ready false "draining"
  say "draining: clients keep being served for up to ${drain_seconds} s, new logins go to the other pods"
  kill -TERM "$pid" 2>/dev/null
  # PgBouncer closes its listener as it takes the TERM: within a few milliseconds, unless the node is busy
  waited=0
  relay_when_free
  while [ -z "$relay" ] && [ "$waited" -lt 10 ]; do
    sleep 0.1
    waited=$((waited + 1))
    relay_when_free
  done
}
# shellcheck disable=SC2317 # run by the TERM trap
on_term() {
  if [ "$drain" = no ]; then
    begin_drain # no preStop hook ran (it failed, or the pod was deleted without one): drain all the same
  else
    say "TERM while draining: the grace period is over; stopping PgBouncer now"
    kill -QUIT "$pid" 2>/dev/null
  fi
}
trap begin_drain INT
trap on_term TERM

applied_at=$(now)
pending="" pending_since=0 refused="" sticky=""
# The files this pod started with get the same server-login check as a change: a rolling update that brings a
# password or server CA PostgreSQL refuses stops at this pod, which stays unready (the StatefulSet replaces
# the next pod only once this one is ready) and checks them again every PGBOUNCER_CHECK_SECONDS, until they
# pass (PostgreSQL fixed) or a change comes. PostgreSQL not answering is no reason: a restart must not make
# new pods unready.
start_check=""
validate "$gen"
if [ $? = 1 ]; then
  start_check="the files it started with failed the server-login check"
  say "stays unready until they pass it or a change comes: $start_check"
fi
tick=0
while kill -0 "$pid" 2>/dev/null; do
  sleep 1 &
  wait $!
  read_clock && t=$clock # now(), without the subshell
  [ "$drain" = no ] || relay_when_free
  case $drain in
  clients)
    if [ $((t - drain_at)) -ge "$drain_seconds" ]; then
      drain=transactions
      say "drain: clients still connected after ${drain_seconds} s; pausing PgBouncer so that running transactions finish"
      kill -USR1 "$pid" 2>/dev/null
    fi
    continue
    ;;
  transactions)
    if [ "$(server_connections)" -eq 0 ]; then
      say "drain: no transaction left running; stopping PgBouncer"
      kill -QUIT "$pid" 2>/dev/null
      drain=stopping
    fi
    continue
    ;;
  stopping) continue ;;
  esac

  # the subshell reads it itself: no cat to exec every second
  failed_at=$( (read -r at; echo "${at:-0}") <"$applied/failed" 2>/dev/null || echo 0)
  if [ "$is_canary" = true ] && [ -z "$sticky" ] && [ "$gen" -gt 1 ] &&
    [ "$failed_at" -ge "$applied_at" ] && [ $((failed_at - applied_at)) -lt "$hold" ]; then
    sticky="a server login failed within ${hold} s of generation $gen"
  fi
  if [ ! -S "$sock/.s.PGSQL.$port" ]; then
    set_ready false "PgBouncer is not listening"
  elif [ -n "$sticky" ]; then
    set_ready false "$sticky (until the next change)"
  elif [ -n "$start_check" ]; then
    set_ready false "$start_check"
  elif [ $((t - failed_at)) -lt "$failure_window" ]; then
    set_ready false "a server login failed $((t - failed_at)) s ago"
  else
    set_ready true
  fi

  tick=$((tick + 1))
  [ "$tick" -lt "$every" ] && continue
  tick=0
  if [ -n "$start_check" ] && [ -z "$pending" ]; then
    validate "$gen"
    if [ $? != 1 ]; then
      start_check=""
      say "the files it started with pass the server-login check now"
    fi
  fi
  latest=$(fingerprint)
  if [ "$latest" != "$seen" ] && [ "$latest" != "$pending" ]; then
    pending=$latest pending_since=$t
    say "the mounted files changed:${latest}"
  fi
  [ -n "$pending" ] || continue
  [ "$pending" = "$refused" ] && continue
  if [ "$is_canary" = false ] && [ -n "$canary" ]; then
    [ $((t - pending_since)) -lt "$hold" ] && continue
    if ! getent hosts "$canary" >/dev/null 2>&1; then
      say "holding the change back: the canary ($canary) is not ready"
      continue
    fi
  fi
  next=$((gen + 1))
  verdict=1
  if snapshot "$next"; then
    validate "$next"
    verdict=$?
  fi
  if [ "$verdict" = 2 ]; then
    rm -rf "$applied/gen-$next"
    say "the change waits: generation $gen keeps serving; checked again in ${every} s"
    continue
  fi
  if [ "$verdict" = 0 ] && point "$next"; then
    kill -HUP "$pid" 2>/dev/null
    rm -rf "$applied/gen-$gen"
    # Failed logins judge the generation that was serving, until now: the validation takes a while, and
    # the clock has whole seconds, so an earlier stamp would count against this generation (and keep the
    # canary unready until the next change, though this one fixed what failed).
    rm -f "$applied/failed"
    gen=$next seen=$pending pending="" sticky="" start_check="" applied_at=$(now)
    say "applied generation $gen: PgBouncer reloads it"
  else
    rm -rf "$applied/gen-$next"
    refused=$pending seen=$pending pending=""
    say "refused the change: PgBouncer does not load it; generation $gen keeps serving"
    [ "$is_canary" = true ] && sticky="the canary refused a change"
  fi
done
wait "$pid"
rc=$?
# The relay's work ended with PgBouncer (no query of it is left to cancel): KILL, which a relay still starting
# cannot ignore or defer, and a wait, as it holds the pod's port until it has gone (a relay that outlived its
# script kept the port from the pod's next PgBouncer in the local fleet, which shares one network).
if [ -n "$relay" ]; then
  kill -KILL "$relay" 2>/dev/null
  wait "$relay" 2>/dev/null
fi
rm -f "$fifo" "$ready_file"
say "PgBouncer exited ($rc)"
exit "$rc"
