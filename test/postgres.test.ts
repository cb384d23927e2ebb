/**
 * The generated PostgreSQL artefacts against a real PostgreSQL 15: the settings derived from a
 * memory limit are accepted and in force, and the first-start script creates an app role that can
 * run migrations but is no superuser, in a database closed to everyone else.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { appRoleInitScript, postgresSettings } from "../components/postgres";
import { postgresAvailable, startPostgres, type PgServer } from "./pg-server";

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
