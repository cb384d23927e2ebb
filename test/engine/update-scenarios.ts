/**
 * App updates under load on a real engine: a site file changes, the harness realizes the update in
 * Pulumi's order while the request loop (load.ts) runs through the edge, and the loop ends only after
 * the update is over (the old container gone, or the failed version removed). Shared by the engine
 * suite (one run per scenario) and `npm run bench:update` (three runs each).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { synth } from "../../scripts/synth";
import { docker, run } from "./docker";
import { Harness, RUN_LABEL, desiredState, type Desired, type UpdateReport } from "./harness";
import { buildImages, tagsFor } from "./images";
import { describeLoad, startLoad, type LoadResult } from "./load";
import { STACK, appImagesOf, writeEngineProject, type EngineProject } from "./project";

const ROOT = path.resolve(__dirname, "../..");
const CA_PATH = "/data/caddy/pki/authorities/local/root.crt";

export interface UpdateContext {
  harness: Harness;
  project: EngineProject;
  /** The edge's CA certificate. */
  ca: string;
  log: (m: string) => void;
}

export interface UpdateOutcome {
  load: LoadResult;
  /** The update's error; undefined when it succeeded. */
  error?: Error;
  /** The container the edge routed to before, and after, the update. */
  before: string;
  after: string;
  /** What the update did (undefined when it failed). */
  report?: UpdateReport;
  /** Whether the site's fragment on the edge changed (an edge reload). */
  edgeReloaded: boolean;
  /** The name the changed version was given. */
  attempted: string;
  /** The desired state the update was asked for. */
  desired: Desired;
  updateSeconds: number;
}

/** The site's fragment on the edge, as installed. */
export function installedFragment(project: EngineProject, site: string): string {
  return fs.readFileSync(path.join(project.hostRoot, "edge", "sites.d", `${site}.caddy`), "utf8");
}

/**
 * The app container the edge routes to now: the one holding the site's name on its edge network
 * (the fragment proxies to that name). Exactly one, or this throws.
 */
export async function routedContainer(harness: Harness, site: string): Promise<string> {
  const holders: string[] = [];
  for (const name of await appContainersOf(harness, site)) {
    const out = await run("docker", [
      "container",
      "inspect",
      "--format",
      `{{with index .NetworkSettings.Networks "${site}-edge"}}{{range .Aliases}}{{.}} {{end}}{{end}}`,
      name,
    ]);
    if (out.code === 0 && out.stdout.split(" ").includes(site)) holders.push(name);
  }
  if (holders.length !== 1) {
    throw new Error(
      `site ${site}: ${holders.length} containers hold its name: ${holders.join(", ")}`,
    );
  }
  return holders[0];
}

/** Changes a site's app section in its file; returns the new site object. */
export function changeApp(
  project: EngineProject,
  site: string,
  change: (app: Record<string, unknown>) => void,
): void {
  const entry = project.sites.find((s) => s.name === site);
  if (!entry) throw new Error(`no site ${site} in the engine project`);
  const app = structuredClone(entry.app) as Record<string, unknown>;
  change(app);
  entry.app = app;
  fs.writeFileSync(
    path.join(project.sitesDir, `${site}.ts`),
    `export default ${JSON.stringify(entry, null, 2)};\n`,
  );
}

/** Containers of this run with the site's app label: names, sorted. */
export async function appContainersOf(harness: Harness, site: string): Promise<string[]> {
  const out = await docker([
    "ps",
    "--all",
    "--filter",
    `label=${RUN_LABEL}=${harness.runId}`,
    "--filter",
    `label=agi.site=${site}`,
    "--filter",
    "label=agi.role=app",
    "--format",
    "{{.Names}}",
  ]);
  return out.split("\n").filter(Boolean).sort();
}

/** Whether a container of that exact name exists. */
export async function containerExists(name: string): Promise<boolean> {
  return (await run("docker", ["container", "inspect", name])).code === 0;
}

/**
 * The control run's new version as the original design had it: the site's name on its edge network
 * as soon as the container runs, healthy or not (no gate). Polls until the container exists.
 */
async function publishAtStart(
  site: string,
  container: string,
  until: () => boolean,
): Promise<void> {
  const network = `${site}-edge`;
  while (!until()) {
    const state = await run("docker", [
      "container",
      "inspect",
      "--format",
      "{{.State.Running}}",
      container,
    ]);
    if (state.code === 0 && state.stdout.trim() === "true") {
      await run("docker", ["network", "disconnect", network, container]);
      await docker(["network", "connect", "--alias", site, network, container]);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Changes a site's app and realizes the update while the request loop runs against its primary
 * domain. With `ungated` (the control run) the update is the design this one replaces: the serving
 * container is removed right before the update starts, and the new one takes the site's name as soon
 * as it runs, before it is healthy.
 */
export async function updateUnderLoad(
  ctx: UpdateContext,
  site: string,
  change: (app: Record<string, unknown>) => void,
  options: { ungated?: boolean; minRequests?: number } = {},
): Promise<UpdateOutcome> {
  const before = await routedContainer(ctx.harness, site);
  const fragmentBefore = installedFragment(ctx.project, site);
  changeApp(ctx.project, site, change);
  const desired = await desiredState(ctx.project.root, STACK, ctx.project.sitesDir);
  const app = desired.resources.find((r) => r.name === `${site}-app`);
  const attempted = String(app?.clearInputs.name);
  const entry = ctx.project.sites.find((s) => s.name === site)!;
  const load = startLoad({
    port: ctx.project.httpsPort,
    host: (entry.domains as string[])[0],
    ca: ctx.ca,
    minRequests: options.minRequests,
  });
  // The loop is under way before anything changes.
  const t = Date.now();
  while (load.requests() < 48 && Date.now() - t < 30_000) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const t0 = Date.now();
  let error: Error | undefined;
  let report: UpdateReport | undefined;
  let updating = true;
  let published: Promise<void> = Promise.resolve();
  try {
    if (options.ungated) {
      await docker(["rm", "--force", before]);
      published = publishAtStart(site, attempted, () => !updating);
    }
    report = await ctx.harness.update(desired);
  } catch (err) {
    error = err as Error;
  }
  updating = false;
  await published;
  const updateSeconds = (Date.now() - t0) / 1000;
  const result = await load.stop();
  const after = await routedContainer(ctx.harness, site);
  const edgeReloaded = installedFragment(ctx.project, site) !== fragmentBefore;
  ctx.log(
    `${site}: update to ${attempted} ${error ? "failed" : "done"} in ${updateSeconds.toFixed(1)} s; requests: ${describeLoad(result)}`,
  );
  return {
    load: result,
    error,
    before,
    after,
    attempted,
    desired,
    updateSeconds,
    report,
    edgeReloaded,
  };
}

/**
 * A whole engine project for the benchmark: images, the test project's desired state realized, the
 * edge's CA. `close` removes everything this run created.
 */
export async function setUpEngine(
  log: (m: string) => void,
): Promise<UpdateContext & { close(): Promise<void> }> {
  const local = await synth(ROOT, "local", path.join(ROOT, "sites"), "sites");
  const harness = new Harness({ log });
  const project = await writeEngineProject(appImagesOf(local.manifest.resources));
  harness.ownedDirs.push(project.root);
  const close = async () => {
    const left = await harness.cleanup();
    if (left.length) log(`cleanup could not remove:\n${left.join("\n")}`);
  };
  try {
    const desired = await desiredState(project.root, STACK, project.sitesDir);
    await buildImages(tagsFor([...local.manifest.resources, ...desired.resources]), log);
    await harness.apply(desired);
    const ca = await docker(["exec", "agi-edge", "cat", CA_PATH]);
    return { harness, project, ca, log, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The scenarios, each a change of one site's app that makes a new version. */
export const SCENARIOS = {
  /** A version that answers 503 for its first 15 s (and a start period that lets it). */
  warmup15s: (app: Record<string, unknown>, n: number) => {
    app.env = { ...(app.env as object), WARMUP_SECONDS: "15", REVISION: `warm-${n}` };
    app.healthcheck = { ...(app.healthcheck as object), startPeriod: "30s" };
  },
  /** A version ready at once. */
  instant: (app: Record<string, unknown>, n: number) => {
    app.env = { ...(app.env as object), WARMUP_SECONDS: "0", REVISION: `instant-${n}` };
  },
  /** A version that never becomes healthy. */
  neverHealthy: (app: Record<string, unknown>, n: number) => {
    app.env = { ...(app.env as object), WARMUP_SECONDS: "never", REVISION: `never-${n}` };
  },
} as const;
