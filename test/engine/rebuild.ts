/**
 * The rebuild rehearsal, shared by the engine suite (test/engine/rebuild.test.ts) and `npm run
 * bench:rebuild`: the `local` stack's shape with off-site copies to a local S3-compatible server on
 * the Docker bridge's gateway (s3rver), then, on this engine:
 *   1. build: every site realized and served;
 *   2. data: rows in every database (as each site's app role: the backup reads what the app owns);
 *   3. backup: each site's backup job exactly as its timer runs it (the unit's ExecStart), which
 *      encrypts and uploads through the uploader container;
 *   4. destroy: every container, network and volume, and the host's directory (backups, scripts,
 *      timers, secrets) removed: a lost host;
 *   5. rebuild: the same desired state applied from nothing until every site is served;
 *   6. restore: `npm run restore -- --from offsite` for every site with a database, the age identity
 *      given from here (it never rests on the "host");
 *   7. check: every site served, every row back (content checksums equal).
 * Returns the seconds of each phase; the caller removes everything (harness.cleanup, s3.stop).
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { databaseRoles, defaultDatabaseName } from "../../core/names";
import { main as restoreMain } from "../../scripts/restore";
import { docker, psqlIn, run } from "./docker";
import { requestEdge } from "./edge-load";
import type { Harness } from "./harness";
import { LOCAL_STACK, applyAndServe, bringUpLocal, type LocalProject } from "./local-project";
import { S3_ACCESS_KEY, S3_SECRET_KEY, startS3, type S3Server } from "../s3-server";

export const REHEARSAL_PHASES = [
  "build",
  "data",
  "backup",
  "destroy",
  "rebuild",
  "restore",
  "check",
] as const;
export type Phase = (typeof REHEARSAL_PHASES)[number];

export interface Rehearsal {
  harness: Harness;
  s3: S3Server;
  project: LocalProject;
  /** Seconds per phase. */
  seconds: Record<Phase, number>;
  /** Rows written and found again, per site. */
  rows: Record<string, number>;
  /** Objects on the remote after the backups. */
  remoteObjects: string[];
}

/** Rows each site's database gets before the backup. */
const ROWS: Record<string, number> = { solo: 20_000, mall: 10_000, legacy: 5_000 };

/** The Docker bridge's gateway: where containers on the default bridge reach this machine. */
async function bridgeGateway(): Promise<string> {
  const out = await docker([
    "network",
    "inspect",
    "bridge",
    "--format",
    "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
  ]);
  const gw = out
    .trim()
    .split(/\s+/)
    .find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  if (!gw) throw new Error(`no IPv4 gateway on Docker's bridge network: ${out}`);
  return gw;
}

/** psql as the database's superuser, where its server runs; SQL on standard input. */
function sql(project: LocalProject, site: string, text: string): Promise<string> {
  const container = site === "solo" ? `${site}-db` : project.cluster;
  return psqlIn(container, defaultDatabaseName(site), text);
}

/** A checksum of the rehearsal's table: its rows in order, hashed by PostgreSQL. */
const CHECKSUM =
  "SELECT count(*) || ':' || md5(coalesce(string_agg(id || '/' || note || '/' || amount, ',' ORDER BY id), '')) FROM rehearsal_orders;";

export async function rehearseRebuild(
  harness: Harness,
  log: (m: string) => void,
  onS3: (s3: S3Server) => void,
): Promise<Rehearsal> {
  const seconds = {} as Record<Phase, number>;
  const timed = async <T>(phase: Phase, f: () => Promise<T>): Promise<T> => {
    log(`phase ${phase} ...`);
    const t0 = Date.now();
    const out = await f();
    seconds[phase] = (Date.now() - t0) / 1000;
    log(`phase ${phase}: ${seconds[phase].toFixed(1)} s`);
    return out;
  };

  const gateway = await bridgeGateway();
  const s3 = await startS3(fs.mkdtempSync(path.join(harness.privateDir, "s3-")), {
    address: gateway,
  });
  onS3(s3);
  const keyFile = path.join(harness.privateDir, "offsite-identity.txt");
  execFileSync("age-keygen", ["-o", keyFile], { stdio: "pipe" });
  const recipient = execFileSync("age-keygen", ["-y", keyFile], { encoding: "utf8" }).trim();
  const options = {
    extras: {
      offsite: {
        provider: "Other",
        endpoint: s3.endpoint,
        bucket: s3.bucket,
        prefix: "rehearsal",
        recipient,
      },
    },
    secretValues: { offsiteAccessKeyId: S3_ACCESS_KEY, offsiteSecretAccessKey: S3_SECRET_KEY },
  };

  const up = await timed("build", () => bringUpLocal(harness, log, options));
  const { project, desired } = up;
  let ca = up.ca;
  const sites = Object.keys(ROWS);

  const before: Record<string, string> = {};
  await timed("data", async () => {
    for (const site of sites) {
      const app = databaseRoles(defaultDatabaseName(site)).app;
      // As the app role: what the site's backup (the app role in the shared cluster) may read.
      await sql(
        project,
        site,
        `SET ROLE ${app};
         CREATE TABLE rehearsal_orders (id int PRIMARY KEY, note text NOT NULL, amount numeric(10,2));
         INSERT INTO rehearsal_orders SELECT i, md5(i::text), i * 0.25 FROM generate_series(1, ${ROWS[site]}) i;`,
      );
      before[site] = await sql(project, site, CHECKSUM);
    }
  });

  const remoteObjects = await timed("backup", async () => {
    for (const site of sites) {
      const unit = path.join(project.hostRoot, "timers", `agi-backup-${site}.service`);
      const execStart = /^ExecStart=(.*)$/m.exec(fs.readFileSync(unit, "utf8"))![1];
      assert.match(execStart, / offsite=backups\/rehearsal recipient=age1/);
      const job = await run("/bin/sh", ["-c", execStart]);
      assert.equal(job.code, 0, `${site}: ${job.stdout}\n${job.stderr}`);
      assert.match(job.stdout, new RegExp(`^offsite ${site}: uploaded ${site}-`, "m"));
    }
    return s3.keys("rehearsal/");
  });

  await timed("destroy", async () => {
    const left = await harness.removeEngineObjects();
    assert.deepEqual(left, [], "everything of the host removed");
    fs.rmSync(project.hostRoot, { recursive: true, force: true });
    for (const kind of [
      ["ps", "--all"],
      ["volume", "ls"],
      ["network", "ls"],
    ]) {
      const leftover = await docker([...kind, "--quiet", "--filter", harness.labelFilter]);
      assert.equal(leftover.trim(), "", `${kind[0]}: nothing of the host is left`);
    }
  });

  await timed("rebuild", async () => {
    ({ ca } = await applyAndServe(harness, desired, project));
  });

  await timed("restore", async () => {
    for (const site of sites) {
      let out = "";
      const code = await restoreMain(
        [
          "--stack",
          LOCAL_STACK,
          "--site",
          site,
          "--from",
          "offsite",
          "--latest",
          "--identity",
          keyFile,
          "--yes",
        ],
        {
          stdout: (t) => void (out += t),
          stderr: (t) => void (out += t),
          cwd: project.root,
          env: process.env,
          interactive: false,
          inheritStdio: false,
        },
      );
      assert.equal(code, 0, `${site}: ${out}`);
      assert.match(out, /restore: ok: .* restored into /, `${site}: ${out}`);
      assert.ok(!out.includes("AGE-SECRET-KEY"), "the identity is never printed");
    }
  });

  const rows: Record<string, number> = {};
  await timed("check", async () => {
    for (const site of sites) {
      const after = await sql(project, site, CHECKSUM);
      assert.equal(after, before[site], `${site}: the rows are back as they were`);
      rows[site] = Number(after.split(":")[0]);
      const res = await requestEdge(project.httpsPort, ca, `${site}.local.test`);
      assert.equal(res.status, 200, `${site} is served`);
    }
  });
  return { harness, s3, project, seconds, rows, remoteObjects };
}

/** The phases as a Markdown table, with the total. */
export function rehearsalTable(seconds: Record<Phase, number>): string {
  const total = REHEARSAL_PHASES.reduce((a, p) => a + (seconds[p] ?? 0), 0);
  return [
    "| phase | seconds |",
    "| --- | ---: |",
    ...REHEARSAL_PHASES.map((p) => `| ${p} | ${(seconds[p] ?? 0).toFixed(1)} |`),
    `| total | ${total.toFixed(1)} |`,
    "",
  ].join("\n");
}
