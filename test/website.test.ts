/**
 * Website and Platform under mocks with generated site files: a dedicated database, the socket
 * proxy, paused and planned sites, a created network, and stable names when a site file goes away.
 * Mocks show what is asked of the engine; they cannot show that PostgreSQL or Docker honour it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveOutput, type MockEngine } from "../scripts/mock-engine";
import { prepareMocks, runUnderMocks } from "../scripts/synth";
import { runProgram } from "../components/program";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { entrypointScript, postgresCommand } from "../core/postgres";
import { BACKUP_JOB_SCRIPTS, backupUnits } from "../core/timers";
import { appContainerName, appVersion } from "../core/names";
import { defaultDrillSchedule } from "../core/site";
import { ROOT, service, settings, website, writeProject } from "./helpers";

const LOCAL = settings({
  hosts: [
    {
      name: "box",
      publicIp: "127.0.0.1",
      docker: { connection: "socket" },
      capacity: { memory: "8Gi", cpus: 4 },
      createNetwork: true,
    },
  ],
  edge: { bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, localCerts: true },
  dns: { provider: "none" },
});

async function run(stackSettings: Record<string, unknown>, sites: Record<string, unknown>[]) {
  const { root, sitesDir } = writeProject("test", stackSettings, sites);
  const { engine, program } = await runUnderMocks(root, "test", sitesDir, "sites");
  const inventory = await resolveOutput(program.inventory);
  const caddy = await resolveOutput(program.caddy);
  await engine.settle();
  return { engine, inventory: inventory.value, caddy: caddy.value };
}

const names = (engine: MockEngine, prefix: string) =>
  engine.resources
    .filter((r) => r.name === prefix || r.name.startsWith(`${prefix}-`))
    .map((r) => r.name)
    .sort();

test("dedicated database: network, volume kept on delete, tuned server, real readiness check", async () => {
  const shop = website("shop", {
    database: { mode: "dedicated", resources: { memory: "512Mi" } },
    dns: { provider: "external" },
    domains: ["shop.localhost"],
  });
  const { engine, inventory } = await run(LOCAL, [shop]);
  assert.deepEqual(names(engine, "shop"), [
    "shop",
    "shop-app",
    "shop-app-gate",
    "shop-app-image",
    "shop-backup-dir",
    "shop-backup-timer",
    "shop-db",
    "shop-db-app-password",
    "shop-db-data",
    "shop-db-image",
    "shop-db-superuser-password",
    "shop-drill-timer",
    "shop-edge-attach-box",
    "shop-edge-network",
    "shop-internal",
    "shop-route-box",
  ]);
  const shopUrn = engine.byName("shop").urn;
  for (const n of names(engine, "shop").filter((x) => x !== "shop")) {
    assert.equal(engine.byName(n).parent, shopUrn, `${n} is a child of the site`);
  }
  const net = engine.byName("shop-internal").inputs;
  assert.deepEqual([net.name, net.internal], ["shop-internal", true]);
  const volume = engine.byName("shop-db-data");
  assert.equal(volume.inputs.name, "shop-pgdata");
  assert.equal(volume.options.retainOnDelete, true);

  const db = engine.byName("shop-db");
  assert.equal(db.inputs.name, "shop-db");
  assert.equal(db.inputs.ports, undefined, "the database is never published");
  assert.deepEqual(db.inputs.networksAdvanced, [{ aliases: ["shop-db"], name: "shop-internal" }]);
  assert.deepEqual(db.inputs.command, postgresCommand("512Mi"));
  assert.ok(db.inputs.command.includes("shared_buffers=64MB"));
  assert.deepEqual((db.inputs.healthcheck as { tests: string[] }).tests, [
    "CMD-SHELL",
    "pg_isready -h 127.0.0.1 -p 5432 -U postgres -d shop && test -f /run/agi/ready",
  ]);
  assert.deepEqual(db.inputs.entrypoints, ["/usr/local/bin/agi-postgres.sh"]);
  const uploads = db.inputs.uploads as { file: string; content: string; executable?: boolean }[];
  assert.deepEqual(
    uploads.map((u) => u.file),
    [
      "/run/agi/superuser-password",
      "/run/agi/app-password",
      "/docker-entrypoint-initdb.d/10-agi-app-role.sh",
      "/usr/local/bin/agi-postgres.sh",
    ],
  );
  assert.equal((uploads[2] as { permissions?: string }).permissions, "0755");
  assert.equal(uploads[3].content, entrypointScript());
  assert.equal(uploads[3].executable, true);
  assert.equal(db.inputs.wait, true);
  assert.equal(db.inputs.memory, 512);
  assert.equal(db.options.deleteBeforeReplace, true, "one data volume: never two servers at once");
  assert.deepEqual(db.inputs.mounts, [
    { source: "shop-pgdata", target: "/var/lib/postgresql/data", type: "volume" },
  ]);
  assert.deepEqual(db.secretPaths, ["uploads[0].content", "uploads[1].content"]);
  assert.ok(
    !JSON.stringify(db.inputs.envs).includes("POSTGRES_PASSWORD="),
    "passwords come from files",
  );

  const app = engine.byName("shop-app");
  assert.ok(app.options.dependsOn.includes(db.urn), "the app starts after the database is healthy");
  // No alias: the gate gives the site's name on shop-edge to the version that passed it.
  assert.deepEqual(app.inputs.networksAdvanced, [
    { name: "shop-edge" },
    { name: "agi-network" },
    { name: "shop-internal" },
  ]);
  assert.deepEqual(app.options.ignoreChanges, ["networksAdvanced"]);
  assert.match(String(app.inputs.name), /^shop-app-[0-9a-f]{8}$/);
  assert.equal(inventory.sites.shop.route?.upstream, "shop:3000");
  assert.deepEqual(inventory.sites.shop.database, {
    name: "shop",
    mode: "dedicated",
    host: "shop-db",
    port: 5432,
  });
  // Reserved: app 256Mi + db 64Mi; limits: app 512Mi + db 512Mi (backups run from a host timer).
  assert.equal(inventory.sites.shop.resources?.committedMemory, "320Mi");
  assert.equal(inventory.sites.shop.resources?.memoryLimit, "1Gi");
  assert.deepEqual(inventory.sites.shop.dns, {
    provider: "external",
    managed: false,
    records: [{ name: "shop.localhost", type: "A", content: "127.0.0.1", proxied: false }],
  });
});

test("dedicated database: a host timer runs the backup, dumped inside the database's own container", async () => {
  const shop = website("shop", { backup: { schedule: "5 3 * * *", retention: { daily: 3 } } });
  const { engine, inventory } = await run(settings(), [shop]);
  assert.equal(engine.resources.filter((r) => r.name === "shop-backup").length, 0, "no container");
  const timer = engine.byName("shop-backup-timer");
  const create = timer.inputs.create as string;
  assert.equal(timer.inputs.update, create);
  const units = backupUnits(
    {
      site: "shop",
      database: "shop",
      mode: "dedicated",
      dir: "/srv/agi/backups/shop",
      retention: { daily: 3, weekly: 4, monthly: 12 },
    },
    {
      target: { kind: "local" },
      scriptDir: "/srv/agi/bin/backup",
      unitDir: "/srv/agi/timers",
      secretDir: "/srv/agi/secrets",
    },
    "5 3 * * *",
  );
  // The unit files travel in the command, exactly as generated, and the timer is enabled.
  assert.ok(create.includes(`\n${units.service}AGI_UNIT_END\n`), create);
  assert.ok(create.includes(`\n${units.timer}AGI_UNIT_END\n`), create);
  assert.match(units.timer, /^OnCalendar=\*-\*-\* 03:05:00 UTC$/m);
  assert.match(
    units.service,
    /^ExecStart=\/bin\/sh \/srv\/agi\/bin\/backup\/site-backup\.sh backup site=shop database=shop dir=\/srv\/agi\/backups\/shop retention=3:4:12 dedicated=shop-db$/m,
  );
  assert.match(create, /systemctl --user enable agi-backup-shop\.timer/);
  assert.match(
    timer.inputs.delete as string,
    /systemctl --user disable --now agi-backup-shop\.timer/,
  );
  // Nothing secret in it: a dedicated database is dumped as postgres over its own socket.
  assert.deepEqual(
    timer.secretPaths.filter((p) => p !== "connection"),
    [],
  );
  const after = timer.options.dependsOn;
  assert.ok(after.includes(engine.byName("shop-db").urn));
  assert.ok(after.includes(engine.byName("shop-backup-dir").urn));
  // Every installed script of the job, as kept in the repository, before the timer.
  for (const f of BACKUP_JOB_SCRIPTS) {
    const install = engine.byName(`vps1-backup-${f.replace(/\.sh$/, "")}`);
    assert.equal(
      install.inputs.stdin,
      readFileSync(path.join(ROOT, "components", "backup", f), "utf8"),
    );
    assert.match(
      install.inputs.create as string,
      new RegExp(`cat > /srv/agi/bin/backup/${f}\\.new`),
    );
    assert.ok(after.includes(install.urn), f);
  }
  assert.equal(
    engine.byName("shop-backup-dir").inputs.create,
    "mkdir -p /srv/agi/backups/shop && chmod 700 /srv/agi/backups/shop",
  );
  assert.deepEqual(inventory.sites.shop.backup, {
    schedule: "5 3 * * *",
    retention: { daily: 3, weekly: 4, monthly: 12 },
    path: "/srv/agi/backups/shop",
    timer: "agi-backup-shop.timer",
    drill: { schedule: defaultDrillSchedule("shop"), timer: "agi-drill-shop.timer" },
  });
  // The drill: its own timer, the same job words, the drill action.
  const drill = engine.byName("shop-drill-timer");
  const drillUnits = /\nExecStart=([^\n]*)\n/.exec(drill.inputs.create as string)![1];
  assert.equal(
    drillUnits,
    "/bin/sh /srv/agi/bin/backup/site-backup.sh drill site=shop database=shop dir=/srv/agi/backups/shop retention=3:4:12 dedicated=shop-db",
  );
  assert.match(drill.inputs.create as string, /systemctl --user enable agi-drill-shop\.timer/);
  assert.match(defaultDrillSchedule("shop"), /^\d{1,2} [45] \* \* [0-6]$/);
});

test("shared database: the job dumps as the app role, its password in a 0600 file from stdin", async () => {
  const { engine } = await run(settings(), [website("shop", { database: { mode: "shared" } })]);
  const timer = engine.byName("shop-backup-timer");
  assert.match(
    timer.inputs.create as string,
    /ExecStart=\/bin\/sh \S+site-backup\.sh backup site=shop database=shop dir=\S+ retention=7:4:12 shared=shared-pg:5432 network=agi-network role=shop_app pgpass=\/srv\/agi\/secrets\/shop\.pgpass\n/,
  );
  const secret = engine.byName("shop-backup-secret");
  assert.equal(
    secret.inputs.create,
    "umask 077 && mkdir -p /srv/agi/secrets && chmod 700 /srv/agi/secrets && cat > /srv/agi/secrets/shop.pgpass.new && mv -f /srv/agi/secrets/shop.pgpass.new /srv/agi/secrets/shop.pgpass",
  );
  assert.equal(secret.inputs.delete, "rm -f /srv/agi/secrets/shop.pgpass");
  assert.ok(secret.secretPaths.includes("stdin"), secret.secretPaths.join(" "));
  const password = engine.byName("shop-db-role").clearInputs.password as string;
  assert.equal(secret.clearInputs.stdin, `*:*:*:*:${password}\n`);
  assert.ok(password.length >= 32);
  assert.ok(!(timer.inputs.create as string).includes(password), "the unit holds no password");
  assert.ok(timer.options.dependsOn.includes(secret.urn));
});

test("local platform: created network, socket engine, loopback high ports, no DNS resources", async () => {
  const { engine, caddy } = await run(LOCAL, [
    website("shop", { dns: { provider: "external" }, domains: ["shop.localhost"] }),
  ]);
  assert.equal(engine.byName("box-docker").inputs.host, "unix:///var/run/docker.sock");
  const network = engine.byName("box-network");
  assert.equal(network.inputs.name, "agi-network");
  assert.deepEqual(engine.invokes, [], "nothing is looked up on a fresh local engine");
  assert.deepEqual(engine.byName("box-edge").inputs.ports, [
    { external: 8080, internal: 8080, ip: "127.0.0.1", protocol: "tcp" },
    { external: 8443, internal: 8443, ip: "127.0.0.1", protocol: "tcp" },
    { external: 8443, internal: 8443, ip: "127.0.0.1", protocol: "udp" },
  ]);
  assert.equal(
    engine.resources.filter(
      (r) => r.type.startsWith("cloudflare:") || r.type.includes("providers:cloudflare"),
    ).length,
    0,
  );
  assert.match(caddy.Caddyfile, /\tlocal_certs\n/);
  assert.match(caddy.Caddyfile, /\thttp_port 8080\n\thttps_port 8443\n/);
});

test("paused: data, passwords and records kept; no container runs; maintenance page served", async () => {
  const paused = website("shop", { status: "paused" });
  const { engine, caddy, inventory } = await run(settings(), [paused]);
  assert.deepEqual(names(engine, "shop"), [
    "shop",
    "shop-db-app-password",
    "shop-db-data",
    "shop-db-superuser-password",
    "shop-dns-shop",
    "shop-dns-www-shop",
    "shop-internal",
    "shop-route-vps1",
  ]);
  assert.equal(engine.byName("shop-db-data").options.retainOnDelete, true);
  assert.match(
    caddy["sites.d/shop.caddy"],
    /respond `<!doctype html>.*down for maintenance.*` 503/,
  );
  assert.doesNotMatch(caddy["sites.d/shop.caddy"], /reverse_proxy/);
  assert.deepEqual(inventory.sites.shop.containers, []);
  assert.equal(inventory.hosts.vps1.capacity.memory.committed, "32Mi", "only the edge");
});

test("planned: nothing at all, but the name, domains and database are reserved in the inventory", async () => {
  const { engine, caddy, inventory } = await run(settings(), [
    website("shop", { status: "planned" }),
  ]);
  assert.deepEqual(names(engine, "shop"), []);
  assert.equal(caddy["sites.d/shop.caddy"], undefined);
  assert.equal(
    engine.resources.filter((r) => r.type === "agi:dns:Zone").length,
    0,
    "no zone to manage yet",
  );
  assert.equal(inventory.sites.shop.status, "planned");
  assert.deepEqual(inventory.sites.shop.domains, ["shop.example.com", "www.shop.example.com"]);
});

test("docker read access: a socket proxy on the internal network, DOCKER_HOST for the app", async () => {
  const site = website("ops", {
    database: { mode: "none" },
    app: { image: "ghcr.io/acme/ops:1", port: 3000, dockerReadAccess: true },
  });
  const { engine, inventory } = await run(settings(), [site]);
  assert.deepEqual(names(engine, "ops"), [
    "ops",
    "ops-app",
    "ops-app-gate",
    "ops-app-image",
    "ops-dns-ops",
    "ops-dns-www-ops",
    "ops-docker-proxy",
    "ops-docker-proxy-image",
    "ops-edge-attach-vps1",
    "ops-edge-network",
    "ops-internal",
    "ops-route-vps1",
  ]);
  const app = engine.byName("ops-app");
  assert.ok((app.inputs.envs as string[]).includes("DOCKER_HOST=tcp://ops-docker:2375"));
  assert.equal(app.inputs.mounts, undefined, "the app never mounts the socket");
  assert.equal(inventory.sites.ops.resources?.committedMemory, "272Mi");
  assert.equal(inventory.sites.ops.resources?.memoryLimit, "544Mi");
});

test("dns external: no records created, records listed as unmanaged", async () => {
  const site = website("shop", { dns: { provider: "external" } });
  const { engine, inventory } = await run(settings(), [site]);
  assert.equal(engine.resources.filter((r) => r.type.startsWith("cloudflare:index/")).length, 0);
  assert.equal(inventory.sites.shop.dns.managed, false);
  assert.equal(inventory.sites.shop.dns.records.length, 2);
});

test("removing one site file leaves every other site's resource names and URNs unchanged", async () => {
  const sites = [
    website("aaa"),
    website("bbb", { database: { mode: "shared" } }),
    website("ccc"),
    service("tool"),
  ];
  const before = await run(settings(), sites);
  const after = await run(
    settings(),
    sites.filter((s) => s.name !== "bbb"),
  );
  const urns = (e: MockEngine) => e.resources.map((r) => r.urn).sort();
  const kept = urns(before.engine).filter((u) => !/::bbb(-|$)/.test(u));
  assert.deepEqual(urns(after.engine), kept);
  assert.ok(
    urns(before.engine).some((u) => u.endsWith("::bbb-app")),
    "the removed site had resources",
  );
  // Inputs of the remaining sites are identical too (no renumbering, no re-derived names).
  for (const r of after.engine.resources) {
    const prev = before.engine.resources.find((p) => p.urn === r.urn);
    assert.ok(prev, r.urn);
    if (r.type === "docker:index/container:Container" && r.name === "vps1-edge") continue;
    assert.deepEqual(r.inputs, prev.inputs, r.urn);
  }
});

test("bad site files stop the program before any resource is registered", async () => {
  const { root, sitesDir } = writeProject("test", settings(), [
    website("shop", { app: { image: "x", port: 1 } }),
  ]);
  await assert.rejects(runUnderMocks(root, "test", sitesDir, "sites"), {
    message:
      'sites/shop.ts: app.image: has no tag; pin a version tag (name:1.4.2) or a digest (name@sha256:...), got "x"',
  });
});

test("app versions: the same inputs give the same container name, any changed input a new one", async () => {
  const nameOf = async (extra: Record<string, unknown>) => {
    const { engine } = await run(settings(), [
      website("shop", { database: { mode: "none" }, ...extra }),
    ]);
    const app = engine.byName("shop-app");
    const gate = engine.byName("shop-app-gate");
    assert.deepEqual(gate.inputs.triggers, [app.inputs.name], "the gate follows the version");
    return String(app.inputs.name);
  };
  const base = await nameOf({});
  assert.match(base, /^shop-app-[0-9a-f]{8}$/);
  assert.equal(await nameOf({}), base, "deterministic");
  const changed = [
    await nameOf({ app: { image: "ghcr.io/acme/shop:1.2.4", port: 3000 } }),
    await nameOf({ app: { image: "ghcr.io/acme/shop:1.2.3", port: 3000, env: { A: "1" } } }),
    await nameOf({
      app: { image: "ghcr.io/acme/shop:1.2.3", port: 3000, resources: { memory: "384Mi" } },
    }),
    await nameOf({
      app: { image: "ghcr.io/acme/shop:1.2.3", port: 3000, healthcheck: { path: "/up" } },
    }),
  ];
  assert.equal(new Set([base, ...changed]).size, 5, [base, ...changed].join(" "));
});

test("app versions: a version hash covers secret values and shows none of them", () => {
  const a = appVersion({ envs: ["DATABASE_URL=postgresql://u:first@db/x"] });
  const b = appVersion({ envs: ["DATABASE_URL=postgresql://u:second@db/x"] });
  assert.notEqual(a, b);
  assert.match(a, /^[0-9a-f]{8}$/);
  // Key order does not matter, values do.
  assert.equal(
    appVersion({ x: 1, y: [1, { b: 2, a: 1 }] }),
    appVersion({ y: [1, { a: 1, b: 2 }], x: 1 }),
  );
  assert.equal(appContainerName("shop", a), `shop-app-${a}`);
  assert.throws(() => appContainerName("shop", "0123ABCD"), /not an app container name/);
  assert.throws(() => appContainerName("Shop;x", a), /not an app container name/);
});

test("local stack: routes run locally; the pinned host key reaches the SSH connection elsewhere", async () => {
  const { engine } = await run(LOCAL, [
    website("shop", { dns: { provider: "external" }, domains: ["shop.localhost"] }),
  ]);
  const route = engine.byName("shop-route-box");
  assert.equal(route.type, "command:local:Command");
  assert.equal(
    route.inputs.create,
    "sh /srv/agi/bin/edge-route.sh apply shop /srv/agi/edge/sites.d /etc/caddy/Caddyfile localhost:2019 docker exec agi-edge",
  );

  const hostKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
  const pinned = settings();
  const host = (pinned.hosts as Record<string, unknown>[])[0];
  host.docker = { connection: "ssh", user: "deploy", address: "203.0.113.10", port: 2222, hostKey };
  const second = await run(pinned, [website("shop")]);
  assert.deepEqual(second.engine.byName("shop-route-vps1").clearInputs.connection, {
    dialErrorLimit: 10,
    host: "203.0.113.10",
    hostKey,
    perDialTimeout: 15,
    port: 2222,
    user: "deploy",
  });
  assert.ok(
    (JSON.parse(second.engine.byName("vps1-docker").inputs.sshOpts as string) as string[]).includes(
      `KnownHostsCommand=/bin/echo %H ${hostKey}`,
    ),
  );
});

test("an update (not a preview) refuses to run against an SSH host without a pinned key", async () => {
  const { root, sitesDir } = writeProject("test", settings(), [website("shop")]);
  await assert.rejects(runUnderMocks(root, "test", sitesDir, "sites", false), {
    message:
      "Pulumi.test.yaml: agi-platform:settings.hosts.0.docker.hostKey: is required to deploy over SSH: pin the host's public key: the first two fields of /etc/ssh/ssh_host_ed25519_key.pub on the host, its fingerprint (ssh-keygen -lf) compared out of band",
  });
});

test("adopt: named resources are taken over with their ID; a name that matches nothing stops the run", async () => {
  const sites = [website("shop", { database: { mode: "shared" } })];
  const adopt = { "shop-database": "shop", "shop-dns-shop": "zone-id/record-id" };
  const { engine } = await run(settings({ adopt }), sites);
  const imported = engine.resources
    .filter((r) => r.options.import !== undefined)
    .map((r) => [r.type, r.name, r.options.import]);
  assert.deepEqual(imported, [
    ["postgresql:index/database:Database", "shop-database", "shop"],
    ["cloudflare:index/dnsRecord:DnsRecord", "shop-dns-shop", "zone-id/record-id"],
  ]);
  // The next run without it imports nothing (the transformation belongs to that run's stack).
  const again = await run(settings(), sites);
  assert.deepEqual(
    again.engine.resources.filter((r) => r.options.import !== undefined),
    [],
  );
  const { root, sitesDir } = writeProject(
    "test",
    settings({ adopt: { "shop-databse": "shop" } }),
    sites,
  );
  const { engine: failed } = await prepareMocks(root, "test", sitesDir, "sites");
  assert.throws(() => runProgram({ sitesDir, sitesShownAs: "sites" }), {
    message:
      'Pulumi.test.yaml: agi-platform:settings.adopt.shop-databse: no resource of the program is named "shop-databse" (names are in npm run synth\'s manifest.json)',
  });
  // What the failed run had started registering ends here, not in the next test.
  await failed.settle();
});

test("capabilities: every container drops what no platform container needs; apps on high ports drop binding low ones", async () => {
  const shop = website("shop", {
    database: { mode: "dedicated" },
    dns: { provider: "external" },
    domains: ["shop.localhost"],
    app: { image: "ghcr.io/acme/shop:1.2.3", port: 3000, dockerReadAccess: true },
  });
  const web = website("web", {
    database: { mode: "none" },
    dns: { provider: "external" },
    domains: ["web.localhost"],
    app: { image: "ghcr.io/acme/web:1.0.0", port: 80 },
  });
  const { engine } = await run(LOCAL, [shop, web]);
  const base = ["AUDIT_WRITE", "MKNOD", "NET_RAW", "SETFCAP", "SETPCAP", "SYS_CHROOT"];
  const drops = (name: string) =>
    (engine.byName(name).inputs.capabilities as { drops: string[] }).drops;
  assert.deepEqual(drops("shop-app"), [...base, "NET_BIND_SERVICE"].sort());
  assert.deepEqual(drops("web-app"), base);
  for (const name of ["shop-db", "shop-docker-proxy", "box-edge"]) {
    assert.deepEqual(drops(name), base, name);
  }
});
