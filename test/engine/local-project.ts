/**
 * A test project with the real `local` stack's shape: its own settings from Pulumi.local.yaml (the
 * shared cluster the program creates, Caddy's local CA, no DNS), with only the host root, the edge's
 * ports and the cluster's admin port made for one run; and the three kinds of website the `local`
 * stack runs: one on a dedicated database (with read-only Docker access, as the admin dashboard
 * has), one in the shared cluster, and one adopted database in the shared cluster (ownerRole, as
 * stepperslife). The app images are the references the `local` stack's own sites declare.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { writeProject } from "../../scripts/fixtures";
import { freePorts } from "../helpers";
import { PROJECT, SETTINGS_KEY } from "../../stacks/settings";
import { appImagesOf, type EngineProject } from "./project";
import { synth } from "../../scripts/synth";
import { EDGE_CONTAINER, PLATFORM_NETWORK } from "../../core/names";
import { docker, run } from "./docker";
import { desiredState, type Desired, type Harness } from "./harness";
import { buildImages, tagsFor, type BuildReport } from "./images";
import { requestEdge } from "./edge-load";

export const LOCAL_STACK = "engine-local";
const ROOT = path.resolve(__dirname, "../..");

export interface LocalProject extends EngineProject {
  /** The cluster's admin port on loopback, chosen for this run. */
  adminPort: number;
  /** The cluster's container name, as Pulumi.local.yaml names it. */
  cluster: string;
}

/**
 * Fast probes, and light ones: wget instead of the default Node.js fetch. On this shared 2-core
 * machine a Node.js probe can outlast its timeout; Docker does not kill a timed-out probe, so they
 * pile up in the app's memory and every later probe times out too.
 */
const quickHealth = (p: string) => ({
  path: p,
  command: ["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:3000${p}`],
  interval: "3s",
  timeout: "10s",
  startPeriod: "10s",
  retries: 3,
});

/** solo: dedicated database; mall: shared; legacy: an adopted database in the shared cluster. */
export function localSites(appImage: string): Record<string, unknown>[] {
  const app = (name: string, extra: Record<string, unknown> = {}) => ({
    image: appImage,
    port: 3000,
    env: { APP_NAME: name },
    healthcheck: quickHealth("/"),
    // Room for the app, its Node.js probes and the suite's `docker exec` probes.
    // A whole core: on a busy 2-core machine a smaller CPU quota starves its probes (psql, node).
    resources: { memory: "192Mi", memoryReservation: "64Mi", cpus: 1 },
    stopGracePeriod: 5,
    ...extra,
  });
  return [
    {
      name: "solo",
      kind: "website",
      status: "active",
      domains: ["solo.local.test"],
      app: app("solo", { dockerReadAccess: true }),
      database: { mode: "dedicated", resources: { memory: "128Mi" } },
      dns: { provider: "external" },
    },
    {
      name: "mall",
      kind: "website",
      status: "active",
      domains: ["mall.local.test"],
      app: app("mall"),
      database: { mode: "shared" },
      dns: { provider: "external" },
    },
    {
      name: "legacy",
      kind: "website",
      status: "active",
      domains: ["legacy.local.test"],
      app: app("legacy"),
      database: { mode: "shared", ownerRole: true },
      dns: { provider: "external" },
    },
  ];
}

/** What a test adds to the `local` stack's settings (e.g. `offsite`, with its test remote). */
export type LocalExtras = Record<string, unknown>;

/** Writes the project in a new temporary directory. */
export async function writeLocalProject(
  appImage: string,
  extras: LocalExtras = {},
): Promise<LocalProject> {
  const [httpPort, httpsPort, adminPort] = await freePorts(3);
  const sites = localSites(appImage);
  const { root, sitesDir } = writeProject(LOCAL_STACK, {}, sites);
  const hostRoot = path.join(root, "host");
  const local = parse(fs.readFileSync(path.join(ROOT, "Pulumi.local.yaml"), "utf8")) as {
    config: Record<string, { hosts: Record<string, unknown>[]; edge: Record<string, unknown> }>;
  };
  const settings = structuredClone(local.config[`${PROJECT}:${SETTINGS_KEY}`]);
  if (settings.hosts.length !== 1) throw new Error("Pulumi.local.yaml: expected one host");
  const host = settings.hosts[0] as Record<string, unknown> & {
    sharedDatabase: Record<string, unknown>;
  };
  if (host.sharedDatabase?.create !== true) {
    throw new Error(
      "Pulumi.local.yaml: the local stack no longer has the program create its cluster",
    );
  }
  host.root = hostRoot;
  host.sharedDatabase.adminPort = adminPort;
  settings.edge = { ...settings.edge, httpPort, httpsPort };
  fs.writeFileSync(
    path.join(root, `Pulumi.${LOCAL_STACK}.yaml`),
    stringify({ config: { [`${PROJECT}:${SETTINGS_KEY}`]: { ...settings, ...extras } } }),
  );
  return {
    root,
    sitesDir,
    hostRoot,
    httpPort,
    httpsPort,
    sites,
    adminPort,
    cluster: String(host.sharedDatabase.container),
  };
}

/** The `local`-shaped project realized on this engine, healthy. */
export interface LocalRun {
  harness: Harness;
  project: LocalProject;
  desired: Desired;
  /** The edge's local CA certificate. */
  ca: string;
  images: BuildReport;
  /** Seconds from nothing (images ready) to every declared resource created and healthy. */
  secondsToAllHealthy: number;
}

/**
 * Builds the stand-ins (the references the `local` stack and this project declare), realizes the
 * project and waits until every site answers through the edge. The caller cleans up `harness`
 * (also when this throws: it is passed in).
 */
export async function bringUpLocal(
  harness: Harness,
  log: (m: string) => void,
  options: { extras?: LocalExtras; secretValues?: Record<string, string> } = {},
): Promise<LocalRun> {
  const local = await synth(ROOT, "local", path.join(ROOT, "sites"), "sites");
  const [appImage] = appImagesOf(local.manifest.resources);
  const project = await writeLocalProject(appImage, options.extras);
  harness.ownedDirs.push(project.root);
  const desired = await desiredState(
    project.root,
    LOCAL_STACK,
    project.sitesDir,
    options.secretValues,
  );
  const images = await buildImages(
    tagsFor([...local.manifest.resources, ...desired.resources]),
    log,
  );
  // Last before anything is created, so another run has the least time to take the names meanwhile.
  await waitForPlatformNames(log);
  const served = await applyAndServe(harness, desired, project);
  return { harness, project, desired, images, ...served };
}

/**
 * Applies `desired` with `harness` and waits until every site of the project answers 200 through the
 * edge (its certificate issued). Returns the edge's CA and the seconds it took.
 */
export async function applyAndServe(
  harness: Harness,
  desired: Desired,
  project: LocalProject,
): Promise<{ ca: string; secondsToAllHealthy: number }> {
  const t0 = Date.now();
  await harness.apply(desired);
  const ca = await docker(["exec", EDGE_CONTAINER, "cat", EDGE_CA_PATH]);
  const deadline = Date.now() + 120_000;
  for (const site of project.sites) {
    const [domain] = site.domains as string[];
    for (;;) {
      const res = await requestEdge(project.httpsPort, ca, domain).catch((e: Error) => ({
        status: 0,
        body: e.message,
      }));
      if (res.status === 200) break;
      if (Date.now() > deadline)
        throw new Error(`${domain}: not served: ${res.status} ${res.body}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return { ca, secondsToAllHealthy: (Date.now() - t0) / 1000 };
}

/** Where the edge keeps its local CA's root certificate. */
export const EDGE_CA_PATH = "/data/caddy/pki/authorities/local/root.crt";

/**
 * The platform's fixed names (the edge container, agi-network) exist once per engine: when another
 * run holds them on this shared engine, wait (bounded) until it has cleaned up, rather than fail.
 */
async function waitForPlatformNames(log: (m: string) => void): Promise<void> {
  const deadline = Date.now() + 30 * 60_000;
  // Free on three checks in a row: another suite's next test file takes the names again at once.
  let free = 0;
  for (let said = false; ; said = true) {
    const held = [
      (await run("docker", ["container", "inspect", EDGE_CONTAINER])).code === 0
        ? EDGE_CONTAINER
        : "",
      (await run("docker", ["network", "inspect", PLATFORM_NETWORK])).code === 0
        ? PLATFORM_NETWORK
        : "",
    ].filter(Boolean);
    if (!held.length && ++free >= 3) return;
    if (held.length) free = 0;
    if (Date.now() > deadline)
      throw new Error(`${held.join(" and ")} still taken on this engine after 30 minutes`);
    if (!said && held.length)
      log(`waiting: ${held.join(" and ")} are taken on this engine (another run)`);
    await new Promise((r) => setTimeout(r, 5000));
  }
}
