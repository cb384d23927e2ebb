/**
 * npm run bench:update [-- --runs N] [-- --requests N]
 * App updates under load on this machine's Docker engine (needs dockerd and the engine suite's
 * stand-in images, as `npm run test:engine`): the engine suite's test project is realized, then each
 * scenario runs N times (default 3) with the request loop of test/engine/load.ts through the edge
 * (at least 10,000 requests, 48 clients, a request fails on a 5xx, a connection error or no answer
 * within 10 s; the loop starts before the update and ends after it). Scenarios: a version that
 * answers 503 for its first 15 s, one ready at once, one that never gets healthy (the update fails,
 * the old version serves), and the control run (the design this one replaces: the old container
 * removed first, the new one routed as soon as it runs). Prints progress on stderr and a Markdown
 * table (median and worst failed requests per scenario) on stdout, and writes every run to
 * build/bench/update.json. Everything it creates is removed at the end.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { SCENARIOS, setUpEngine, updateUnderLoad } from "../test/engine/update-scenarios";

const ROOT = path.resolve(__dirname, "..");

function log(message: string): void {
  process.stderr.write(`bench:update: ${message}\n`);
}

interface Run {
  requests: number;
  failed: number;
  /** Requests sent again on a new connection after a reused one was reset (see load.ts). */
  retried: number;
  updateSeconds: number;
  updateFailed: boolean;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      runs: { type: "string", default: "3" },
      requests: { type: "string", default: "10000" },
    },
  });
  const runs = Number(values.runs);
  const minRequests = Number(values.requests);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs: not a positive whole number: ${values.runs}`);
  if (!Number.isInteger(minRequests) || minRequests < 1) {
    throw new Error(`--requests: not a positive whole number: ${values.requests}`);
  }
  const ctx = await setUpEngine(log);
  const results: Record<string, Run[]> = {
    warmup15s: [],
    instant: [],
    neverHealthy: [],
    control: [],
  };
  try {
    for (let i = 1; i <= runs; i++) {
      const plan: [
        keyof typeof results,
        string,
        (app: Record<string, unknown>) => void,
        boolean,
      ][] = [
        ["warmup15s", "alpha", (app) => SCENARIOS.warmup15s(app, i), false],
        ["instant", "beta", (app) => SCENARIOS.instant(app, i), false],
        ["neverHealthy", "beta", (app) => SCENARIOS.neverHealthy(app, i), false],
        ["control", "beta", (app) => SCENARIOS.warmup15s(app, 1000 + i), true],
      ];
      for (const [name, site, change, ungated] of plan) {
        log(`run ${i}/${runs}: ${name} (${site})`);
        const o = await updateUnderLoad(ctx, site, change, { ungated, minRequests });
        const expectFailure = name === "neverHealthy";
        if (Boolean(o.error) !== expectFailure) {
          throw new Error(
            `${name}: the update ${o.error ? `failed: ${o.error.message}` : "succeeded, but should have failed"}`,
          );
        }
        results[name].push({
          requests: o.load.requests,
          failed: o.load.failed,
          retried: o.load.retried,
          updateSeconds: o.updateSeconds,
          updateFailed: Boolean(o.error),
        });
      }
    }
  } finally {
    await ctx.close();
  }
  const out = path.join(ROOT, "build", "bench");
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, "update.json"), `${JSON.stringify(results, null, 2)}\n`);
  const rows = Object.entries(results).map(([name, rs]) => {
    const failed = rs.map((r) => r.failed);
    const pct = rs.map((r) => (100 * r.failed) / r.requests);
    return `| ${name} | ${rs.length} | ${median(rs.map((r) => r.requests))} | ${median(failed)} (${median(pct).toFixed(1)} %) | ${Math.max(...failed)} (${Math.max(...pct).toFixed(1)} %) | ${median(rs.map((r) => r.retried))} | ${median(rs.map((r) => r.updateSeconds)).toFixed(0)} s |`;
  });
  process.stdout.write(
    [
      "| scenario | runs | requests (median) | failed, median | failed, worst | retried (median) | update time (median) |",
      "| --- | --- | --- | --- | --- | --- | --- |",
      ...rows,
      "",
    ].join("\n"),
  );
}

main().catch((err: Error) => {
  log(err.message);
  process.exit(1);
});
