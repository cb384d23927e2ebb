/**
 * The `local` stack is whole: `sharedDatabase.create` has the program create the shared cluster (and
 * what an adopted database needs there), validated strictly and never on an existing host; prod's
 * cluster is only connected to. And the edge: no site change touches the edge container's inputs.
 * Mocks show what is asked of the engine; the engine suite shows PostgreSQL and Docker honour it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { resolveOutput, type MockEngine, type RecordedResource } from "../scripts/mock-engine";
import { runUnderMocks } from "../scripts/synth";
import { formatProblem, parseStackSettings } from "../core/validate";
import { CLUSTER_PASSWORD_FILE } from "../core/postgres";
import { SHARED_CLUSTER_RESERVATION_MIB } from "../core/specs";
import { ROOT, settings, website, writeProject } from "./helpers";

const CONTAINER = "docker:index/container:Container";
const PG_PROVIDER = "pulumi:providers:postgresql";
const ROLE = "postgresql:index/role:Role";

/** A workstation host that has the program create its shared cluster. */
const cluster = (over: Record<string, unknown> = {}) => ({
  container: "agi-shared-db",
  adminAddress: "127.0.0.1",
  adminPort: 55432,
  create: true,
  ...over,
});
const localSettings = (clusterOver: Record<string, unknown> = {}, hostOver = {}) =>
  settings({
    hosts: [
      {
        name: "box",
        publicIp: "127.0.0.1",
        docker: { connection: "socket" },
        capacity: { memory: "8Gi", cpus: 2 },
        createNetwork: true,
        sharedDatabase: cluster(clusterOver),
        ...hostOver,
      },
    ],
    edge: { bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, localCerts: true },
    dns: { provider: "none" },
  });

async function run(root: string, stack: string, sitesDir: string, preview = false) {
  const { engine, program } = await runUnderMocks(root, stack, sitesDir, "sites", preview);
  const inventory = (await resolveOutput(program.inventory)).value;
  await resolveOutput(program.caddy);
  await engine.settle();
  return { engine, inventory };
}

async function runProject(
  stackSettings: Record<string, unknown>,
  sites: Record<string, unknown>[],
) {
  const { root, sitesDir } = writeProject("test", stackSettings, sites);
  return run(root, "test", sitesDir);
}

const problems = (raw: Record<string, unknown>) =>
  parseStackSettings(raw, "Pulumi.test.yaml").problems.map((p) =>
    formatProblem(p).replace(/, got .*$/s, ""),
  );

test("sharedDatabase.create: validated strictly, and never on a host whose platform exists", () => {
  const at = "Pulumi.test.yaml: agi-platform:settings.hosts.0.sharedDatabase";
  assert.deepEqual(problems(localSettings()), []);
  const cases: [Record<string, unknown>, string[]][] = [
    [
      localSettings({ adminAddress: "0.0.0.0" }),
      [
        `${at}.adminAddress: must be a loopback IPv4 address (127.x.x.x) when create is true: the created cluster publishes its admin port there and nowhere else`,
      ],
    ],
    [
      localSettings({ adminAddress: "db.example.com" }),
      [
        `${at}.adminAddress: must be a loopback IPv4 address (127.x.x.x) when create is true: the created cluster publishes its admin port there and nowhere else`,
      ],
    ],
    [
      localSettings({ adminPasswordSecret: "sharedDbPassword" }),
      [
        `${at}.adminPasswordSecret: must not be set when create is true: the program generates the created cluster's password`,
      ],
    ],
    [
      localSettings({ create: false }),
      [
        `${at}.adminPasswordSecret: is required for an existing cluster (create is false): the name of the secret config key holding its admin password`,
      ],
    ],
    [
      localSettings({ create: false, adminPasswordSecret: "pw", memory: "256Mi" }),
      [`${at}.memory: is only for a cluster the program creates (create: true)`],
    ],
    [
      localSettings({ create: "yes" }),
      [`${at}.create: Invalid input: expected boolean, received string`],
    ],
    [
      localSettings({}, { createNetwork: false }),
      [
        `${at}.create: is only for a host whose platform the program creates whole (createNetwork: true); an existing host's cluster is never created or altered`,
      ],
    ],
    [
      localSettings({ adminPort: 8443 }),
      [`${at}.adminPort: uses port 8443 on 127.0.0.1, which the edge publishes`],
    ],
  ];
  for (const [raw, expected] of cases) assert.deepEqual(problems(raw), expected);
});

/** The program's resources of a type. */
const ofType = (engine: MockEngine, type: string) =>
  engine.resources.filter((r) => r.type === type);

test("local stack: the program creates the shared cluster, and the provider waits for it", async () => {
  const { engine, inventory } = await run(ROOT, "local", path.join(ROOT, "sites"));
  const c = engine.byName("local-shared-db-cluster");
  const i = c.clearInputs;
  assert.equal(i.name, "agi-shared-db");
  // The stack's PostgreSQL image, pulled by the program.
  const image = engine.byName("local-shared-db-image");
  assert.equal(image.inputs.name, "postgres:15.14-bookworm");
  assert.ok(c.options.dependsOn.includes(image.urn));
  // The admin port on the stack's loopback address, nothing else published.
  assert.deepEqual(i.ports, [
    { external: 55432, internal: 5432, ip: "127.0.0.1", protocol: "tcp" },
  ]);
  assert.deepEqual(i.networksAdvanced, [{ aliases: ["agi-shared-db"], name: "agi-network" }]);
  // The generated password reaches the container as a file, never as an env value.
  const password = engine.byName("local-shared-db-admin-password");
  assert.equal(password.type, "random:index/randomPassword:RandomPassword");
  const generated = `mock-password-`;
  const upload = (i.uploads as { file: string; content: string; permissions?: string }[]).find(
    (u) => u.file === CLUSTER_PASSWORD_FILE,
  )!;
  assert.ok(upload.content.startsWith(generated), "the upload holds the generated password");
  assert.ok(
    c.secretPaths.some((p) => p.startsWith("uploads")),
    "the upload is secret",
  );
  const envs = i.envs as string[];
  assert.ok(envs.includes(`POSTGRES_PASSWORD_FILE=${CLUSTER_PASSWORD_FILE}`));
  assert.ok(!envs.some((e) => e.includes(upload.content)), "no password in the environment");
  assert.ok(!JSON.stringify(i.command).includes(upload.content), "no password on the command");
  // Its own volume, kept when the resource goes.
  const volume = engine.byName("local-shared-db-data");
  assert.equal(volume.inputs.name, "agi-shared-db-pgdata");
  assert.equal(volume.options.retainOnDelete, true);
  assert.deepEqual(i.mounts, [
    { source: "agi-shared-db-pgdata", target: "/var/lib/postgresql/data", type: "volume" },
  ]);
  assert.deepEqual((i.healthcheck as { tests: string[] }).tests.slice(0, 2), ["CMD", "pg_isready"]);
  assert.ok((i.healthcheck as { tests: string[] }).tests.includes("-U"));
  assert.equal(i.wait, true);
  assert.equal(i.memory, 512);
  assert.equal(i.memoryReservation, SHARED_CLUSTER_RESERVATION_MIB);
  assert.equal(c.options.deleteBeforeReplace, true);
  // The provider logs in with that password, once the cluster is healthy.
  const [provider] = ofType(engine, PG_PROVIDER);
  assert.equal(provider.clearInputs.password, upload.content);
  assert.deepEqual([provider.clearInputs.host, provider.clearInputs.port], ["127.0.0.1", "55432"]);
  assert.ok(provider.options.dependsOn.includes(c.urn), "the provider waits for the cluster");
  // Admission counts its reservation; the inventory shows its loopback port.
  const host = inventory.hosts.local;
  assert.ok(host.ports.includes("127.0.0.1:55432/tcp"));
  assert.ok(host.names.includes("agi-shared-db-pgdata"));
});

test("local stack: an adopted database gets its derived owner role, the app role joins it", async () => {
  const { engine } = await run(ROOT, "local", path.join(ROOT, "sites"));
  const owner = engine.byName("stepperslife-db-owner-role");
  assert.equal(owner.type, ROLE);
  assert.deepEqual(owner.clearInputs, {
    createDatabase: false,
    createRole: false,
    inherit: true,
    login: false,
    name: "stepperslife_owner",
    superuser: false,
  });
  const app = engine.byName("stepperslife-db-role");
  assert.deepEqual(app.clearInputs.roles, ["stepperslife_owner"]);
  assert.ok(app.options.dependsOn.includes(owner.urn), "the member role waits for its owner");
  const grant = engine.byName("stepperslife-db-owner-schema");
  assert.ok(grant.options.dependsOn.includes(owner.urn), "the grant waits for its role");
  assert.deepEqual(grant.clearInputs, {
    database: "stepperslife",
    objectType: "schema",
    privileges: ["CREATE", "USAGE"],
    role: "stepperslife_owner",
    schema: "public",
  });
  // A shared site that was not adopted gets no owner role.
  assert.equal(
    engine.resources.filter((r) => r.name === "admin-dashboard-db-owner-role").length,
    0,
  );
});

test("prod: the existing cluster is only connected to; nothing creates or alters it", async () => {
  const { engine } = await run(ROOT, "prod", path.join(ROOT, "sites"), true);
  const containers = ofType(engine, CONTAINER).map((r) => r.inputs.name as string | undefined);
  assert.ok(!containers.includes("supabase-db"));
  assert.equal(engine.resources.filter((r) => r.name.includes("shared-db-")).length, 0);
  assert.equal(engine.resources.filter((r) => r.name.endsWith("-db-owner-role")).length, 0);
  const [provider] = ofType(engine, PG_PROVIDER);
  assert.equal(
    provider.clearInputs.password,
    "synth-placeholder-secret-agi-platform:sharedDbPassword",
  );
  assert.deepEqual(provider.options.dependsOn, []);
});

/** The Platform's resources (the edge and everything beside it) as the engine receives them. */
const platformState = (engine: MockEngine) =>
  engine.resources
    .filter((r) => r.parent?.endsWith("::box") || r.name === "box")
    .map((r: RecordedResource) => ({ urn: r.urn, inputs: r.clearInputs, options: r.options }))
    .sort((a, b) => a.urn.localeCompare(b.urn));

const edgeSites = {
  local: { dns: { provider: "external" } },
};
const baseSites = [
  website("aaa", { ...edgeSites.local, domains: ["aaa.localhost"] }),
  website("bbb", { ...edgeSites.local, domains: ["bbb.localhost"], database: { mode: "shared" } }),
];
/** The state before each site change, computed once for the three tests below. */
let baseRun: ReturnType<typeof runProject> | undefined;

/** Runs `sites` and compares the edge (and the rest of the host's platform) with the base state. */
async function assertEdgeUnchanged(what: string, sites: Record<string, unknown>[]) {
  const before = await (baseRun ??= runProject(localSettings(), baseSites));
  const after = await runProject(localSettings(), sites);
  const edgeOf = (e: MockEngine) => {
    const edge = e.byName("box-edge");
    return { inputs: edge.clearInputs, options: edge.options };
  };
  assert.deepEqual(edgeOf(after.engine), edgeOf(before.engine), `a site ${what}: the edge changed`);
  // Nothing else of the host's platform moves either (image, volumes, cluster, provider).
  assert.deepEqual(platformState(after.engine), platformState(before.engine), what);
}

test("adding a site leaves the edge container's inputs unchanged", async () => {
  await assertEdgeUnchanged("added", [
    ...baseSites,
    website("ccc", { ...edgeSites.local, domains: ["ccc.localhost", "www.ccc.localhost"] }),
  ]);
});

test("changing a site (domains, image, port, status, socket proxy) leaves the edge unchanged", async () => {
  await assertEdgeUnchanged("changed", [
    website("aaa", {
      ...edgeSites.local,
      domains: ["aaa2.localhost", "aaa.localhost"],
      app: { image: "ghcr.io/acme/aaa:2.0.0", port: 8080, dockerReadAccess: true },
    }),
    website("bbb", {
      ...edgeSites.local,
      domains: ["bbb.localhost"],
      status: "paused",
      database: { mode: "shared" },
    }),
  ]);
});

test("removing a site leaves the edge container's inputs unchanged", async () => {
  await assertEdgeUnchanged("removed", [baseSites[0]]);
});
