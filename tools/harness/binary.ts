/**
 * Which PgBouncer binary the harness runs: the release the stacks deploy (`PGBOUNCER_RELEASE`), built by
 * `tools/install-test-deps.sh` into `.deps/pgbouncer/`, or one the user already has. Debian's 1.18 is run
 * only by the tests of the version gating, which ask for it by path. The fleet's cancel tests also run that
 * release built with the peer-pool patch ({@link patchedPgbouncerBinary}), which the stacks do not deploy.
 */
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
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

/**
 * The patch that makes PgBouncer forward every queued cancel to a TCP peer, not only the first (its preamble
 * says what it fixes): for the fleet's cancel tests and for a user who builds their own image, not what the
 * stacks deploy.
 */
export const PEER_POOL_CANCELS_PATCH = path.resolve(
  __dirname,
  `patches/pgbouncer-${PGBOUNCER_RELEASE.version}-peer-pool-cancels.patch`,
);

/** Where `tools/install-test-deps.sh` puts the release built with {@link PEER_POOL_CANCELS_PATCH} (gitignored). */
export const PATCHED_PGBOUNCER_BIN = path.resolve(
  __dirname,
  "../../.deps/pgbouncer-peer-pool-cancels/bin/pgbouncer",
);

/**
 * The build's key as `tools/install-test-deps.sh` writes it beside the build: the release, then the first 16
 * hex digits of the patch's sha256.
 */
export function patchedBuildKey(patch = PEER_POOL_CANCELS_PATCH): string {
  const sha = crypto.createHash("sha256").update(fs.readFileSync(patch)).digest("hex");
  return `${PGBOUNCER_RELEASE.version}+peer-pool-cancels-${sha.slice(0, 16)}`;
}

let patchedChecked = false;

/**
 * {@link PATCHED_PGBOUNCER_BIN}, once it reports the release the stacks deploy and was built from the patch
 * as it is now (a changed patch needs a new build). Fails with what to run otherwise. Checked once per process.
 */
export function patchedPgbouncerBinary(): string {
  if (patchedChecked) return PATCHED_PGBOUNCER_BIN;
  const want = PGBOUNCER_RELEASE.version;
  const run = `run "bash tools/install-test-deps.sh" (it builds ${PATCHED_PGBOUNCER_BIN})`;
  const got = binaryVersion(PATCHED_PGBOUNCER_BIN);
  if (got !== want) {
    throw new Error(
      `harness: no PgBouncer ${want} built with ${path.basename(PEER_POOL_CANCELS_PATCH)} ` +
        `(${got ? `${PATCHED_PGBOUNCER_BIN} reports ${got}` : "none"}): ${run}`,
    );
  }
  const keyFile = path.join(path.dirname(PATCHED_PGBOUNCER_BIN), "..", "key");
  const built = fs.existsSync(keyFile) ? fs.readFileSync(keyFile, "utf8").trim() : "no key";
  if (built !== patchedBuildKey()) {
    throw new Error(
      `harness: ${PATCHED_PGBOUNCER_BIN} was built as ${built}, the patch is now ${patchedBuildKey()}: ${run}`,
    );
  }
  patchedChecked = true;
  return PATCHED_PGBOUNCER_BIN;
}
