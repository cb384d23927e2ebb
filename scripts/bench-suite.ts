/**
 * npm run bench:suite [-- --fast]: each unit test file alone, one after another, with its wall and
 * CPU time, slowest first, then the whole suite as `npm test` runs it (files in parallel). For the
 * README's table and the deploy gate's estimate; never run in CI.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fastTests } from "./test-fast";

const root = path.join(__dirname, "..");
const dir = path.join(root, "test");
const fast = process.argv.includes("--fast");
const files = fast
  ? fastTests(dir)
  : fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".test.ts"))
      .sort()
      .map((f) => path.join(dir, f));

function run(args: string[]): { wall: number; cpu: number; ok: boolean } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", ...args], {
    cwd: root,
    stdio: "ignore",
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { wall, cpu: childrenCpu(), ok: r.status === 0 };
}

let lastCpu = 0;
/** CPU seconds of finished children since the last call (utime + stime, from /proc/self/stat). */
function childrenCpu(): number {
  const fields = fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
  const ticks = Number(fields[13]) + Number(fields[14]);
  const total = ticks / 100;
  const delta = total - lastCpu;
  lastCpu = total;
  return delta;
}

childrenCpu();
const rows: { file: string; wall: number; cpu: number; ok: boolean }[] = [];
for (const file of files) {
  process.stderr.write(`bench:suite: ${path.basename(file)} ...\n`);
  rows.push({ file: path.basename(file), ...run([file]) });
}
rows.sort((a, b) => b.wall - a.wall);
const pad = (s: string, n: number) => s.padEnd(n);
process.stdout.write(`${pad("file", 28)} wall s   cpu s\n`);
for (const r of rows) {
  process.stdout.write(
    `${pad(r.file, 28)} ${r.wall.toFixed(1).padStart(6)}  ${r.cpu.toFixed(1).padStart(6)}${r.ok ? "" : "  FAILED"}\n`,
  );
}
const sum = rows.reduce((a, r) => a + r.wall, 0);
process.stderr.write(`bench:suite: the whole ${fast ? "fast " : ""}suite, files in parallel ...\n`);
const whole = run(files);
process.stdout.write(
  `\none file at a time: ${sum.toFixed(1)} s; as the suite runs (in parallel): ${whole.wall.toFixed(1)} s wall, ${whole.cpu.toFixed(1)} s CPU${whole.ok ? "" : " (FAILED)"}\n`,
);
