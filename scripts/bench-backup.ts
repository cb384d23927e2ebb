/**
 * npm run bench:backup [-- --size-mib N] [--runs N]
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
    options: {
      "size-mib": { type: "string", default: "1024" },
      runs: { type: "string", default: "3" },
    },
    strict: true,
  });
  const target = Number(values["size-mib"]) * MiB;
  if (!Number.isFinite(target) || target < MiB) throw new Error("--size-mib must be a number >= 1");
  if (!Number.isInteger(Number(values.runs)) || Number(values.runs) < 1) {
    throw new Error("--runs must be a whole number >= 1");
  }

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

    // Medians of RUNS runs (each a fresh backup directory and fresh restore targets), as the
    // project's speed ratios are stated.
    const runs = Number(values.runs);
    const times = { backup: [] as number[], drill: [] as number[], restore: [] as number[] };
    const old = { backup: [] as number[], restore: [] as number[] };
    let dumpBytes = 0;
    let gzBytes = 0;
    for (let run = 1; run <= runs; run++) {
      log(`run ${run} of ${runs}`);
      const backups = path.join(work, `backups-${run}`);
      const jobEnv = {
        ...env,
        PGPASSWORD: "",
        SITE: "bench",
        BACKUP_DIR: backups,
        PGDATABASE: "bench",
        PGPASSWORD_FILE: path.join(work, "pw"),
      };
      times.backup.push(
        timed("backup with verification (pg-backup.sh)", `sh ${SCRIPTS}/pg-backup.sh`, jobEnv),
      );
      const daily = path.join(backups, "daily");
      const dumpFile = fs.readdirSync(daily).find((f) => f.endsWith(".dump")) as string;
      dumpBytes = fs.statSync(path.join(daily, dumpFile)).size;
      times.drill.push(
        timed(
          "restore drill (pg-restore.sh --latest --into-scratch)",
          `sh ${SCRIPTS}/pg-restore.sh ${backups} --latest --into-scratch`,
          jobEnv,
        ),
      );
      pg.sql("postgres", `CREATE DATABASE restored_${run}`);
      times.restore.push(
        timed(
          "restore (pg-restore.sh --latest --into restored)",
          `sh ${SCRIPTS}/pg-restore.sh ${backups} --latest --into restored_${run}`,
          jobEnv,
        ),
      );
      pg.sql("postgres", `DROP DATABASE restored_${run}`);
      fs.rmSync(backups, { recursive: true, force: true });

      const gz = path.join(work, "bench.sql.gz");
      old.backup.push(timed("original: pg_dump | gzip", `pg_dump bench | gzip > ${gz}`, env));
      gzBytes = fs.statSync(gz).size;
      pg.sql("postgres", `CREATE DATABASE restored_sql_${run}`);
      old.restore.push(
        timed(
          "original: gunzip | psql",
          `gunzip -c ${gz} | psql -X -q -v ON_ERROR_STOP=1 -d restored_sql_${run} >/dev/null`,
          env,
        ),
      );
      pg.sql("postgres", `DROP DATABASE restored_sql_${run}`);
      fs.rmSync(gz);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const backup = median(times.backup);
    const drill = median(times.drill);
    const restore = median(times.restore);
    const oldBackup = median(old.backup);
    const oldRestore = median(old.restore);

    const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
    const sec = (s: number) => `${s.toFixed(1)} s`;
    const all = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
    process.stdout.write(
      [
        `Database: ${mib(dbBytes)} (pg_database_size), ${rows * 2 + 200000} rows in 3 tables. ` +
          `Medians of ${runs} runs (each run's seconds in brackets).`,
        "",
        "| | this design | original (`pg_dump \\| gzip`, `psql`) | ratio |",
        "| --- | ---: | ---: | ---: |",
        `| backup | ${sec(backup)} [${all(times.backup)}] (dump, read back in full, row counts, manifest) | ${sec(oldBackup)} [${all(old.backup)}] (no check) | ${(backup / oldBackup).toFixed(2)}x |`,
        `| dump size | ${mib(dumpBytes)} | ${mib(gzBytes)} | |`,
        `| restore | ${sec(restore)} [${all(times.restore)}] (checksum, parallel restore into a new database, row counts, swap) | ${sec(oldRestore)} [${all(old.restore)}] (no check) | ${(restore / oldRestore).toFixed(2)}x |`,
        `| restore drill | ${sec(drill)} [${all(times.drill)}] (read through, scratch database, row counts, drop) | none | |`,
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
