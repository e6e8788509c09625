/**
 * Pulumi's mock engine, extended where the program needs more than it gives: it accepts resource hooks (the
 * SDK's mock monitor announces them but has no `registerResourceHook`, so `new pulumi.ResourceHook(...)`
 * threw "this._monitor.registerResourceHook is not a function"), it records what the engine sees of each
 * registration beyond its inputs (provider, dependencies, hooks, protection), and it refuses a resource or an
 * invoke that would use a default provider the project disables, with the engine's own words. The tests and
 * the offline render then check the resource graph `pulumi up` builds.
 */
import * as pulumi from "@pulumi/pulumi";

/** What one `registerResource` (or a read) carried besides its inputs. */
export interface Registration {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  /** A read (`.get`, a StackReference) rather than a registration. */
  readonly read: boolean;
  /** `urn::id` of the explicit provider; undefined: the default provider. */
  readonly provider?: string;
  /** The component's providers by package (`providers` option). */
  readonly providers: Readonly<Record<string, string>>;
  /** URNs it depends on: `dependsOn`, its parent's, and every resource an input came from. */
  readonly dependencies: readonly string[];
  /** Per input property, the URNs its value came from. */
  readonly propertyDependencies: Readonly<Record<string, readonly string[]>>;
  /** Hook names bound per event (`beforeDelete`, ...), only events with some. */
  readonly hooks: Readonly<Record<string, readonly string[]>>;
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
}

/** A provider function call as the engine receives it. */
export interface InvokeRecord {
  readonly token: string;
  /** `urn::id` of the explicit provider; undefined: the default provider. */
  readonly provider?: string;
}

/** What an offline run saw, beyond what the mocks' callbacks get. */
export interface MonitorRecord {
  readonly registrations: Registration[];
  readonly invokes: InvokeRecord[];
  /** Names of the resource hooks the program registered. */
  readonly hooks: string[];
  /** Registrations (`register <urn>`) and invokes (`invoke <token>`) in the order the engine got them. */
  readonly events: string[];
}

/** The engine's refusal of a default provider the project disables (pkg/resource/deploy/providers). */
export function defaultProviderDenied(pkg: string, what: string): string {
  return `Default provider for '${pkg}' disabled. '${what}' must use an explicit provider.`;
}

/** The package of a type or invoke token (`kubernetes:core/v1:ConfigMap` -> `kubernetes`). */
function packageOf(token: string): string {
  return token.split(":")[0];
}

/** Whether the project's `disable` list (`pulumi:disable-default-providers`) covers `pkg`. */
function disabled(list: readonly string[], pkg: string): boolean {
  // The engine's own package (stack references, the stack itself) is never denied.
  return pkg !== "pulumi" && (list.includes("*") || list.includes(pkg));
}

type Callback = (err: Error | null, resp?: unknown) => void;

/** The parts of the SDK's protobuf requests read here (@pulumi/pulumi/proto/resource_pb). */
interface ProtoMap<V> {
  forEach(f: (value: V, key: string) => void): void;
}
interface HooksBinding {
  getBeforeCreateList(): string[];
  getAfterCreateList(): string[];
  getBeforeUpdateList(): string[];
  getAfterUpdateList(): string[];
  getBeforeDeleteList(): string[];
  getAfterDeleteList(): string[];
}
interface ReadRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProvider(): string;
}
interface RegisterRequest extends ReadRequest {
  getCustom(): boolean;
  getDependenciesList(): string[];
  getPropertydependenciesMap(): ProtoMap<{ getUrnsList(): string[] }>;
  getProvidersMap(): ProtoMap<string>;
  getProtect(): boolean;
  getRetainondelete(): boolean;
  getHooks(): HooksBinding | undefined;
}
interface InvokeRequest {
  getTok(): string;
  getProvider(): string;
}
/** The SDK's MockMonitor, as far as it is wrapped here. */
interface Monitor {
  registerResource(req: RegisterRequest, callback: Callback): unknown;
  readResource(req: ReadRequest, callback: Callback): unknown;
  invoke(req: InvokeRequest, callback: Callback): unknown;
  registerResourceHook?(req: { getName(): string }, callback: Callback): void;
}

function hookBinding(b: HooksBinding | undefined): Record<string, string[]> {
  if (!b) return {};
  const events: [string, string[]][] = [
    ["beforeCreate", b.getBeforeCreateList()],
    ["afterCreate", b.getAfterCreateList()],
    ["beforeUpdate", b.getBeforeUpdateList()],
    ["afterUpdate", b.getAfterUpdateList()],
    ["beforeDelete", b.getBeforeDeleteList()],
    ["afterDelete", b.getAfterDeleteList()],
  ];
  return Object.fromEntries(events.filter(([, names]) => names.length > 0));
}

/** The mock monitor's own URN of a registration (mocks.js `newUrn`), so that dependencies name the same. */
function urnOf(req: ReadRequest): string {
  const parent = req.getParent();
  const type = req.getType();
  const qualified = parent ? `${parent.split("::")[2].split("$").pop()}$${type}` : type;
  return `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${qualified}::${req.getName()}`;
}

function registration(req: RegisterRequest): Registration {
  const propertyDependencies: Record<string, string[]> = {};
  req.getPropertydependenciesMap().forEach((v, k) => {
    propertyDependencies[k] = v.getUrnsList();
  });
  const providers: Record<string, string> = {};
  req.getProvidersMap().forEach((v, k) => {
    providers[k] = v;
  });
  return {
    urn: urnOf(req),
    type: req.getType(),
    name: req.getName(),
    custom: req.getCustom(),
    read: false,
    ...(req.getProvider() ? { provider: req.getProvider() } : {}),
    providers,
    dependencies: req.getDependenciesList(),
    propertyDependencies,
    hooks: hookBinding(req.getHooks()),
    protect: req.getProtect(),
    retainOnDelete: req.getRetainondelete(),
  };
}

function readRegistration(req: ReadRequest): Registration {
  return {
    urn: urnOf(req),
    type: req.getType(),
    name: req.getName(),
    custom: true,
    read: true,
    ...(req.getProvider() ? { provider: req.getProvider() } : {}),
    providers: {},
    dependencies: [],
    propertyDependencies: {},
    hooks: {},
    protect: false,
    retainOnDelete: false,
  };
}

/**
 * `pulumi.runtime.setMocks`, then the extensions above on the monitor it installed. `disableDefaultProviders`
 * is the project's `pulumi:disable-default-providers` list (`["*"]`: every package).
 */
export async function setOfflineMocks(
  mocks: pulumi.runtime.Mocks,
  project: string,
  stack: string,
  preview: boolean,
  disableDefaultProviders: readonly string[] = [],
): Promise<MonitorRecord> {
  // The organization a self-managed backend names every stack with (a StackReference's first part).
  await pulumi.runtime.setMocks(mocks, project, stack, preview, "organization");
  const monitor = pulumi.runtime.getMonitor() as unknown as Monitor;
  const record: MonitorRecord = { registrations: [], invokes: [], hooks: [], events: [] };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    const r = registration(req);
    const isProvider = r.type.startsWith("pulumi:providers:");
    if (
      r.custom &&
      !isProvider &&
      r.provider === undefined &&
      disabled(disableDefaultProviders, packageOf(r.type))
    ) {
      callback(new Error(defaultProviderDenied(packageOf(r.type), r.urn)));
      return;
    }
    record.registrations.push(r);
    record.events.push(`register ${r.urn}`);
    return register(req, callback);
  };
  const read = monitor.readResource.bind(monitor);
  monitor.readResource = (req, callback) => {
    const r = readRegistration(req);
    record.registrations.push(r);
    record.events.push(`read ${r.urn}`);
    return read(req, callback);
  };
  const invoke = monitor.invoke.bind(monitor);
  monitor.invoke = (req, callback) => {
    const token = req.getTok();
    const provider = req.getProvider();
    if (!provider && disabled(disableDefaultProviders, packageOf(token))) {
      callback(new Error(defaultProviderDenied(packageOf(token), token)));
      return;
    }
    record.invokes.push({ token, ...(provider ? { provider } : {}) });
    record.events.push(`invoke ${token}`);
    return invoke(req, callback);
  };
  // Registered, never run: a hook runs on a real engine's operation, which mocks have none of.
  monitor.registerResourceHook = (req, callback) => {
    record.hooks.push(req.getName());
    callback(null, {});
  };
  return record;
}
