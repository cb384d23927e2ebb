/**
 * The generated PostgreSQL artefacts against a real PostgreSQL 15: the settings derived from a
 * memory limit are accepted and in force, and the first-start script creates an app role that can
 * run migrations but is no superuser, in a database closed to everyone else.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  appRoleInitScript,
  entrypointScript,
  postgresCommand,
  postgresSettings,
  syncPasswordsScript,
} from "../core/postgres";
import {
  PG_BIN,
  initDataDir,
  postgresAvailable,
  psqlOverTcp,
  startPostgres,
  type PgServer,
} from "./pg-server";
import { ROOT, freePort } from "./helpers";

const ADOPT_SQL = path.join(ROOT, "components", "adopt-database.sql");

const skip =
  !postgresAvailable() && !process.env.CI ? "PostgreSQL 15 binaries not installed" : false;
let pg: PgServer;
const APP_PASSWORD = "test-only-app-password-0123456789";

before(async () => {
  if (skip) return;
  pg = await startPostgres(postgresSettings("256Mi"));
  pg.sql("postgres", "CREATE DATABASE shop");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agi-init-"));
  const pwFile = path.join(dir, "app-password");
  fs.writeFileSync(pwFile, APP_PASSWORD);
  const script = path.join(dir, "10-agi-app-role.sh");
  fs.writeFileSync(script, appRoleInitScript(), { mode: 0o755 });
  // The image's entrypoint runs it with these variables and psql on the local socket.
  const r = spawnSync("sh", [script], {
    env: {
      ...pg.env,
      POSTGRES_USER: "postgres",
      POSTGRES_DB: "shop",
      APP_DB_USER: "shop_app",
      APP_DB_PASSWORD_FILE: pwFile,
    },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!(r.stdout + r.stderr).includes(APP_PASSWORD), "the script never prints the password");
});

after(async () => {
  if (pg) await pg.stop();
});

test("settings derived from 256Mi are accepted and in force", { skip }, () => {
  for (const [name, value] of postgresSettings("256Mi")) {
    if (name === "listen_addresses") continue;
    assert.equal(pg.sql("postgres", `SHOW ${name}`), value, name);
  }
});

test(
  "the app role logs in with its password, owns nothing special, and can migrate",
  { skip },
  () => {
    assert.equal(pg.sql("shop", "SELECT current_user", "shop_app", APP_PASSWORD), "shop_app");
    assert.throws(
      () => pg.sql("shop", "SELECT 1", "shop_app", "wrong-password"),
      /password authentication failed/,
    );
    assert.equal(
      pg.sql(
        "postgres",
        "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'shop_app'",
      ),
      "f|f|f",
    );
    pg.sql(
      "shop",
      "CREATE TABLE orders (id serial PRIMARY KEY, total numeric); INSERT INTO orders (total) VALUES (9.5)",
      "shop_app",
      APP_PASSWORD,
    );
    assert.equal(pg.sql("shop", "SELECT count(*) FROM orders", "shop_app", APP_PASSWORD), "1");
    assert.throws(
      () => pg.sql("shop", "CREATE DATABASE other", "shop_app", APP_PASSWORD),
      /permission denied/,
    );
  },
);

test("the database is closed to other roles", { skip }, () => {
  pg.sql("postgres", "CREATE ROLE intruder LOGIN PASSWORD 'intruder-password'");
  assert.throws(
    () => pg.sql("shop", "SELECT 1", "intruder", "intruder-password"),
    /permission denied for database "shop"/,
  );
});

test(
  "every start sets both passwords from the secret files (a kept volume, new passwords)",
  { skip },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agi-sync-"));
    const su = path.join(dir, "superuser-password");
    const app = path.join(dir, "app-password");
    fs.writeFileSync(su, "test-only-new-superuser-password");
    fs.writeFileSync(app, "test-only-new-app-password");
    const sync = () =>
      spawnSync("sh", ["-c", syncPasswordsScript()], {
        env: {
          ...pg.env,
          POSTGRES_USER: "postgres",
          POSTGRES_DB: "shop",
          APP_DB_USER: "shop_app",
          POSTGRES_PASSWORD_FILE: su,
          APP_DB_PASSWORD_FILE: app,
        },
        encoding: "utf8",
      });
    const r = sync();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, "", "nothing printed, no password");
    assert.equal(
      pg.sql("shop", "SELECT current_user", "shop_app", "test-only-new-app-password"),
      "shop_app",
    );
    assert.throws(
      () => pg.sql("shop", "SELECT 1", "shop_app", APP_PASSWORD),
      /password authentication failed/,
    );
    assert.equal(
      pg.sql("shop", "SELECT current_user", "postgres", "test-only-new-superuser-password"),
      "postgres",
    );
    // Put the app's password back for the other tests.
    fs.writeFileSync(app, APP_PASSWORD);
    assert.equal(sync().status, 0);
  },
);

test(
  "the entrypoint: starts the server, syncs passwords, marks ready, stops on SIGTERM",
  { skip },
  async () => {
    const { dir, data, socketDir, asPostgres } = initDataDir();
    const port = await freePort();
    // The image's entrypoint stands in as a script that runs the real server as postgres.
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    const ids = `--reuid=${asPostgres.uid ?? process.getuid?.()} --regid=${asPostgres.gid ?? process.getgid?.()} --clear-groups`;
    fs.writeFileSync(
      path.join(bin, "docker-entrypoint.sh"),
      `#!/bin/sh\nshift\nexec setpriv ${ids} ${PG_BIN}/postgres -D ${data} -p ${port} -k ${socketDir} "$@" -c listen_addresses=127.0.0.1\n`,
      { mode: 0o755 },
    );
    // The data of an earlier life of the site: the app role with an old password.
    const boot = spawnSync(
      "sh",
      [
        "-c",
        `${PG_BIN}/postgres --single -D ${data} postgres <<'SQL'\nCREATE ROLE shop_app LOGIN PASSWORD 'old-password';\nSQL`,
      ],
      { ...asPostgres, encoding: "utf8" },
    );
    assert.equal(boot.status, 0, boot.stderr);
    fs.writeFileSync(path.join(dir, "su"), "test-only-su");
    fs.writeFileSync(path.join(dir, "app"), "test-only-app");
    fs.chmodSync(dir, 0o755);
    const ready = path.join(dir, "ready");
    const script = path.join(dir, "agi-postgres.sh");
    fs.writeFileSync(script, entrypointScript(), { mode: 0o755 });
    const child = spawn("sh", [script, ...postgresCommand("128Mi")], {
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH ?? ""}`,
        PGHOST: socketDir,
        PGPORT: String(port),
        POSTGRES_USER: "postgres",
        POSTGRES_DB: "postgres",
        APP_DB_USER: "shop_app",
        POSTGRES_PASSWORD_FILE: path.join(dir, "su"),
        APP_DB_PASSWORD_FILE: path.join(dir, "app"),
        AGI_READY_FILE: ready,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    child.stderr.on("data", (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!fs.existsSync(ready)) {
      assert.ok(child.exitCode === null && Date.now() < deadline, `not ready:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const login = psqlOverTcp(port, "shop_app", "test-only-app", "postgres", "SHOW shared_buffers");
    assert.equal(login.status, 0, login.stderr);
    assert.equal(login.stdout.trim(), "16MB", "the server got the settings for 128Mi");
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    assert.equal(code, 0, log);
    assert.notEqual(
      spawnSync("pg_isready", ["-h", "127.0.0.1", "-p", String(port)]).status,
      0,
      "the server stopped",
    );
    fs.rmSync(dir, { recursive: true, force: true });
  },
);

test(
  "adopting an existing database: its owner role's members use, change and dump it",
  { skip },
  () => {
    // As on the live host: the running app logs in as the tables' owner, an ordinary role; the
    // cluster's admin may create roles but is no superuser.
    pg.sql(
      "postgres",
      `CREATE ROLE legacy_old LOGIN PASSWORD 'test-only-old';
       CREATE ROLE cluster_admin LOGIN PASSWORD 'test-only-admin' CREATEROLE CREATEDB IN ROLE legacy_old`,
    );
    pg.sql("postgres", "CREATE DATABASE legacy OWNER legacy_old");
    pg.sql(
      "legacy",
      `SET ROLE legacy_old;
       CREATE TYPE status AS ENUM ('draft', 'live');
       CREATE TABLE events (id serial PRIMARY KEY, title text, state status DEFAULT 'draft');
       CREATE TABLE profiles (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);
       CREATE SEQUENCE tickets;
       CREATE VIEW recent AS SELECT * FROM events ORDER BY id DESC LIMIT 10;
       CREATE FUNCTION event_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM events';
       INSERT INTO events (title) SELECT 'event ' || i FROM generate_series(1, 56) i;
       INSERT INTO profiles (name) SELECT 'p' || i FROM generate_series(1, 6) i;`,
    );
    const adopt = () =>
      spawnSync(
        "psql",
        [
          "-X",
          "-q",
          "-h",
          "127.0.0.1",
          "-p",
          String(pg.port),
          "-U",
          "cluster_admin",
          "-d",
          "legacy",
          "-v",
          "owner=legacy_owner",
          "-f",
          ADOPT_SQL,
        ],
        { encoding: "utf8", env: { ...process.env, PGPASSWORD: "test-only-admin" } },
      );
    const first = adopt();
    assert.equal(first.status, 0, first.stderr);
    assert.equal(
      pg.sql(
        "legacy",
        `SELECT string_agg(o, ' ' ORDER BY o) FROM (
           SELECT c.relname || ':' || pg_get_userbyid(c.relowner) AS o FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
           UNION ALL SELECT t.typname || ':' || pg_get_userbyid(t.typowner) FROM pg_type t
             JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typtype = 'e'
           UNION ALL SELECT p.proname || ':' || pg_get_userbyid(p.proowner) FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public') x`,
      ),
      [
        "event_count:legacy_owner",
        "events:legacy_owner",
        "events_id_seq:legacy_owner",
        "events_pkey:legacy_owner",
        "profiles:legacy_owner",
        "profiles_id_seq:legacy_owner",
        "profiles_pkey:legacy_owner",
        "recent:legacy_owner",
        "status:legacy_owner",
        "tickets:legacy_owner",
      ].join(" "),
    );
    const again = adopt();
    assert.equal(again.status, 0, again.stderr);
    // The running app (the previous owner) keeps its access until it is replaced.
    assert.equal(
      psqlOverTcp(
        pg.port,
        "legacy_old",
        "test-only-old",
        "legacy",
        "SELECT event_count()",
      ).stdout.trim(),
      "56",
    );
    // The app role as the program creates it: LOGIN, no special rights, member of the owner role.
    pg.sql(
      "postgres",
      "CREATE ROLE legacy_app LOGIN PASSWORD 'test-only-legacy' IN ROLE legacy_owner",
    );
    pg.sql("legacy", "GRANT CONNECT ON DATABASE legacy TO legacy_app");
    const asApp = (query: string) =>
      psqlOverTcp(pg.port, "legacy_app", "test-only-legacy", "legacy", query);
    for (const q of [
      "INSERT INTO events (title) VALUES ('new')",
      "INSERT INTO profiles (name) VALUES ('new')",
      "SELECT nextval('tickets')",
      "ALTER TABLE events ADD COLUMN venue text",
      "ALTER TYPE status ADD VALUE 'archived'",
      "CREATE OR REPLACE FUNCTION event_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) + 0 FROM events'",
      "SELECT count(*) FROM recent",
    ]) {
      const r = asApp(q);
      assert.equal(r.status, 0, `${q}: ${r.stderr}`);
    }
    assert.equal(asApp("SELECT event_count()").stdout.trim(), "57");
    const dump = spawnSync(
      "pg_dump",
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(pg.port),
        "-U",
        "legacy_app",
        "-Fc",
        "--no-sync",
        "-f",
        "/dev/null",
        "legacy",
      ],
      { encoding: "utf8", env: { ...process.env, PGPASSWORD: "test-only-legacy" } },
    );
    assert.equal(dump.status, 0, dump.stderr);
    // Without the membership, the same role reads nothing: the grants come from the owner role alone.
    pg.sql("postgres", "REVOKE legacy_owner FROM legacy_app");
    assert.match(asApp("SELECT count(*) FROM events").stderr, /permission denied for table events/);
  },
);
