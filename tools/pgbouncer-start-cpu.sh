#!/usr/bin/env bash
# The CPU a PgBouncer start takes with client TLS on, without and with client_tls_ca_file (docs/settings.md,
# TLS note 1): N starts of each (default 10), each until it accepts on its port, then SIGINT.
#
#   sudo bash tools/pgbouncer-start-cpu.sh [N]     (as root: PgBouncer runs as postgres, the harness's user, through setpriv)
#
# It uses the release tools/install-test-deps.sh builds (.deps/pgbouncer), a throwaway certificate, and a port
# on 127.0.0.1; every PgBouncer it starts is stopped by PID, and its folder removed.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
bin=$PWD/.deps/pgbouncer/bin/pgbouncer
[[ -x $bin ]] || {
  echo "pgbouncer-start-cpu: no $bin; run: bash tools/install-test-deps.sh" >&2
  exit 2
}
dir=$(mktemp -d)
pid=""
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
chown postgres "$dir"
chmod 755 "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
echo '"u" "p"' >"$dir/users.txt"
chmod 644 "$dir"/*
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

for ca in unset set; do
  ini=$dir/$ca.ini
  {
    echo "[databases]"
    echo "db = host=127.0.0.1 port=1"
    echo "[pgbouncer]"
    echo "listen_addr = 127.0.0.1"
    echo "listen_port = $port"
    echo "unix_socket_dir ="
    echo "auth_file = $dir/users.txt"
    echo "logfile = $dir/$ca.log"
    echo "client_tls_sslmode = require"
    echo "client_tls_cert_file = $dir/cert.pem"
    echo "client_tls_key_file = $dir/key.pem"
    [[ $ca == set ]] && echo "client_tls_ca_file = $dir/cert.pem"
    echo "server_tls_sslmode = verify-full"
    echo "server_tls_ca_file = $dir/cert.pem"
  } >"$ini"
  chmod 644 "$ini"
  before=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  for ((i = 0; i < n; i++)); do
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$bin" "$ini" 2>/dev/null &
    pid=$!
    for ((t = 0; t < 500; t++)); do
      (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.01
    done
    ((t < 500)) || {
      echo "pgbouncer-start-cpu: PgBouncer did not listen within 5 s: $(tail -3 "$dir/$ca.log")" >&2
      exit 1
    }
    kill -INT "$pid"
    wait "$pid" || true
    pid=""
  done
  after=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  ticks=$(getconf CLK_TCK)
  echo "client_tls_ca_file $ca: $(((after - before) * 1000 / ticks / n)) ms of CPU a start ($n starts)"
done
