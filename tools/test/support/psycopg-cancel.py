"""Cancels running queries through a real driver: psycopg 3 (libpq inside), as an application does.

Run by tools/test/support/fleet-cancels.ts, which keeps it for round after round: starting Python and
importing psycopg took about 0.17 CPU-s, for each of the 18 rounds of a test run. It reads one request a
line on stdin, JSON: {"env": {...}, "clients": n, "sleep": seconds, "marker": "...", "spacing": "burst" |
"sequential"}, where env is the fleet's libpq environment (PGHOST, PGHOSTADDR, PGPORT, PGSSLMODE=verify-full,
PGSSLROOTCERT, PGUSER, PGPASSWORD, PGDATABASE), which replaces every PG variable of the previous round. It
opens n connections, starts `SELECT pg_sleep(sleep)` tagged with the marker on each, prints "started", and
waits for a line on stdin (the test sees every query running in PostgreSQL first). Then it cancels each with
`conn.cancel_safe()` (libpq's PQcancelCreate: a new connection, encrypted like the login): all at once, one
thread each (burst, the default), or one at a time, each once the previous one's query has ended
(sequential). It prints one JSON line: each query's outcome ("cancelled", "completed", "ended before its
cancel" or the error), its seconds from start to end and from its cancel to end; then it waits for the next
request. It exits at the end of its stdin; an error ends it (its traceback on stderr).
"""

import json
import os
import sys
import threading
import time

import psycopg
from psycopg import errors


def use_env(env):
    """The round's libpq environment, and no PG variable of an earlier round's."""
    for k in [k for k in os.environ if k.startswith("PG")]:
        del os.environ[k]
    os.environ.update(env)


def run_round(args):
    n = args["clients"]
    spacing = args.get("spacing", "burst")
    if spacing not in ("burst", "sequential"):
        sys.exit(f"spacing: burst or sequential, not {spacing}")
    sql = f"SELECT pg_sleep({float(args['sleep'])}) /* {args['marker']} */"

    conns = [psycopg.connect(autocommit=True, application_name="fleet-psycopg") for _ in range(n)]
    results = [None] * n
    started = [0.0] * n
    cancelled_at = [None] * n
    cancel_errors = [None] * n
    ended_before = [False] * n

    def query(i):
        started[i] = time.monotonic()
        try:
            conns[i].execute(sql)
            outcome = "completed"
        except errors.QueryCanceled:
            outcome = "cancelled"
        except Exception as e:  # noqa: BLE001 - every other error is reported as it is
            outcome = f"{type(e).__name__}: {e}"
        end = time.monotonic()
        results[i] = {
            "outcome": outcome,
            "seconds": end - started[i],
            "afterCancel": None if cancelled_at[i] is None else end - cancelled_at[i],
        }

    def cancel(i):
        if results[i] is not None:
            # its query ended on its own before its cancel was sent: no cancel of it is measured
            ended_before[i] = True
            return
        cancelled_at[i] = time.monotonic()
        try:
            conns[i].cancel_safe(timeout=10)
        except Exception as e:  # noqa: BLE001
            cancel_errors[i] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=query, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    print("started", flush=True)
    sys.stdin.readline()
    if spacing == "burst":
        cancels = [threading.Thread(target=cancel, args=(i,)) for i in range(n)]
        for t in cancels:
            t.start()
        for t in cancels + threads:
            t.join()
    else:
        for i in range(n):
            cancel(i)
            threads[i].join()
    for i in range(n):
        if ended_before[i]:
            results[i]["outcome"] = "ended before its cancel"
    for c in conns:
        c.close()
    print(
        json.dumps(
            {
                "libpq": psycopg.pq.version(),
                "psycopg": psycopg.__version__,
                "results": results,
                "cancelErrors": [e for e in cancel_errors if e],
            }
        ),
        flush=True,
    )


while True:
    line = sys.stdin.readline()
    if not line:
        break
    request = json.loads(line)
    use_env(request.pop("env"))
    run_round(request)
