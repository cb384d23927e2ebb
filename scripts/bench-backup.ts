/**
 * npm run bench:backup [-- --size-mib N]
 * A generated database of about N MiB (default 1024) on a throwaway PostgreSQL 15 (fsync on), then:
 * a backup with verification (pg-backup.sh, as the backup job runs it), the restore drill and
 * a restore into a fresh database (pg-restore.sh), side by side with the original design's
 * `pg_dump | gzip` and `gunzip | psql`. Prints progress on stderr and a Markdown table on stdout.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { startPostgres } from "../test/pg-server";
import { tempDir } from "../test/helpers";

const ROOT = path.resolve(__dirname, "..");
const SCRIPTS = path.join(ROOT, "components", "backup");
const MiB = 1024 * 1024;

function log(message: string): void {
  process.stderr.write(`bench:backup: ${message}\n`);
}

/** Runs a shell command line; exits on failure with its output. Returns seconds taken. */
function timed(label: string, command: string, env: NodeJS.ProcessEnv): number {
  log(`${label} ...`);
  const start = process.hrtime.bigint();
  const r = spawnSync("sh", ["-c", command], { env, encoding: "utf8" });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) {
    process.stderr.write(`${r.stdout}${r.stderr}`);
    log(`${label} failed (exit ${r.status})`);
    process.exit(1);
  }
  log(`${label}: ${seconds.toFixed(1)} s`);
  return seconds;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { "size-mib": { type: "string", default: "1024" } },
    strict: true,
  });
  const target = Number(values["size-mib"]) * MiB;
  if (!Number.isFinite(target) || target < MiB) throw new Error("--size-mib must be a number >= 1");

  // Durable like production (fsync on), sized like the 2-core host's dedicated databases.
  const pg = await startPostgres([
    ["fsync", "on"],
    ["shared_buffers", "256MB"],
    ["max_wal_size", "4GB"],
    ["maintenance_work_mem", "256MB"],
  ]);
  const work = tempDir("bench-backup");
  try {
    const password = "bench-only-password";
    pg.sql("postgres", `ALTER ROLE postgres PASSWORD '${password}'`);
    fs.writeFileSync(path.join(work, "pw"), password, { mode: 0o600 });
    const env = {
      ...process.env,
      PGHOST: "127.0.0.1",
      PGPORT: String(pg.port),
      PGUSER: "postgres",
      PGPASSWORD: password,
    };
    pg.sql("postgres", "CREATE DATABASE bench");
    pg.sql(
      "bench",
      `CREATE TABLE customers (id serial PRIMARY KEY, name text, email text UNIQUE, vip boolean, tags text[], created timestamptz);
       INSERT INTO customers (name, email, vip, tags, created)
         SELECT 'customer ' || i, 'c' || i || '@example.com', i % 11 = 0, ARRAY['t' || (i % 7), 'x'],
                '2024-01-01'::timestamptz + i * interval '1 minute'
         FROM generate_series(1, 200000) i;
       CREATE TABLE orders (id bigserial PRIMARY KEY, customer int REFERENCES customers, total numeric(12,2),
                            status text, meta jsonb, created timestamptz);
       CREATE INDEX ON orders (customer);
       CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz, kind text, payload jsonb, body text);`,
    );
    // Rows in batches until the database reaches the target size: ids and sums compress like real
    // data; the md5 text does not compress much, like user content.
    const batch = 250_000;
    let rows = 0;
    const size = () => Number(pg.sql("bench", "SELECT pg_database_size('bench')"));
    for (let s = size(); s < target; s = size()) {
      pg.sql(
        "bench",
        `INSERT INTO orders (customer, total, status, meta, created)
           SELECT 1 + i % 200000, (i % 100000) * 0.37, (ARRAY['new','paid','shipped','returned'])[1 + i % 4],
                  jsonb_build_object('items', 1 + i % 9, 'coupon', CASE WHEN i % 13 = 0 THEN md5(i::text) END),
                  now() - (i % 100000) * interval '1 minute'
           FROM generate_series(${rows + 1}, ${rows + batch}) i;
         INSERT INTO events (at, kind, payload, body)
           SELECT now() - i * interval '1 second', 'kind-' || (i % 17),
                  jsonb_build_object('n', i, 'ok', i % 3 = 0), md5(i::text) || ' ' || md5((i * 7)::text)
           FROM generate_series(${rows + 1}, ${rows + batch}) i;`,
      );
      rows += batch;
      log(`generating: ${(s / MiB).toFixed(0)} MiB of ${(target / MiB).toFixed(0)} MiB`);
    }
    pg.sql("bench", "VACUUM ANALYZE");
    const dbBytes = size();
    log(`database: ${(dbBytes / MiB).toFixed(0)} MiB, ${rows * 2 + 200000} rows`);

    const backups = path.join(work, "backups");
    const jobEnv = {
      ...env,
      PGPASSWORD: "",
      SITE: "bench",
      BACKUP_DIR: backups,
      PGDATABASE: "bench",
      PGPASSWORD_FILE: path.join(work, "pw"),
    };
    const backup = timed(
      "backup with verification (pg-backup.sh)",
      `sh ${SCRIPTS}/pg-backup.sh`,
      jobEnv,
    );
    const dumpFile = fs.readdirSync(path.join(backups, "daily")).find((f) => f.endsWith(".dump"));
    const dumpBytes = fs.statSync(path.join(backups, "daily", dumpFile as string)).size;
    const drill = timed(
      "restore drill (pg-restore.sh --latest --into-scratch)",
      `sh ${SCRIPTS}/pg-restore.sh ${backups} --latest --into-scratch`,
      jobEnv,
    );
    pg.sql("postgres", "CREATE DATABASE restored");
    const restore = timed(
      "restore (pg-restore.sh --latest --into restored)",
      `sh ${SCRIPTS}/pg-restore.sh ${backups} --latest --into restored`,
      jobEnv,
    );

    const gz = path.join(work, "bench.sql.gz");
    const oldBackup = timed("original: pg_dump | gzip", `pg_dump bench | gzip > ${gz}`, env);
    const gzBytes = fs.statSync(gz).size;
    pg.sql("postgres", "CREATE DATABASE restored_sql");
    const oldRestore = timed(
      "original: gunzip | psql",
      `gunzip -c ${gz} | psql -X -q -v ON_ERROR_STOP=1 -d restored_sql >/dev/null`,
      env,
    );

    const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
    const sec = (s: number) => `${s.toFixed(1)} s`;
    process.stdout.write(
      [
        `Database: ${mib(dbBytes)} (pg_database_size), ${rows * 2 + 200000} rows in 3 tables.`,
        "",
        "| | this design | original (`pg_dump \\| gzip`, `psql`) |",
        "| --- | ---: | ---: |",
        `| backup | ${sec(backup)} (dump, read back in full, row counts, manifest) | ${sec(oldBackup)} (no check) |`,
        `| dump size | ${mib(dumpBytes)} | ${mib(gzBytes)} |`,
        `| restore | ${sec(restore)} (verify, restore in one transaction, row counts) | ${sec(oldRestore)} (no check) |`,
        `| restore drill | ${sec(drill)} (verify, scratch database, row counts, drop) | none |`,
        "",
      ].join("\n"),
    );
  } finally {
    await pg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  log(String((err as Error).message ?? err));
  process.exit(1);
});
