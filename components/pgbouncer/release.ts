/**
 * The PgBouncer release the stacks deploy and the tests run, defined once in `pgbouncer-release.json`: the stacks'
 * default `pgbouncer.version`, the harness's binary check and `tools/install-test-deps.sh` (bash reads the
 * same file) all take it from here.
 */
// Not `release.json`: Node would resolve `./release` to it before this file.
import release from "./pgbouncer-release.json";

export interface PgBouncerRelease {
  /** MAJOR.MINOR.PATCH, the image tag and what `pgbouncer --version` prints. */
  readonly version: string;
  /** sha256 of the release tarball (the vendored copy and the upstream file). */
  readonly sha256: string;
  /** Where upstream publishes the tarball. */
  readonly upstreamUrl: string;
  /** The vendored tarball, relative to the `shared` folder beside the project. */
  readonly vendoredTarball: string;
}

export const PGBOUNCER_RELEASE: PgBouncerRelease = release;
