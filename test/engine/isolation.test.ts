/**
 * Tenant isolation on the real engine, for both values of the stack's `isolation` setting: what a
 * client app can reach (other sites' apps and dedicated databases, the shared cluster, the services on
 * agi-network), measured by TCP connections from inside the apps, by name and by address. The
 * services and the shared cluster are stand-ins of this test (small listeners on agi-network under
 * the names the prod host uses: supabase-db, ollama without auth, portainer). The matrix lands in the
 * test output and in build/engine/isolation.json; docs/decisions.md quotes it.
 *
 * Three sites: alpha (no database, uses nothing), beta (dedicated database, read-only Docker API
 * through its socket proxy), gamma (no database, `app.uses: ["services"]`).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { synth } from "../../scripts/synth";
import { writeProject } from "../../scripts/fixtures";
import { EDGE_CONTAINER, PLATFORM_NETWORK, siteNames } from "../../core/names";
import { freePorts } from "../helpers";
import { docker, inspect, run } from "./docker";
import { requestEdge } from "./edge-load";
import { Harness, RUN_LABEL, desiredState } from "./harness";
import { buildImages, tagsFor } from "./images";
import { appImagesOf } from "./project";

const ROOT = path.resolve(__dirname, "../..");
const STACK = "engine";
const CA_PATH = "/data/caddy/pki/authorities/local/root.crt";
const log = (m: string) => process.stdout.write(`isolation: ${m}\n`);

/** The prod host's neighbours on agi-network, by the names apps would use, and their ports. */
const STAND_INS = { "supabase-db": 5432, ollama: 11434, portainer: 9000 } as const;

const quickHealth = {
  path: "/",
  interval: "3s",
  timeout: "10s",
  startPeriod: "10s",
  retries: 3,
};

function sites(image: string): Record<string, unknown>[] {
  const app = (name: string, extra: Record<string, unknown> = {}) => ({
    image,
    port: 3000,
    env: { APP_NAME: name },
    healthcheck: quickHealth,
    resources: { memory: "192Mi", memoryReservation: "64Mi", cpus: 0.4 },
    stopGracePeriod: 5,
    ...extra,
  });
  const site = (name: string, rest: Record<string, unknown>) => ({
    name,
    kind: "website",
    domains: [`${name}.iso.test`],
    dns: { provider: "external" },
    ...rest,
  });
  return [
    site("alpha", { app: app("alpha") }),
    site("beta", {
      app: app("beta", { dockerReadAccess: true }),
      database: { mode: "dedicated", name: "beta", resources: { memory: "96Mi" } },
    }),
    site("gamma", { app: app("gamma", { uses: ["services"] }) }),
  ];
}

/** One target of a probe: what it is, and host:port. */
interface Target {
  what: string;
  host: string;
  port: number;
}

/** Connects to every target from inside a container at once; "open" or the error per target. */
async function probeAll(container: string, targets: Target[]): Promise<Record<string, string>> {
  const script =
    "const net=require('net');const t=JSON.parse(process.argv[1]);" +
    "Promise.all(t.map(x=>new Promise(r=>{const s=net.connect({host:x.host,port:x.port});" +
    "s.setTimeout(4000,()=>{s.destroy();r('timeout')});s.on('connect',()=>{s.destroy();r('open')});" +
    "s.on('error',e=>r(e.code||e.message))}))).then(v=>console.log(JSON.stringify(v)))";
  const out = await docker(["exec", container, "node", "-e", script, JSON.stringify(targets)]);
  const results = JSON.parse(out) as string[];
  return Object.fromEntries(targets.map((t, i) => [t.what, results[i]]));
}

/** Every address a container has, by network. */
async function addresses(container: string): Promise<Record<string, string>> {
  const info = await inspect<{
    NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
  }>("container", container);
  return Object.fromEntries(
    Object.entries(info.NetworkSettings.Networks).map(([n, v]) => [n, v.IPAddress]),
  );
}

/**
 * Polls (60 s at most) until the site answers 200 through the edge: the edge may still be getting its
 * certificate, and the demo app answers 503 for a moment when its database check times out on a busy
 * machine. The last answer or error otherwise.
 */
async function fetchEdgeReady(port: number, ca: string, host: string) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let last: { status: number; body: string } | undefined;
    try {
      last = await requestEdge(port, ca, host);
      if (last.status === 200) return last;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline && last) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
}

const matrices: Record<string, Record<string, Record<string, string>>> = {};

for (const isolation of ["shared-network", "per-site"] as const) {
  describe(`isolation: ${isolation}`, { timeout: 15 * 60_000 }, () => {
    let harness: Harness;
    let httpsPort: number;
    let ca: string;
    let project: { root: string; sitesDir: string };
    const matrix: Record<string, Record<string, string>> = {};
    matrices[isolation] = matrix;

    before(async () => {
      const local = await synth(ROOT, "local", path.join(ROOT, "sites"), "sites");
      const [image] = appImagesOf(local.manifest.resources);
      const [httpPort, port] = await freePorts(2);
      httpsPort = port;
      harness = new Harness({ log });
      project = writeProject(STACK, {}, sites(image));
      harness.ownedDirs.push(project.root);
      const settings = {
        hosts: [
          {
            name: "local",
            publicIp: "127.0.0.1",
            docker: { connection: "socket", socket: "unix:///var/run/docker.sock" },
            capacity: { memory: "8Gi", cpus: 2 },
            root: path.join(project.root, "host"),
            createNetwork: true,
          },
        ],
        edge: { bindAddress: "127.0.0.1", httpPort, httpsPort, localCerts: true },
        dns: { provider: "none" },
        isolation,
      };
      fs.writeFileSync(
        path.join(project.root, `Pulumi.${STACK}.yaml`),
        `config:\n  agi-platform:settings: ${JSON.stringify(settings)}\n`,
      );
      const desired = await desiredState(project.root, STACK, project.sitesDir);
      await buildImages(tagsFor([...local.manifest.resources, ...desired.resources]), log);
      await harness.apply(desired);
      ca = await docker(["exec", EDGE_CONTAINER, "cat", CA_PATH]);
      // The neighbours on agi-network: listeners under the prod host's names, labelled for cleanup.
      for (const [name, p] of Object.entries(STAND_INS)) {
        await docker([
          "run",
          "--detach",
          "--name",
          `${harness.runId}-${name}`,
          "--label",
          `${RUN_LABEL}=${harness.runId}`,
          "--network",
          PLATFORM_NETWORK,
          "--network-alias",
          name,
          "--entrypoint",
          "node",
          image,
          "-e",
          `require('net').createServer(s=>{s.on('error',()=>{});s.end('${name}\\n')}).listen(${p})`,
        ]);
      }
    });

    after(async () => {
      if (!harness) return;
      const left = await harness.cleanup();
      if (left.length) log(`cleanup could not remove:\n${left.join("\n")}`);
    });

    it("measures what each client app reaches, by name and by address", async () => {
      const app = (s: string) => harness.dockerName(`${s}-app`);
      const targets: Target[] = [];
      const add = async (what: string, container: string, name: string, port: number) => {
        targets.push({ what: `${what} by name`, host: name, port });
        for (const [net, ip] of Object.entries(await addresses(container))) {
          targets.push({ what: `${what} at its ${net} address`, host: ip, port });
        }
      };
      await add("beta's app", app("beta"), app("beta"), 3000);
      // The site's name is the live version's alias on beta-edge, which only the edge shares.
      targets.push({ what: "beta's app by its site name", host: "beta", port: 3000 });
      await add("beta's database", siteNames("beta").database, siteNames("beta").database, 5432);
      for (const [name, p] of Object.entries(STAND_INS)) {
        await add(name, `${harness.runId}-${name}`, name, p);
      }
      // The edge's admin API listens inside the edge only (its HTTP(S) ports are public anyway).
      await add("the edge's admin API", EDGE_CONTAINER, EDGE_CONTAINER, 2019);
      for (const from of ["alpha", "gamma"]) {
        matrix[from] = await probeAll(app(from), targets);
      }
      // The probe itself works: beta's app reaches its own database by name.
      const own = await probeAll(app("beta"), [{ what: "own", host: "beta-db", port: 5432 }]);
      assert.equal(own.own, "open");
      const rows = targets.map(
        (t) =>
          `  ${t.what.padEnd(42)} alpha: ${matrix.alpha[t.what].padEnd(12)} gamma: ${matrix.gamma[t.what]}`,
      );
      log(`what a client app reaches with isolation ${isolation}:\n${rows.join("\n")}`);
      const out = path.join(ROOT, "build", "engine");
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, "isolation.json"), `${JSON.stringify(matrices, null, 2)}\n`);

      const reached = (from: string, prefix: string) =>
        Object.entries(matrix[from])
          .filter(([what, r]) => what.startsWith(prefix) && r === "open")
          .map(([what]) => what);
      // Nobody outside its internal network reaches a dedicated database, in either setting.
      assert.deepEqual(reached("alpha", "beta's database"), []);
      assert.deepEqual(reached("gamma", "beta's database"), []);
      assert.deepEqual(reached("alpha", "the edge's admin API"), []);
      assert.deepEqual(reached("gamma", "the edge's admin API"), []);
      if (isolation === "shared-network") {
        // Today's shape: every app sits on agi-network beside the others and the services.
        for (const from of ["alpha", "gamma"]) {
          assert.ok(reached(from, "beta's app by name").length === 1, `${from} -> beta's app`);
          assert.deepEqual(reached(from, "beta's app by its site name"), [], `${from} -> beta`);
          for (const name of Object.keys(STAND_INS)) {
            assert.ok(reached(from, `${name} by name`).length === 1, `${from} -> ${name}`);
          }
        }
      } else {
        // alpha declared nothing: it reaches nothing but the edge.
        assert.deepEqual(
          Object.entries(matrix.alpha).filter(([, r]) => r === "open"),
          [],
          "alpha reached something",
        );
        // gamma uses the services (and so the shared cluster's network), never another site's app.
        assert.deepEqual(reached("gamma", "beta's app"), []);
        for (const name of Object.keys(STAND_INS)) {
          assert.ok(reached("gamma", `${name} by name`).length === 1, `gamma -> ${name}`);
        }
      }
    });

    it("answers beta's Docker API calls about beta's containers only", async () => {
      const call = async (p: string) => {
        const script =
          "fetch(process.env.DOCKER_HOST.replace('tcp:','http:')+process.argv[1])" +
          ".then(async r=>console.log(JSON.stringify({status:r.status,body:await r.text()})))";
        const out = await docker(["exec", harness.dockerName("beta-app"), "node", "-e", script, p]);
        return JSON.parse(out) as { status: number; body: string };
      };
      const list = await call("/v1.41/containers/json?all=1");
      assert.equal(list.status, 200, list.body);
      const names = (JSON.parse(list.body) as { Names: string[] }[])
        .map((c) => c.Names[0].replace(/^\//, ""))
        .sort();
      // Every container of beta, and nothing else, though the engine runs alpha, gamma and the edge.
      assert.deepEqual(
        names.map((n) => n.replace(/-app-[0-9a-f]+$/, "-app-*")),
        ["beta-app-*", "beta-db", "beta-docker"],
      );
      assert.equal((await call("/containers/beta-db/json")).status, 200);
      assert.equal((await call("/containers/beta-db/logs?stdout=1&tail=1")).status, 200);
      for (const p of [
        `/containers/${harness.dockerName("alpha-app")}/json`,
        `/containers/${EDGE_CONTAINER}/logs?stdout=1`,
        "/containers/beta-db/../../containers/agi-edge/json",
        "/info",
        "/networks",
      ]) {
        assert.equal((await call(p)).status, 403, p);
      }
      // Events over a past window: beta's only (the harness created and started all of them).
      const now = Math.floor(Date.now() / 1000);
      const events = await call(`/events?since=${now - 3600}&until=${now}`);
      assert.equal(events.status, 200);
      const actors = events.body
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { Actor: { Attributes: Record<string, string> } }).Actor);
      assert.ok(actors.length > 0, "no events at all");
      for (const a of actors) assert.equal(a.Attributes["agi.site"], "beta", JSON.stringify(a));
    });

    it("serves every site through the edge", async () => {
      for (const name of ["alpha", "beta", "gamma"]) {
        const res = await fetchEdgeReady(httpsPort, ca, `${name}.iso.test`);
        assert.equal(res.status, 200, `${name}: ${res.status} ${res.body}`);
        assert.equal(res.body, `hello from ${name}\n`);
      }
    });

    if (isolation === "per-site") {
      it("puts the edge on each site's network and back off it, without replacing the edge", async () => {
        const edgeBefore = await inspect<{ Id: string }>("container", EDGE_CONTAINER);
        const nets = Object.keys(await addresses(EDGE_CONTAINER)).sort();
        assert.deepEqual(nets, [
          PLATFORM_NETWORK,
          ...["alpha", "beta", "gamma"].map((s) => siteNames(s).edgeNetwork),
        ]);
        // The app joins agi-network only when it uses what is there.
        assert.deepEqual(Object.keys(await addresses(harness.dockerName("alpha-app"))), [
          siteNames("alpha").edgeNetwork,
        ]);
        assert.deepEqual(Object.keys(await addresses(harness.dockerName("gamma-app"))).sort(), [
          PLATFORM_NETWORK,
          siteNames("gamma").edgeNetwork,
        ]);
        fs.rmSync(path.join(project.sitesDir, "gamma.ts"));
        const removed = await harness.removeAbsent(
          await desiredState(project.root, STACK, project.sitesDir),
        );
        assert.ok(removed.includes("gamma-edge-attach-local"), removed.join(", "));
        assert.ok(removed.includes("gamma-edge-network"), removed.join(", "));
        const edgeAfter = await inspect<{ Id: string }>("container", EDGE_CONTAINER);
        assert.equal(edgeAfter.Id, edgeBefore.Id, "the edge was replaced");
        assert.ok(!(siteNames("gamma").edgeNetwork in (await addresses(EDGE_CONTAINER))));
        const gone = await run("docker", ["network", "inspect", siteNames("gamma").edgeNetwork]);
        assert.notEqual(gone.code, 0, "gamma's edge network is still there");
        for (const name of ["alpha", "beta"]) {
          assert.equal((await fetchEdgeReady(httpsPort, ca, `${name}.iso.test`)).status, 200, name);
        }
      });
    }
  });
}
