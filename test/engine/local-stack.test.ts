/**
 * The real-engine suite on the `local` stack's shape (test/engine/local-project.ts): the shared
 * cluster the program creates, a site on a dedicated database, one in the shared cluster and one
 * adopted database, realized by the harness (the PostgreSQL provider's resources with psql in the
 * cluster) and checked there; then the edge itself replaced as Pulumi's delete-before-replace does,
 * under a request loop, measured. Measurements are added to build/engine/measurements.json
 * (`localStack`, `edgeReplacement`); no test asserts a time.
 */
import * as assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { databaseRoles } from "../../core/names";
import { docker, inspect, psqlIn } from "./docker";
import { Harness, type Desired } from "./harness";
import { bringUpLocal, type LocalProject } from "./local-project";
import { requestEdge, startEdgeLoad, type EdgeLoadResult } from "./edge-load";
import { recordMeasurements } from "./measurements";

const log = (m: string) => process.stdout.write(`engine-local: ${m}\n`);
/** How often the edge is replaced under load (DECISIONS 4: median and worst of 3). */
const EDGE_RUNS = 3;

let harness: Harness;
let project: LocalProject;
let desired: Desired;
let ca: string;
const measured: Record<string, unknown> = {};

const containers = () =>
  desired.resources.filter((r) => r.type === "docker:index/container:Container");
const edge = (host: string, pathname = "/") => requestEdge(project.httpsPort, ca, host, pathname);

/** psql in the cluster as its admin (over its socket), SQL on standard input; the rows as text. */
const clusterSql = (database: string, sql: string) => psqlIn(project.cluster, database, sql);

/**
 * Logs into `database` from inside a site's app container with the app's own credentials (from its
 * DATABASE_URL, given to psql as PGPASSWORD: never on a command line).
 */
async function appLogin(
  site: string,
  database: string,
): Promise<{ code: number; out: string; err: string }> {
  const script =
    "const u=new URL(process.env.DATABASE_URL);" +
    "const r=require('child_process').spawnSync('psql',['-X','-At','-h',u.hostname,'-p',u.port,'-U',u.username,'-d',process.argv[1],'-c','SELECT current_user, current_database()']," +
    "{env:{PATH:process.env.PATH,PGPASSWORD:decodeURIComponent(u.password),PGCONNECT_TIMEOUT:'5'},encoding:'utf8'});" +
    "console.log(JSON.stringify({code:r.status,out:(r.stdout||'').trim(),err:(r.stderr||'').trim()}))";
  const out = await docker([
    "exec",
    harness.dockerName(`${site}-app`),
    "node",
    "-e",
    script,
    database,
  ]);
  return JSON.parse(out) as { code: number; out: string; err: string };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe("real engine, local stack shape", { timeout: 25 * 60_000 }, () => {
  before(async () => {
    harness = new Harness({ log });
    const up = await bringUpLocal(harness, log);
    ({ project, desired, ca } = up);
    measured.localStack = {
      secondsToAllHealthy: up.secondsToAllHealthy,
      imagesSeconds: up.images.seconds,
    };
    log(`all sites healthy and served in ${up.secondsToAllHealthy.toFixed(1)}s`);
  });

  after(async () => {
    try {
      if (harness) {
        const left = await harness.cleanup();
        if (left.length) log(`cleanup could not remove:\n${left.join("\n")}`);
      }
    } finally {
      // Added to what the other engine runs recorded in this build.
      recordMeasurements(measured);
      log(`measurements: ${JSON.stringify(measured)}`);
    }
  });

  it("runs every declared container, the created cluster among them, healthy", async () => {
    const names = containers().map((c) => harness.dockerName(c.name));
    assert.ok(names.includes(project.cluster), `no ${project.cluster} among ${names.join(", ")}`);
    for (const c of containers()) {
      const state = (
        await inspect<{ State: { Status: string; Health?: { Status: string } } }>(
          "container",
          harness.dockerName(c.name),
        )
      ).State;
      assert.equal(state.Status, "running", `${c.name} is ${state.Status}`);
      if (c.clearInputs.healthcheck) assert.equal(state.Health?.Status, "healthy", c.name);
    }
  });

  it("publishes the cluster's admin port on loopback only and gives it no password in its environment", async () => {
    const info = await inspect<{
      HostConfig: { PortBindings: Record<string, { HostIp: string; HostPort: string }[]> };
      Config: { Env: string[] };
    }>("container", project.cluster);
    assert.deepEqual(info.HostConfig.PortBindings, {
      "5432/tcp": [{ HostIp: "127.0.0.1", HostPort: String(project.adminPort) }],
    });
    assert.ok(!info.Config.Env.some((e) => e.startsWith("POSTGRES_PASSWORD=")));
    assert.ok(info.Config.Env.includes("POSTGRES_PASSWORD_FILE=/run/agi/admin-password"));
  });

  it("serves every site over HTTPS through the edge", async () => {
    for (const site of project.sites) {
      const [domain] = site.domains as string[];
      const res = await edge(domain);
      assert.equal(res.status, 200, `${domain}: ${res.status} ${res.body}`);
      assert.equal(
        res.body,
        `hello from ${String(site.name)}\n`,
        `${domain} reached the wrong app`,
      );
    }
  });

  it("logs each shared-mode app into its own database as its own non-superuser role", async () => {
    for (const [site, db] of [
      ["mall", "mall"],
      ["legacy", "legacy"],
    ]) {
      const res = await edge(`${site}.local.test`, "/whoami");
      assert.equal(res.status, 200, res.body);
      const who = JSON.parse(res.body) as { db: Record<string, unknown> };
      assert.deepEqual(who.db, { user: databaseRoles(db).app, superuser: false, database: db });
    }
    // The roles are the ones the program declared, with the attributes it declared.
    const roles = await clusterSql(
      "postgres",
      "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname IN ('mall_app', 'legacy_app') ORDER BY 1",
    );
    assert.equal(roles, "legacy_app|f|f|f|t\nmall_app|f|f|f|t");
  });

  it("keeps a shared-mode app out of every other database of the cluster (CONNECT revoked from PUBLIC)", async () => {
    const own = await appLogin("mall", "mall");
    assert.equal(own.code, 0, own.err);
    assert.equal(own.out, "mall_app|mall");
    for (const other of ["legacy", "postgres"]) {
      const r = await appLogin("mall", other);
      assert.notEqual(r.code, 0, `mall_app logged into ${other}`);
      assert.match(r.err, /permission denied for database/, other);
    }
    const legacy = await appLogin("legacy", "mall");
    assert.notEqual(legacy.code, 0, "legacy_app logged into mall");
  });

  it("gives the adopted database its derived owner role, with the app role a member", async () => {
    const owner = databaseRoles("legacy").owner;
    assert.equal(
      await clusterSql(
        "postgres",
        `SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = '${owner}'`,
      ),
      "f|f",
    );
    assert.equal(
      await clusterSql(
        "legacy",
        `SELECT pg_has_role('legacy_app', '${owner}', 'MEMBER'), has_schema_privilege('${owner}', 'public', 'CREATE')`,
      ),
      "t|t",
    );
    // Only the adopted database has one.
    assert.equal(
      await clusterSql("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = 'mall_owner'"),
      "0",
    );
  });

  it("replaces the edge (delete before create) under load: failed requests and the gap, measured", async () => {
    const hosts = project.sites.map((s) => (s.domains as string[])[0]);
    const runs: (EdgeLoadResult & { recreateSeconds: number })[] = [];
    for (let i = 0; i < EDGE_RUNS; i++) {
      const load = startEdgeLoad({ port: project.httpsPort, hosts, ca });
      let recreateSeconds: number;
      try {
        // The loop is running and answered before the edge goes.
        const warm = Date.now() + 30_000;
        while (Date.now() < warm) {
          if ((await edge(hosts[0]).catch(() => ({ status: 0 }))).status === 200) break;
        }
        await new Promise((r) => setTimeout(r, 1000));
        recreateSeconds = await harness.recreate("local-edge");
        // Until every site answers again through the new edge, then a little more.
        for (const h of hosts) {
          const deadline = Date.now() + 60_000;
          while ((await edge(h).catch(() => ({ status: 0 }))).status !== 200) {
            assert.ok(Date.now() < deadline, `${h} not served after the edge came back`);
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        await new Promise((r) => setTimeout(r, 1000));
      } catch (err) {
        // A failed check must not leave the loop running (it would hold the test process open).
        await load.stop();
        throw err;
      }
      const result = await load.stop();
      log(
        `edge replacement ${i + 1}: ${result.failed} of ${result.requests} requests failed, gap ${result.gapSeconds}s (${JSON.stringify(result.reasons)}); recreate took ${recreateSeconds.toFixed(1)}s`,
      );
      assert.ok(result.requests > result.failed, "the loop saw no answered request");
      runs.push({ ...result, recreateSeconds });
    }
    measured.edgeReplacement = {
      runs,
      medianFailed: median(runs.map((r) => r.failed)),
      worstFailed: Math.max(...runs.map((r) => r.failed)),
      medianGapSeconds: median(runs.map((r) => r.gapSeconds)),
      worstGapSeconds: Math.max(...runs.map((r) => r.gapSeconds)),
    };
    log(`edge replacement: ${JSON.stringify(measured.edgeReplacement)}`);
    // A replacement is a gap, not a loss: every site is served again by the new edge.
    for (const h of hosts) assert.equal((await edge(h)).status, 200, h);
  });
});
