/**
 * Realizes a program's desired state on a real Docker engine with the docker CLI: the resources the
 * program registers under the SDK's mocks (what `synth` writes to manifest.json, here with secret
 * values in clear, in memory and in this run's private 0700 directory only), created in dependency
 * order, concurrently where the order allows, as the providers would create them. Every input is
 * either honoured or refused by name before anything is created: nothing is silently dropped.
 * Everything it creates carries this run's label, and `cleanup` removes exactly that.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mockId, resolveOutput, type RecordedResource } from "../../scripts/mock-engine";
import { runUnderMocks } from "../../scripts/synth";
import { docker, imageExists, must, run } from "./docker";
import { PG_KNOWN, PG_TYPES, SharedCluster, pgProblems } from "./postgres";

// No systemd user manager here: the backup timers' install commands write their unit files only (and
// say so); the suites check those files and run the service's command themselves.
process.env.AGI_TIMERS ??= "files";

export const RUN_LABEL = "agi.engine-suite.run";
export const RESOURCE_LABEL = "agi.engine-suite.resource";

const T = {
  provider: "pulumi:providers:docker",
  network: "docker:index/network:Network",
  volume: "docker:index/volume:Volume",
  image: "docker:index/remoteImage:RemoteImage",
  container: "docker:index/container:Container",
  command: "command:local:Command",
  password: "random:index/randomPassword:RandomPassword",
  pgProvider: "pulumi:providers:postgresql",
  pgRole: "postgresql:index/role:Role",
  pgDatabase: "postgresql:index/database:Database",
  pgGrant: "postgresql:index/grant:Grant",
} as const;

/** Inputs the harness honours, per resource type; nested objects list their own keys. */
const KNOWN: Record<string, Record<string, true | Record<string, true>>> = {
  [T.provider]: { host: true },
  [T.network]: { name: true, driver: true, internal: true, labels: { label: true, value: true } },
  [T.volume]: { name: true, labels: { label: true, value: true } },
  [T.image]: { name: true, keepLocally: true },
  // triggers: a change replaces the command; the harness creates once, so it has nothing to honour.
  [T.command]: { create: true, update: true, delete: true, stdin: true, triggers: true },
  [T.password]: { length: true, special: true },
  // The PostgreSQL provider's resources, realized with psql in the cluster container (postgres.ts).
  ...PG_KNOWN,
  [T.container]: {
    name: true,
    image: true,
    envs: true,
    entrypoints: true,
    command: true,
    uploads: { file: true, content: true, executable: true, permissions: true },
    mounts: { type: true, source: true, target: true, readOnly: true },
    networksAdvanced: { name: true, aliases: true },
    ports: { internal: true, external: true, ip: true, protocol: true },
    healthcheck: { tests: true, interval: true, timeout: true, startPeriod: true, retries: true },
    wait: true,
    waitTimeout: true,
    memory: true,
    memoryReservation: true,
    cpus: true,
    restart: true,
    logDriver: true,
    logOpts: true,
    securityOpts: true,
    capabilities: { drops: true, adds: true },
    labels: { label: true, value: true },
    user: true,
    stopSignal: true,
    stopTimeout: true,
    destroyGraceSeconds: true,
  },
};

/** The Docker endpoint this harness drives; a provider for any other is refused. */
const LOCAL_DOCKER = "unix:///var/run/docker.sock";

export interface Desired {
  resources: RecordedResource[];
}

/**
 * Runs the program under mocks (as an update, so every output is known) and returns what it
 * registered. Sequential only: the SDK's runtime is global to the process.
 */
export async function desiredState(
  root: string,
  stack: string,
  sitesDir: string,
  secretValues: Record<string, string> = {},
): Promise<Desired> {
  const { engine, program } = await runUnderMocks(
    root,
    stack,
    sitesDir,
    "sites",
    false,
    secretValues,
  );
  await resolveOutput(program.inventory);
  await resolveOutput(program.caddy);
  await engine.settle();
  return { resources: [...engine.resources] };
}

/** Every input or option the harness cannot honour, as "<type> <name>: <what>". */
export function unsupported(resources: readonly RecordedResource[]): string[] {
  const problems: string[] = [];
  for (const r of resources) {
    const where = `${r.type} ${r.name}`;
    if (!r.custom) {
      if (Object.keys(r.inputs).length)
        problems.push(`${where}: component inputs are not honoured`);
      continue;
    }
    const known = KNOWN[r.type];
    if (!known) {
      problems.push(`${where}: resource type is not honoured by the engine harness`);
      continue;
    }
    if (r.options.import) problems.push(`${where}: option import is not honoured`);
    if (r.options.protect) problems.push(`${where}: option protect is not honoured`);
    // A whole top-level input may be ignored (updates compare without it); a path inside one is not honoured.
    const deep = r.options.ignoreChanges.filter((p) => !/^[A-Za-z]+$/.test(p));
    if (deep.length)
      problems.push(`${where}: option ignoreChanges ${deep.join(", ")} is not honoured`);
    // The command SDK marks its triggers as replace-on-change itself; nothing else is honoured.
    const replaceOn = r.options.replaceOnChanges.filter(
      (p) => !(r.type === T.command && p === "triggers[*]"),
    );
    if (replaceOn.length)
      problems.push(`${where}: option replaceOnChanges ${replaceOn.join(", ")} is not honoured`);
    for (const [key, value] of Object.entries(r.clearInputs)) {
      const spec = known[key];
      if (!spec) {
        problems.push(`${where}: input ${key} is not honoured`);
        continue;
      }
      if (spec === true) continue;
      const items = Array.isArray(value) ? value : [value];
      for (const item of items) {
        for (const sub of Object.keys((item ?? {}) as object)) {
          if (!spec[sub]) problems.push(`${where}: input ${key}.${sub} is not honoured`);
        }
      }
    }
    if (JSON.stringify(r.clearInputs).includes("[unknown]")) {
      problems.push(`${where}: an input is unknown (preview value)`);
    }
    if (r.type === T.provider && r.clearInputs.host !== LOCAL_DOCKER) {
      problems.push(`${where}: input host ${str(r.clearInputs.host)} is not this machine's engine`);
    }
    if (PG_TYPES.has(r.type)) problems.push(...pgProblems(r).map((m) => `${where}: ${m}`));
    if (r.type === T.container) {
      for (const e of (r.clearInputs.envs as string[] | undefined) ?? []) {
        if (e.includes("\n")) problems.push(`${where}: input envs holds a value with a newline`);
      }
    }
  }
  return problems;
}

interface Applied {
  resource: RecordedResource;
  /** Docker's name of the container, network or volume. */
  dockerName?: string;
}

/** What one update does with one resource of the desired state, as Pulumi's engine would. */
type Step = "create" | "same" | "update" | "replace";

/** The outcome of an update: what was done, by resource name, in the order it happened. */
export interface UpdateReport {
  created: string[];
  updated: string[];
  replaced: string[];
  deleted: string[];
  /** Deleted resources whose engine object was left alone (retainOnDelete). */
  retained: string[];
}

export interface HarnessOptions {
  /** Called with progress lines. */
  log?: (m: string) => void;
}

/** The inputs an update compares: all but those the resource's `ignoreChanges` names, as the engine does. */
function comparable(r: RecordedResource): Record<string, unknown> {
  const ignored = new Set(r.options.ignoreChanges);
  return Object.fromEntries(Object.entries(r.clearInputs).filter(([k]) => !ignored.has(k)));
}

export class Harness {
  readonly runId = `r${Date.now().toString(36)}${crypto.randomBytes(3).toString("hex")}`;
  /** 0700: env files and uploads with clear secret values pass through here, and are removed. */
  readonly privateDir = fs.mkdtempSync(path.join(os.tmpdir(), "agi-engine-private-"));
  readonly applied = new Map<string, Applied>();
  /** What exists, in the order it was created, for removal in reverse (old versions included). */
  private readonly order: Applied[] = [];
  /**
   * Replaced resources left for deletion by an update that failed: as in Pulumi's state, they are
   * deleted at the start of the next update (retainOnDelete honoured).
   */
  private pendingDeletes: Applied[] = [];
  private seq = 0;
  private readonly log: (m: string) => void;
  /** Directories to remove at cleanup (the test project, host root). */
  readonly ownedDirs: string[] = [];
  /** The shared clusters the PostgreSQL providers reach, by provider URN. */
  private readonly clusters = new Map<string, SharedCluster>();
  /** The last desired state applied: what a recreated container is made from. */
  private lastDesired?: Desired;

  constructor(options: HarnessOptions = {}) {
    fs.chmodSync(this.privateDir, 0o700);
    this.log = options.log ?? (() => undefined);
  }

  get labelFilter(): string {
    return `label=${RUN_LABEL}=${this.runId}`;
  }

  /** The Docker name of a created resource, by the program's resource name. */
  dockerName(resourceName: string): string {
    const found = [...this.applied.values()].filter((a) => a.resource.name === resourceName);
    if (found.length !== 1 || !found[0].dockerName) {
      throw new Error(`harness: no created docker object for ${resourceName}`);
    }
    return found[0].dockerName;
  }

  /** The cluster a PostgreSQL resource's provider reaches. */
  private clusterOf(r: RecordedResource): SharedCluster {
    const c = this.clusters.get(providerUrn(r) ?? "");
    if (!c) throw new Error(`${r.name}: its PostgreSQL provider was not created by this run`);
    return c;
  }

  /**
   * The container of this run that publishes the PostgreSQL provider's host:port, as the provider
   * would reach it; anything else (a cluster this run did not create) is refused.
   */
  private publishedBy(provider: RecordedResource): string {
    const host = str(provider.clearInputs.host);
    const port = Number(provider.clearInputs.port);
    const found = [...this.applied.values()].filter(
      (a) =>
        a.resource.type === T.container &&
        ((a.resource.clearInputs.ports as Record<string, unknown>[] | undefined) ?? []).some(
          (p) => p.ip === host && Number(p.external) === port && (p.protocol ?? "tcp") === "tcp",
        ),
    );
    if (found.length !== 1 || !found[0].dockerName) {
      throw new Error(
        `${provider.name}: no container of this run publishes ${host}:${port}; the harness only reaches a cluster it created`,
      );
    }
    return found[0].dockerName;
  }

  /**
   * Replaces a container as Pulumi's delete-before-replace does: the old one is stopped and removed
   * (with its declared grace), then the same inputs are created again and waited for. Returns the
   * seconds from the stop to the new container's being healthy.
   */
  async recreate(resourceName: string): Promise<number> {
    const found = [...this.applied.values()].filter((a) => a.resource.name === resourceName);
    if (found.length !== 1 || found[0].resource.type !== T.container || !this.lastDesired) {
      throw new Error(`harness: ${resourceName} is not one created container`);
    }
    const t0 = Date.now();
    await this.delete(found[0]);
    this.applied.delete(found[0].resource.urn);
    const name = await this.createContainer(found[0].resource, this.lastDesired);
    this.applied.set(found[0].resource.urn, { resource: found[0].resource, dockerName: name });
    // A new container has a new ID: the commands it triggers are replaced in the same update, as
    // Pulumi does (the edge's network attachments of every site).
    const id = mockId(found[0].resource.type, found[0].resource.name);
    for (const a of [...this.applied.values()]) {
      const c = a.resource;
      if (c.type !== T.command || !((c.clearInputs.triggers as unknown[]) ?? []).includes(id)) {
        continue;
      }
      if (c.options.deleteBeforeReplace) {
        await this.runCommand(c, "delete");
        await this.runCommand(c, "create");
      } else {
        await this.runCommand(c, "create");
        await this.runCommand(c, "delete");
      }
      this.log(`replaced ${c.name} (triggered by ${resourceName})`);
    }
    return (Date.now() - t0) / 1000;
  }

  /** Creates every resource of `desired` not created yet, dependencies first. */
  async apply(desired: Desired): Promise<void> {
    this.lastDesired = desired;
    const problems = unsupported(desired.resources);
    if (problems.length)
      throw new Error(`harness: cannot realize the manifest:\n${problems.join("\n")}`);
    const byUrn = new Map(desired.resources.map((r) => [r.urn, r]));
    const descendants = (urn: string): string[] => {
      const r = byUrn.get(urn);
      if (!r) throw new Error(`harness: dependency ${urn} is not a resource of the manifest`);
      if (r.custom) return [urn];
      return desired.resources.filter((c) => c.parent === urn).flatMap((c) => descendants(c.urn));
    };
    const started = new Map<string, Promise<void>>();
    const start = (r: RecordedResource): Promise<void> => {
      let p = started.get(r.urn);
      if (p) return p;
      p = (async () => {
        // A resource also waits for its provider (the PostgreSQL provider waits for its cluster).
        const provider = providerUrn(r);
        const explicit = [
          ...r.options.dependsOn,
          ...(provider && byUrn.has(provider) ? [provider] : []),
        ];
        const deps = explicit.flatMap(descendants).filter((u) => u !== r.urn);
        const results = await Promise.allSettled(deps.map((u) => start(byUrn.get(u)!)));
        const failed = results.find((x) => x.status === "rejected");
        if (failed) throw new Error(`${r.name}: not created, a dependency failed`);
        if (this.applied.has(r.urn)) return;
        await this.create(r, desired);
        this.order.push(this.applied.get(r.urn)!);
      })();
      started.set(r.urn, p);
      return p;
    };
    const results = await Promise.allSettled(desired.resources.filter((r) => r.custom).map(start));
    const errors = results
      .filter((x): x is PromiseRejectedResult => x.status === "rejected")
      .map((x) => String((x.reason as Error)?.message ?? x.reason))
      .filter((m) => !m.endsWith("a dependency failed"));
    if (errors.length) throw new Error(`harness: apply failed:\n${errors.join("\n")}`);
  }

  /**
   * Brings the engine to a new desired state that only drops resources: each created resource the
   * new state lacks is deleted, dependents first, as the providers delete (volumes retained on
   * delete are kept). A resource whose inputs changed is refused: the harness does not update.
   */
  async removeAbsent(desired: Desired): Promise<string[]> {
    const next = new Map(desired.resources.map((r) => [r.urn, r]));
    for (const a of this.order) {
      const now = next.get(a.resource.urn);
      const before = a.resource;
      if (now && JSON.stringify(comparable(now)) !== JSON.stringify(comparable(before))) {
        throw new Error(`harness: ${before.name} changed; updates are not realized by the harness`);
      }
    }
    for (const r of desired.resources) {
      if (r.custom && !this.applied.has(r.urn)) {
        throw new Error(`harness: ${r.name} is new; only removals are realized by removeAbsent`);
      }
    }
    const removed: string[] = [];
    for (const a of [...this.order].reverse()) {
      if (next.has(a.resource.urn)) continue;
      await this.delete(a);
      removed.push(a.resource.name);
      this.applied.delete(a.resource.urn);
      this.order.splice(this.order.indexOf(a), 1);
    }
    return removed;
  }

  /**
   * Brings the engine to a new desired state in the order Pulumi's engine uses for what the program
   * declares. First the deletes an earlier failed update left pending. Then, in dependency order
   * (concurrently where the order allows): new resources are created; a changed container is replaced
   * (the new one created first, unless it says deleteBeforeReplace); a changed command is replaced
   * when its triggers changed, else runs its update script (its create script when it has none, as the
   * command provider does); dependents come after what they depend on. Last, the replaced and the
   * removed resources are deleted, dependents first, retainOnDelete honoured (the engine object is
   * left alone). When a step fails, nothing that has not started yet runs, no delete happens, the
   * replaced resources whose successor exists stay pending deletion, and the error is thrown.
   */
  async update(desired: Desired): Promise<UpdateReport> {
    const problems = unsupported(desired.resources);
    if (problems.length)
      throw new Error(`harness: cannot realize the manifest:\n${problems.join("\n")}`);
    const report: UpdateReport = {
      created: [],
      updated: [],
      replaced: [],
      deleted: [],
      retained: [],
    };
    for (const a of this.pendingDeletes.reverse()) await this.deleteRecorded(a, report);
    this.pendingDeletes = [];

    const byUrn = new Map(desired.resources.map((r) => [r.urn, r]));
    const steps = new Map<string, Step>();
    for (const r of desired.resources.filter((x) => x.custom)) {
      steps.set(r.urn, this.stepOf(r));
    }
    const descendants = (urn: string): string[] => {
      const r = byUrn.get(urn);
      if (!r) throw new Error(`harness: dependency ${urn} is not a resource of the manifest`);
      if (r.custom) return [urn];
      return desired.resources.filter((c) => c.parent === urn).flatMap((c) => descendants(c.urn));
    };
    const replacedOld: Applied[] = [];
    let failure: Error | undefined;
    const started = new Map<string, Promise<void>>();
    const run = (r: RecordedResource): Promise<void> => {
      let p = started.get(r.urn);
      if (p) return p;
      p = (async () => {
        const deps = r.options.dependsOn.flatMap(descendants).filter((u) => u !== r.urn);
        const results = await Promise.allSettled(deps.map((u) => run(byUrn.get(u)!)));
        if (results.some((x) => x.status === "rejected") || failure) {
          throw new Error(`${r.name}: not run, an earlier step failed`);
        }
        try {
          await this.step(r, steps.get(r.urn)!, desired, replacedOld, report);
        } catch (err) {
          failure ??= err as Error;
          throw err;
        }
      })();
      started.set(r.urn, p);
      return p;
    };
    await Promise.allSettled(desired.resources.filter((r) => r.custom).map(run));
    if (failure) {
      this.pendingDeletes = replacedOld;
      throw new Error(`harness: update failed: ${failure.message}`);
    }

    // Deletes last, dependents first: the reverse of creation order over what is to go.
    const going = new Set<Applied>(replacedOld);
    for (const a of this.order) if (!byUrn.has(a.resource.urn)) going.add(a);
    for (const a of [...this.order].reverse()) {
      if (going.has(a)) await this.deleteRecorded(a, report);
    }
    return report;
  }

  /** What an update does with one resource: compared with what was created for its URN. */
  private stepOf(r: RecordedResource): Step {
    const before = this.applied.get(r.urn)?.resource;
    if (!before) return "create";
    if (JSON.stringify(comparable(before)) === JSON.stringify(comparable(r))) return "same";
    switch (r.type) {
      case T.container:
      case T.image:
      case T.password:
        return "replace";
      case T.command:
        return JSON.stringify(before.clearInputs.triggers) !==
          JSON.stringify(r.clearInputs.triggers)
          ? "replace"
          : "update";
      default:
        throw new Error(
          `harness: ${r.name} (${r.type}) changed; the harness does not update that type`,
        );
    }
  }

  private async step(
    r: RecordedResource,
    step: Step,
    desired: Desired,
    replacedOld: Applied[],
    report: UpdateReport,
  ): Promise<void> {
    const old = this.applied.get(r.urn);
    if (step === "same") {
      // The program's view of it may still differ in ways that change nothing (e.g. its dependencies).
      old!.resource = r;
      this.requeue(old!);
      return;
    }
    if (step === "create") {
      await this.create(r, desired);
      this.order.push(this.applied.get(r.urn)!);
      report.created.push(r.name);
      return;
    }
    if (step === "update") {
      // The command provider runs the update script, or the create script again when there is none.
      await this.runCommand(r, r.clearInputs.update !== undefined ? "update" : "create");
      old!.resource = r;
      this.requeue(old!);
      report.updated.push(r.name);
      this.log(`updated ${r.name}`);
      return;
    }
    const before = old!;
    if (r.options.deleteBeforeReplace) await this.deleteRecorded(before, report);
    else this.applied.delete(r.urn);
    try {
      await this.create(r, desired);
    } catch (err) {
      const partial = this.applied.get(r.urn);
      if (partial) {
        // A container the provider created but could not finish stays in the state (its id is kept).
        this.order.push(partial);
        if (!r.options.deleteBeforeReplace) replacedOld.push(before);
      } else if (!r.options.deleteBeforeReplace) {
        this.applied.set(r.urn, before);
      }
      throw err;
    }
    this.order.push(this.applied.get(r.urn)!);
    if (!r.options.deleteBeforeReplace) replacedOld.push(before);
    report.replaced.push(r.name);
  }

  /**
   * Moves a resource to the end of the creation order once its step is done, as Pulumi writes its
   * state in the order steps complete: a dependent always comes after what it depends on, so deletes
   * in reverse order take dependents first.
   */
  private requeue(a: Applied): void {
    const i = this.order.indexOf(a);
    if (i >= 0) this.order.splice(i, 1);
    this.order.push(a);
  }

  /** Deletes one created resource (or leaves it, retainOnDelete) and forgets it. */
  private async deleteRecorded(a: Applied, report: UpdateReport): Promise<void> {
    await this.delete(a);
    (a.resource.options.retainOnDelete ? report.retained : report.deleted).push(a.resource.name);
    const i = this.order.indexOf(a);
    if (i >= 0) this.order.splice(i, 1);
    if (this.applied.get(a.resource.urn) === a) this.applied.delete(a.resource.urn);
  }

  private async create(r: RecordedResource, desired: Desired): Promise<void> {
    const t0 = Date.now();
    const i = r.clearInputs;
    switch (r.type) {
      case T.provider:
      case T.password:
        // The engine connection is checked in unsupported(); passwords are the mock's values.
        break;
      case T.pgProvider:
        this.clusters.set(
          r.urn,
          await SharedCluster.connect(r, this.publishedBy(r), this.privateDir),
        );
        break;
      case T.pgRole:
      case T.pgDatabase:
      case T.pgGrant:
        await this.clusterOf(r).create(r);
        break;
      case T.image: {
        const ref = str(i.name);
        if (!(await imageExists(ref))) {
          throw new Error(
            `${r.name}: image ${ref} is not on this engine and no registry is reachable`,
          );
        }
        break;
      }
      case T.network: {
        const name = i.name
          ? str(i.name)
          : `${r.name}-${crypto.randomBytes(4).toString("hex").slice(0, 7)}`;
        const args = ["network", "create", "--label", `${RUN_LABEL}=${this.runId}`];
        args.push("--label", `${RESOURCE_LABEL}=${r.name}`);
        if (i.driver) args.push("--driver", str(i.driver));
        if (i.internal) args.push("--internal");
        for (const l of labels(i.labels)) args.push("--label", l);
        await docker([...args, name]);
        this.applied.set(r.urn, { resource: r, dockerName: name });
        break;
      }
      case T.volume: {
        const name = i.name
          ? str(i.name)
          : `${r.name}-${crypto.randomBytes(4).toString("hex").slice(0, 7)}`;
        await this.removeStaleVolume(name);
        const args = ["volume", "create", "--label", `${RUN_LABEL}=${this.runId}`];
        args.push("--label", `${RESOURCE_LABEL}=${r.name}`);
        for (const l of labels(i.labels)) args.push("--label", l);
        await docker([...args, name]);
        this.applied.set(r.urn, { resource: r, dockerName: name });
        break;
      }
      case T.command: {
        await this.runCommand(r, "create");
        break;
      }
      case T.container: {
        const name = await this.createContainer(r, desired);
        this.applied.set(r.urn, { resource: r, dockerName: name });
        break;
      }
      default:
        throw new Error(`${r.name}: type ${r.type} is not realized`);
    }
    if (!this.applied.has(r.urn)) this.applied.set(r.urn, { resource: r });
    this.log(`created ${r.name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  }

  /** Runs a command resource's script as the command provider does: /bin/sh -c, stdin given. */
  private async runCommand(
    r: RecordedResource,
    which: "create" | "update" | "delete",
  ): Promise<void> {
    const script = r.clearInputs[which];
    if (typeof script !== "string") return;
    const stdin = r.clearInputs.stdin;
    const res = await run("/bin/sh", ["-c", script], {
      input: typeof stdin === "string" ? stdin : undefined,
    });
    if (res.code !== 0) {
      throw new Error(
        `${r.name}: ${which} exited ${res.code}: ${(res.stderr || res.stdout).trim()}`,
      );
    }
  }

  private async createContainer(r: RecordedResource, desired: Desired): Promise<string> {
    const i = r.clearInputs;
    const n = ++this.seq;
    const name = i.name
      ? str(i.name)
      : `${r.name}-${crypto.randomBytes(4).toString("hex").slice(0, 7)}`;
    const args = ["create", "--name", name, "--label", `${RUN_LABEL}=${this.runId}`];
    args.push("--label", `${RESOURCE_LABEL}=${r.name}`);
    for (const l of labels(i.labels)) args.push("--label", l);

    const envs = (i.envs as string[] | undefined) ?? [];
    let envFile: string | undefined;
    if (envs.length) {
      envFile = path.join(this.privateDir, `env-${n}`);
      fs.writeFileSync(envFile, `${envs.join("\n")}\n`, { mode: 0o600 });
      args.push("--env-file", envFile);
    }
    const entrypoints = (i.entrypoints as string[] | undefined) ?? [];
    if (entrypoints.length) args.push("--entrypoint", entrypoints[0]);
    const mounts = (i.mounts as Record<string, unknown>[] | undefined) ?? [];
    for (const m of mounts) {
      if (m.type !== "volume" && m.type !== "bind") {
        throw new Error(`${r.name}: input mounts.type ${str(m.type)} is not honoured`);
      }
      const parts = [`type=${m.type}`, `source=${str(m.source)}`, `target=${str(m.target)}`];
      if (m.readOnly) parts.push("readonly");
      args.push("--mount", parts.join(","));
    }
    const networks =
      (i.networksAdvanced as { name: string; aliases?: string[] }[] | undefined) ?? [];
    if (networks.length) {
      args.push("--network", networks[0].name);
      for (const a of networks[0].aliases ?? []) args.push("--network-alias", a);
    }
    for (const p of (i.ports as Record<string, unknown>[] | undefined) ?? []) {
      const ip = p.ip ? `${str(p.ip)}:` : "";
      const ext = p.external !== undefined ? str(p.external) : "";
      args.push("--publish", `${ip}${ext}:${str(p.internal)}/${str(p.protocol ?? "tcp")}`);
    }
    const hc = i.healthcheck as Record<string, unknown> | undefined;
    if (hc) {
      const tests = hc.tests as string[];
      args.push("--health-cmd", healthCommand(r.name, tests));
      if (hc.interval) args.push("--health-interval", str(hc.interval));
      if (hc.timeout) args.push("--health-timeout", str(hc.timeout));
      if (hc.startPeriod) args.push("--health-start-period", str(hc.startPeriod));
      if (hc.retries !== undefined) args.push("--health-retries", str(hc.retries));
    }
    // The Docker provider's memory figures are MiB.
    if (i.memory !== undefined) args.push("--memory", `${Number(i.memory)}m`);
    if (i.memoryReservation !== undefined) {
      args.push("--memory-reservation", `${Number(i.memoryReservation)}m`);
    }
    if (i.cpus !== undefined) args.push("--cpus", str(i.cpus));
    if (i.restart) args.push("--restart", str(i.restart));
    if (i.logDriver) args.push("--log-driver", str(i.logDriver));
    for (const [k, v] of Object.entries((i.logOpts as Record<string, string>) ?? {})) {
      args.push("--log-opt", `${k}=${v}`);
    }
    for (const s of (i.securityOpts as string[] | undefined) ?? []) args.push("--security-opt", s);
    const caps = (i.capabilities as { drops?: string[]; adds?: string[] } | undefined) ?? {};
    for (const c of caps.drops ?? []) args.push("--cap-drop", c);
    for (const c of caps.adds ?? []) args.push("--cap-add", c);
    if (i.user) args.push("--user", str(i.user));
    if (i.stopSignal) args.push("--stop-signal", str(i.stopSignal));
    if (i.stopTimeout !== undefined) args.push("--stop-timeout", str(i.stopTimeout));

    args.push(this.imageRef(r, desired));
    args.push(...entrypoints.slice(1), ...((i.command as string[] | undefined) ?? []));
    try {
      await docker(args);
    } finally {
      if (envFile) fs.rmSync(envFile, { force: true });
    }
    // Recorded before anything else can fail, so a failed container is still known by name.
    this.applied.set(r.urn, { resource: r, dockerName: name });

    for (const u of (i.uploads as Record<string, unknown>[] | undefined) ?? []) {
      await this.upload(name, u, n);
    }
    for (const net of networks.slice(1)) {
      const a = (net.aliases ?? []).flatMap((x) => ["--alias", x]);
      await docker(["network", "connect", ...a, net.name, name]);
    }
    await docker(["start", name]);
    if (i.wait) await waitHealthy(name, Number(i.waitTimeout ?? 60), Boolean(hc));
    return name;
  }

  /**
   * One upload as the Docker provider makes it: a tar stream of the single file (owned by root,
   * mode `permissions`, else 0744 when executable, else 0644) extracted at / before the start.
   */
  private async upload(container: string, u: Record<string, unknown>, n: number): Promise<void> {
    const file = str(u.file);
    if (!file.startsWith("/")) throw new Error(`upload ${file}: not an absolute path`);
    const mode = u.permissions ? parseInt(str(u.permissions), 8) : u.executable ? 0o744 : 0o644;
    const stage = fs.mkdtempSync(path.join(this.privateDir, `upload-${n}-`));
    try {
      const rel = file.slice(1);
      fs.mkdirSync(path.join(stage, path.dirname(rel)), { recursive: true });
      fs.writeFileSync(path.join(stage, rel), str(u.content ?? ""), { mode: 0o600 });
      fs.chmodSync(path.join(stage, rel), mode);
      await must("/bin/sh", [
        "-c",
        'tar --owner=0 --group=0 --numeric-owner --no-recursion -C "$1" -cf - "$2" | docker cp - "$3":/',
        "sh",
        stage,
        rel,
        container,
      ]);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
  }

  /** The image a container names: the RemoteImage among its dependencies (its id is the mock's). */
  private imageRef(r: RecordedResource, desired: Desired): string {
    const image = str(r.clearInputs.image);
    const images = desired.resources.filter(
      (x) => x.type === T.image && r.options.dependsOn.includes(x.urn),
    );
    if (images.length === 1) return str(images[0].clearInputs.name);
    if (images.length === 0 && !image.startsWith("sha256:")) return image;
    throw new Error(`${r.name}: input image ${image} names no single RemoteImage of the program`);
  }

  private async delete(a: Applied): Promise<void> {
    const r = a.resource;
    if (r.options.retainOnDelete) {
      this.log(`retained ${r.name}${a.dockerName ? ` (${a.dockerName})` : ""} (retainOnDelete)`);
      return;
    }
    switch (r.type) {
      case T.container: {
        const grace = r.clearInputs.destroyGraceSeconds ?? r.clearInputs.stopTimeout ?? 10;
        await docker(["stop", "--time", str(grace), a.dockerName!]);
        await docker(["rm", "--volumes", a.dockerName!]);
        break;
      }
      case T.network:
        await docker(["network", "rm", a.dockerName!]);
        break;
      case T.volume:
        await docker(["volume", "rm", a.dockerName!]);
        break;
      case T.command:
        await this.runCommand(r, "delete");
        break;
      case T.pgRole:
      case T.pgDatabase:
      case T.pgGrant:
        await this.clusterOf(r).delete(r);
        break;
      default:
        break; // images are kept locally, providers and passwords hold nothing on the engine
    }
    this.log(`deleted ${r.name}`);
  }

  /**
   * A volume of that name left by an earlier run that was killed before its cleanup (it carries the
   * run label, and no container uses it) is removed, so this run starts from nothing; a volume of that
   * name that no run of the suite created is refused, never touched.
   */
  private async removeStaleVolume(name: string): Promise<void> {
    const found = await run("docker", [
      "volume",
      "inspect",
      "--format",
      `{{index .Labels "${RUN_LABEL}"}}`,
      name,
    ]);
    if (found.code !== 0) return;
    const owner = found.stdout.trim();
    if (!owner || owner === "<no value>") {
      throw new Error(`harness: a volume named ${name} exists and no engine run created it`);
    }
    if (owner === this.runId) return;
    const users = await docker(["ps", "--all", "--quiet", "--filter", `volume=${name}`]);
    if (users.trim()) {
      throw new Error(`harness: volume ${name} of run ${owner} is still in use (another run?)`);
    }
    await docker(["volume", "rm", name]);
    this.log(`removed volume ${name}, left by an earlier run (${owner})`);
  }

  /** Removes everything this run created, whatever state it is in; returns what it could not remove. */
  async cleanup(): Promise<string[]> {
    const left = await this.removeEngineObjects();
    for (const dir of [...this.ownedDirs, this.privateDir]) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return left;
  }

  /**
   * Removes this run's containers, networks and volumes (retained ones too): the engine as a lost
   * host leaves it. Its directories stay. Returns what it could not remove.
   */
  async removeEngineObjects(): Promise<string[]> {
    const left: string[] = [];
    const ids = async (kind: string[]) =>
      (await docker([...kind, "--filter", this.labelFilter, "--quiet"]))
        .split("\n")
        .filter(Boolean);
    const remove = async (args: string[]) => {
      const r = await run("docker", args);
      if (r.code !== 0) left.push(`${args.join(" ")}: ${r.stderr.trim()}`);
    };
    for (const id of await ids(["ps", "--all"])) await remove(["rm", "--force", "--volumes", id]);
    for (const id of await ids(["network", "ls"])) await remove(["network", "rm", id]);
    for (const id of await ids(["volume", "ls"])) await remove(["volume", "rm", id]);
    // What it knew is gone with them: the next apply starts from nothing, as on a new host.
    this.applied.clear();
    this.order.length = 0;
    this.pendingDeletes = [];
    this.clusters.clear();
    this.lastDesired = undefined;
    return left;
  }
}

/** An input's scalar value as text; anything else is refused rather than stringified. */
function str(value: unknown): string {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  throw new Error(`harness: expected a scalar input, got ${JSON.stringify(value)}`);
}

function labels(value: unknown): string[] {
  return ((value as { label: string; value: string }[] | undefined) ?? []).map(
    (l) => `${l.label}=${l.value}`,
  );
}

/** Shell-quotes one word. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:@=%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The docker CLI sets only shell-form healthchecks. CMD-SHELL passes as is; the exec form (CMD ...)
 * is given as the same words, quoted, which /bin/sh runs as the exec form would (every stand-in has
 * /bin/sh). NONE and anything else is refused.
 */
export function healthCommand(name: string, tests: string[]): string {
  const [kind, ...rest] = tests;
  if (kind === "CMD-SHELL" && rest.length === 1) return rest[0];
  if (kind === "CMD" && rest.length) return rest.map(shellQuote).join(" ");
  throw new Error(`${name}: input healthcheck.tests ${JSON.stringify(tests)} is not honoured`);
}

/** Waits until the container is healthy (or running, without a healthcheck), as `wait: true` does. */
export async function waitHealthy(
  name: string,
  timeoutSeconds: number,
  hasHealth: boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const state = JSON.parse(await docker(["inspect", "--format", "{{json .State}}", name])) as {
      Status: string;
      ExitCode: number;
      Health?: { Status: string; Log?: { Output: string }[] };
    };
    if (!hasHealth && state.Status === "running") return;
    if (hasHealth && state.Health?.Status === "healthy") return;
    if (state.Status === "exited" || state.Status === "dead") {
      const logs = await run("docker", ["logs", "--tail", "30", name]);
      throw new Error(
        `${name}: exited ${state.ExitCode} before it was healthy:\n${(logs.stdout + logs.stderr).trim()}`,
      );
    }
    if (Date.now() > deadline) {
      const last = state.Health?.Log?.slice(-1)[0]?.Output?.trim() ?? "";
      const logs = await run("docker", ["logs", "--tail", "20", name]);
      throw new Error(
        `${name}: not healthy within ${timeoutSeconds}s (${state.Health?.Status ?? state.Status}); last probe: ${last}\n${(logs.stdout + logs.stderr).trim()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The URN of a resource's provider (its reference is "<urn>::<id>"), if it names one. */
function providerUrn(r: RecordedResource): string | undefined {
  const ref = r.options.provider;
  return ref ? ref.slice(0, ref.lastIndexOf("::")) : undefined;
}
