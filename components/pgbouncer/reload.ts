/**
 * How a renewed certificate reaches PgBouncer without dropping a connection. The certificate's Secret keeps
 * its name, so a renewal changes its data only: the Deployment does not roll, and the kubelet swaps the
 * mounted files atomically (its atomic writer re-points the directory's `..data` symlink at a new
 * timestamped directory). PgBouncer does not watch files, but re-reads its TLS files on SIGHUP and keeps
 * every open connection on the session it has (src/sbuf.c, `sbuf_tls_setup`). Only a process in
 * PgBouncer's PID namespace can send that signal without an admin login, so the container's command is this
 * script: it starts PgBouncer, forwards INT and TERM to it (the preStop drain and the kubelet's stop), and
 * sends SIGHUP when `..data` points somewhere new.
 */

/**
 * The script, run as `/bin/sh -c SCRIPT pgbouncer-reload INI TLS_DIR SECONDS`: POSIX sh, `readlink` and
 * `sleep`, which the PgBouncer image has (its preStop hook uses sh and sleep too).
 */
export const TLS_RELOAD_SCRIPT = [
  'ini="$1"; dir="$2"; every="$3"',
  'pgbouncer "$ini" &',
  "pid=$!",
  "trap 'kill -INT \"$pid\" 2>/dev/null' INT",
  "trap 'kill -TERM \"$pid\" 2>/dev/null' TERM",
  'seen=$(readlink "$dir/..data")',
  "n=0",
  // One-second ticks, so that the container ends within a second of PgBouncer; the files every `every`.
  'while kill -0 "$pid" 2>/dev/null; do',
  "  sleep 1 &",
  "  wait $!",
  "  n=$((n + 1))",
  '  [ "$n" -lt "$every" ] && continue',
  "  n=0",
  '  now=$(readlink "$dir/..data")',
  '  if [ -n "$now" ] && [ "$now" != "$seen" ]; then',
  '    echo "pgbouncer-reload: certificate files changed ($seen -> $now), reloading PgBouncer" >&2',
  '    kill -HUP "$pid" 2>/dev/null',
  '    seen="$now"',
  "  fi",
  "done",
  'wait "$pid"',
].join("\n");

/** The script's name as `$0` (it shows in `ps` and in the shell's own messages). */
export const TLS_RELOAD_NAME = "pgbouncer-reload";

/** The container command that runs PgBouncer on `ini` and reloads it when `tlsDir` is updated. */
export function tlsReloadCommand(ini: string, tlsDir: string, everySeconds: number): string[] {
  return ["/bin/sh", "-c", TLS_RELOAD_SCRIPT, TLS_RELOAD_NAME, ini, tlsDir, String(everySeconds)];
}

/** The script alone (for shellcheck and the local harness). */
export function tlsReloadScript(): string {
  return TLS_RELOAD_SCRIPT;
}
