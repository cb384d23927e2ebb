/** The backup container's scheduler (components/backup/scheduler.sh): cron matching and its loop. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { cronProblem, defaultBackupSchedule } from "../core/site";
import { ROOT, tempDir } from "./helpers";

const SCHEDULER = path.join(ROOT, "components", "backup", "scheduler.sh");
const matches = (cron: string, at: string) =>
  spawnSync("sh", [SCHEDULER, "--matches", cron, at]).status;

test("cron matching: minute, hour, steps, ranges, lists, Sunday as 0 or 7, day-of-month or day-of-week", () => {
  const table: [string, string, number][] = [
    ["17 2 * * *", "17 2 5 3 4", 0],
    ["17 2 * * *", "18 2 5 3 4", 1],
    ["17 2 * * *", "17 3 5 3 4", 1],
    ["*/15 * * * *", "45 9 1 1 0", 0],
    ["*/15 * * * *", "46 9 1 1 0", 1],
    ["5/20 * * * *", "25 0 1 1 1", 0],
    ["5/20 * * * *", "24 0 1 1 1", 1],
    ["0-10/5 1,2 * * *", "10 2 1 1 1", 0],
    ["0-10/5 1,2 * * *", "11 2 1 1 1", 1],
    ["0 3 * * 0", "0 3 9 3 0", 0],
    ["0 3 * * 7", "0 3 9 3 0", 0],
    ["0 3 * * 1-5", "0 3 8 3 6", 1],
    ["0 3 1 * *", "0 3 2 3 1", 1],
    ["0 3 1 * 1", "0 3 9 3 1", 0], // both restricted: either matches
    ["0 3 1 * 1", "0 3 10 3 2", 1],
    ["0 3 * 6 *", "0 3 1 7 2", 1],
    ["0 08 * * *", "0 8 1 1 1", 0], // leading zeros are decimal, not octal
    ["0 3 */2 * 1", "0 3 3 3 5", 1], // "*/2" does not restrict the day: AND, as in standard cron
    ["0 3 */2 * 1", "0 3 3 3 1", 0],
    ["*/0 * * * *", "0 0 1 1 1", 2], // a step of 0 is refused
  ];
  for (const [cron, at, want] of table) assert.equal(matches(cron, at), want, `${cron} @ ${at}`);
});

test("what the schema accepts, the scheduler understands, and the reverse", () => {
  const accepted = [
    "17 2 * * *",
    "*/5 * * * *",
    "0 0-23/6 1,15 * 1-5",
    ...["a", "b", "site-42"].map(defaultBackupSchedule),
  ];
  for (const cron of accepted) {
    assert.equal(cronProblem(cron), undefined, cron);
    assert.notEqual(matches(cron, "0 0 1 1 1"), 2, cron);
  }
  for (const cron of ["0 3 * * MON", "@daily", "x 2 * * *", "*/0 * * * *"]) {
    assert.notEqual(cronProblem(cron), undefined, cron);
    assert.equal(matches(cron, "0 0 1 1 1"), 2, cron);
  }
});

test("the loop: runs a due job at once, keeps a heartbeat, stops on SIGTERM", async () => {
  const dir = tempDir("scheduler");
  const job = path.join(dir, "job.sh");
  fs.writeFileSync(job, `#!/bin/sh\necho ran >> ${dir}/runs\n`, { mode: 0o755 });
  const child = spawn("sh", [SCHEDULER], {
    env: {
      ...process.env,
      BACKUP_SCHEDULE: "* * * * *",
      BACKUP_JOB: job,
      SCHEDULER_HEARTBEAT: path.join(dir, "alive"),
      SITE: "shop",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  try {
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(path.join(dir, "runs"))) {
      assert.ok(Date.now() < deadline, "the due job did not run");
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(fs.existsSync(path.join(dir, "alive")), "heartbeat");
    assert.equal(out, 'scheduler: backups of shop at "* * * * *" (UTC)\n');
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  child.kill("SIGTERM");
  const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  assert.equal(code, 0);
  assert.equal(fs.readFileSync(path.join(dir, "runs"), "utf8"), "ran\n");
});

test("the loop refuses a schedule it cannot run", () => {
  const r = spawnSync("sh", [SCHEDULER], {
    env: { ...process.env, BACKUP_SCHEDULE: "0 3 * * MON" },
    encoding: "utf8",
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not a cron schedule this scheduler understands: 0 3 \* \* MON/);
});
