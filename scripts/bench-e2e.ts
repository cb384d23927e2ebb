/**
 * npm run bench:e2e (as root, with a Docker engine; never in CI)
 * The `local` stack's shape (test/engine/local-project.ts: the shared cluster the program creates, a
 * site on a dedicated database with the socket proxy, a shared-mode site and an adopted one) realized
 * on this engine by the engine suite's harness with the stand-in images, then measured:
 *   - seconds from nothing (images ready) to every site healthy and served through the edge;
 *   - memory per container kind (docker stats) idle, and under a light load (a request loop through
 *     the edge, 2 requests in flight);
 *   - from those, the reservations the platform's containers should carry, and how many sites fit
 *     on prod's 2Gi budget for managed containers and on a whole 4 GB host.
 * Prints a Markdown table and writes build/bench/e2e.json. Everything it creates is removed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { edgeFootprint, sharedClusterFootprint, siteFootprint } from "../core/capacity";
import { SiteSchema, type Site } from "../core/site";
import {
  EDGE_RESERVATION_MIB,
  SHARED_CLUSTER_RESERVATION_MIB,
  SOCKET_PROXY_RESERVATION_MIB,
} from "../core/specs";
import { DEFAULT_DATABASE_RESERVATION } from "../core/site";
import { toMiB } from "../core/units";
import { readStackFile } from "../core/validate";
import { docker } from "../test/engine/docker";
import { Harness } from "../test/engine/harness";
import { bringUpLocal, type LocalRun } from "../test/engine/local-project";
import { startEdgeLoad, type EdgeLoadResult } from "../test/engine/edge-load";

const ROOT = path.resolve(__dirname, "..");
const IDLE_SAMPLES = 3;
const LOAD_SECONDS = 30;
const SAMPLE_EVERY_MS = 5000;
const log = (m: string) => process.stderr.write(`bench:e2e: ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** "12.5MiB" -> 12.5 */
function statMiB(text: string): number {
  const m = /^([\d.]+)\s*([KMG]i?B|B)$/.exec(text.trim());
  if (!m) throw new Error(`unreadable memory figure ${text}`);
  const f: Record<string, number> = {
    B: 1 / 1048576,
    KiB: 1 / 1024,
    KB: 1 / 1024,
    MiB: 1,
    MB: 1,
    GiB: 1024,
    GB: 1024,
  };
  return Math.round(Number(m[1]) * f[m[2]] * 10) / 10;
}

/** One `docker stats` sample: MiB used per container kind (the `agi.role` label). */
async function sample(run: LocalRun): Promise<Record<string, number[]>> {
  const containers = run.desired.resources.filter(
    (r) => r.type === "docker:index/container:Container",
  );
  const names = containers.map((c) => run.harness.dockerName(c.name));
  const out = await docker([
    "stats",
    "--no-stream",
    "--format",
    "{{.Name}}\t{{.MemUsage}}",
    ...names,
  ]);
  const byKind: Record<string, number[]> = {};
  for (const line of out.trim().split("\n")) {
    const [name, usage] = line.split("\t");
    const c = containers.find((r) => run.harness.dockerName(r.name) === name)!;
    const role = (c.clearInputs.labels as { label: string; value: string }[]).find(
      (l) => l.label === "agi.role",
    )!.value;
    (byKind[role] ??= []).push(statMiB(usage.split("/")[0]));
  }
  return byKind;
}

/** Min and max per kind over samples. */
function range(samples: Record<string, number[]>[]): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const s of samples) {
    for (const [kind, values] of Object.entries(s)) {
      const [lo, hi] = out[kind] ?? [Infinity, -Infinity];
      out[kind] = [Math.min(lo, ...values), Math.max(hi, ...values)];
    }
  }
  return out;
}

/** A reservation from measurements: twice the idle peak or the light-load peak, whichever is more, rounded up to 16 MiB. */
const reservationFrom = (idleMax: number, loadMax: number) =>
  Math.ceil(Math.max(2 * idleMax, loadMax) / 16) * 16;

/** A default website of each database mode, as a site file would declare it. */
function defaultSite(mode: "dedicated" | "shared"): Site {
  return SiteSchema.parse({
    name: `bench-${mode}`,
    kind: "website",
    domains: [`${mode}.example.com`],
    app: { image: "ghcr.io/acme/app:1.0.0", port: 3000 },
    database: { mode },
    dns: { provider: "external" },
  });
}

async function main(): Promise<number> {
  const harness = new Harness({ log });
  let run: LocalRun | undefined;
  try {
    log("bringing up the local stack's shape (images, then every resource)");
    run = await bringUpLocal(harness, log);
    log(`all sites healthy and served in ${run.secondsToAllHealthy.toFixed(1)}s`);

    const idle: Record<string, number[]>[] = [];
    for (let i = 0; i < IDLE_SAMPLES; i++) {
      idle.push(await sample(run));
      await sleep(SAMPLE_EVERY_MS);
    }
    const hosts = run.project.sites.map((s) => (s.domains as string[])[0]);
    const load = startEdgeLoad({ port: run.project.httpsPort, hosts, ca: run.ca, workers: 2 });
    const loaded: Record<string, number[]>[] = [];
    const until = Date.now() + LOAD_SECONDS * 1000;
    while (Date.now() < until) {
      await sleep(SAMPLE_EVERY_MS);
      loaded.push(await sample(run));
    }
    const loadResult: EdgeLoadResult = await load.stop();

    const idleRange = range(idle);
    const loadRange = range(loaded);
    const kinds = [...new Set([...Object.keys(idleRange), ...Object.keys(loadRange)])].sort();
    const current: Record<string, number> = {
      app: toMiB("256Mi"),
      db: toMiB(DEFAULT_DATABASE_RESERVATION),
      "shared-db": SHARED_CLUSTER_RESERVATION_MIB,
      edge: EDGE_RESERVATION_MIB,
      "docker-proxy": SOCKET_PROXY_RESERVATION_MIB,
    };
    const rows = kinds.map((k) => ({
      kind: k,
      idle: idleRange[k],
      load: loadRange[k],
      reservation: current[k],
      fromBench: reservationFrom(idleRange[k][1], loadRange[k][1]),
    }));

    // Capacity from the program's own computation (core/capacity.ts) on the defaults in force.
    const prod = readStackFile(path.join(ROOT, "Pulumi.prod.yaml"), "Pulumi.prod.yaml").settings!;
    const local = readStackFile(
      path.join(ROOT, "Pulumi.local.yaml"),
      "Pulumi.local.yaml",
    ).settings!;
    const edge = edgeFootprint(prod).reservationMiB;
    const cluster = sharedClusterFootprint(local.hosts[0]).reservationMiB;
    const dedicated = siteFootprint(defaultSite("dedicated")).reservationMiB;
    const shared = siteFootprint(defaultSite("shared")).reservationMiB;
    const prodBudget = toMiB(prod.hosts[0].capacity.memory);
    const host = 4096;
    const fit = (budget: number, fixed: number, perSite: number) =>
      Math.floor((budget - fixed) / perSite);
    // By measured use under light load instead of reservations (stand-in apps: a real app needs more).
    const peak = (k: string) => loadRange[k]?.[1] ?? idleRange[k]?.[1] ?? 0;
    const usedDedicated = peak("app") + peak("db");
    const usedShared = peak("app");
    const capacity = {
      reservations: { edge, sharedCluster: cluster, dedicatedSite: dedicated, sharedSite: shared },
      prod2Gi: {
        budget: prodBudget,
        dedicated: fit(prodBudget, edge, dedicated),
        // Prod's shared cluster (supabase-db) predates the platform and is outside the budget.
        shared: fit(prodBudget, edge, shared),
      },
      whole4GB: {
        budget: host,
        dedicated: fit(host, edge, dedicated),
        // On a host whose shared cluster the platform runs, the cluster is counted once.
        shared: fit(host, edge + cluster, shared),
      },
      measuredUse: {
        dedicatedSite: Math.round(usedDedicated * 10) / 10,
        sharedSite: Math.round(usedShared * 10) / 10,
      },
    };

    const result = {
      machine: `${process.arch}, ${(await docker(["info", "--format", "{{.NCPU}} CPUs, {{.MemTotal}} bytes, Docker {{.ServerVersion}}"])).trim()}`,
      secondsToAllHealthy: Math.round(run.secondsToAllHealthy * 10) / 10,
      imagesSeconds: Math.round(run.images.seconds * 10) / 10,
      load: loadResult,
      memoryMiB: rows,
      capacity,
    };
    const outDir = path.join(ROOT, "build", "bench");
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(path.join(outDir, "e2e.json"), `${JSON.stringify(result, null, 2)}\n`);

    const fmt = (r?: [number, number]) => (r ? `${r[0]}–${r[1]}` : "-");
    const lines = [
      `machine: ${result.machine}`,
      `nothing -> all ${run.project.sites.length} sites healthy and served: ${result.secondsToAllHealthy} s (stand-in images ready; building them took ${result.imagesSeconds} s)`,
      `light load: ${loadResult.requests} requests in ${loadResult.seconds} s through the edge, ${loadResult.failed} failed`,
      "",
      "| container kind | idle MiB | light load MiB | reservation now | from the bench |",
      "| -------------- | -------: | -------------: | --------------: | -------------: |",
      ...rows.map(
        (r) =>
          `| ${r.kind} | ${fmt(r.idle)} | ${fmt(r.load)} | ${r.reservation ?? "-"} | ${r.kind === "app" ? "256 (decision)" : r.fromBench} |`,
      ),
      "",
      `per site (reservations): dedicated ${dedicated} MiB, shared ${shared} MiB; edge ${edge} MiB; a created shared cluster ${cluster} MiB`,
      `prod, 2Gi for managed containers: (${prodBudget} - ${edge}) / ${dedicated} = ${capacity.prod2Gi.dedicated} dedicated sites; (${prodBudget} - ${edge}) / ${shared} = ${capacity.prod2Gi.shared} shared sites`,
      `whole 4 GB host: (${host} - ${edge}) / ${dedicated} = ${capacity.whole4GB.dedicated} dedicated; (${host} - ${edge} - ${cluster}) / ${shared} = ${capacity.whole4GB.shared} shared`,
      `measured use per site under light load (stand-in app): dedicated ${capacity.measuredUse.dedicatedSite} MiB, shared ${capacity.measuredUse.sharedSite} MiB`,
      "original plan: 8 to 10 sites",
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    const mismatch = rows.filter(
      (r) => r.kind !== "app" && r.reservation !== undefined && r.reservation !== r.fromBench,
    );
    if (mismatch.length) {
      log(
        `reservations that differ from the bench: ${mismatch.map((r) => `${r.kind} ${r.reservation} -> ${r.fromBench}`).join(", ")}`,
      );
    }
    return 0;
  } finally {
    const left = await harness.cleanup();
    if (left.length) log(`cleanup could not remove:\n${left.join("\n")}`);
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench:e2e: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
