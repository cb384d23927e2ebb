/**
 * The engine suite's test project: the `local` stack's kind of host (this machine's engine, Caddy's
 * local CA, no DNS), with its root, ports and sites made for one run, and two websites with dedicated
 * databases. The app images are the references the `local` stack's own sites declare.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { writeProject } from "../../scripts/fixtures";
import { freePorts } from "../helpers";

export const STACK = "engine";

export interface EngineProject {
  root: string;
  sitesDir: string;
  /** Host root of the platform's files (edge fragments, route script, backups). */
  hostRoot: string;
  httpPort: number;
  httpsPort: number;
  sites: Record<string, unknown>[];
}

/** Fast probes, so a run does not wait on the defaults' 10 s intervals. */
const quickHealth = (p: string) => ({
  path: p,
  interval: "3s",
  // Generous: a Node.js probe under a CPU quota on a busy 2-core machine can take seconds to start
  // (at load 20-30, three 10 s timeouts in a row were seen).
  timeout: "30s",
  startPeriod: "10s",
  retries: 3,
});

/**
 * alpha: dedicated database with its own limits, read-only Docker access (the HAProxy socket
 * proxy), a 3 s warm-up. beta: dedicated database and app with the default resources, an alias domain.
 */
export function engineSites(appImages: [string, string]): Record<string, unknown>[] {
  return [
    {
      name: "alpha",
      kind: "website",
      status: "active",
      domains: ["alpha.engine.test"],
      app: {
        image: appImages[0],
        port: 3000,
        env: { APP_NAME: "alpha", WARMUP_SECONDS: "3" },
        healthcheck: quickHealth("/api/status"),
        // Room for the app, its Node.js probes and the suite's `docker exec node` probes (~40 MiB each).
        resources: { memory: "192Mi", memoryReservation: "64Mi", cpus: 0.4 },
        dockerReadAccess: true,
        stopGracePeriod: 5,
      },
      database: { mode: "dedicated", name: "alpha", resources: { memory: "128Mi", cpus: 0.5 } },
      dns: { provider: "external" },
    },
    {
      name: "beta",
      kind: "website",
      status: "active",
      domains: ["beta.engine.test", "www.beta.engine.test"],
      app: {
        image: appImages[1],
        port: 3000,
        env: { APP_NAME: "beta" },
        healthcheck: quickHealth("/"),
        stopGracePeriod: 5,
      },
      database: { mode: "dedicated", name: "beta_db" },
      dns: { provider: "external" },
    },
  ];
}

/** Two app image references the `local` stack's own sites declare (one twice if it has one). */
export function appImagesOf(
  resources: readonly { name: string; inputs: Record<string, unknown> }[],
): [string, string] {
  const refs = resources
    .filter((r) => r.name.endsWith("-app-image"))
    .map((r) => String(r.inputs.name))
    .sort();
  if (!refs.length)
    throw new Error("the local stack runs no app to borrow an image reference from");
  return [refs[0], refs[1] ?? refs[0]];
}

/** Writes the project in a new temporary directory. */
export async function writeEngineProject(appImages: [string, string]): Promise<EngineProject> {
  const [httpPort, httpsPort] = await freePorts(2);
  const sites = engineSites(appImages);
  const { root, sitesDir } = writeProject(STACK, {}, sites);
  const hostRoot = path.join(root, "host");
  const settings = {
    hosts: [
      {
        name: "local",
        publicIp: "127.0.0.1",
        docker: { connection: "socket", socket: "unix:///var/run/docker.sock" },
        capacity: { memory: "8Gi", cpus: 2 },
        root: hostRoot,
        createNetwork: true,
      },
    ],
    edge: { bindAddress: "127.0.0.1", httpPort, httpsPort, localCerts: true },
    dns: { provider: "none" },
  };
  // The host root lives in the project directory, known only once it exists: the stack file again.
  fs.writeFileSync(
    path.join(root, `Pulumi.${STACK}.yaml`),
    stringify({ config: { "agi-platform:settings": settings } }),
  );
  return { root, sitesDir, hostRoot, httpPort, httpsPort, sites };
}

/** Removes a site's file from the project: the next desired state no longer has the site. */
export function removeSite(project: EngineProject, name: string): void {
  fs.rmSync(path.join(project.sitesDir, `${name}.ts`));
}
