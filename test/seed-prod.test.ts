/**
 * The real program on the repository's own site files and `prod` stack, under the SDK's mocks.
 * What it proves: which resources the program asks the engine for, with which inputs, parents and
 * options, and that secrets travel as secrets. What it cannot prove: how Docker, Cloudflare or
 * PostgreSQL carry those requests out (the integration tests and the real engine do that).
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { resolveOutput, type MockEngine, type RecordedResource } from "../scripts/mock-engine";
import { placeholderFor, runUnderMocks } from "../scripts/synth";
import type { ProgramOutputs } from "../components/program";
import type { Inventory } from "../core/inventory";
import { ROOT } from "./helpers";
import { socketProxyConfig } from "../core/socket-proxy";
import { appVersion } from "../core/names";

let engine: MockEngine;
let program: ProgramOutputs;
let secretKeys: string[];
let inventory: { value: Inventory; secret: boolean };
let caddy: { value: Record<string, string>; secret: boolean };

before(async () => {
  ({ engine, program, secretKeys } = await runUnderMocks(
    ROOT,
    "prod",
    path.join(ROOT, "sites"),
    "sites",
  ));
  inventory = await resolveOutput(program.inventory);
  caddy = await resolveOutput(program.caddy);
  await engine.settle();
});

const URN = "urn:pulumi:prod::agi-platform::";
const short = (t: string) =>
  t
    .replace(/^(docker|cloudflare|postgresql|random):index\/\w+:/, "$1:")
    .replace("pulumi:providers:", "provider:");

/** "type name" of every child of a component, sorted. */
function children(type: string, name: string): string[] {
  return engine
    .childrenOf(`${URN}${type}::${name}`)
    .map((r) => `${short(r.type)} ${r.name}`)
    .sort();
}

function res(name: string): RecordedResource {
  return engine.byName(name);
}

test("top level: one Platform, one Zone per managed zone, the provider, one component per non-planned site", () => {
  const top = engine.resources
    .filter((r) => !r.parent)
    .map((r) => `${r.type} ${r.name}`)
    .sort();
  assert.deepEqual(top, [
    "agi:dns:Zone zone-agistaffers-com",
    "agi:dns:Zone zone-stepperslife-com",
    "agi:host:Platform vps1",
    "agi:web:Service flowise",
    "agi:web:Service langfuse",
    "agi:web:Service n8n",
    "agi:web:Service neo4j",
    "agi:web:Service ollama",
    "agi:web:Service open-webui",
    "agi:web:Service portainer",
    "agi:web:Service searxng",
    "agi:web:Service supabase-db",
    "agi:web:Website admin-dashboard",
    "agi:web:Website stepperslife",
    "pulumi:providers:cloudflare cloudflare",
  ]);
});

test("planned sites create nothing", () => {
  for (const site of ["gangrunprinting", "uvcoatedclubflyers", "vaina", "elarmario"]) {
    assert.deepEqual(
      engine.resources.filter((r) => r.name.startsWith(site)),
      [],
      site,
    );
    assert.equal(inventory.value.sites[site].status, "planned");
    assert.deepEqual(inventory.value.sites[site].containers, []);
  }
});

test("Platform vps1: ssh engine with strict host keys, looked-up network, the edge", () => {
  assert.deepEqual(children("agi:host:Platform", "vps1"), [
    "command:remote:Command vps1-agi-ops-timer",
    "command:remote:Command vps1-agi-prune-timer",
    "command:remote:Command vps1-app-gate-script",
    "command:remote:Command vps1-backup-offsite",
    "command:remote:Command vps1-backup-pg-backup",
    "command:remote:Command vps1-backup-pg-lib",
    "command:remote:Command vps1-backup-pg-restore",
    "command:remote:Command vps1-backup-retention",
    "command:remote:Command vps1-backup-site-backup",
    "command:remote:Command vps1-backup-verify-dump",
    "command:remote:Command vps1-edge-route-script",
    "command:remote:Command vps1-edge-sites-dir",
    "command:remote:Command vps1-ops-ops-tick",
    "command:remote:Command vps1-ops-prune-images",
    "docker:Container vps1-edge",
    "docker:RemoteImage vps1-edge-image",
    "docker:Volume vps1-edge-config",
    "docker:Volume vps1-edge-data",
    "provider:docker vps1-docker",
    "provider:postgresql vps1-shared-db",
  ]);
  const provider = res("vps1-docker").inputs;
  assert.equal(provider.host, "ssh://deploy@148.230.93.174:22");
  const sshOpts = JSON.parse(provider.sshOpts as string) as string[];
  assert.ok(sshOpts.includes("StrictHostKeyChecking=yes"), String(sshOpts));
  assert.ok(!sshOpts.some((o) => /StrictHostKeyChecking=no/i.test(o)));
  assert.deepEqual(
    engine.invokes.filter((i) => i.token.startsWith("docker:")).map((i) => [i.token, i.args.name]),
    [["docker:index/getNetwork:getNetwork", "agi-network"]],
  );
  assert.equal(
    engine.resources.filter(
      (r) => r.type === "docker:index/network:Network" && r.name === "vps1-network",
    ).length,
    0,
  );
});

test("the edge is the only container with host ports, and publishes exactly 80 and 443", () => {
  const containers = engine.resources.filter((r) => r.type === "docker:index/container:Container");
  const withPorts = containers.filter(
    (c) => Array.isArray(c.inputs.ports) && c.inputs.ports.length,
  );
  assert.deepEqual(
    withPorts.map((c) => c.name),
    ["vps1-edge"],
  );
  const edge = res("vps1-edge");
  assert.deepEqual(edge.inputs.ports, [
    { external: 80, internal: 80, ip: "0.0.0.0", protocol: "tcp" },
    { external: 443, internal: 443, ip: "0.0.0.0", protocol: "tcp" },
    { external: 443, internal: 443, ip: "0.0.0.0", protocol: "udp" },
  ]);
  assert.equal(edge.inputs.name, "agi-edge");
  assert.equal(res("vps1-edge-image").inputs.name, "caddy:2.6.2-alpine");
  assert.notEqual(edge.inputs.image, "caddy:2.6.2-alpine", "the edge runs the pulled image's id");
  assert.ok(
    edge.options.dependsOn.includes(res("vps1-edge-image").urn),
    "edge waits for its pinned image",
  );
  assert.deepEqual(edge.inputs.mounts, [
    { readOnly: true, source: "/srv/agi/edge/sites.d", target: "/etc/caddy/sites.d", type: "bind" },
    { source: "agi-edge-data", target: "/data", type: "volume" },
    { source: "agi-edge-config", target: "/config", type: "volume" },
  ]);
  assert.equal(edge.options.deleteBeforeReplace, true);
  assert.equal(res("vps1-edge-data").options.retainOnDelete, true);
  assert.equal(res("vps1-edge-config").options.retainOnDelete, true);
  const upload = (edge.inputs.uploads as { file: string; content: string }[])[0];
  assert.equal(upload.file, "/etc/caddy/Caddyfile");
  assert.equal(upload.content, caddy.value.Caddyfile);
});

test("no container but the socket proxy mounts the Docker socket, and it mounts it read-only", () => {
  const containers = engine.resources.filter((r) => r.type === "docker:index/container:Container");
  const mountsSocket = containers.filter((c) =>
    JSON.stringify([c.inputs.mounts ?? [], c.inputs.volumes ?? []]).includes("docker.sock"),
  );
  assert.deepEqual(
    mountsSocket.map((c) => c.name),
    ["admin-dashboard-docker-proxy"],
  );
  const proxy = mountsSocket[0];
  assert.deepEqual(proxy.inputs.mounts, [
    {
      readOnly: true,
      source: "/var/run/docker.sock",
      target: "/var/run/docker.sock",
      type: "bind",
    },
  ]);
  const cfg = (proxy.inputs.uploads as { file: string; content: string }[])[0];
  assert.equal(cfg.file, "/usr/local/etc/haproxy/haproxy.cfg");
  assert.equal(
    cfg.content,
    socketProxyConfig({
      site: "admin-dashboard",
      socket: "/var/run/docker.sock",
      port: 2375,
    }),
  );
  assert.equal(res("admin-dashboard-docker-proxy-image").inputs.name, "haproxy:2.6.12-alpine");
  assert.deepEqual(proxy.inputs.networksAdvanced, [
    { aliases: ["admin-dashboard-docker"], name: "admin-dashboard-internal" },
  ]);
});

test("stepperslife (shared database): children, role, database and grants", () => {
  assert.deepEqual(children("agi:web:Website", "stepperslife"), [
    "cloudflare:DnsRecord stepperslife-dns-apex",
    "cloudflare:DnsRecord stepperslife-dns-www",
    "command:remote:Command stepperslife-app-gate",
    "command:remote:Command stepperslife-backup-dir",
    "command:remote:Command stepperslife-backup-secret",
    "command:remote:Command stepperslife-backup-timer",
    "command:remote:Command stepperslife-drill-timer",
    "command:remote:Command stepperslife-edge-attach-vps1",
    "command:remote:Command stepperslife-route-vps1",
    "docker:Container stepperslife-app",
    "docker:Network stepperslife-edge-network",
    "docker:RemoteImage stepperslife-app-image",
    "postgresql:Database stepperslife-database",
    "postgresql:Grant stepperslife-db-grant-connect",
    "postgresql:Grant stepperslife-db-grant-schema",
    "postgresql:Grant stepperslife-db-revoke-public",
    "postgresql:Role stepperslife-db-role",
    "random:RandomPassword stepperslife-db-app-password",
  ]);
  const role = res("stepperslife-db-role");
  assert.equal(role.inputs.name, "stepperslife_app");
  assert.equal(role.inputs.superuser, false);
  assert.equal(role.inputs.login, true);
  assert.deepEqual(
    role.inputs.roles,
    ["stepperslife_owner"],
    "member of the adopted tables' owner",
  );
  assert.deepEqual(role.secretPaths, ["password"]);
  assert.equal(res("stepperslife-database").inputs.name, "stepperslife");
  assert.deepEqual(
    [
      "stepperslife-db-revoke-public",
      "stepperslife-db-grant-connect",
      "stepperslife-db-grant-schema",
    ].map((n) => {
      const i = res(n).inputs;
      return [i.role, i.objectType, i.schema ?? null, i.privileges];
    }),
    [
      ["public", "database", null, []],
      ["stepperslife_app", "database", null, ["CONNECT", "TEMPORARY"]],
      ["stepperslife_app", "schema", "public", ["CREATE", "USAGE"]],
    ],
  );
  const pgProvider = res("vps1-shared-db").urn;
  for (const n of [
    "stepperslife-db-role",
    "stepperslife-database",
    "stepperslife-db-grant-connect",
  ]) {
    assert.ok(
      res(n).options.provider?.startsWith(`${pgProvider}::`),
      `${n} uses the shared cluster's provider`,
    );
  }
});

test("app containers: versioned name, no alias, no ports, healthcheck, no wait (the gate waits), limits, restart, logs, retained, create-before-delete", () => {
  for (const [site, path] of [
    ["stepperslife", "/"],
    ["admin-dashboard", "/api/status"],
  ] as const) {
    const app = res(`${site}-app`);
    const i = app.inputs;
    // The name is the site, "-app-" and the first 8 hex of a sha256 over every other input.
    const { name, ...rest } = app.clearInputs;
    assert.equal(name, `${site}-app-${appVersion(rest)}`);
    assert.equal(i.name, name, "the name is not secret, though it covers secret env values");
    assert.ok(!app.secretPaths.includes("name"));
    assert.equal(i.ports, undefined);
    // Every version starts on its site's edge network without an alias; the gate gives it one.
    assert.deepEqual((i.networksAdvanced as { name: string; aliases?: string[] }[]).slice(0, 2), [
      { name: `${site}-edge` },
      { name: "agi-network" },
    ]);
    assert.deepEqual(app.options.ignoreChanges, ["networksAdvanced"]);
    assert.deepEqual(i.healthcheck, {
      interval: "10s",
      retries: 3,
      startPeriod: "20s",
      tests: [
        "CMD",
        "node",
        "-e",
        `fetch("http://127.0.0.1:3000${path}").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
      ],
      timeout: "5s",
    });
    assert.equal(i.wait, false);
    assert.equal(i.memory, 512);
    assert.equal(i.memoryReservation, 256);
    assert.equal(i.cpus, "0.5");
    assert.equal(i.restart, "unless-stopped");
    assert.equal(i.logDriver, "json-file");
    assert.deepEqual(i.logOpts, { "max-file": "3", "max-size": "10m" });
    assert.equal(i.stopTimeout, 30);
    assert.equal(i.destroyGraceSeconds, 30);
    assert.equal(app.options.deleteBeforeReplace, false);
    assert.equal(app.options.retainOnDelete, true, "only the gate removes an app container");
    const image = res(`${site}-app-image`);
    assert.match(image.inputs.name as string, new RegExp(`^ghcr\\.io/agistaffers/${site}:`));
    assert.equal(image.inputs.keepLocally, true);
    assert.notEqual(
      i.image,
      image.inputs.name,
      "the container runs the pulled image's id, not the tag",
    );
    assert.ok(app.options.dependsOn.includes(image.urn));
    assert.ok(app.options.provider?.startsWith(`${res("vps1-docker").urn}::`));
  }
});

test("secrets: DATABASE_URL and secretEnv travel as secrets; plain env stays readable", () => {
  const app = res("admin-dashboard-app");
  const envs = app.inputs.envs as string[];
  assert.deepEqual(
    envs.filter((e) => e !== "[secret]"),
    ["DOCKER_HOST=tcp://admin-dashboard-docker:2375", "NODE_ENV=production", "PORT=3000"],
  );
  // ADMIN_EMAIL, DATABASE_URL, JWT_SECRET: sorted by name, each a secret element.
  assert.deepEqual(app.secretPaths, ["envs[0]", "envs[1]", "envs[3]"]);
  assert.deepEqual(res("cloudflare").secretPaths, ["apiToken"]);
  assert.deepEqual(res("vps1-shared-db").secretPaths, ["password"]);
  assert.deepEqual(secretKeys, [
    "agi-platform:cloudflareApiToken",
    "agi-platform:secrets",
    "agi-platform:sharedDbPassword",
  ]);
  // Each secretEnv value comes from the site's own namespace, secrets.<site>.<key>.
  const clear = (app.clearInputs.envs as string[]).filter((e) =>
    /^(ADMIN_EMAIL|JWT_SECRET)=/.test(e),
  );
  assert.deepEqual(clear, [
    `ADMIN_EMAIL=${placeholderFor("agi-platform:secrets.admin-dashboard.admin-email")}`,
    `JWT_SECRET=${placeholderFor("agi-platform:secrets.admin-dashboard.jwt-secret")}`,
  ]);
});

test("no secret value appears in any recorded input, in the inventory or in the Caddy files", () => {
  const recorded = engine.resources.map((r) => ({ ...r, clearInputs: undefined }));
  const everything = JSON.stringify([recorded, inventory.value, caddy.value]);
  for (const key of secretKeys) assert.ok(!everything.includes(placeholderFor(key)), key);
  assert.ok(!everything.includes("mock-password-"));
  assert.equal(inventory.secret, false, "the inventory output is plain");
  assert.equal(caddy.secret, false);
});

test("DNS: one proxied A record per domain in its zone; SSL strict per managed zone", () => {
  const records = engine.resources
    .filter((r) => r.type === "cloudflare:index/dnsRecord:DnsRecord")
    .map((r) => [
      r.name,
      r.inputs.name,
      r.inputs.type,
      r.inputs.content,
      r.inputs.proxied,
      r.inputs.ttl,
    ])
    .sort();
  assert.deepEqual(records, [
    ["admin-dashboard-dns-admin", "admin.agistaffers.com", "A", "148.230.93.174", true, 1],
    ["flowise-dns-flowise", "flowise.agistaffers.com", "A", "148.230.93.174", true, 1],
    ["langfuse-dns-langfuse", "langfuse.agistaffers.com", "A", "148.230.93.174", true, 1],
    ["n8n-dns-n8n", "n8n.agistaffers.com", "A", "148.230.93.174", true, 1],
    ["neo4j-dns-neo4j", "neo4j.agistaffers.com", "A", "148.230.93.174", true, 1],
    ["open-webui-dns-chat", "chat.agistaffers.com", "A", "148.230.93.174", true, 1],
    ["portainer-dns-portainer", "portainer.agistaffers.com", "A", "148.230.93.174", true, 1],
    ["searxng-dns-searxng", "searxng.agistaffers.com", "A", "148.230.93.174", true, 1],
    ["stepperslife-dns-apex", "stepperslife.com", "A", "148.230.93.174", true, 1],
    ["stepperslife-dns-www", "www.stepperslife.com", "A", "148.230.93.174", true, 1],
  ]);
  // Each record carries the id its zone's lookup returned.
  const zoneOf = (zone: string) =>
    engine.invokes.find((i) => (i.args.filter as { name?: string })?.name === zone);
  assert.ok(zoneOf("agistaffers.com") && zoneOf("stepperslife.com"));
  assert.equal(
    res("stepperslife-dns-www").inputs.zoneId,
    res("stepperslife-dns-apex").inputs.zoneId,
  );
  assert.notEqual(res("stepperslife-dns-www").inputs.zoneId, res("n8n-dns-n8n").inputs.zoneId);
  const ssl = engine.resources
    .filter((r) => r.type === "cloudflare:index/zoneSetting:ZoneSetting")
    .map((r) => [r.name, r.inputs.settingId, r.inputs.value]);
  assert.deepEqual(ssl.sort(), [
    ["zone-agistaffers-com-ssl", "ssl", "strict"],
    ["zone-stepperslife-com-ssl", "ssl", "strict"],
  ]);
});

test("routed services: DNS only; no container, no image", () => {
  assert.deepEqual(children("agi:web:Service", "n8n"), [
    "cloudflare:DnsRecord n8n-dns-n8n",
    "command:remote:Command n8n-route-vps1",
  ]);
  assert.deepEqual(children("agi:web:Service", "ollama"), []);
  assert.deepEqual(children("agi:web:Service", "supabase-db"), []);
  assert.equal(caddy.value["sites.d/ollama.caddy"], undefined);
  assert.equal(caddy.value["sites.d/supabase-db.caddy"], undefined);
  assert.match(caddy.value["sites.d/n8n.caddy"], /reverse_proxy n8n:5678 \{/);
});

test("inventory: sites, database, backup, DNS, limits and host capacity", () => {
  const inv = inventory.value;
  assert.equal(inv.stack, "prod");
  assert.deepEqual(Object.keys(inv.sites).length, 15);
  const s = inv.sites.stepperslife;
  assert.deepEqual(
    {
      ...s,
      containers: s.containers.map((c) => ({
        ...c,
        name: c.name.startsWith("stepperslife-app-") ? "<versioned name>" : c.name,
      })),
    },
    {
      kind: "website",
      status: "active",
      host: "vps1",
      domains: ["stepperslife.com", "www.stepperslife.com"],
      url: "https://stepperslife.com",
      repo: "agistaffers/stepperslife",
      route: {
        fragment: "sites.d/stepperslife.caddy",
        upstream: "stepperslife:3000",
      },
      image: "ghcr.io/agistaffers/stepperslife:1.0.0",
      containers: [
        { role: "app", name: "<versioned name>", alias: "stepperslife", port: 3000, managed: true },
      ],
      database: { name: "stepperslife", mode: "shared", host: "supabase-db", port: 5432 },
      backup: {
        schedule: "13 2 * * *",
        retention: { daily: 7, weekly: 4, monthly: 12 },
        path: "/srv/agi/backups/stepperslife",
        timer: "agi-backup-stepperslife.timer",
        drill: { schedule: "13 4 * * 6", timer: "agi-drill-stepperslife.timer" },
      },
      dns: {
        provider: "cloudflare",
        zone: "stepperslife.com",
        managed: true,
        records: [
          { name: "stepperslife.com", type: "A", content: "148.230.93.174", proxied: true },
          { name: "www.stepperslife.com", type: "A", content: "148.230.93.174", proxied: true },
        ],
      },
      resources: {
        app: { memory: "512Mi", memoryReservation: "256Mi", cpus: 0.5 },
        committedMemory: "256Mi",
        memoryLimit: "512Mi",
      },
    },
  );
  // The app container's name is the versioned name the program gave the container resource.
  const appName = s.containers[0].name;
  assert.equal(appName, res("stepperslife-app").inputs.name);
  assert.match(appName, /^stepperslife-app-[0-9a-f]{8}$/);
  assert.ok(inv.hosts.vps1.names.includes(appName));
  assert.equal(inv.sites.gangrunprinting.dns.managed, false, "planned: records not created yet");
  assert.deepEqual(inv.sites.gangrunprinting.database, {
    name: "gangrunprinting",
    mode: "dedicated",
    host: "gangrunprinting-db",
    port: 5432,
  });
  assert.deepEqual(inv.hosts.vps1.capacity, {
    memory: {
      committed: "560Mi",
      available: "1488Mi",
      budget: "2Gi",
      limits: "1312Mi",
      limitCeiling: "4403Mi",
    },
    cpus: { committed: 1, budget: 2 },
  });
  assert.deepEqual(inv.hosts.vps1.ports, ["0.0.0.0:80/tcp", "0.0.0.0:443/tcp", "0.0.0.0:443/udp"]);
  assert.ok(
    inv.hosts.vps1.names.includes("agi-edge") && inv.hosts.vps1.names.includes("supabase-db"),
  );
});

test("app gates: one per app version, waits for healthy on create, drains and removes on delete", () => {
  const app = res("stepperslife-app");
  const name = String(app.inputs.name);
  const gate = res("stepperslife-app-gate");
  assert.equal(gate.type, "command:remote:Command");
  assert.equal(gate.parent, res("stepperslife").urn);
  // Deadline: what a deploy waits for any container (WAIT_TIMEOUT_SECONDS).
  assert.equal(gate.inputs.create, `sh /srv/agi/bin/app-gate.sh wait stepperslife ${name} 180 30`);
  // Delete: stop with the site's grace period (30s), so in-flight requests finish.
  assert.equal(gate.inputs.delete, `sh /srv/agi/bin/app-gate.sh remove stepperslife ${name} 30`);
  assert.equal(gate.inputs.update, undefined);
  // A new version is a new gate: created before the old one's delete removes the old container.
  assert.deepEqual(gate.inputs.triggers, [name]);
  assert.deepEqual(gate.options.replaceOnChanges, ["triggers[*]"]);
  for (const dep of ["stepperslife-app", "vps1-app-gate-script"]) {
    assert.ok(gate.options.dependsOn.includes(res(dep).urn), dep);
  }
  const script = res("vps1-app-gate-script");
  assert.equal(
    script.inputs.stdin,
    readFileSync(path.join(ROOT, "components", "app-gate.sh"), "utf8"),
  );
  assert.match(String(script.inputs.create), /cat > \/srv\/agi\/bin\/app-gate\.sh\.new && /);
});

test("routes: one command per routed site, over SSH, fragment on stdin, after the edge and the app", () => {
  const routes = engine.resources
    .filter((r) => r.name.endsWith("-route-vps1"))
    .map((r) => r.name)
    .sort();
  assert.deepEqual(routes, [
    "admin-dashboard-route-vps1",
    "flowise-route-vps1",
    "langfuse-route-vps1",
    "n8n-route-vps1",
    "neo4j-route-vps1",
    "open-webui-route-vps1",
    "portainer-route-vps1",
    "searxng-route-vps1",
    "stepperslife-route-vps1",
  ]);
  const route = res("stepperslife-route-vps1");
  assert.equal(route.type, "command:remote:Command");
  assert.equal(route.parent, res("stepperslife").urn);
  const reload = "/etc/caddy/Caddyfile localhost:2019 docker exec agi-edge";
  assert.equal(
    route.inputs.create,
    `sh /srv/agi/bin/edge-route.sh apply stepperslife /srv/agi/edge/sites.d ${reload}`,
  );
  assert.equal(route.inputs.update, route.inputs.create);
  const sha = createHash("sha256").update(caddy.value["sites.d/stepperslife.caddy"]).digest("hex");
  assert.equal(
    route.inputs.delete,
    `sh /srv/agi/bin/edge-route.sh remove stepperslife /srv/agi/edge/sites.d /etc/caddy/Caddyfile localhost:2019 ${sha} docker exec agi-edge`,
  );
  assert.equal(route.inputs.stdin, caddy.value["sites.d/stepperslife.caddy"]);
  assert.equal(route.inputs.triggers, undefined, "a text change is an update, never a replacement");
  // Routed after the edge joined the site's network and the first version passed its gate; to
  // the site's name there, never to a version, so an app update leaves the fragment as it is.
  for (const dep of [
    "vps1-edge",
    "vps1-edge-route-script",
    "stepperslife-app-gate",
    "stepperslife-edge-attach-vps1",
  ]) {
    assert.ok(route.options.dependsOn.includes(res(dep).urn), dep);
  }
  assert.match(route.inputs.stdin, /\treverse_proxy stepperslife:3000 \{\n/);
  assert.deepEqual(route.clearInputs.connection, {
    dialErrorLimit: 10,
    host: "148.230.93.174",
    perDialTimeout: 15,
    port: 22,
    user: "deploy",
  });
  const script = res("vps1-edge-route-script");
  assert.equal(
    script.inputs.create,
    "mkdir -p /srv/agi/bin && cat > /srv/agi/bin/edge-route.sh.new && chmod 755 /srv/agi/bin/edge-route.sh.new && mv -f /srv/agi/bin/edge-route.sh.new /srv/agi/bin/edge-route.sh",
  );
  assert.equal(
    script.inputs.stdin,
    readFileSync(path.join(ROOT, "components", "edge-route.sh"), "utf8"),
  );
  assert.ok(res("vps1-edge").options.dependsOn.includes(res("vps1-edge-sites-dir").urn));
});
