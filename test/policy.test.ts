/**
 * The policy pack: each policy with one complying resource and the mutations that break it, with the
 * exact message; the pack's engine adapter; and `npm run policy` over real synth manifests (both
 * stacks, and a project with every kind of container) and over one with a planted violation.
 * Not proven here: how the Pulumi engine loads the pack (no CLI on this machine); that runs in CI.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  CONTAINER,
  DNS_RECORD,
  REMOTE_IMAGE,
  RULES,
  VOLUME,
  ZONE_SETTING,
  violations,
  type CheckedResource,
} from "../policy/rules";
import { policies } from "../policy/policies";
import { recordComment } from "../core/dns";
import { containerLabels } from "../core/containers";
import { main as policyMain, manifestViolations } from "../scripts/policy";
import { synth } from "../scripts/synth";
import { ROOT, runInProcess, settings, service, tempDir, website, writeProject } from "./helpers";

const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

const app: CheckedResource = {
  type: CONTAINER,
  name: "shop-app",
  props: {
    image: "sha256:0123",
    memory: 512,
    restart: "unless-stopped",
    healthcheck: { tests: ["CMD", "node", "-e", "1"] },
    labels: containerLabels("shop", "app"),
  },
};
const db: CheckedResource = {
  ...app,
  name: "shop-db",
  props: {
    ...app.props,
    labels: containerLabels("shop", "db"),
    envs: ["POSTGRES_USER=postgres"],
  },
};
const edge: CheckedResource = {
  ...app,
  name: "vps1-edge",
  urn: "urn:pulumi:prod::agi-platform::agi:host:Platform$docker:index/container:Container::vps1-edge",
  props: {
    ...app.props,
    labels: containerLabels("platform", "edge"),
    ports: [{ internal: 443, external: 443, ip: "0.0.0.0" }],
  },
};
const proxy: CheckedResource = {
  ...app,
  name: "shop-docker-proxy",
  urn: "urn:pulumi:prod::agi-platform::agi:web:Website$docker:index/container:Container::shop-docker-proxy",
  props: {
    ...app.props,
    labels: containerLabels("shop", "docker-proxy"),
    mounts: [
      {
        type: "bind",
        source: "/var/run/docker.sock",
        target: "/var/run/docker.sock",
        readOnly: true,
      },
    ],
  },
};
const image: CheckedResource = {
  type: REMOTE_IMAGE,
  name: "shop-app-image",
  props: { name: "ghcr.io/acme/shop:1.2.3", keepLocally: true },
};
const volume: CheckedResource = {
  type: VOLUME,
  name: "shop-pgdata",
  props: { name: "shop-pgdata" },
  retainOnDelete: true,
};
const zone: CheckedResource = {
  type: ZONE_SETTING,
  name: "example-com-ssl",
  props: { settingId: "ssl", value: "strict", zoneId: "z" },
};
const record: CheckedResource = {
  type: DNS_RECORD,
  name: "shop-dns-apex",
  props: { name: "shop.example.com", proxied: true, comment: recordComment("shop", true) },
};

const mutate = (r: CheckedResource, props: Record<string, unknown>, rest = {}) => ({
  ...r,
  ...rest,
  props: { ...r.props, ...props },
});

test("every complying resource passes every policy", () => {
  for (const r of [app, db, edge, proxy, image, volume, zone, record]) {
    assert.deepEqual(violations(r), [], r.name);
  }
  // An unproxied record the site file asked for carries the mark and passes.
  const dnsOnly = mutate(record, { proxied: false, comment: recordComment("shop", false) });
  assert.deepEqual(violations(dnsOnly), []);
});

/** [policy, mutated resource, exact message] */
const CASES: [string, CheckedResource, string][] = [
  [
    "database-no-host-port",
    mutate(db, { ports: [{ internal: 5432, external: 5432, ip: "127.0.0.1" }] }),
    'container shop-db is a database and publishes host port 5432: remove its "ports"; apps reach it on the site\'s internal network, operators through an SSH tunnel',
  ],
  [
    "database-no-host-port",
    // Recognised by its environment even without the label.
    mutate(db, {
      labels: containerLabels("shop", "app"),
      envs: ["PGDATA=/var/lib/postgresql/data"],
      ports: [{ internal: 5432, external: 15432, ip: "127.0.0.1" }],
    }),
    'container shop-db is a database and publishes host port 15432: remove its "ports"; apps reach it on the site\'s internal network, operators through an SSH tunnel',
  ],
  [
    "no-public-app-port",
    mutate(app, { ports: [{ internal: 3000, external: 3002 }] }),
    'container shop-app publishes port 3002 on all interfaces: only the edge listens beyond loopback; remove "ports" (the edge proxies to the container on agi-network) or bind "ip": "127.0.0.1"',
  ],
  [
    "no-public-app-port",
    mutate(app, {
      ports: [
        { internal: 3000, external: 3002, ip: "127.0.0.1" },
        { internal: 9229, external: 9229, ip: "::" },
      ],
    }),
    'container shop-app publishes port 9229 on ::: only the edge listens beyond loopback; remove "ports" (the edge proxies to the container on agi-network) or bind "ip": "127.0.0.1"',
  ],
  [
    "no-public-app-port",
    // A specific public address is as public as all of them.
    mutate(app, { ports: [{ internal: 3000, external: 3002, ip: "203.0.113.10" }] }),
    'container shop-app publishes port 3002 on 203.0.113.10: only the edge listens beyond loopback; remove "ports" (the edge proxies to the container on agi-network) or bind "ip": "127.0.0.1"',
  ],
  [
    "pinned-image",
    mutate(image, { name: "ghcr.io/acme/shop:latest" }),
    'image shop-app-image: "ghcr.io/acme/shop:latest" uses the moving tag "latest"; pin a version tag (name:1.4.2) or a digest (name@sha256:...)',
  ],
  [
    "pinned-image",
    mutate(app, { image: "postgres" }),
    'container shop-app: "postgres" has no tag; pin a version tag (name:1.4.2) or a digest (name@sha256:...)',
  ],
  [
    "memory-limit",
    mutate(app, { memory: undefined }),
    'container shop-app has no memory limit: set "memory" (MiB); the host\'s budget is counted from it',
  ],
  [
    "restart-policy",
    mutate(app, { restart: "no" }),
    'container shop-app has restart policy "no": set "restart": "unless-stopped"',
  ],
  [
    "healthcheck",
    mutate(app, { healthcheck: { tests: ["NONE"] } }),
    'container shop-app has no healthcheck: add "healthcheck" with a test the image can run, so deploys wait for it and Docker reports it',
  ],
  [
    "retain-data-volumes",
    { ...volume, retainOnDelete: false },
    "volume shop-pgdata would be deleted with its resource: give it the option retainOnDelete: true, so removing a site file never deletes data",
  ],
  [
    "docker-socket",
    mutate(app, {
      volumes: [{ hostPath: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" }],
    }),
    "container shop-app mounts the Docker socket (or a directory holding it): only the platform's read-only socket proxy may; set app.dockerReadAccess: true in the site file instead, which gives the app the proxy",
  ],
  [
    "docker-socket",
    // The proxy itself, but writable.
    mutate(proxy, {
      mounts: [{ type: "bind", source: "/run/docker.sock", target: "/var/run/docker.sock" }],
    }),
    "container shop-docker-proxy mounts the Docker socket (or a directory holding it): only the platform's read-only socket proxy may; set app.dockerReadAccess: true in the site file instead, which gives the app the proxy",
  ],
  [
    "docker-socket",
    // The directory that holds the socket gives it away too.
    mutate(app, {
      mounts: [{ type: "bind", source: "/var/run/", target: "/host-run", readOnly: true }],
    }),
    "container shop-app mounts the Docker socket (or a directory holding it): only the platform's read-only socket proxy may; set app.dockerReadAccess: true in the site file instead, which gives the app the proxy",
  ],
  [
    "restart-policy",
    // on-failure does not bring a container back after a reboot or a clean exit.
    mutate(app, { restart: "on-failure" }),
    'container shop-app has restart policy "on-failure": set "restart": "unless-stopped"',
  ],
  [
    "healthcheck",
    // mustRun: false is no way around it.
    mutate(app, { mustRun: false, healthcheck: undefined }),
    'container shop-app has no healthcheck: add "healthcheck" with a test the image can run, so deploys wait for it and Docker reports it',
  ],
  [
    "docker-socket",
    // A label is a claim anyone can make: the proxy is known by the component that created it.
    mutate(app, { labels: containerLabels("shop", "docker-proxy"), mounts: proxy.props.mounts }),
    "container shop-app mounts the Docker socket (or a directory holding it): only the platform's read-only socket proxy may; set app.dockerReadAccess: true in the site file instead, which gives the app the proxy",
  ],
  [
    "docker-socket",
    // Paths are compared as the kernel resolves them.
    mutate(app, {
      mounts: [{ type: "bind", source: "/var//run/../run/./docker.sock", target: "/s" }],
    }),
    "container shop-app mounts the Docker socket (or a directory holding it): only the platform's read-only socket proxy may; set app.dockerReadAccess: true in the site file instead, which gives the app the proxy",
  ],
  [
    "no-public-app-port",
    mutate(app, { labels: containerLabels("platform", "edge"), ports: edge.props.ports }),
    'container shop-app publishes port 443 on 0.0.0.0: only the edge listens beyond loopback; remove "ports" (the edge proxies to the container on agi-network) or bind "ip": "127.0.0.1"',
  ],
  ...(
    [
      [{ privileged: true }, '"privileged": true'],
      [{ networkMode: "host" }, '"networkMode": "host"'],
      [{ networkMode: "container:agi-edge" }, '"networkMode": "container:agi-edge"'],
      [{ pidMode: "host" }, '"pidMode": "host"'],
      [{ ipcMode: "host" }, '"ipcMode": "host"'],
      [{ usernsMode: "host" }, '"usernsMode": "host"'],
      [{ capabilities: { adds: ["ALL"] } }, "added capabilities ALL"],
      [{ devices: [{ hostPath: "/dev/sda" }] }, "host devices"],
      [{ securityOpts: ["seccomp=unconfined"] }, 'security option "seccomp=unconfined"'],
      [{ mounts: [{ type: "bind", source: "/boot", target: "/host" }] }, 'a bind mount of "/boot"'],
      [
        { mounts: [{ type: "bind", source: "/etc", target: "/e", readOnly: true }] },
        'a bind mount of "/etc"',
      ],
      [
        { mounts: [{ type: "bind", source: "/proc/1/root", target: "/r" }] },
        'a bind mount of "/proc/1/root"',
      ],
      [
        { mounts: [{ type: "bind", source: "/srv/agi/../../etc/", target: "/e" }] },
        'a bind mount of "/srv/agi/../../etc/"',
      ],
      [{ volumes: [{ hostPath: "/var/lib", containerPath: "/l" }] }, 'a bind mount of "/var/lib"'],
    ] as [Record<string, unknown>, string][]
  ).map(([props, what]): [string, CheckedResource, string] => [
    "container-isolation",
    mutate(app, props),
    `container shop-app has ${what}: a container on the shared host gets none of these; remove them`,
  ]),
  [
    "zone-ssl-strict",
    mutate(zone, { value: "flexible" }),
    'zone setting example-com-ssl sets SSL to "flexible": set it to "strict", so Cloudflare checks the edge\'s certificate',
  ],
  [
    "dns-proxied",
    mutate(record, { proxied: false }),
    'DNS record shop-dns-apex (shop.example.com) is not proxied: set "proxied": true, or dns.proxied: false in the site file, which marks the record as intended',
  ],
];

test("each mutation breaks exactly its policy, with the exact message", () => {
  for (const [rule, resource, message] of CASES) {
    assert.deepEqual(violations(resource), [{ rule, message }], `${rule}: ${resource.name}`);
  }
  // Every policy has at least one breaking case.
  assert.deepEqual(
    [...new Set(CASES.map(([rule]) => rule))].sort(),
    RULES.map((r) => r.name).sort(),
  );
});

test("the engine adapter: mandatory policies, same messages, no decision without retainOnDelete", async () => {
  assert.equal(policies.length, RULES.length);
  for (const p of policies) assert.equal(p.enforcementLevel, "mandatory", p.name);
  const run = async (r: CheckedResource) => {
    const reported: string[] = [];
    for (const p of policies) {
      const validate = p.validateResource as (
        args: unknown,
        report: (m: string) => void,
      ) => void | Promise<void>;
      await validate(
        { type: r.type, name: r.name, props: r.props, urn: `urn:x::${r.name}`, opts: {} },
        (m) => reported.push(m),
      );
    }
    return reported;
  };
  for (const [rule, resource, message] of CASES) {
    if (rule === "retain-data-volumes") {
      // The engine does not report retainOnDelete; `npm run policy` enforces it.
      assert.deepEqual(await run(resource), []);
    } else {
      assert.deepEqual(await run(resource), [message], rule);
    }
  }
  assert.deepEqual(await run(app), []);
});

test("the components comply: synth manifests of both stacks and of every kind of container", async () => {
  for (const stack of ["prod", "local"]) {
    const { manifest } = await synth(ROOT, stack, path.join(ROOT, "sites"), "sites");
    assert.deepEqual(manifestViolations(manifest.resources), [], stack);
  }
  // Dedicated database (db, volume), Docker read access (the proxy), DNS-only records, a service.
  const { root, sitesDir } = writeProject("test", settings(), [
    website("shop", {
      app: { image: "ghcr.io/acme/shop:1.2.3", port: 3000, dockerReadAccess: true },
    }),
    website("blog", {
      database: { mode: "shared" },
      dns: { provider: "cloudflare", zone: "example.com", proxied: false },
    }),
    service("tool"),
  ]);
  const { manifest } = await synth(root, "test", sitesDir, "sites");
  const types = new Set(manifest.resources.map((r) => r.type));
  for (const t of [CONTAINER, REMOTE_IMAGE, VOLUME, ZONE_SETTING, DNS_RECORD]) {
    assert.ok(types.has(t), t);
  }
  const roles = manifest.resources
    .filter((r) => r.type === CONTAINER)
    .map(
      (r) =>
        (r.inputs.labels as { label: string; value: string }[]).find((l) => l.label === "agi.role")
          ?.value,
    )
    .sort();
  assert.deepEqual(roles, ["app", "app", "db", "docker-proxy", "edge"]);
  assert.deepEqual(manifestViolations(manifest.resources), []);
});

test("npm run policy: the stacks pass; a planted violation fails with its message", async () => {
  // The real entry point once (exit code and output), then the same main in process.
  const e2e = spawnSync(TSX, [path.join(ROOT, "scripts", "policy.ts"), "--stack", "prod"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(e2e.status, 0, e2e.stdout + e2e.stderr);
  assert.equal(e2e.stdout, "");
  assert.match(e2e.stderr, /^policy: stack prod: \d+ resources, 11 policies, 0 violations\n$/);
  for (const stack of ["prod", "local"]) {
    const r = await runInProcess(policyMain, ["--stack", stack]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      new RegExp(`^policy: stack ${stack}: \\d+ resources, 11 policies, 0 violations\\n$`),
    );
  }
  const { manifest } = await synth(ROOT, "prod", path.join(ROOT, "sites"), "sites");
  const appEntry = manifest.resources.find((r) => r.name === "stepperslife-app");
  assert.ok(appEntry);
  appEntry.inputs.ports = [{ internal: 3000, external: 3002, ip: "0.0.0.0" }];
  const dir = tempDir("policy");
  const file = path.join(dir, "manifest.json");
  fs.writeFileSync(file, JSON.stringify(manifest));
  const r = await runInProcess(policyMain, ["--manifest", file]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stdout,
    'no-public-app-port: container stepperslife-app publishes port 3002 on 0.0.0.0: only the edge listens beyond loopback; remove "ports" (the edge proxies to the container on agi-network) or bind "ip": "127.0.0.1"\n',
  );
  assert.match(r.stderr, /^policy: stack prod: \d+ resources, 11 policies, 1 violation\n$/);
  fs.writeFileSync(file, "{}");
  const bad = await runInProcess(policyMain, ["--manifest", file]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /is not a synth manifest/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("npm run policy: usage errors exit 2 with the usage; an unknown stack exits 1", async () => {
  const usage = "usage: npm run policy -- --stack NAME [--sites DIR] [--manifest FILE]\n";
  const cases: [string[], string][] = [
    [[], "--stack (or --manifest) is required\n"],
    [["--frobnicate"], "Unknown option '--frobnicate'\n"],
    [["--stack", "a b"], '--stack: "a b" is not a stack name\n'],
  ];
  for (const [args, message] of cases) {
    const r = await runInProcess(policyMain, args);
    assert.deepEqual(r, { code: 2, stdout: "", stderr: `${message}${usage}` }, args.join(" "));
  }
  assert.deepEqual(await runInProcess(policyMain, ["--help"]), {
    code: 0,
    stdout: usage,
    stderr: "",
  });
  assert.deepEqual(await runInProcess(policyMain, ["--stack", "nope"]), {
    code: 1,
    stdout: "",
    stderr: "policy: Pulumi.nope.yaml: (file): no such stack file\n",
  });
});
