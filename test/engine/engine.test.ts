/**
 * The real-engine suite: the program's desired state for a test project (two websites with dedicated
 * databases on the `local` stack's kind of host) realized on this machine's Docker engine by the
 * harness, then checked there. Needs dockerd and mmdebstrap (`.ci/run` provides both); run with
 * `npm run test:engine`. Measurements go to build/engine/measurements.json; no test asserts a time.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { synth } from "../../scripts/synth";
import { databaseRoles, siteNames } from "../../core/names";
import { docker, inspect, run } from "./docker";
import { requestEdge } from "./edge-load";
import { recordMeasurements } from "./measurements";
import { Harness, desiredState, waitHealthy, type Desired } from "./harness";
import { buildImages, tagsFor, type BuildReport } from "./images";
import { STACK, appImagesOf, removeSite, writeEngineProject, type EngineProject } from "./project";
import {
  SCENARIOS,
  appContainersOf,
  containerExists,
  routedContainer,
  updateUnderLoad,
  type UpdateContext,
  type UpdateOutcome,
} from "./update-scenarios";

// No systemd user manager here: the timers' install commands write their unit files and stop there
// (they say so); the backup test runs the service's ExecStart itself and checks the files.
process.env.AGI_TIMERS = "files";

const ROOT = path.resolve(__dirname, "../..");
const EDGE = "agi-edge";
const CA_PATH = "/data/caddy/pki/authorities/local/root.crt";
const log = (m: string) => process.stdout.write(`engine: ${m}\n`);

interface Measurements {
  images?: BuildReport;
  secondsToAllHealthy?: number;
  idleMemoryMiB?: Record<string, number[]>;
  backupSeconds?: number;
  /** Requests through the edge during each app update: total and failed. */
  updates?: Record<string, { requests: number; failed: number; updateSeconds: number }>;
  suiteSeconds?: number;
}

const suiteStart = Date.now();
const measurements: Measurements = {};
let harness: Harness;
let project: EngineProject;
let desired: Desired;
let ca: string;

/** One HTTPS request to the edge on loopback, with SNI and the edge's own CA. */
const fetchEdge = (host: string, pathname = "/") =>
  requestEdge(project.httpsPort, ca, host, pathname);

/** Retries while the edge is still getting its certificate; the last error otherwise. */
async function fetchEdgeReady(host: string, pathname = "/") {
  let last: unknown;
  for (let i = 0; i < 40; i++) {
    try {
      return await fetchEdge(host, pathname);
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw last;
}

/** Tries a TCP connection from inside a container; "open" or the error's code. */
async function probeFrom(container: string, host: string, port: number): Promise<string> {
  const script =
    "const s=require('net').connect({host:process.argv[1],port:+process.argv[2]});" +
    "s.setTimeout(3000,()=>{console.log('timeout');process.exit(1)});" +
    "s.on('connect',()=>{console.log('open');process.exit(0)});" +
    "s.on('error',(e)=>{console.log(e.code||e.message);process.exit(1)})";
  const r = await run("docker", ["exec", container, "node", "-e", script, host, String(port)]);
  return r.stdout.trim() || r.stderr.trim();
}

const website = (name: string) => project.sites.find((s) => s.name === name)!;
const containersOf = (d: Desired) =>
  d.resources.filter((r) => r.type === "docker:index/container:Container");

describe("real engine", { timeout: 25 * 60_000 }, () => {
  before(async () => {
    // The stand-ins carry the references the local stack declares, and those of the test project.
    const local = await synth(ROOT, "local", path.join(ROOT, "sites"), "sites");
    harness = new Harness({ log });
    project = await writeEngineProject(appImagesOf(local.manifest.resources));
    harness.ownedDirs.push(project.root);
    desired = await desiredState(project.root, STACK, project.sitesDir);
    const tags = tagsFor([...local.manifest.resources, ...desired.resources]);
    measurements.images = await buildImages(tags, log);
    log(
      `images ready in ${measurements.images.seconds.toFixed(1)}s (base built: ${measurements.images.baseBuilt}, rebuilt: ${measurements.images.built.join(", ") || "none"})`,
    );
    const t0 = Date.now();
    await harness.apply(desired);
    measurements.secondsToAllHealthy = (Date.now() - t0) / 1000;
    log(
      `all declared resources created and healthy in ${measurements.secondsToAllHealthy.toFixed(1)}s`,
    );
    ca = await docker(["exec", EDGE, "cat", CA_PATH]);
  });

  after(async () => {
    try {
      if (harness) {
        const left = await harness.cleanup();
        if (left.length) log(`cleanup could not remove:\n${left.join("\n")}`);
      }
    } finally {
      measurements.suiteSeconds = (Date.now() - suiteStart) / 1000;
      recordMeasurements(measurements, { fresh: true });
      log(`measurements: ${JSON.stringify(measurements)}`);
    }
  });

  it("runs every declared container, healthy where it has a healthcheck", async () => {
    const containers = containersOf(desired);
    // Two apps, two databases, a socket proxy and the edge; backups have no container (host timers).
    assert.ok(containers.length >= 6, `only ${containers.length} containers declared`);
    for (const c of containers) {
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

  it("serves every active site over HTTPS through the edge, with the edge's local CA", async () => {
    for (const name of ["alpha", "beta"]) {
      const [domain] = website(name).domains as string[];
      const res = await fetchEdgeReady(domain);
      assert.equal(res.status, 200, `${domain}: ${res.status} ${res.body}`);
      assert.equal(res.body, `hello from ${name}\n`, `${domain} reached the wrong app`);
      assert.equal(res.headers["strict-transport-security"], "max-age=31536000");
    }
    const alias = await fetchEdgeReady("www.beta.engine.test", "/x?y=1");
    assert.equal(alias.status, 301);
    // The edge listens off 443, so the redirect names its port (Caddy 2.6 would drop it).
    assert.equal(alias.headers.location, `https://beta.engine.test:${project.httpsPort}/x?y=1`);
  });

  it("refuses a TLS client that does not trust the edge's CA", async () => {
    const saved = ca;
    ca = "";
    try {
      await assert.rejects(fetchEdge("alpha.engine.test"), /certificate/);
    } finally {
      ca = saved;
    }
  });

  it("logs each app into its database with the declared credentials, as a non-superuser role", async () => {
    for (const [name, db] of [
      ["alpha", "alpha"],
      ["beta", "beta_db"],
    ]) {
      const res = await fetchEdge(`${name}.engine.test`, "/whoami");
      assert.equal(res.status, 200, res.body);
      const who = JSON.parse(res.body) as {
        db: { user: string; superuser: boolean; database: string };
      };
      assert.deepEqual(who.db, { user: databaseRoles(db).app, superuser: false, database: db });
      // The URL the app was given names that role, and the server checks the password.
      const app = desired.resources.find((r) => r.name === `${name}-app`)!;
      const url = (app.clearInputs.envs as string[])
        .find((e) => e.startsWith("DATABASE_URL="))!
        .slice("DATABASE_URL=".length);
      assert.equal(new URL(url).username, databaseRoles(db).app);
      const wrong = new URL(url);
      wrong.password = "not-the-password";
      const denied = await run("docker", [
        "exec",
        harness.dockerName(`${name}-app`),
        "psql",
        "-X",
        "-d",
        wrong.toString(),
        "-c",
        "select 1",
      ]);
      assert.notEqual(denied.code, 0, "a wrong password was accepted");
      assert.match(denied.stderr, /password authentication failed/);
    }
  });

  it("keeps one site's app from reaching another site's dedicated database", async () => {
    const alphaApp = harness.dockerName("alpha-app");
    const betaApp = harness.dockerName("beta-app");
    const alphaDb = siteNames("alpha").database;
    const betaDb = siteNames("beta").database;
    // The probe works: each app reaches its own database.
    assert.equal(await probeFrom(alphaApp, alphaDb, 5432), "open");
    assert.equal(await probeFrom(betaApp, betaDb, 5432), "open");
    // Neither by name nor by address across sites.
    assert.notEqual(await probeFrom(alphaApp, betaDb, 5432), "open");
    assert.notEqual(await probeFrom(betaApp, alphaDb, 5432), "open");
    const betaDbInfo = await inspect<{
      NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
    }>("container", betaDb);
    for (const [net, { IPAddress }] of Object.entries(betaDbInfo.NetworkSettings.Networks)) {
      assert.notEqual(await probeFrom(alphaApp, IPAddress, 5432), "open", `via ${net}`);
    }
  });

  it("gives every container the limits and settings it declares", async () => {
    for (const c of containersOf(desired)) {
      const i = c.clearInputs;
      const info = await inspect<{
        HostConfig: {
          Memory: number;
          MemoryReservation: number;
          NanoCpus: number;
          RestartPolicy: { Name: string };
          LogConfig: { Type: string; Config: Record<string, string> };
          SecurityOpt: string[] | null;
          CapDrop: string[] | null;
        };
        Config: {
          User: string;
          StopSignal?: string;
          StopTimeout?: number;
          Labels: Record<string, string>;
        };
      }>("container", harness.dockerName(c.name));
      const h = info.HostConfig;
      const mib = 1024 * 1024;
      assert.equal(h.Memory, Number(i.memory) * mib, `${c.name} memory`);
      assert.equal(
        h.MemoryReservation,
        Number(i.memoryReservation ?? 0) * mib,
        `${c.name} reservation`,
      );
      assert.equal(h.NanoCpus, Math.round(Number(i.cpus ?? 0) * 1e9), `${c.name} cpus`);
      assert.equal(h.RestartPolicy.Name, i.restart, `${c.name} restart`);
      assert.equal(h.LogConfig.Type, i.logDriver);
      assert.deepEqual(h.LogConfig.Config, i.logOpts);
      assert.deepEqual(h.SecurityOpt ?? [], i.securityOpts ?? [], `${c.name} security options`);
      const drops = (i.capabilities as { drops?: string[] } | undefined)?.drops ?? [];
      assert.ok(drops.includes("NET_RAW"), `${c.name} declares NET_RAW dropped`);
      assert.deepEqual(
        [...(h.CapDrop ?? [])].map((x) => x.replace(/^CAP_/, "")).sort(),
        [...drops].sort(),
        `${c.name} capabilities dropped`,
      );
      if (typeof i.user === "string") assert.equal(info.Config.User, i.user, `${c.name} user`);
      if (i.stopSignal) assert.equal(info.Config.StopSignal, i.stopSignal);
      if (i.stopTimeout !== undefined) assert.equal(info.Config.StopTimeout, i.stopTimeout);
      for (const l of i.labels as { label: string; value: string }[]) {
        assert.equal(info.Config.Labels[l.label], l.value, `${c.name} label ${l.label}`);
      }
    }
    // The declared figures are the site file's, not defaults that happen to match.
    const alphaApp = await inspect<{ HostConfig: { Memory: number; NanoCpus: number } }>(
      "container",
      harness.dockerName("alpha-app"),
    );
    assert.equal(alphaApp.HostConfig.Memory, 192 * 1024 * 1024);
    assert.equal(alphaApp.HostConfig.NanoCpus, 0.4e9);
  });

  it("writes secret files with the declared permissions and keeps internal networks internal", async () => {
    const mode = async (container: string, file: string) =>
      (await docker(["exec", container, "stat", "-c", "%a %U", file])).trim();
    assert.equal(await mode("alpha-db", "/run/agi/superuser-password"), "444 root");
    const net = await inspect<{ Internal: boolean }>("network", siteNames("alpha").internalNetwork);
    assert.equal(net.Internal, true);
    // The internal network has no way out: the database cannot reach the edge's network.
    const r = await run("docker", ["exec", "alpha-db", "pg_isready", "-h", "agi-edge", "-t", "2"]);
    assert.notEqual(r.code, 0);
  });

  it("runs the database's init script (as postgres, not sourced) and never logs a role error", async () => {
    for (const db of ["alpha-db", "beta-db"]) {
      const r = await run("docker", ["logs", db]);
      const log = r.stdout + r.stderr;
      assert.match(log, /running \/docker-entrypoint-initdb\.d\/10-agi-app-role\.sh/, db);
      assert.doesNotMatch(log, /sourcing \/docker-entrypoint-initdb\.d\/10-agi-app-role\.sh/, db);
      assert.doesNotMatch(log, /role "root" does not exist/, db);
    }
  });

  it("answers read-only Docker API calls through the socket proxy and refuses the rest", async () => {
    const app = harness.dockerName("alpha-app");
    const call = async (method: string, p: string) => {
      const script =
        "fetch(process.env.DOCKER_HOST.replace('tcp:','http:')+process.argv[2],{method:process.argv[1]})" +
        ".then(r=>{console.log(r.status)},e=>{console.log('error '+e.message)})";
      return (await docker(["exec", app, "node", "-e", script, method, p])).trim();
    };
    assert.equal(await call("GET", "/_ping"), "200");
    assert.equal(await call("GET", "/v1.41/containers/json"), "200");
    assert.equal(await call("GET", `/containers/${harness.dockerName("beta-app")}/json`), "403");
    assert.equal(await call("POST", "/containers/create"), "403");
  });

  it("takes a forced backup that leaves a verified dump and a status record, and the restore drill passes", async () => {
    // The units as installed, checked by systemd's own tool; then the job exactly as the timer runs it:
    // the service's ExecStart (as the deploy user would; here the suite's user, on this engine).
    const units = path.join(project.hostRoot, "timers");
    const service = path.join(units, "agi-backup-alpha.service");
    const timer = path.join(units, "agi-backup-alpha.timer");
    const runtime = fs.mkdtempSync(path.join(project.root, "xdg-"));
    const verify = await run("systemd-analyze", ["verify", "--user", timer, service], {
      env: { ...process.env, XDG_RUNTIME_DIR: runtime },
    });
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(fs.readFileSync(timer, "utf8"), /^OnCalendar=.* UTC$/m);
    const execStart = /^ExecStart=(.*)$/m.exec(fs.readFileSync(service, "utf8"))![1];
    assert.match(execStart, / dedicated=alpha-db$/);
    const t0 = Date.now();
    const job = await run("/bin/sh", ["-c", execStart]);
    measurements.backupSeconds = (Date.now() - t0) / 1000;
    assert.equal(job.code, 0, `${job.stdout}\n${job.stderr}`);
    assert.match(job.stdout, /backup alpha: ok: daily\/alpha-\S+\.dump/);
    // Nothing resident: no backup container of the site exists between runs.
    const resident = await run("docker", ["container", "inspect", "alpha-backup"]);
    assert.notEqual(resident.code, 0, "a container named alpha-backup exists");
    const dir = path.join(project.hostRoot, "backups", "alpha");
    const status = JSON.parse(fs.readFileSync(path.join(dir, "status.json"), "utf8")) as {
      lastError: string | null;
      lastDump: string;
    };
    assert.equal(status.lastError, null);
    const dump = path.join(dir, status.lastDump);
    assert.ok(fs.statSync(dump).size > 0);
    assert.ok(fs.existsSync(dump.replace(/\.dump$/, ".manifest.json")));
    // The drill through the installed script, with the job's own words (as npm run restore sends them).
    const words = execStart.split(" ");
    const drill = await run("sh", [
      path.join(ROOT, "components", "backup", "host-restore.sh"),
      words[1],
      "--latest",
      "--into-scratch",
      ...words.slice(3),
    ]);
    assert.equal(drill.code, 0, `restore drill: ${drill.stdout}\n${drill.stderr}`);

    // The scheduled drill, exactly as its timer runs it: its result lands in drill.json.
    const drillService = fs.readFileSync(path.join(units, "agi-drill-alpha.service"), "utf8");
    const drillStart = /^ExecStart=(.*)$/m.exec(drillService)![1];
    assert.match(drillStart, /site-backup\.sh drill site=alpha /);
    const scheduled = await run("/bin/sh", ["-c", drillStart]);
    assert.equal(scheduled.code, 0, `${scheduled.stdout}\n${scheduled.stderr}`);
    const record = () =>
      JSON.parse(fs.readFileSync(path.join(dir, "drill.json"), "utf8")) as {
        lastSuccess: string | null;
        lastError: string | null;
        dump: string | null;
      };
    const passed = record();
    assert.equal(passed.lastError, null);
    assert.equal(passed.dump, path.basename(dump));
    assert.ok(passed.lastSuccess);
    // A drill that fails (no dump to drill in any tier) says so, and keeps the last success.
    const tiers = ["daily", "weekly", "monthly"].filter((t) => fs.existsSync(path.join(dir, t)));
    for (const t of tiers) fs.renameSync(path.join(dir, t), path.join(dir, `${t}.aside`));
    try {
      const failing = await run("/bin/sh", ["-c", drillStart]);
      assert.notEqual(failing.code, 0, failing.stdout);
      assert.match(failing.stderr, /drill alpha: FAILED: /);
      const failed = record();
      assert.ok(failed.lastError, "no error recorded");
      assert.equal(failed.lastSuccess, passed.lastSuccess);
    } finally {
      for (const t of tiers) fs.renameSync(path.join(dir, `${t}.aside`), path.join(dir, t));
    }
  });

  it("records the idle memory of each kind of container", async () => {
    const out = await docker([
      "stats",
      "--no-stream",
      "--format",
      "{{.Name}}\t{{.MemUsage}}",
      ...containersOf(desired).map((c) => harness.dockerName(c.name)),
    ]);
    const byKind: Record<string, number[]> = {};
    for (const line of out.trim().split("\n")) {
      const [name, usage] = line.split("\t");
      const c = containersOf(desired).find((r) => harness.dockerName(r.name) === name)!;
      const role = (c.clearInputs.labels as { label: string; value: string }[]).find(
        (l) => l.label === "agi.role",
      )!.value;
      (byKind[role] ??= []).push(toMiB(usage.split("/")[0].trim()));
    }
    measurements.idleMemoryMiB = byKind;
    // app, db, docker-proxy, edge: no backup kind is resident any more.
    assert.ok(Object.keys(byKind).length >= 4, JSON.stringify(byKind));
    assert.ok(!("backup" in byKind), JSON.stringify(byKind));
  });

  it("comes back healthy after the Docker daemon restarts", async (t) => {
    // Only a daemon this run owns is restarted (.ci/run says so when it started dockerd itself).
    if (process.env.ENGINE_DOCKERD_RESTART !== "yes") {
      t.skip("the Docker daemon is not this run's own (ENGINE_DOCKERD_RESTART is not yes)");
      return;
    }
    const pid = Number(fs.readFileSync("/var/run/docker.pid", "utf8").trim());
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 120 && alive(); i++) await new Promise((r) => setTimeout(r, 1000));
    assert.ok(!alive(), "dockerd did not stop within 120 s");
    const logFd = fs.openSync(process.env.ENGINE_DOCKERD_LOG ?? "/dev/null", "a");
    spawn("dockerd", [], { detached: true, stdio: ["ignore", logFd, logFd] }).unref();
    fs.closeSync(logFd);
    for (let i = 0; i < 60; i++) {
      if ((await run("docker", ["info"])).code === 0) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    for (const c of containersOf(desired)) {
      await waitHealthy(harness.dockerName(c.name), 180, Boolean(c.clearInputs.healthcheck));
    }
    for (const name of ["alpha", "beta"]) {
      const res = await fetchEdgeReady(`${name}.engine.test`);
      assert.equal(res.status, 200, `${name} after the restart: ${res.status} ${res.body}`);
    }
  });

  describe("app updates under load (10,000 requests or more, 48 clients, through the edge)", () => {
    const ctx = (): UpdateContext => ({ harness, project, ca, log });
    const record = (name: string, o: UpdateOutcome) => {
      (measurements.updates ??= {})[name] = {
        requests: o.load.requests,
        failed: o.load.failed,
        updateSeconds: o.updateSeconds,
      };
      log(`${name}: ${o.load.failed} of ${o.load.requests} requests failed`);
    };
    /** A successful update: the new version routed and healthy, the old one gone, nothing failed. */
    const assertSwitched = async (site: string, o: UpdateOutcome) => {
      assert.equal(o.error, undefined, String(o.error?.message));
      assert.ok(o.load.requests >= 10_000, `only ${o.load.requests} requests`);
      assert.equal(o.load.failed, 0, JSON.stringify(o.load.failures));
      assert.notEqual(o.attempted, o.before, "the change made a new version");
      assert.equal(o.after, o.attempted, "the edge routes to the new version");
      // The switch is the alias moving on the site's edge network: the edge's config is untouched.
      assert.equal(o.edgeReloaded, false, "the site's fragment changed");
      // The replaced version's image keeps a local tag, so the image prune leaves it for a rollback.
      const previous = await run("docker", ["image", "inspect", `agi-previous/${site}:latest`]);
      assert.equal(previous.code, 0, "the replaced version's image has no rollback tag");
      assert.ok(!o.report?.updated.includes(`${site}-route-local`), "the route was updated");
      assert.equal(await containerExists(o.before), false, `${o.before} is still there`);
      assert.deepEqual(await appContainersOf(harness, site), [o.attempted]);
      const health = await inspect<{ State: { Health?: { Status: string } } }>(
        "container",
        o.after,
      );
      assert.equal(health.State.Health?.Status, "healthy");
      desired = o.desired;
    };

    it("switches to a version that answers 503 for its first 15 s without a failed request", async () => {
      const o = await updateUnderLoad(ctx(), "alpha", (app) => SCENARIOS.warmup15s(app, 1));
      record("warmup15s", o);
      await assertSwitched("alpha", o);
    });

    it("switches to a version that is ready at once without a failed request", async () => {
      const o = await updateUnderLoad(ctx(), "beta", (app) => SCENARIOS.instant(app, 1));
      record("instant", o);
      await assertSwitched("beta", o);
    });

    it("refuses a version that never gets healthy: clear error, old version serves, nothing of it left", async () => {
      const o = await updateUnderLoad(ctx(), "beta", (app) => SCENARIOS.neverHealthy(app, 1));
      record("neverHealthy", o);
      assert.ok(o.error, "the update succeeded");
      assert.match(
        o.error.message,
        /app-gate: site beta: the new app version beta-app-[0-9a-f]{8} /,
      );
      assert.match(o.error.message, /was not healthy within \d+s \(it is running, unhealthy\)/);
      assert.match(o.error.message, /the edge was not switched to it/);
      assert.match(o.error.message, /last healthcheck outputs/);
      assert.equal(o.load.failed, 0, JSON.stringify(o.load.failures));
      assert.ok(o.load.requests >= 10_000);
      assert.equal(o.after, o.before, "the edge still routes to the old version");
      assert.equal(await containerExists(o.attempted), false, `${o.attempted} is left`);
      assert.deepEqual(await appContainersOf(harness, "beta"), [o.before]);
      assert.equal((await fetchEdge("beta.engine.test")).status, 200);
    });

    it("control: without the gate (old removed first, new one routed as it starts), the same loop sees failures", async () => {
      const o = await updateUnderLoad(ctx(), "beta", (app) => SCENARIOS.warmup15s(app, 2), {
        ungated: true,
      });
      record("control", o);
      log(
        `control (old removed first, new one routed as it starts): ${o.load.failed} of ${o.load.requests} failed`,
      );
      assert.equal(o.error, undefined, String(o.error?.message));
      // The loop can see failures: without the gate's order, requests fail.
      assert.ok(o.load.failed > 0, "the control run saw no failed request");
      assert.equal(await routedContainer(harness, "beta"), o.attempted);
      desired = o.desired;
    });
  });

  it("removes a site and leaves its data volume", async () => {
    removeSite(project, "beta");
    const next = await desiredState(project.root, STACK, project.sitesDir);
    const removed = await harness.removeAbsent(next);
    desired = next;
    for (const n of [
      "beta-app",
      "beta-db",
      "beta-backup-timer",
      "beta-internal",
      "beta-route-local",
    ]) {
      assert.ok(removed.includes(n), `${n} was not removed: ${removed.join(", ")}`);
    }
    const gone = await run("docker", ["container", "inspect", siteNames("beta").database]);
    assert.notEqual(gone.code, 0, "beta's database container is still there");
    const volume = await inspect<{ Labels: Record<string, string> }>(
      "volume",
      siteNames("beta").databaseVolume,
    );
    assert.equal(volume.Labels["agi.site"], "beta");
    assert.ok(!fs.existsSync(path.join(project.hostRoot, "edge", "sites.d", "beta.caddy")));
    await assert.rejects(fetchEdge("beta.engine.test"));
    assert.equal((await fetchEdge("alpha.engine.test")).status, 200);
  });
});

function toMiB(text: string): number {
  const m = /^([\d.]+)\s*([KMG]i?B|B)$/.exec(text);
  if (!m) throw new Error(`unreadable memory figure ${text}`);
  const factor: Record<string, number> = {
    B: 1 / 1048576,
    KiB: 1 / 1024,
    KB: 1 / 1024,
    MiB: 1,
    MB: 1,
    GiB: 1024,
    GB: 1024,
  };
  return Math.round(Number(m[1]) * factor[m[2]] * 10) / 10;
}
