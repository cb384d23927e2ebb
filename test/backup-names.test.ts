/**
 * Names an attacker controls reaching the backup scripts, on a real PostgreSQL 15: a table name built
 * to forge the manifest's JSON, and a dump file name built to run a command in pg-restore.sh.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { postgresAvailable, startPostgres, type PgServer } from "./pg-server";
import { ROOT, tempDir } from "./helpers";

const skip =
  !postgresAvailable() && !process.env.CI ? "PostgreSQL 15 binaries not installed" : false;
const BACKUP = path.join(ROOT, "components", "backup", "pg-backup.sh");
const RESTORE = path.join(ROOT, "components", "backup", "pg-restore.sh");
let pg: PgServer;
let pw: string;

before(async () => {
  if (skip) return;
  pg = await startPostgres();
  pg.sql("postgres", "ALTER ROLE postgres PASSWORD 'test-only-names-password'");
  pw = path.join(tempDir("names-secrets"), "pw");
  fs.writeFileSync(pw, "test-only-names-password", { mode: 0o600 });
  pg.sql("postgres", "CREATE DATABASE tenant");
  pg.sql(
    "tenant",
    `CREATE TABLE "z|0, ""forged"": 1" (x int); INSERT INTO "z|0, ""forged"": 1" SELECT generate_series(1, 3);
     CREATE TABLE "line
break" (y int); INSERT INTO "line
break" VALUES (1);
     CREATE TABLE plain (z int);`,
  );
});

after(async () => {
  if (pg) await pg.stop();
});

const env = () => ({
  ...process.env,
  PGHOST: "127.0.0.1",
  PGPORT: String(pg.port),
  PGUSER: "postgres",
  PGPASSWORD_FILE: pw,
});

/** One backup of the tenant database into `dir`, stamped 2026-03-04 02:17 UTC. */
function backupTenant(dir: string) {
  return spawnSync("sh", [BACKUP], {
    env: {
      ...env(),
      SITE: "tenant",
      BACKUP_DIR: dir,
      PGDATABASE: "tenant",
      BACKUP_NOW: "2026-03-04T02:17:00Z",
    },
    encoding: "utf8",
  });
}

test(
  "a table name that forges JSON: the manifest stays valid, the counts exact, the drill passes",
  { skip },
  () => {
    const dir = tempDir("names-backups");
    const r = backupTenant(dir);
    assert.equal(r.status, 0, r.stderr);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(dir, "daily", "tenant-20260304T021700Z.manifest.json"), "utf8"),
    );
    assert.deepEqual(manifest.rowCounts, {
      "public.line\nbreak": 1,
      "public.plain": 0,
      'public.z|0, "forged": 1': 3,
    });
    assert.equal(manifest.site, "tenant");
    const drill = spawnSync("sh", [RESTORE, dir, "--latest", "--into-scratch"], {
      env: env(),
      encoding: "utf8",
    });
    assert.equal(drill.status, 0, drill.stderr);
    assert.match(drill.stdout, /3 tables match the manifest's row counts/);
  },
);

test("a dump named to run a command is never picked nor run", { skip }, () => {
  const dir = tempDir("names-planted");
  const r = backupTenant(dir);
  assert.equal(r.status, 0, r.stderr);
  const good = path.join(dir, "daily", "tenant-20260304T021700Z");
  // Newer by name than the real dump, with a dump and a manifest beside it. Run, its command would
  // create "ran" in the restore's working directory.
  const cwd = tempDir("names-cwd");
  const marker = path.join(cwd, "ran");
  const evil = path.join(dir, "daily", "zz$(touch ran)");
  fs.copyFileSync(`${good}.dump`, `${evil}.dump`);
  fs.copyFileSync(`${good}.manifest.json`, `${evil}.manifest.json`);
  const latest = spawnSync("sh", [RESTORE, dir, "--latest", "--into-scratch"], {
    env: env(),
    encoding: "utf8",
  });
  assert.equal(latest.status, 0, latest.stderr);
  assert.match(latest.stdout, /^restore drill: ok: tenant-20260304T021700Z\.dump restores/);
  const named = spawnSync(
    "sh",
    [RESTORE, dir, "--backup", `daily/${path.basename(evil)}.dump`, "--into-scratch"],
    {
      env: env(),
      encoding: "utf8",
    },
  );
  assert.equal(named.status, 2);
  assert.equal(
    named.stderr,
    "restore: refusing a dump whose name is not letters, digits, '.', '_' and '-'\n",
  );
  assert.equal(fs.existsSync(marker), false, "the planted command never ran");
});
