/**
 * Which PgBouncer binary the harness runs: the release the stacks deploy (`PGBOUNCER_RELEASE`), built by
 * `tools/install-test-deps.sh` into `.deps/pgbouncer/`, or one the user already has. Debian's 1.18 is run
 * only by the tests of the version gating, which ask for it by path.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PGBOUNCER_RELEASE } from "../../components/pgbouncer";
import { runOk } from "../common";

/** Debian 12's PgBouncer (1.18.0): an older release, for the tests that exercise the version gating. */
export const DEBIAN_PGBOUNCER_BIN = "/usr/sbin/pgbouncer";

/** Where `tools/install-test-deps.sh` puts the release it builds (gitignored). */
export const PROJECT_PGBOUNCER_BIN = path.resolve(__dirname, "../../.deps/pgbouncer/bin/pgbouncer");

/** The release a binary reports (`PgBouncer 1.25.2` → `1.25.2`), or undefined when it cannot run. */
export function binaryVersion(bin: string): string | undefined {
  try {
    const out = execFileSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
    return /^PgBouncer (\d+\.\d+\.\d+)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const file = path.join(dir || ".", name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

let resolved: string | undefined;

/**
 * The PgBouncer binary of the release the stacks deploy, first found of: `$PGBOUNCER_BIN` (which must be
 * that release), `.deps/pgbouncer/bin/pgbouncer`, a `pgbouncer` on PATH that reports the release. Fails
 * with what to run when none is there.
 */
export function pgbouncerBinary(): string {
  if (resolved) return resolved;
  const want = PGBOUNCER_RELEASE.version;
  const env = process.env.PGBOUNCER_BIN;
  if (env) {
    const got = binaryVersion(env);
    if (got !== want) {
      throw new Error(
        `harness: PGBOUNCER_BIN=${env} reports ${got ? `PgBouncer ${got}` : "no PgBouncer version"}; ` +
          `the stacks deploy ${want}`,
      );
    }
    return (resolved = env);
  }
  for (const candidate of [PROJECT_PGBOUNCER_BIN, onPath("pgbouncer")]) {
    if (candidate && binaryVersion(candidate) === want) return (resolved = candidate);
  }
  throw new Error(
    `harness: no PgBouncer ${want} (the release the stacks deploy): run "bash tools/install-test-deps.sh" ` +
      `(it builds ${PROJECT_PGBOUNCER_BIN}), or set PGBOUNCER_BIN to a pgbouncer ${want} binary`,
  );
}

/** The release of a local PgBouncer, from `pgbouncer --version` ("PgBouncer 1.25.2" → "1.25.2"). */
export async function localPgBouncerVersion(bin = pgbouncerBinary()): Promise<string> {
  const out = await runOk(bin, ["--version"]);
  const m = /PgBouncer (\d+\.\d+\.\d+)/.exec(out);
  if (!m) throw new Error(`harness: cannot read a version from "${bin} --version": ${out.trim()}`);
  return m[1];
}
