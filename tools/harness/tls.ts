/**
 * A throwaway PKI for the TLS tests, made with the `openssl` CLI: a CA, and certificates it signs for
 * servers (SANs, serverAuth). Keys are EC P-256 (fast to make; PostgreSQL, PgBouncer and Node all take
 * them). Key files belong to the `postgres` user with mode 0600, as PostgreSQL demands of its server key.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile, execFileSync } from "node:child_process";
import { makeRunDir, requireBinary, runAsIds } from "./proc";

const OPENSSL = "/usr/bin/openssl";

export interface TestCa {
  readonly name: string;
  /** Where the CA and every certificate it issues are written. */
  readonly dir: string;
  readonly certFile: string;
  /** Only the test (root) reads it. */
  readonly keyFile: string;
  readonly certPem: string;
}

export interface IssuedCert {
  readonly certFile: string;
  /** Owned by `postgres`, mode 0600. */
  readonly keyFile: string;
  readonly certPem: string;
  /** Upper-case hex, colon-free, as Node's `PeerCertificate.serialNumber` spells it. */
  readonly serialNumber: string;
  /** `AA:BB:…`, as Node's `PeerCertificate.fingerprint256` spells it. */
  readonly fingerprint256: string;
}

export interface IssueOptions {
  readonly commonName: string;
  /** subjectAltName DNS entries. @default none */
  readonly dnsNames?: readonly string[];
  /** subjectAltName IP entries. @default none */
  readonly ipAddresses?: readonly string[];
  /** @default 30 */
  readonly days?: number;
  /** The files' base name in the CA's dir. @default the common name */
  readonly fileName?: string;
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

const opensslError = (args: readonly string[], e: unknown): Error => {
  const err = (e as { stderr?: Buffer | string }).stderr?.toString().trim() ?? "";
  return new Error(`openssl ${args.slice(0, 2).join(" ")} failed: ${err || (e as Error).message}`);
};

/** Synchronous, so that the harness's default PKI can be made where the ini is rendered (a few ms a call). */
function openssl(args: readonly string[]): void {
  try {
    execFileSync(requireBinary(OPENSSL, "openssl"), [...args], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 20_000,
    });
  } catch (e) {
    throw opensslError(args, e);
  }
}

/** {@link openssl} without blocking the event loop (a balancer in the same process goes on serving meanwhile). */
function opensslAsync(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(requireBinary(OPENSSL, "openssl"), [...args], { timeout: 20_000 }, (e, _out, stderr) =>
      e ? reject(opensslError(args, { stderr, message: e.message })) : resolve(),
    ),
  );
}

/**
 * What makes a CA or a certificate: yields each openssl run's arguments, returns the result. Written once,
 * run either way: {@link runSync} (the functions the harness renders with) or {@link runAsync}.
 */
type Plan<T> = Generator<readonly string[], T, undefined>;

function runSync<T>(plan: Plan<T>): T {
  let step = plan.next();
  while (!step.done) {
    try {
      openssl(step.value);
    } catch (e) {
      // into the plan, so that its `finally` cleans up, and out again
      step = plan.throw(e);
      continue;
    }
    step = plan.next();
  }
  return step.value;
}

async function runAsync<T>(plan: Plan<T>): Promise<T> {
  let step = plan.next();
  while (!step.done) {
    try {
      await opensslAsync(step.value);
    } catch (e) {
      step = plan.throw(e);
      continue;
    }
    step = plan.next();
  }
  return step.value;
}

function ownKey(file: string): void {
  const { uid, gid } = runAsIds();
  fs.chownSync(file, uid, gid);
  fs.chmodSync(file, 0o600);
}

/** A self-signed CA (`CN=<name>`, CA:TRUE, keyCertSign) in `dir` (which must exist). */
export function makeTestCa(dir: string, name: string): TestCa {
  return runSync(caPlan(dir, name));
}

/** {@link makeTestCa}, leaving the event loop free while openssl runs. */
export function makeTestCaAsync(dir: string, name: string): Promise<TestCa> {
  return runAsync(caPlan(dir, name));
}

function* caPlan(dir: string, name: string): Plan<TestCa> {
  const base = path.join(dir, name.replace(/[^A-Za-z0-9_.-]/g, "_"));
  const certFile = `${base}.ca.crt`;
  const keyFile = `${base}.ca.key`;
  yield [
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "30",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ];
  fs.chmodSync(keyFile, 0o600);
  fs.chmodSync(certFile, 0o644);
  return { name, dir, certFile, keyFile, certPem: fs.readFileSync(certFile, "utf8") };
}

/** A server certificate signed by `ca`, with the SANs asked for and a random serial. */
export function issueCert(ca: TestCa, opts: IssueOptions): IssuedCert {
  return runSync(certPlan(ca, opts));
}

/** {@link issueCert}, leaving the event loop free while openssl runs. */
export function issueCertAsync(ca: TestCa, opts: IssueOptions): Promise<IssuedCert> {
  return runAsync(certPlan(ca, opts));
}

function* certPlan(ca: TestCa, opts: IssueOptions): Plan<IssuedCert> {
  const base = path.join(ca.dir, (opts.fileName ?? opts.commonName).replace(/[^A-Za-z0-9_.-]/g, "_"));
  const keyFile = `${base}.key`;
  const certFile = `${base}.crt`;
  const csrFile = `${base}.csr`;
  const extFile = `${base}.ext`;
  const sans = [
    ...(opts.dnsNames ?? []).map((d) => `DNS:${d}`),
    ...(opts.ipAddresses ?? []).map((ip) => `IP:${ip}`),
  ];
  fs.writeFileSync(
    extFile,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      ...(sans.length ? [`subjectAltName=${sans.join(",")}`] : []),
      "",
    ].join("\n"),
  );
  try {
    yield ["req", "-new", ...EC_KEY, "-keyout", keyFile, "-out", csrFile, "-subj", `/CN=${opts.commonName}`];
    yield [
      "x509",
      "-req",
      "-in",
      csrFile,
      "-CA",
      ca.certFile,
      "-CAkey",
      ca.keyFile,
      "-set_serial",
      `0x${crypto.randomBytes(16).toString("hex")}`,
      "-days",
      String(opts.days ?? 30),
      "-extfile",
      extFile,
      "-out",
      certFile,
    ];
  } finally {
    fs.rmSync(csrFile, { force: true });
    fs.rmSync(extFile, { force: true });
  }
  ownKey(keyFile);
  fs.chmodSync(certFile, 0o644);
  const certPem = fs.readFileSync(certFile, "utf8");
  const x509 = new crypto.X509Certificate(certPem);
  return {
    certFile,
    keyFile,
    certPem,
    serialNumber: x509.serialNumber.toUpperCase(),
    fingerprint256: x509.fingerprint256,
  };
}

/** One version of a mounted TLS Secret: file name in the volume → PEM text. */
export type SecretFiles = Readonly<Record<string, string>>;

/**
 * A directory laid out the way the kubelet mounts a Secret or projected volume (its atomic writer,
 * pkg/volume/util/atomic_writer.go): the data in a timestamped `..<ts>/` dir, `..data -> ..<ts>`, and each
 * file a symlink `name -> ..data/name`. {@link KubeletTlsDir.update} replaces the data as the kubelet does on
 * every Secret update: a new `..<ts>/`, a temp symlink to it, renamed over `..data` (the one atomic step),
 * then the old dir removed. Everything belongs to `postgres`; keys (`*.key`) are 0600.
 */
export interface KubeletTlsDir {
  readonly dir: string;
  /** The path of a file as a reader sees it (`<dir>/<name>`, through `..data`). */
  file(name: string): string;
  /** Swaps in new contents atomically; returns `Date.now()` at the rename of `..data`. */
  update(files: SecretFiles): number;
  /** Where `..data` points now. */
  current(): string;
}

export function kubeletTlsDir(dir: string, files: SecretFiles): KubeletTlsDir {
  const { uid, gid } = runAsIds();
  let n = 0;
  const writeVersion = (f: SecretFiles): string => {
    const ts = `..2026_01_01_00_00_0${n}.${process.pid}${n}`;
    n++;
    const vdir = path.join(dir, ts);
    fs.mkdirSync(vdir, { mode: 0o755 });
    fs.chownSync(vdir, uid, gid);
    for (const [name, text] of Object.entries(f)) {
      const file = path.join(vdir, name);
      const mode = name.endsWith(".key") ? 0o600 : 0o644;
      fs.writeFileSync(file, text, { mode });
      fs.chownSync(file, uid, gid);
      fs.chmodSync(file, mode);
    }
    return ts;
  };
  const link = (target: string, at: string) => {
    fs.symlinkSync(target, at);
    fs.lchownSync(at, uid, gid);
  };
  link(writeVersion(files), path.join(dir, "..data"));
  for (const name of Object.keys(files)) link(path.join("..data", name), path.join(dir, name));
  return {
    dir,
    file: (name) => path.join(dir, name),
    current: () => fs.readlinkSync(path.join(dir, "..data")),
    update(f) {
      const old = fs.readlinkSync(path.join(dir, "..data"));
      const ts = writeVersion(f);
      link(ts, path.join(dir, "..data_tmp"));
      fs.renameSync(path.join(dir, "..data_tmp"), path.join(dir, "..data"));
      const at = Date.now();
      fs.rmSync(path.join(dir, old), { recursive: true, force: true });
      return at;
    },
  };
}

/** The name clients verify (verify-full) while connecting to 127.0.0.1: every local certificate's DNS SAN. */
export const LOCAL_NAME = "localhost";

/** A certificate for a local server: SANs {@link LOCAL_NAME} and 127.0.0.1. */
export function issueLocalCert(ca: TestCa, commonName: string, fileName = commonName): IssuedCert {
  return issueCert(ca, localCertOptions(commonName, fileName));
}

/** {@link issueLocalCert}, leaving the event loop free while openssl runs. */
export function issueLocalCertAsync(
  ca: TestCa,
  commonName: string,
  fileName = commonName,
): Promise<IssuedCert> {
  return issueCertAsync(ca, localCertOptions(commonName, fileName));
}

const localCertOptions = (commonName: string, fileName: string): IssueOptions => ({
  commonName,
  dnsNames: [LOCAL_NAME],
  ipAddresses: ["127.0.0.1"],
  fileName,
});

/** The harness's own PKI: one CA, and a certificate for `localhost`/`127.0.0.1` that both servers serve. */
export interface HarnessPki {
  readonly ca: TestCa;
  /** What PgBouncer serves to clients and PostgreSQL serves to PgBouncer (SANs localhost, 127.0.0.1). */
  readonly server: IssuedCert;
}

let pki: HarnessPki | undefined;

/**
 * The PKI every harness server uses unless a test brings its own: made once per Node process in a temp dir
 * (removed when the process exits). The stacks render TLS on both legs (PgBouncer verifies PostgreSQL with
 * verify-full against 127.0.0.1), so the local servers need certificates from a CA PgBouncer is told of.
 */
export function harnessPki(): HarnessPki {
  if (pki) return pki;
  const dir = makeRunDir("harness-pki");
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  const ca = makeTestCa(dir, "clipper-harness-ca");
  const server = issueLocalCert(ca, LOCAL_NAME, "server");
  pki = { ca, server };
  return pki;
}
