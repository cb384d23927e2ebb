/**
 * npm run bench:synth [-- --runs N]
 * Wall time and peak memory of `synth` (the real CLI, in a fresh process) for 10, 100 and 500
 * generated sites, median of N runs (default 3). Prints a Markdown table for the README.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { exampleSettings, writeProject } from "./fixtures";

const ROOT = path.resolve(__dirname, "..");
const SIZES = [10, 100, 500];

/** A mix like the real one: dedicated and shared databases, paused sites, routed services. */
function generate(count: number): { root: string } {
  const dns = { provider: "cloudflare", zone: "example.com" };
  const sites = Array.from({ length: count }, (_, i) => {
    const name = `site-${String(i).padStart(4, "0")}`;
    if (i % 10 === 0) {
      const upstream = { host: `svc-${i}`, port: 8080 };
      return { name, kind: "service", domains: [`${name}.example.com`], upstream, dns };
    }
    return {
      name,
      kind: "website",
      status: i % 7 === 3 ? "paused" : "active",
      domains: [`${name}.example.com`, `www.${name}.example.com`],
      app: { image: `ghcr.io/acme/${name}:1.0.${i}`, port: 3000, env: { NODE_ENV: "production" } },
      database: i % 5 === 1 ? { mode: "shared" } : { mode: "dedicated" },
      dns,
    };
  });
  // A budget no generated mix can exceed: the benchmark measures synth, not the capacity check.
  return writeProject("bench", exampleSettings({}, { memory: "100000Gi", cpus: 10000 }), sites);
}

function runOnce(root: string): { ms: number; maxRssMiB: number; resources: number } {
  const start = process.hrtime.bigint();
  // The real CLI through tsx, as `npm run synth` runs it; every node process reports its peak RSS.
  const r = spawnSync(
    path.join(ROOT, "node_modules", ".bin", "tsx"),
    [path.join(ROOT, "scripts", "synth.ts"), "--stack", "bench", "--out", path.join(root, "out")],
    {
      cwd: root,
      encoding: "utf8",
      env: {
        ...process.env,
        NODE_OPTIONS: `--require ${path.join(ROOT, "scripts", "bench-rss.cjs")}`,
      },
    },
  );
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`synth failed:\n${r.stdout}\n${r.stderr}`);
  const rss = [...r.stderr.matchAll(/bench-maxrss-kib=(\d+)/g)].map((m) => Number(m[1]));
  const resources = /synth: stack bench: (\d+) resources/.exec(r.stdout);
  if (!rss.length || !resources)
    throw new Error(`unexpected synth output:\n${r.stdout}\n${r.stderr}`);
  return { ms, maxRssMiB: Math.max(...rss) / 1024, resources: Number(resources[1]) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function main(): void {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "3" } } });
  const runs = Math.max(1, Number(values.runs));
  const rows: { sites: number; resources: number; ms: number; mib: number }[] = [];
  for (const size of SIZES) {
    const { root } = generate(size);
    const results = [];
    for (let i = 0; i < runs; i++) {
      results.push(runOnce(root));
      process.stderr.write(
        `bench:synth ${size} sites: run ${i + 1}/${runs} ${results[i].ms.toFixed(0)} ms\n`,
      );
    }
    rows.push({
      sites: size,
      resources: results[0].resources,
      ms: median(results.map((r) => r.ms)),
      mib: median(results.map((r) => r.maxRssMiB)),
    });
    fs.rmSync(root, { recursive: true, force: true });
  }
  const lines = [
    `synth benchmark: median of ${runs} runs, ${os.cpus().length} cores, Node ${process.version}`,
    "",
    "| sites | resources | wall time | peak memory (RSS) |",
    "| ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.sites} | ${r.resources} | ${(r.ms / 1000).toFixed(2)} s | ${r.mib.toFixed(0)} MiB |`,
    ),
    "",
  ];
  const r100 = rows.find((r) => r.sites === 100)!;
  const r500 = rows.find((r) => r.sites === 500)!;
  lines.push(
    `500 sites / 100 sites: ${(r500.ms / r100.ms).toFixed(2)}x time, ${(r500.mib / r100.mib).toFixed(2)}x memory (5x the sites)`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

main();
