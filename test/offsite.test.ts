/**
 * Off-site copies (components/backup/offsite.sh) with the real tools: age 1.1 encrypts, rclone 1.60
 * uploads to a local S3-compatible server (s3rver), and a real PostgreSQL 15 restores what comes
 * back. The uploader runs here (OFFSITE_RUNNER=local) with the same environment file the host's
 * uploader container gets; the engine suite runs it in the container.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT, freePort, tempDir } from "./helpers";
import { postgresAvailable, startPostgres, type PgServer } from "./pg-server";
import { S3_ACCESS_KEY, S3_SECRET_KEY, startS3, type S3Server } from "./s3-server";

const OFFSITE = path.join(ROOT, "components", "backup", "offsite.sh");
const BACKUP = path.join(ROOT, "components", "backup", "pg-backup.sh");
const RESTORE = path.join(ROOT, "components", "backup", "pg-restore.sh");
const tools = ["age", "age-keygen", "rclone"].every(
  (t) => spawnSync("sh", ["-c", `command -v ${t}`]).status === 0,
);
const skip = !tools && !process.env.CI ? "age and rclone are not installed" : false;
const SITE = "shop";
const PREFIX = "agi/prod";

let s3: S3Server;
let identity: string;
let recipient: string;
let envFile: string;

/** An age key pair: the identity file's text and its public key. */
function keyPair(): { identity: string; recipient: string } {
  const file = path.join(tempDir("age"), "key.txt");
  execFileSync("age-keygen", ["-o", file], { stdio: "pipe" });
  const text = fs.readFileSync(file, "utf8");
  return {
    identity: text,
    recipient: execFileSync("age-keygen", ["-y", file], { encoding: "utf8" }).trim(),
  };
}

/** The uploader's environment file, as the platform writes it, for an endpoint. */
function writeEnv(endpoint: string): string {
  const file = path.join(tempDir("offsite-env"), "offsite.env");
  fs.writeFileSync(
    file,
    [
      "RCLONE_CONFIG_OFFSITE_TYPE=s3",
      "RCLONE_CONFIG_OFFSITE_PROVIDER=Other",
      `RCLONE_CONFIG_OFFSITE_ENDPOINT=${endpoint}`,
      "RCLONE_CONFIG_OFFSITE_REGION=auto",
      `RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID=${S3_ACCESS_KEY}`,
      `RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY=${S3_SECRET_KEY}`,
      "RCLONE_CONFIG_OFFSITE_NO_CHECK_BUCKET=true",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return file;
}

/** This process's environment without what would steer rclone (a CA bundle, RCLONE_*). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(AWS_|RCLONE_)/.test(k)),
  );
}

function offsite(
  dir: string,
  args: string[],
  extra: Record<string, string> = {},
  input?: string,
): { status: number | null; stdout: string; stderr: string } {
  return spawnSync("sh", [OFFSITE, ...args], {
    env: {
      ...cleanEnv(),
      SITE,
      BACKUP_DIR: dir,
      OFFSITE_PATH: `${s3.bucket}/${PREFIX}`,
      OFFSITE_RECIPIENT: recipient,
      OFFSITE_KEEP: "3:2:2",
      OFFSITE_ENV: envFile,
      OFFSITE_RUNNER: "local",
      OFFSITE_RETRIES: "1",
      OFFSITE_RETRY_SLEEP: "0s",
      ...extra,
    },
    input,
    encoding: "utf8",
  });
}

/** Verified-looking local dumps (dump and manifest) for each day, as pg-backup.sh names them. */
function localDumps(dir: string, days: string[], bytes = 64): void {
  fs.mkdirSync(path.join(dir, "daily"), { recursive: true });
  for (const day of days) {
    const base = path.join(dir, "daily", `${SITE}-${day}T021700Z`);
    fs.writeFileSync(`${base}.dump`, `dump of ${day}\n${"x".repeat(bytes)}`);
    fs.writeFileSync(`${base}.manifest.json`, JSON.stringify({ site: SITE, createdAt: day }));
  }
}

/** Days from `from` (YYYY-MM-DD), `n` of them, as YYYYMMDD. */
function days(from: string, n: number): string[] {
  const start = Date.parse(`${from}T00:00:00Z`);
  return Array.from({ length: n }, (_, i) =>
    new Date(start + i * 86400_000).toISOString().slice(0, 10).replace(/-/g, ""),
  );
}

/** The site's dumps on the remote: the names that have both objects, and any lone object. */
function remote(): string[] {
  return s3.keys(`${PREFIX}/${SITE}/`).map((k) => k.slice(`${PREFIX}/${SITE}/`.length));
}

/** The site's objects under another prefix of the bucket. */
function remoteOf(prefix: string): string[] {
  return s3.keys(`${prefix}/${SITE}/`).map((k) => k.slice(`${prefix}/${SITE}/`.length));
}

function listing(dir: string): string[] {
  return fs.readdirSync(path.join(dir, "daily")).sort();
}

before(async () => {
  if (skip) return;
  s3 = await startS3(tempDir("s3"));
  ({ identity, recipient } = keyPair());
  envFile = writeEnv(s3.endpoint);
});

after(async () => {
  if (s3) await s3.stop();
});

test(
  "upload: encrypted to the public key, the remote's own GFS retention, local dumps untouched",
  { skip },
  () => {
    const dir = tempDir("offsite");
    // 40 daily dumps, 2026-10-01 to 2026-11-09 (a Monday). Keep 3 days, 2 ISO weeks, 2 months:
    // 11-09, 11-08, 11-07 (days); 11-09 (week 46), 11-08 (week 45); 11-09 (November), 10-31 (October).
    localDumps(dir, days("2026-10-01", 40));
    fs.mkdirSync(path.join(s3.directory, s3.bucket, PREFIX, SITE), { recursive: true });
    const before = listing(dir);
    const first = offsite(dir, ["upload"]);
    assert.equal(first.status, 0, first.stderr);
    const kept = ["20261031", "20261107", "20261108", "20261109"];
    const objects = (ds: string[]) =>
      ds.flatMap((d) => [
        `${SITE}-${d}T021700Z.dump.age`,
        `${SITE}-${d}T021700Z.manifest.json.age`,
      ]);
    assert.deepEqual(remote(), objects(kept).sort());
    assert.deepEqual(listing(dir), before, "no local file removed or added");
    const record = JSON.parse(fs.readFileSync(path.join(dir, "offsite.json"), "utf8"));
    assert.deepEqual(
      { ...record, lastAttempt: undefined, lastSuccess: undefined },
      {
        site: SITE,
        remote: `offsite:${s3.bucket}/${PREFIX}/${SITE}`,
        lastAttempt: undefined,
        lastSuccess: undefined,
        newestOffsite: `${SITE}-20261109T021700Z`,
        uploaded: 4,
        pending: 0,
        lastError: null,
      },
    );
    assert.equal(record.lastSuccess, record.lastAttempt);

    // What lies on the remote is ciphertext that only the identity opens, to the same bytes.
    const object = s3.objectFile(`${PREFIX}/${SITE}/${SITE}-20261109T021700Z.dump.age`);
    const stored = fs.readFileSync(object);
    assert.ok(stored.subarray(0, 40).toString().startsWith("age-encryption.org/v1"));
    assert.ok(!stored.includes("dump of 20261109"));
    const keyFile = path.join(tempDir("key"), "key.txt");
    fs.writeFileSync(keyFile, identity, { mode: 0o600 });
    assert.equal(
      execFileSync("age", ["-d", "-i", keyFile, object], { encoding: "utf8" }),
      fs.readFileSync(path.join(dir, "daily", `${SITE}-20261109T021700Z.dump`), "utf8"),
    );

    // The next day: one upload; 11-07 leaves the remote. An object that is not a dump stays.
    fs.writeFileSync(
      path.join(s3.directory, s3.bucket, PREFIX, SITE, "notes.txt._S3rver_object"),
      "x",
    );
    localDumps(dir, ["20261110"]);
    const second = offsite(dir, ["upload"]);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /^offsite shop: uploaded shop-20261110T021700Z$/m);
    assert.match(second.stdout, /retention removed 1 dump\(s\)/);
    assert.deepEqual(
      remote(),
      [...objects(["20261031", "20261108", "20261109", "20261110"]), "notes.txt"].sort(),
    );
    assert.equal(listing(dir).length, before.length + 2);
    // list: the complete ones, oldest first.
    const list = offsite(dir, ["list"]);
    assert.equal(list.status, 0, list.stderr);
    assert.equal(
      list.stdout,
      ["20261031", "20261108", "20261109", "20261110"]
        .map((d) => `${SITE}-${d}T021700Z\n`)
        .join(""),
    );
  },
);

test(
  "remote unreachable: the failure is recorded, nothing local is touched, the next run sends what is missing",
  { skip },
  async () => {
    const dir = tempDir("offsite");
    localDumps(dir, ["20261201", "20261202"]);
    const before = listing(dir);
    const down = offsite(dir, ["upload"], {
      OFFSITE_ENV: writeEnv(`http://127.0.0.1:${await freePort()}`),
    });
    assert.equal(down.status, 1);
    assert.match(
      down.stderr,
      /^offsite shop: FAILED: cannot list offsite:backups\/agi\/prod\/shop: .*connection refused.*; local dumps are untouched, the next run retries\n$/,
    );
    const record = JSON.parse(fs.readFileSync(path.join(dir, "offsite.json"), "utf8"));
    assert.equal(record.lastSuccess, null);
    assert.match(record.lastError, /^cannot list .*connection refused/);
    assert.deepEqual(listing(dir), before);
    // The next run, with the remote back: both dumps go up.
    const back = offsite(dir, ["upload"], { OFFSITE_PATH: `${s3.bucket}/retry` });
    assert.equal(back.status, 0, back.stderr);
    assert.equal(
      back.stdout.split("\n").filter((l) => l.includes("uploaded shop-")).length,
      2,
      back.stdout,
    );
    const after = JSON.parse(fs.readFileSync(path.join(dir, "offsite.json"), "utf8"));
    assert.equal(after.lastError, null);
    assert.equal(after.pending, 0);
  },
);

test(
  "remote full: the upload fails and is recorded, nothing is deleted there or here",
  { skip: skip || (process.getuid?.() !== 0 ? "mounting a small tmpfs needs root" : false) },
  async (t) => {
    // A remote whose storage holds about 1 MiB: the first dump fits, the second does not.
    const mount = tempDir("s3-full");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mount]);
    t.after(() => execFileSync("umount", ["-l", mount]));
    const full = await startS3(path.join(mount, "data"));
    t.after(() => full.stop());
    const dir = tempDir("offsite");
    localDumps(dir, ["20261130"]);
    localDumps(dir, ["20261201"], 300 * 1024);
    const env = { OFFSITE_ENV: writeEnv(full.endpoint) };
    const first = offsite(dir, ["upload"], env);
    assert.equal(first.status, 0, first.stderr);
    // The next run keeps one day and one month: had it got as far as its retention, 11-30 would go.
    localDumps(dir, ["20261202"], 900 * 1024);
    const before = listing(dir);
    const second = offsite(dir, ["upload"], { ...env, OFFSITE_KEEP: "1:0:1" });
    assert.equal(second.status, 1);
    assert.match(
      second.stderr,
      /^offsite shop: FAILED: uploading shop-20261202T021700Z\.dump\.age failed: .*; local dumps are untouched, the next run retries\n$/,
    );
    assert.deepEqual(listing(dir), before);
    const keys = full.keys(`${PREFIX}/${SITE}/`).map((k) => path.basename(k));
    assert.ok(keys.includes(`${SITE}-20261201T021700Z.dump.age`), "the earlier copy stays");
    assert.ok(keys.includes(`${SITE}-20261130T021700Z.manifest.json.age`), "no retention ran");
    assert.ok(!keys.includes(`${SITE}-20261202T021700Z.manifest.json.age`));
    const record = JSON.parse(fs.readFileSync(path.join(dir, "offsite.json"), "utf8"));
    assert.equal(record.pending, 1);
    assert.match(record.lastError, /^uploading shop-20261202T021700Z\.dump\.age failed/);
  },
);

test(
  "retention deletes only what it plans: a bad setting or a stamp that is no time is refused or left, an unfinished upload no local dump can finish goes",
  { skip },
  () => {
    const dir = tempDir("offsite");
    const where = { OFFSITE_PATH: `${s3.bucket}/safety` };
    const site = (name: string) =>
      path.join(s3.directory, s3.bucket, "safety", SITE, `${name}._S3rver_object`);
    // A bad retention setting is refused before anything is listed or deleted.
    for (const keep of ["abc", "7:4", "0:0:0", "1:2:3;x"]) {
      const r = offsite(dir, ["upload"], { ...where, OFFSITE_KEEP: keep });
      assert.equal(r.status, 2, keep);
      assert.equal(r.stderr, "offsite shop: OFFSITE_KEEP must be DAYS:WEEKS:MONTHS, not all 0\n");
    }
    // Two days here; on the remote, through rclone as any client would put them: a dump whose stamp
    // is no real time, and the first half of an old upload nothing here can finish.
    localDumps(dir, ["20261201", "20261202"]);
    const odd = path.join(tempDir("odd"), "x");
    fs.writeFileSync(odd, "not ours to judge");
    const put = (key: string) =>
      execFileSync(
        "rclone",
        ["--config", "/dev/null", "copyto", odd, `offsite:${s3.bucket}/safety/${SITE}/${key}`],
        {
          env: {
            ...cleanEnv(),
            ...Object.fromEntries(
              fs
                .readFileSync(envFile, "utf8")
                .trim()
                .split("\n")
                .map((l) => l.split(/=(.*)/s).slice(0, 2)),
            ),
          },
        },
      );
    put(`${SITE}-20261399T000000Z.dump.age`);
    put(`${SITE}-20261399T000000Z.manifest.json.age`);
    put(`${SITE}-20261001T021700Z.dump.age`);
    const r = offsite(dir, ["upload"], { ...where, OFFSITE_KEEP: "1:0:0" });
    assert.equal(r.status, 0, r.stderr);
    // Sent: the one day 1:0:0 keeps (12-01 is not, so it is not sent); left alone: the stamp that is
    // no time; deleted: the lone half of an upload that nothing here can finish.
    assert.deepEqual(remoteOf("safety"), [
      `${SITE}-20261202T021700Z.dump.age`,
      `${SITE}-20261202T021700Z.manifest.json.age`,
      `${SITE}-20261399T000000Z.dump.age`,
      `${SITE}-20261399T000000Z.manifest.json.age`,
    ]);
    assert.ok(!fs.existsSync(site(`${SITE}-20261001T021700Z.dump.age`)));
    // A second dump of the same day is kept beside the first: the day a host is lost keeps its last real dump.
    localDumps(
      dir,
      ["20261202"].map((d) => d),
    );
    const later = path.join(dir, "daily", `${SITE}-20261202T221700Z`);
    fs.writeFileSync(`${later}.dump`, "the evening's dump");
    fs.writeFileSync(`${later}.manifest.json`, "{}");
    const again = offsite(dir, ["upload"], { ...where, OFFSITE_KEEP: "1:0:0" });
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(
      remoteOf("safety").filter((k) => k.includes("20261202")),
      [
        `${SITE}-20261202T021700Z.dump.age`,
        `${SITE}-20261202T021700Z.manifest.json.age`,
        `${SITE}-20261202T221700Z.dump.age`,
        `${SITE}-20261202T221700Z.manifest.json.age`,
      ],
    );
  },
);

let pg: PgServer | undefined;
const pgSkip =
  skip || (!postgresAvailable() && !process.env.CI ? "PostgreSQL 15 not installed" : false);

test(
  "fetch: a real dump comes back, decrypted in memory with the identity, and restores verified; a wrong key, a damaged, a missing and a half-uploaded object are refused",
  { skip: pgSkip },
  async (t) => {
    pg = await startPostgres();
    t.after(() => pg?.stop());
    const password = "test-only-offsite";
    pg.sql("postgres", `ALTER ROLE postgres PASSWORD '${password}'`);
    const secrets = tempDir("secrets");
    fs.writeFileSync(path.join(secrets, "pw"), password, { mode: 0o600 });
    pg.sql("postgres", "CREATE DATABASE shop");
    pg.sql(
      "shop",
      "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT i, md5(i::text) FROM generate_series(1, 5000) i",
    );
    const pgEnv = {
      ...cleanEnv(),
      PGHOST: "127.0.0.1",
      PGPORT: String(pg.port),
      PGUSER: "postgres",
      PGPASSWORD_FILE: path.join(secrets, "pw"),
    };
    const dir = tempDir("offsite");
    for (const now of ["2026-12-01T02:17:00Z", "2026-12-02T02:17:00Z"]) {
      const b = spawnSync("sh", [BACKUP], {
        env: { ...pgEnv, SITE, BACKUP_DIR: dir, PGDATABASE: "shop", BACKUP_NOW: now },
        encoding: "utf8",
      });
      assert.equal(b.status, 0, b.stderr);
    }
    const path3 = { OFFSITE_PATH: `${s3.bucket}/fetch` };
    assert.equal(offsite(dir, ["upload"], path3).status, 0);

    // The host is gone: a new, empty backup directory.
    const fresh = tempDir("rebuilt");
    const wrong = offsite(fresh, ["fetch", "latest"], path3, keyPair().identity);
    assert.equal(wrong.status, 1);
    assert.match(
      wrong.stderr,
      /cannot decrypt shop-20261202T021700Z\.manifest\.json\.age: age: error: no identity matched any of the recipients \(wrong identity, or the object was damaged\)\n$/,
    );
    assert.equal(fs.existsSync(path.join(fresh, "offsite")), false, "nothing half-fetched");
    const none = offsite(fresh, ["fetch", "latest"], path3, "");
    assert.equal(none.status, 2);
    assert.equal(none.stderr, "offsite shop: no age identity on standard input\n");

    const got = offsite(fresh, ["fetch", "latest"], path3, identity);
    assert.equal(got.status, 0, got.stderr);
    assert.equal(got.stdout, "offsite/shop-20261202T021700Z.dump\n");
    const output = got.stdout + got.stderr + wrong.stdout + wrong.stderr;
    assert.ok(!output.includes("AGE-SECRET-KEY"), "the identity is never printed");
    const restored = spawnSync(
      "sh",
      [RESTORE, fresh, "--backup", "offsite/shop-20261202T021700Z.dump", "--into-scratch"],
      { env: pgEnv, encoding: "utf8" },
    );
    assert.equal(restored.status, 0, restored.stderr);
    assert.equal(
      restored.stdout,
      "restore drill: ok: shop-20261202T021700Z.dump restores, 1 tables match the manifest's row counts\n",
    );

    // A damaged object: one byte of the newest dump changed on the remote. The storage's checksum
    // catches it on the way down; where the storage vouches for the damaged bytes (its checksum
    // recomputed), age's authentication does.
    const key = `fetch/${SITE}/${SITE}-20261202T021700Z.dump.age`;
    const bytes = fs.readFileSync(s3.objectFile(key));
    bytes[bytes.length - 20] ^= 0xff;
    fs.writeFileSync(s3.objectFile(key), bytes);
    const damaged = offsite(fresh, ["fetch", "latest"], path3, identity);
    assert.equal(damaged.status, 1);
    assert.match(
      damaged.stderr,
      /\noffsite shop: downloading shop-20261202T021700Z failed: .*corrupted on transfer: md5 hash differ/,
    );
    assert.equal(fs.existsSync(path.join(fresh, "offsite")), false);
    fs.writeFileSync(`${s3.objectFile(key)}.md5`, createHash("md5").update(bytes).digest("hex"));
    const forged = offsite(fresh, ["fetch", "latest"], path3, identity);
    assert.equal(forged.status, 1);
    assert.match(
      forged.stderr,
      /\noffsite shop: cannot decrypt shop-20261202T021700Z\.dump\.age: age: error: .* \(wrong identity, or the object was damaged\)\n$/,
    );
    assert.equal(fs.existsSync(path.join(fresh, "offsite")), false);

    // A dump whose manifest never arrived is refused by name, and `latest` passes over it.
    fs.rmSync(s3.objectFile(`fetch/${SITE}/${SITE}-20261202T021700Z.manifest.json.age`));
    const half = offsite(fresh, ["fetch", `${SITE}-20261202T021700Z`], path3, identity);
    assert.equal(half.status, 1);
    assert.match(
      half.stderr,
      /shop-20261202T021700Z has no manifest under .*: it never finished uploading; refusing it\n$/,
    );
    const older = offsite(fresh, ["fetch", "latest"], path3, identity);
    assert.equal(older.status, 0, older.stderr);
    assert.equal(older.stdout, "offsite/shop-20261201T021700Z.dump\n");
    const missing = offsite(fresh, ["fetch", `${SITE}-20250101T000000Z`], path3, identity);
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      /no dump shop-20250101T000000Z under offsite:backups\/fetch\/shop/,
    );
    const empty = offsite(
      fresh,
      ["fetch", "latest"],
      { OFFSITE_PATH: `${s3.bucket}/nothing` },
      identity,
    );
    assert.equal(empty.status, 1);
    assert.match(
      empty.stderr,
      /no complete dump \(dump and manifest\) under offsite:backups\/nothing\/shop\n$/,
    );
  },
);
