/**
 * A shared-mode site's backup on the real engine, run as its timer's service runs it: a stand-in
 * shared cluster (the PostgreSQL stand-in image) on a network of its own, the site's app role only,
 * `site-backup.sh backup` with the job's words from core/timers.ts, then the restore drill through
 * host-restore.sh (a throwaway server in the short-lived container). Everything it creates carries
 * this run's label and is removed at the end.
 */
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_IMAGES } from "../../stacks/settings";
import { backupExecStart, backupJobArgs, type BackupJob, type JobHost } from "../../core/timers";
import { docker, must, run } from "./docker";
import { buildImages } from "./images";

const ROOT = path.join(__dirname, "..", "..");
const BACKUP_SCRIPTS = path.join(ROOT, "components", "backup");
const id = crypto.randomBytes(3).toString("hex");
const LABEL = `agi.engine-suite.backup-shared=${id}`;
const site = `tmr${id}`;
const database = `tmr${id}`;
const cluster = `tmr${id}-cluster`;
const network = `tmr${id}-net`;
// Test-only credentials of a throwaway cluster; nothing real.
const ADMIN_PASSWORD = "engine-suite-cluster-admin";
const ROLE_PASSWORD = "engine-suite-role-password";

describe("shared-mode backup on the engine, as the timer runs it", () => {
  let dir: string;
  let job: BackupJob;
  let host: JobHost;
  let words: string[];

  before(async () => {
    await buildImages({
      postgres: [DEFAULT_IMAGES.postgres],
      caddy: [],
      haproxy: [],
      "demo-app": [],
      uploader: [],
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "agi-backup-shared-"));
    await docker(["network", "create", "--label", LABEL, network]);
    await docker([
      "run",
      "-d",
      "--name",
      cluster,
      "--label",
      LABEL,
      "--network",
      network,
      "-e",
      `POSTGRES_PASSWORD=${ADMIN_PASSWORD}`,
      DEFAULT_IMAGES.postgres,
      "postgres",
      "-c",
      "listen_addresses=*",
    ]);
    const deadline = Date.now() + 120_000;
    while (
      (await run("docker", ["exec", cluster, "pg_isready", "-h", "127.0.0.1", "-q"])).code !== 0
    ) {
      assert.ok(Date.now() < deadline, "the stand-in cluster did not start");
      await new Promise((r) => setTimeout(r, 500));
    }
    // The platform's shape: a database owned by the admin, the app role with grants only.
    const sql = `CREATE ROLE ${database}_app LOGIN PASSWORD '${ROLE_PASSWORD}';
CREATE DATABASE ${database};
REVOKE ALL ON DATABASE ${database} FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE ${database} TO ${database}_app;
\\c ${database}
GRANT CREATE, USAGE ON SCHEMA public TO ${database}_app;
SET ROLE ${database}_app;
CREATE TABLE orders (id serial PRIMARY KEY, note text);
INSERT INTO orders (note) SELECT 'order ' || i FROM generate_series(1, 500) i;
CREATE TABLE "it's odd" (x int);
INSERT INTO "it's odd" VALUES (1), (2), (3);
`;
    await must(
      "docker",
      ["exec", "-i", "-u", "postgres", cluster, "psql", "-v", "ON_ERROR_STOP=1", "-q"],
      {
        input: sql,
      },
    );
    fs.mkdirSync(path.join(dir, "secrets"), { mode: 0o700 });
    host = {
      target: { kind: "local" },
      scriptDir: BACKUP_SCRIPTS,
      unitDir: path.join(dir, "timers"),
      secretDir: path.join(dir, "secrets"),
      shared: { container: cluster, port: 5432 },
    };
    job = {
      site,
      database,
      mode: "shared",
      dir: path.join(dir, "backups", site),
      retention: { daily: 7, weekly: 4, monthly: 12 },
    };
    fs.writeFileSync(path.join(dir, "secrets", `${site}.pgpass`), `*:*:*:*:${ROLE_PASSWORD}\n`, {
      mode: 0o600,
    });
    // The cluster's own network stands in for agi-network here.
    words = backupJobArgs(job, host).map((w) =>
      w.startsWith("network=") ? `network=${network}` : w,
    );
  });

  after(async () => {
    await run("docker", ["rm", "-f", cluster, `${site}-backup`]);
    await run("docker", ["network", "rm", network]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("dumps as the app role in a short-lived container of the cluster's image, and the drill passes", async () => {
    // The service's command line, with the test network in place of agi-network.
    const execStart = backupExecStart(job, host).replace(/ network=\S+/, ` network=${network}`);
    assert.deepEqual(execStart.split(" ").slice(3), words);
    const r = await run("/bin/sh", ["-c", execStart]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`backup ${site}: ok: daily/${site}-\\S+\\.dump`));
    const status = JSON.parse(fs.readFileSync(path.join(job.dir, "status.json"), "utf8")) as {
      lastError: string | null;
      lastDump: string;
    };
    assert.equal(status.lastError, null);
    const manifest = JSON.parse(
      fs.readFileSync(
        path.join(job.dir, status.lastDump.replace(/\.dump$/, ".manifest.json")),
        "utf8",
      ),
    ) as { rowCounts: Record<string, number>; globals: boolean; serverVersion: string };
    assert.deepEqual(manifest.rowCounts, { "public.it's odd": 3, "public.orders": 500 });
    assert.equal(manifest.globals, false, "the app role dumps no roles");
    assert.match(manifest.serverVersion, /^15\./);
    // Nothing stays: the short-lived container is gone.
    assert.notEqual((await run("docker", ["container", "inspect", `${site}-backup`])).code, 0);

    const drill = await run("sh", [
      path.join(BACKUP_SCRIPTS, "host-restore.sh"),
      path.join(BACKUP_SCRIPTS, "site-backup.sh"),
      "--latest",
      "--into-scratch",
      ...words,
    ]);
    assert.equal(drill.code, 0, `${drill.stdout}\n${drill.stderr}`);
    assert.match(drill.stdout, /restore drill: ok: .*\.dump restores, 2 tables match/);
    assert.notEqual((await run("docker", ["container", "inspect", `${site}-backup`])).code, 0);
    // The drill created nothing in the cluster.
    const dbs = await must("docker", [
      "exec",
      "-u",
      "postgres",
      cluster,
      "psql",
      "-At",
      "-c",
      "SELECT count(*) FROM pg_database WHERE datname LIKE 'restore_drill%'",
    ]);
    assert.equal(dbs.trim(), "0");
  });

  it("a wrong password is recorded in status.json, and the earlier dump stays", async () => {
    const pgpass = path.join(dir, "secrets", `${site}.pgpass`);
    fs.writeFileSync(pgpass, "*:*:*:*:not-the-password\n", { mode: 0o600 });
    try {
      const before = fs.readdirSync(path.join(job.dir, "daily")).sort();
      const r = await run("/bin/sh", [
        "-c",
        backupExecStart(job, host).replace(/ network=\S+/, ` network=${network}`),
      ]);
      assert.equal(r.code, 1);
      const status = JSON.parse(fs.readFileSync(path.join(job.dir, "status.json"), "utf8")) as {
        lastError: string | null;
      };
      assert.match(status.lastError ?? "", /password authentication failed/);
      assert.ok(!(status.lastError ?? "").includes("not-the-password"));
      assert.deepEqual(fs.readdirSync(path.join(job.dir, "daily")).sort(), before);
    } finally {
      fs.writeFileSync(pgpass, `*:*:*:*:${ROLE_PASSWORD}\n`, { mode: 0o600 });
    }
  });
});
