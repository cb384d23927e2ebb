/**
 * The backup job (components/backup/*.sh) against a real PostgreSQL 15: the same scripts the backup
 * container runs. Round trip with generated data, manifests, status records, failure handling,
 * verification of damaged dumps, and retention over 400 simulated days.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { postgresAvailable, startPostgres, type PgServer } from "./pg-server";
import { ROOT, freePort, tempDir } from "./helpers";

const skip =
  !postgresAvailable() && !process.env.CI ? "PostgreSQL 15 binaries not installed" : false;
const BACKUP = path.join(ROOT, "components", "backup", "pg-backup.sh");
const VERIFY = path.join(ROOT, "components", "backup", "verify-dump.sh");
const RETENTION = path.join(ROOT, "components", "backup", "retention.sh");
const SU_PASSWORD = "test-only-superuser-password";
let pg: PgServer;
let secrets: string;

const TABLES = ["public.customers", "public.events", "public.orders", "shop.inventory"];

before(async () => {
  if (skip) return;
  pg = await startPostgres();
  pg.sql("postgres", `ALTER ROLE postgres PASSWORD '${SU_PASSWORD}'`);
  secrets = tempDir("secrets");
  fs.writeFileSync(path.join(secrets, "pw"), SU_PASSWORD, { mode: 0o600 });
  pg.sql("postgres", "CREATE DATABASE shop");
  pg.sql("postgres", "CREATE ROLE shop_app LOGIN PASSWORD 'test-only-app'");
  // Several column types, a second schema, large objects, a non-superuser role with grants.
  pg.sql(
    "shop",
    `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, vip boolean, tags text[], created timestamptz);
     INSERT INTO customers (name, email, vip, tags, created)
       SELECT 'customer ' || i, 'c' || i || '@example.com', i % 7 = 0, ARRAY['t' || (i % 5), 'x'], '2026-01-01'::timestamptz + i * interval '1 hour'
       FROM generate_series(1, 3000) i;
     CREATE TABLE orders (id bigserial PRIMARY KEY, customer int REFERENCES customers, total numeric(12,2), meta jsonb, id2 uuid, blob bytea);
     INSERT INTO orders (customer, total, meta, id2, blob)
       SELECT 1 + i % 3000, (i * 1.37)::numeric(12,2), jsonb_build_object('n', i, 'note', repeat('y', i % 40)),
              md5(i::text)::uuid, decode(md5(i::text), 'hex')
       FROM generate_series(1, 20000) i;
     CREATE TABLE events (at timestamptz, kind text, payload jsonb);
     INSERT INTO events SELECT now() - i * interval '1 minute', 'k' || (i % 3), '{"a": [1, 2, 3]}' FROM generate_series(1, 500) i;
     CREATE SCHEMA shop;
     CREATE TABLE shop.inventory (sku text PRIMARY KEY, qty int, doc oid);
     INSERT INTO shop.inventory SELECT 'sku-' || i, i, lo_from_bytea(0, convert_to(repeat('large object ' || i, 200), 'UTF8')) FROM generate_series(1, 25) i;
     GRANT USAGE ON SCHEMA shop TO shop_app;
     GRANT SELECT, INSERT ON orders, customers TO shop_app;
     GRANT SELECT ON shop.inventory TO shop_app;`,
  );
});

after(async () => {
  if (pg) await pg.stop();
});

function backup(dir: string, now: string, extra: Record<string, string> = {}) {
  return spawnSync("sh", [BACKUP], {
    env: {
      ...process.env,
      SITE: "shop",
      BACKUP_DIR: dir,
      PGHOST: "127.0.0.1",
      PGPORT: String(pg.port),
      PGUSER: "postgres",
      PGDATABASE: "shop",
      PGPASSWORD_FILE: path.join(secrets, "pw"),
      BACKUP_NOW: now,
      BACKUP_GLOBALS: "yes",
      ...extra,
    },
    encoding: "utf8",
  });
}

/** A content checksum of every table and of the large objects, as PostgreSQL sees them. */
function checksums(db: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of TABLES) {
    out[t] = pg.sql(
      db,
      `SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM ${t} x`,
    );
  }
  out.largeObjects = pg.sql(
    db,
    "SELECT count(*) || ':' || md5(coalesce(string_agg(md5(lo_get(oid)), ',' ORDER BY md5(lo_get(oid))), '')) FROM pg_largeobject_metadata",
  );
  return out;
}

test("round trip: the dump restores to identical content, grants included", { skip }, () => {
  const dir = tempDir("backups");
  const r = backup(dir, "2026-03-04T02:17:00Z");
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^backup shop: ok: daily\/shop-20260304T021700Z\.dump, \d+ bytes, \d+s, verified\n$/,
  );
  assert.ok(!(r.stdout + r.stderr).includes(SU_PASSWORD), "no password printed");
  const base = path.join(dir, "daily", "shop-20260304T021700Z");
  const manifest = JSON.parse(fs.readFileSync(`${base}.manifest.json`, "utf8"));
  assert.deepEqual(manifest.rowCounts, {
    "public.customers": 3000,
    "public.events": 500,
    "public.orders": 20000,
    "shop.inventory": 25,
  });
  assert.equal(
    manifest.sha256,
    createHash("sha256")
      .update(fs.readFileSync(`${base}.dump`))
      .digest("hex"),
  );
  assert.equal(manifest.sizeBytes, fs.statSync(`${base}.dump`).size);
  assert.match(manifest.serverVersion, /^15\./);
  assert.equal(manifest.globals, true);
  assert.doesNotMatch(
    fs.readFileSync(`${base}.globals.sql`, "utf8"),
    /SCRAM-SHA-256\$/,
    "no password hashes",
  );
  const status = JSON.parse(fs.readFileSync(path.join(dir, "status.json"), "utf8"));
  assert.equal(status.lastError, null);
  assert.equal(status.lastSuccess, "2026-03-04T02:17:00Z");
  assert.equal(status.lastDump, "daily/shop-20260304T021700Z.dump");

  pg.sql("postgres", "CREATE DATABASE restored");
  const restore = spawnSync(
    "pg_restore",
    ["--exit-on-error", ...pg.connArgs("restored"), `${base}.dump`],
    {
      encoding: "utf8",
    },
  );
  assert.equal(restore.status, 0, restore.stderr);
  assert.deepEqual(checksums("restored"), checksums("shop"));
  assert.equal(
    pg.sql("restored", "SELECT has_table_privilege('shop_app', 'shop.inventory', 'SELECT')"),
    "t",
  );
  assert.equal(
    pg.sql("restored", "SELECT has_table_privilege('shop_app', 'public.orders', 'DELETE')"),
    "f",
  );
  // The check can fail: a changed row changes the checksum.
  pg.sql("restored", "UPDATE orders SET total = total + 1 WHERE id = 1");
  assert.notDeepEqual(checksums("restored"), checksums("shop"));
});

test(
  "database down: the failure is recorded, no partial file, earlier dumps untouched",
  { skip },
  async () => {
    const dir = tempDir("backups");
    assert.equal(backup(dir, "2026-03-04T02:17:00Z").status, 0);
    const listing = () =>
      fs
        .readdirSync(dir, { recursive: true })
        .map(String)
        .filter((f) => !f.startsWith("."))
        .sort();
    const before = listing();
    const dump = path.join(dir, "daily", "shop-20260304T021700Z.dump");
    const sum = createHash("sha256").update(fs.readFileSync(dump)).digest("hex");
    const r = backup(dir, "2026-03-05T02:17:00Z", { PGPORT: String(await freePort()) });
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^backup shop: FAILED: opening a snapshot: .*(Connection refused|could not connect).*; earlier dumps are untouched\n$/s,
    );
    assert.deepEqual(
      listing().filter((f) => f !== "status.json"),
      before.filter((f) => f !== "status.json"),
    );
    assert.equal(createHash("sha256").update(fs.readFileSync(dump)).digest("hex"), sum);
    assert.deepEqual(fs.readdirSync(path.join(dir, ".tmp")), [], "no partial file");
    const status = JSON.parse(fs.readFileSync(path.join(dir, "status.json"), "utf8"));
    assert.equal(status.lastAttempt, "2026-03-05T02:17:00Z");
    assert.equal(status.lastSuccess, "2026-03-04T02:17:00Z", "the last good one is still named");
    assert.match(status.lastError, /opening a snapshot/);
  },
);

test(
  "verification catches a truncated and a corrupted dump; --list alone does not",
  { skip },
  () => {
    const dir = tempDir("backups");
    assert.equal(backup(dir, "2026-03-04T02:17:00Z").status, 0);
    const good = path.join(dir, "daily", "shop-20260304T021700Z.dump");
    assert.equal(spawnSync("sh", [VERIFY, good]).status, 0);
    const bytes = fs.readFileSync(good);
    const truncated = path.join(dir, "truncated.dump");
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    assert.equal(
      spawnSync("pg_restore", ["--list", truncated]).status,
      0,
      "--list passes the truncated file",
    );
    assert.notEqual(spawnSync("sh", [VERIFY, truncated]).status, 0);
    const corrupted = path.join(dir, "corrupted.dump");
    const copy = Buffer.from(bytes);
    for (let i = Math.floor(copy.length / 2); i < Math.floor(copy.length / 2) + 64; i++)
      copy[i] ^= 0xff;
    fs.writeFileSync(corrupted, copy);
    assert.notEqual(spawnSync("sh", [VERIFY, corrupted]).status, 0);
    const manifest = JSON.parse(fs.readFileSync(good.replace(/\.dump$/, ".manifest.json"), "utf8"));
    assert.equal(spawnSync("sh", [VERIFY, good, manifest.sha256]).status, 0);
    assert.notEqual(spawnSync("sh", [VERIFY, good, "0".repeat(64)]).status, 0);
  },
);

/** ISO week key ("2026-W09") of a UTC date. */
function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const year = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(year, 0, 1)) / 86400000 + 1) / 7);
  return `${year}-W${String(week).padStart(2, "0")}`;
}

test(
  "retention over 400 simulated days keeps exactly 7 daily, 4 weekly, 12 monthly",
  { skip },
  () => {
    const dir = tempDir("retention");
    fs.mkdirSync(path.join(dir, "daily"));
    const start = Date.UTC(2025, 10, 20, 2, 17);
    const names: string[] = [];
    for (let day = 0; day < 400; day++) {
      const d = new Date(start + day * 86400000);
      const name = `shop-${d
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d+Z$/, "Z")}`;
      names.push(name);
    }
    // The days in one shell, as the backup job runs them: each day's verified dump lands in daily/,
    // then the real retention.sh runs for it (one process per day, not one Node spawn per day).
    const days = spawnSync(
      "sh",
      [
        "-c",
        `set -eu
dir=$1 retention=$2
shift 2
day=0
for name in "$@"; do
  printf '%s' "$name" >"$dir/daily/$name.dump"
  printf '{}' >"$dir/daily/$name.manifest.json"
  sh "$retention" "$dir" "$name" 7 4 12 || { echo "day $day ($name): retention.sh failed" >&2; exit 1; }
  day=$((day + 1))
done
echo "$day days"`,
        "sh",
        dir,
        RETENTION,
        ...names,
      ],
      { encoding: "utf8" },
    );
    assert.equal(days.status, 0, days.stderr);
    assert.equal(days.stdout, "400 days\n");
    assert.equal(days.stderr, "");
    // Independently: the first dump of each ISO week and of each month, newest 4 and 12.
    const dateOf = (n: string) =>
      new Date(n.replace(/^shop-(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z"));
    const firstOf = (key: (n: string) => string) => {
      const seen = new Map<string, string>();
      for (const n of names) if (!seen.has(key(n))) seen.set(key(n), n);
      return [...seen.values()];
    };
    const expected = {
      daily: names.slice(-7),
      weekly: firstOf((n) => isoWeek(dateOf(n))).slice(-4),
      monthly: firstOf((n) => n.slice(5, 11)).slice(-12),
    };
    for (const tier of ["daily", "weekly", "monthly"] as const) {
      const kept = fs
        .readdirSync(path.join(dir, tier))
        .filter((f) => f.endsWith(".dump"))
        .map((f) => f.replace(/\.dump$/, ""))
        .sort();
      assert.deepEqual(kept, expected[tier], tier);
      for (const n of kept)
        assert.ok(
          fs.existsSync(path.join(dir, tier, `${n}.manifest.json`)),
          `${tier}/${n} manifest`,
        );
    }
    // Promoted dumps are hard links: no extra space.
    const w = expected.weekly.at(-1)!;
    if (expected.daily.includes(w)) {
      assert.equal(
        fs.statSync(path.join(dir, "weekly", `${w}.dump`)).ino,
        fs.statSync(path.join(dir, "daily", `${w}.dump`)).ino,
      );
    }
  },
);

const RESTORE = path.join(ROOT, "components", "backup", "pg-restore.sh");

function restore(args: string[], extra: Record<string, string> = {}) {
  return spawnSync("sh", [RESTORE, ...args], {
    env: {
      ...process.env,
      PGHOST: "127.0.0.1",
      PGPORT: String(pg.port),
      PGUSER: "postgres",
      PGPASSWORD_FILE: path.join(secrets, "pw"),
      ...extra,
    },
    encoding: "utf8",
  });
}

test(
  "restore drill and --latest: the newest verified dump, never a failed run's leftovers",
  { skip },
  async () => {
    const dir = tempDir("backups");
    assert.equal(backup(dir, "2026-03-04T02:17:00Z").status, 0);
    assert.equal(backup(dir, "2026-03-05T02:17:00Z").status, 0);
    assert.equal(
      backup(dir, "2026-03-06T02:17:00Z", { PGPORT: String(await freePort()) }).status,
      1,
    );
    // What a run killed before its manifest would leave: a dump that was never verified.
    fs.writeFileSync(path.join(dir, "daily", "shop-20260307T021700Z.dump"), "not a dump");
    const r = restore([dir, "--latest", "--into-scratch"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      "restore drill: ok: shop-20260305T021700Z.dump restores, 4 tables match the manifest's row counts\n",
    );
    assert.equal(
      pg.sql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'restore_drill_%'"),
      "0",
      "scratch dropped",
    );
    // The same drill in a throwaway server of its own, restored by an ordinary role (large objects,
    // a second schema and grants included), touching nothing on the site's server.
    const before = pg.sql("postgres", "SELECT count(*) FROM pg_database");
    const own = restore([dir, "--latest", "--into-scratch", "--private-server"]);
    assert.equal(own.status, 0, own.stderr);
    assert.equal(
      own.stdout,
      "restore drill: ok: shop-20260305T021700Z.dump restores, 4 tables match the manifest's row counts\n",
    );
    assert.equal(pg.sql("postgres", "SELECT count(*) FROM pg_database"), before);
  },
);

test("restore into a database: contents replaced, counts checked", { skip }, () => {
  const dir = tempDir("backups");
  assert.equal(backup(dir, "2026-03-04T02:17:00Z").status, 0);
  pg.sql("postgres", "CREATE DATABASE target");
  const first = restore([dir, "--backup", "daily/shop-20260304T021700Z.dump", "--into", "target"]);
  assert.equal(first.status, 0, first.stderr);
  pg.sql(
    "target",
    "DELETE FROM events; INSERT INTO customers (name) VALUES ('written after the dump')",
  );
  const again = restore([dir, "--latest", "--into", "target"]);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(
    again.stdout,
    "restore: ok: shop-20260304T021700Z.dump restored into target, 4 tables match the manifest's row counts\n",
  );
  assert.deepEqual(checksums("target"), checksums("shop"));
  // A database whose name is also a mode word is still a database.
  for (const name of ["check", "scratch"]) {
    pg.sql("postgres", `CREATE DATABASE "${name}"`);
    const r = restore([dir, "--latest", "--into", name]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`restored into ${name}, 4 tables match`));
    assert.deepEqual(checksums(name), checksums("shop"));
  }
});

/** What the swap must carry from the replaced database: owner, grants, settings, connection limit. */
function databaseProperties(db: string): string {
  return pg.sql(
    "postgres",
    `SELECT pg_get_userbyid(d.datdba) || ' ' || coalesce(d.datacl::text, 'default') || ' ' || d.datconnlimit || ' ' ||
            coalesce((SELECT string_agg(coalesce(pg_get_userbyid(NULLIF(s.setrole, 0)), '*') || ':' || array_to_string(s.setconfig, ','), ';' ORDER BY s.setrole)
                      FROM pg_db_role_setting s WHERE s.setdatabase = d.oid), '')
     FROM pg_database d WHERE d.datname = '${db}'`,
  );
}

test(
  "restore into a database: a checked copy swapped in, with the old one's owner, grants and settings; a failure leaves the old data",
  { skip },
  async () => {
    const dir = tempDir("backups");
    assert.equal(backup(dir, "2026-03-04T02:17:00Z").status, 0);
    pg.sql("postgres", "CREATE DATABASE swapped OWNER shop_app CONNECTION LIMIT 40");
    pg.sql(
      "postgres",
      `REVOKE CONNECT, TEMPORARY ON DATABASE swapped FROM PUBLIC;
       GRANT CONNECT ON DATABASE swapped TO postgres WITH GRANT OPTION;
       ALTER DATABASE swapped SET statement_timeout TO '5s';
       ALTER DATABASE swapped SET search_path TO "$user", public, shop;
       ALTER ROLE shop_app IN DATABASE swapped SET work_mem TO '8MB'`,
    );
    const properties = databaseProperties("swapped");
    assert.match(
      properties,
      /^shop_app \{.*postgres=c\*\/shop_app.*\} 40 \*:statement_timeout=5s,search_path="\$user", public, shop;shop_app:work_mem=8MB$/,
    );
    pg.sql("swapped", "CREATE TABLE before_restore (x int)");
    // An open session on the database: ended at the swap, not waited for.
    const session = spawn(
      "psql",
      [
        "-X",
        "-h",
        "127.0.0.1",
        "-p",
        String(pg.port),
        "-U",
        "postgres",
        "-d",
        "swapped",
        "-c",
        "SELECT pg_sleep(60)",
      ],
      { env: { ...process.env, PGPASSWORD: SU_PASSWORD }, stdio: "ignore" },
    );
    try {
      // The dump reaches the tools through PG_EXEC and a staging directory, as in a database container.
      const stage = path.join(tempDir("stage"), "agi-restore");
      const r = restore([dir, "--latest", "--into", "swapped"], {
        PG_EXEC: "env",
        PG_STAGE_DIR: stage,
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(
        r.stdout,
        "restore: ok: shop-20260304T021700Z.dump restored into swapped, 4 tables match the manifest's row counts\n",
      );
      assert.equal(fs.existsSync(stage), false, "the staged copy is removed");
    } finally {
      session.kill();
    }
    assert.deepEqual(checksums("swapped"), checksums("shop"));
    assert.equal(pg.sql("swapped", "SELECT to_regclass('before_restore') IS NULL"), "t");
    assert.equal(databaseProperties("swapped"), properties);
    // The replaced data is dropped in the background, right after the swap.
    for (const deadline = Date.now() + 30_000; ;) {
      const left = pg.sql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname ~ '^agi_(restore|replaced)_'",
      );
      if (left === "0") break;
      assert.ok(Date.now() < deadline, "no copy and no replaced data left");
      await new Promise((r) => setTimeout(r, 100));
    }

    // Counts that differ: the new copy is dropped and the database keeps its data.
    pg.sql("swapped", "CREATE TABLE written_after (x int)");
    const base = path.join(dir, "daily", "shop-20260304T021700Z");
    const manifest = fs.readFileSync(`${base}.manifest.json`, "utf8");
    fs.writeFileSync(
      `${base}.manifest.json`,
      manifest.replace('"public.events": 500', '"public.events": 499'),
    );
    const differ = restore([dir, "--latest", "--into", "swapped"]);
    assert.equal(differ.status, 1);
    assert.equal(
      differ.stderr,
      "restore: row counts differ from the manifest: public.events (500 of 499)\n",
    );
    assert.equal(pg.sql("swapped", "SELECT to_regclass('written_after') IS NOT NULL"), "t");
    assert.equal(
      pg.sql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname ~ '^agi_(restore|replaced)_'",
      ),
      "0",
    );
    fs.writeFileSync(`${base}.manifest.json`, manifest);

    // A role that may not create databases (a shared cluster's app role) restores in one transaction.
    pg.sql("postgres", "ALTER ROLE shop_app PASSWORD 'test-only-app'");
    const appPw = path.join(secrets, "app-pw");
    fs.writeFileSync(appPw, "test-only-app", { mode: 0o600 });
    pg.sql("postgres", "CREATE DATABASE app_owned OWNER shop_app");
    const asApp = restore([dir, "--latest", "--into", "app_owned"], {
      PGUSER: "shop_app",
      PGPASSWORD_FILE: appPw,
    });
    assert.equal(asApp.status, 1, "the dump's grants to postgres need rights the app role lacks");
    assert.match(asApp.stderr, /^restore: pg_restore failed, app_owned left as it was: /);
    assert.equal(
      pg.sql("app_owned", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
      "0",
    );
  },
);

test(
  "restore refuses a missing, an unverified, a damaged dump, and counts that differ",
  { skip },
  () => {
    const dir = tempDir("backups");
    assert.equal(backup(dir, "2026-03-04T02:17:00Z").status, 0);
    const base = path.join(dir, "daily", "shop-20260304T021700Z");
    const missing = restore([dir, "--backup", "daily/nope.dump", "--into-scratch"]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^restore: no such dump: .*daily\/nope\.dump\n$/);
    fs.copyFileSync(`${base}.dump`, path.join(dir, "loose.dump"));
    const unverified = restore([dir, "--backup", "loose.dump", "--into-scratch"]);
    assert.equal(unverified.status, 1);
    assert.match(unverified.stderr, /has no manifest: it was never verified; refusing it/);
    assert.equal(restore([path.join(tempDir("empty"))]).status, 2, "usage");
    assert.match(
      restore([tempDir("empty"), "--latest", "--into-scratch"]).stderr,
      /^restore: no verified dump in /,
    );
    // Counts that differ from the manifest are caught after the restore.
    const manifest = fs.readFileSync(`${base}.manifest.json`, "utf8");
    fs.writeFileSync(
      `${base}.manifest.json`,
      manifest.replace('"public.events": 500', '"public.events": 501'),
    );
    const differ = restore([dir, "--latest", "--into-scratch"]);
    assert.equal(differ.status, 1);
    assert.equal(
      differ.stderr,
      "restore: row counts differ from the manifest: public.events (500 of 501)\n",
    );
    fs.writeFileSync(`${base}.manifest.json`, manifest);
    // A damaged dump is refused before anything is touched.
    const bytes = fs.readFileSync(`${base}.dump`);
    fs.writeFileSync(`${base}.dump`, bytes.subarray(0, bytes.length - 100));
    const damaged = restore([dir, "--latest", "--into", "shop"]);
    assert.equal(damaged.status, 1);
    assert.match(damaged.stderr, /fails verification, refusing it/);
    assert.equal(
      pg.sql("shop", "SELECT count(*) FROM orders"),
      "20000",
      "the target was not touched",
    );
  },
);

test(
  "disk full: the failure is recorded, no partial file, earlier dumps untouched",
  { skip },
  (t) => {
    const dir = tempDir("backups");
    assert.equal(backup(dir, "2026-03-04T02:17:00Z").status, 0);
    // A filesystem with room for what is there and a little more, not for a second dump.
    const full = tempDir("full");
    // Hard links (weekly/, monthly/) share their space: count each file once.
    const files = new Map<number, number>();
    for (const f of fs.readdirSync(dir, { recursive: true })) {
      const st = fs.statSync(path.join(dir, String(f)));
      if (st.isFile()) files.set(st.ino, st.size);
    }
    const used = [...files.values()].reduce((a, b) => a + b, 0);
    const mount = spawnSync("mount", [
      "-t",
      "tmpfs",
      "-o",
      `size=${Math.ceil(used / 1024) + 256}k`,
      "tmpfs",
      full,
    ]);
    if (mount.status !== 0) {
      if (process.env.CI) assert.fail(`cannot mount a tmpfs: ${String(mount.stderr)}`);
      t.skip("cannot mount a tmpfs here (needs root)");
      return;
    }
    try {
      assert.equal(spawnSync("cp", ["-a", `${dir}/.`, full]).status, 0);
      const dump = path.join(full, "daily", "shop-20260304T021700Z.dump");
      const sum = createHash("sha256").update(fs.readFileSync(dump)).digest("hex");
      const r = backup(full, "2026-03-05T02:17:00Z");
      assert.equal(r.status, 1, r.stdout);
      assert.match(
        r.stderr,
        /^backup shop: FAILED: pg_dump failed: .*No space left on device.*; earlier dumps are untouched\n$/s,
      );
      assert.deepEqual(fs.readdirSync(path.join(full, ".tmp")), [], "no partial file");
      assert.deepEqual(fs.readdirSync(path.join(full, "daily")).sort(), [
        "shop-20260304T021700Z.dump",
        "shop-20260304T021700Z.globals.sql",
        "shop-20260304T021700Z.manifest.json",
      ]);
      assert.equal(createHash("sha256").update(fs.readFileSync(dump)).digest("hex"), sum);
      const status = JSON.parse(fs.readFileSync(path.join(full, "status.json"), "utf8"));
      assert.match(status.lastError, /No space left on device/);
      assert.equal(status.lastSuccess, "2026-03-04T02:17:00Z");
    } finally {
      spawnSync("umount", [full]);
    }
  },
);

test(
  "odd table names and other sessions' temp tables: backed up, restored and checked",
  { skip },
  async () => {
    pg.sql("postgres", "CREATE DATABASE odd");
    pg.sql(
      "odd",
      `CREATE TABLE "my table" (x int); INSERT INTO "my table" SELECT generate_series(1, 7);
                 CREATE TABLE "we""ird" (y text); INSERT INTO "we""ird" VALUES ('a'), ('b');`,
    );
    // Another session holds a temp table with rows for the whole backup: its psql reads commands
    // from a pipe kept open until the backup is done, so the session (and the table) stays.
    const holder = spawn("psql", ["-X", "-v", "ON_ERROR_STOP=1", ...pg.connArgs("odd")], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    let holderErr = "";
    holder.stderr.on("data", (d: Buffer) => (holderErr += d.toString()));
    const exited = new Promise<number | null>((r) => holder.once("exit", (code) => r(code)));
    holder.stdin.write("CREATE TEMP TABLE held AS SELECT n FROM generate_series(1, 3) n;\n");
    // The other session's temp table as this one sees it: committed, in pg_class, temporary.
    const held = () =>
      pg.sql(
        "odd",
        "SELECT count(*) FROM pg_class WHERE relname = 'held' AND relpersistence = 't'",
      );
    const deadline = Date.now() + 30_000;
    while (held() !== "1") {
      assert.equal(holder.exitCode, null, `the holding session ended: ${holderErr}`);
      assert.ok(Date.now() < deadline, `no temp table after 30 s: ${holderErr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const dir = tempDir("backups");
    try {
      const r = backup(dir, "2026-03-04T02:17:00Z", { PGDATABASE: "odd", BACKUP_GLOBALS: "no" });
      assert.equal(r.status, 0, r.stderr);
      // The table was there for the whole backup: its session is still open, the table still held.
      assert.equal(holder.exitCode, null, `the holding session ended: ${holderErr}`);
      assert.equal(held(), "1", "the other session's temp table outlived the backup");
    } finally {
      holder.stdin.end();
    }
    assert.equal(await exited, 0, holderErr);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(dir, "daily", "shop-20260304T021700Z.manifest.json"), "utf8"),
    );
    assert.deepEqual(manifest.rowCounts, { "public.my table": 7, 'public.we"ird': 2 });
    const drill = restore([dir, "--latest", "--into-scratch"]);
    assert.equal(drill.status, 0, drill.stderr);
    assert.match(drill.stdout, /2 tables match/);
  },
);

test(
  "retention never prunes the dump it was run for, even when the clock went back",
  { skip },
  () => {
    const dir = tempDir("retention");
    fs.mkdirSync(path.join(dir, "daily"));
    for (const n of ["shop-20260310T021700Z", "shop-20260301T021700Z"]) {
      fs.writeFileSync(path.join(dir, "daily", `${n}.dump`), n);
      fs.writeFileSync(path.join(dir, "daily", `${n}.manifest.json`), "{}");
      assert.equal(spawnSync("sh", [RETENTION, dir, n, "1", "1", "1"]).status, 0);
    }
    assert.ok(
      fs.existsSync(path.join(dir, "daily", "shop-20260301T021700Z.dump")),
      "the new dump is kept",
    );
  },
);
