/**
 * Runs the program under the SDK's mocks, offline, and records every resource registration exactly as
 * the SDK sends it to the engine: type, name, parent, inputs (secret values marked as the SDK marks
 * them) and the resource options (retainOnDelete, deleteBeforeReplace, dependsOn, provider...).
 * Used by `synth` and by the tests. It proves what the program asks for, not how Docker, Caddy or
 * Cloudflare would carry it out.
 */
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

/** The SDK's marker of a secret value on the wire. */
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";
/** The SDK's marker of an unknown value during preview. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
export const SECRET_PLACEHOLDER = "[secret]";
/** Prefix of the fake generated passwords. */
export const MOCK_PASSWORD_PREFIX = "mock-password-";

export interface RecordedOptions {
  protect: boolean;
  retainOnDelete?: boolean;
  deleteBeforeReplace?: boolean;
  dependsOn: string[];
  provider?: string;
  providers: Record<string, string>;
  ignoreChanges: string[];
  replaceOnChanges: string[];
  aliases: number;
  /** The provider ID of an existing resource to take over (the `import` option). */
  import?: string;
}

export interface RecordedResource {
  type: string;
  name: string;
  urn: string;
  /** Parent URN, if any. */
  parent?: string;
  custom: boolean;
  /** Inputs with every secret value replaced by "[secret]". */
  inputs: Record<string, unknown>;
  /** Dotted paths of the inputs the SDK marked secret. */
  secretPaths: string[];
  /** Inputs with secret values in clear, for assertions in tests only: never written anywhere. */
  clearInputs: Record<string, unknown>;
  options: RecordedOptions;
}

export interface RecordedInvoke {
  token: string;
  args: Record<string, unknown>;
}

/** Deterministic fake values, so synth output is stable run to run. */
function fake(kind: string, seed: string, length = 12): string {
  return `${kind}${crypto.createHash("sha256").update(seed).digest("hex").slice(0, length)}`;
}

/** The ID the fake provider gives a resource (what a `triggers` input holds when it names one). */
export function mockId(type: string, name: string): string {
  return fake("id-", `${type}::${name}`);
}

/**
 * Replaces SDK secret wrappers by the placeholder (or, with `reveal`, by their value) and lists
 * where they were.
 */
export function unwrapSecrets(
  value: unknown,
  path: string,
  secrets: string[],
  reveal = false,
): unknown {
  if (Array.isArray(value)) {
    return value.map((v, i) => unwrapSecrets(v, `${path}[${i}]`, secrets, reveal));
  }
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) {
      secrets.push(path);
      return reveal ? unwrapSecrets(obj.value, path, [], reveal) : SECRET_PLACEHOLDER;
    }
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(obj).sort()) {
      out[k] = unwrapSecrets(obj[k], path ? `${path}.${k}` : k, secrets, reveal);
    }
    return out;
  }
  if (value === UNKNOWN) return "[unknown]";
  return value;
}

/** The state a fake provider returns: inputs plus the outputs the program reads. */
function fakeState(args: pulumi.runtime.MockResourceArgs): {
  id: string;
  state: Record<string, unknown>;
} {
  const state: Record<string, unknown> = { ...args.inputs };
  const id = mockId(args.type, args.name);
  switch (args.type) {
    case "docker:index/container:Container":
    case "docker:index/network:Network":
    case "docker:index/volume:Volume":
      // Docker names unnamed resources itself; Pulumi auto-names them <resource name>-<random>.
      state.name = args.inputs.name ?? `${args.name}-${fake("", args.name, 7)}`;
      break;
    case "docker:index/remoteImage:RemoteImage":
      // The engine-local image id, as Docker reports it; containers are created from it.
      state.imageId = `sha256:${fake("", String(args.inputs.name), 64)}`;
      state.repoDigest = `${String(args.inputs.name).split(":")[0]}@sha256:${fake("", `digest:${args.inputs.name}`, 64)}`;
      break;
    case "random:index/randomPassword:RandomPassword":
      state.result = fake(MOCK_PASSWORD_PREFIX, args.name, 20);
      break;
    case "postgresql:index/role:Role":
    case "postgresql:index/database:Database":
      state.name = args.inputs.name ?? args.name;
      break;
  }
  return { id, state };
}

export interface MockEngine {
  readonly resources: RecordedResource[];
  readonly invokes: RecordedInvoke[];
  /** Waits until every registration the program started has reached the engine. */
  settle(): Promise<void>;
  byName(name: string): RecordedResource;
  childrenOf(urn: string): RecordedResource[];
}

export interface MockEngineOptions {
  project: string;
  stack: string;
  /** Config values, "namespace:key" -> string (objects as JSON). */
  config: Record<string, string>;
  /** Keys of `config` that are secret. */
  secretKeys?: string[];
  /** Run as a preview (unknown outputs) instead of an update; default false. */
  preview?: boolean;
}

/** Sets up mocks and config for one program run in this process. */
export async function startMockEngine(options: MockEngineOptions): Promise<MockEngine> {
  const resources: RecordedResource[] = [];
  const invokes: RecordedInvoke[] = [];
  const mocks: pulumi.runtime.Mocks = {
    newResource: (args) => fakeState(args),
    call: (args) => {
      invokes.push({ token: args.token, args: args.inputs });
      switch (args.token) {
        case "docker:index/getNetwork:getNetwork":
          return {
            id: fake("net-", args.inputs.name),
            name: args.inputs.name,
            driver: "bridge",
            internal: false,
          };
        case "cloudflare:index/getZone:getZone": {
          const zone = args.inputs.filter?.name;
          return {
            id: fake("", zone, 32),
            zoneId: fake("", zone, 32),
            name: zone,
            status: "active",
          };
        }
        default:
          throw new Error(
            `unexpected invoke ${args.token}: the mock engine knows no such data source`,
          );
      }
    },
  };
  await pulumi.runtime.setMocks(mocks, options.project, options.stack, options.preview ?? false);
  pulumi.runtime.setAllConfig(options.config, options.secretKeys);

  // Record each registration as the SDK sends it, before the mock monitor answers it.
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: unknown): unknown;
  };
  const original = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
    const secretPaths: string[] = [];
    const raw = req.getObject()?.toJavaScript() ?? {};
    const inputs = unwrapSecrets(raw, "", secretPaths) as Record<string, unknown>;
    const parent = req.getParent() || undefined;
    const type = req.getType();
    const name = req.getName();
    let qualified = type;
    if (parent) qualified = `${parent.split("::")[2].split("$").pop()}$${type}`;
    resources.push({
      type,
      name,
      urn: `urn:pulumi:${options.stack}::${options.project}::${qualified}::${name}`,
      parent,
      custom: req.getCustom(),
      inputs,
      secretPaths,
      clearInputs: unwrapSecrets(raw, "", [], true) as Record<string, unknown>,
      options: {
        protect: req.getProtect() ?? false,
        retainOnDelete: req.hasRetainondelete() ? req.getRetainondelete() : undefined,
        deleteBeforeReplace: req.getDeletebeforereplacedefined()
          ? req.getDeletebeforereplace()
          : undefined,
        dependsOn: [...req.getDependenciesList()].sort(),
        provider: req.getProvider() || undefined,
        providers: Object.fromEntries(req.getProvidersMap().toArray()),
        ignoreChanges: req.getIgnorechangesList(),
        replaceOnChanges: req.getReplaceonchangesList(),
        aliases: req.getAliasesList().length,
        import: req.getImportid() || undefined,
      },
    });
    return original(req, cb);
  };

  return {
    resources,
    invokes,
    // waitForRPCs is marked internal in the SDK's typings but is what `disconnect` awaits.
    settle: () => (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs(),
    byName(name: string) {
      const found = resources.filter((r) => r.name === name);
      if (found.length !== 1)
        throw new Error(`expected one resource named ${name}, found ${found.length}`);
      return found[0];
    },
    childrenOf(urn: string) {
      return resources.filter((r) => r.parent === urn);
    },
  };
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProtect(): boolean | undefined;
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
  hasRetainondelete(): boolean;
  getRetainondelete(): boolean | undefined;
  getDeletebeforereplace(): boolean;
  getDeletebeforereplacedefined(): boolean;
  getDependenciesList(): string[];
  getProvider(): string;
  getProvidersMap(): { toArray(): [string, string][] };
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
  getAliasesList(): unknown[];
  getImportid(): string;
}

/** Awaits an Output's value (and whether it is secret); an assertion needs the value, not the wrapper. */
export async function resolveOutput<T>(
  output: pulumi.Output<T>,
): Promise<{ value: T; secret: boolean }> {
  const value = await new Promise<T>((resolve) =>
    output.apply((v) => {
      resolve(v);
      return v;
    }),
  );
  const secret = await pulumi.isSecret(output);
  return { value, secret };
}
