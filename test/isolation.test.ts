/**
 * The isolation setting: the pure network list, the settings and site-file fields, and the program
 * under mocks (per-site networks, the edge attached by a command, the edge's inputs unchanged). Mocks
 * show what is asked of Docker; test/engine/isolation.test.ts shows what a real engine does with it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveOutput } from "../scripts/mock-engine";
import { runUnderMocks } from "../scripts/synth";
import { appNetworks } from "../core/networks";
import { hostNamesOf, siteNames } from "../core/names";
import { networkAttachCommandLines } from "../core/host";
import { SiteSchema, type WebsiteSite } from "../core/site";
import { StackSettingsSchema } from "../stacks/settings";
import { checkSites, settings, website, writeProject } from "./helpers";

const appOf = (name: string) => website(name).app as Record<string, unknown>;
const web = (name: string, extra: Record<string, unknown> = {}) =>
  SiteSchema.parse(
    website(name, { dns: { provider: "external" }, database: { mode: "none" }, ...extra }),
  ) as WebsiteSite;

test("the app's networks: per setting, database mode, app.uses and the internal network", () => {
  const cases: [WebsiteSite, "shared-network" | "per-site", unknown][] = [
    [web("shop"), "shared-network", [{ network: "edge" }, { network: "platform" }]],
    [web("shop"), "per-site", [{ network: "edge" }]],
    [
      web("shop", { app: { ...appOf("shop"), uses: ["services"] } }),
      "per-site",
      [{ network: "edge" }, { network: "platform" }],
    ],
    [
      web("shop", { database: { mode: "shared" } }),
      "per-site",
      [{ network: "edge" }, { network: "platform" }],
    ],
    [
      web("shop", { database: { mode: "dedicated" } }),
      "per-site",
      [{ network: "edge" }, { network: "internal" }],
    ],
    [
      web("shop", { database: { mode: "dedicated" } }),
      "shared-network",
      [{ network: "edge" }, { network: "platform" }, { network: "internal" }],
    ],
    // uses is the site's need; without isolation the app is on agi-network anyway.
    [
      web("shop", { app: { ...appOf("shop"), uses: ["services"] } }),
      "shared-network",
      [{ network: "edge" }, { network: "platform" }],
    ],
  ];
  for (const [site, isolation, expected] of cases) {
    assert.deepEqual(
      appNetworks(site, isolation),
      expected,
      `${isolation} ${JSON.stringify(site.app.uses)} ${site.database.mode}`,
    );
  }
});

test("isolation and app.uses are strict; the edge network's name is reserved", () => {
  assert.equal(StackSettingsSchema.parse(settings()).isolation, "shared-network");
  assert.equal(
    StackSettingsSchema.parse(settings({ isolation: "per-site" })).isolation,
    "per-site",
  );
  const bad = StackSettingsSchema.safeParse(settings({ isolation: "strict" }));
  assert.ok(!bad.success);
  assert.deepEqual(
    bad.error.issues.map((i) => [i.path.join("."), i.message]),
    [["isolation", 'must be "shared-network" or "per-site"']],
  );
  const uses = (value: unknown) =>
    SiteSchema.safeParse(website("shop", { app: { ...appOf("shop"), uses: value } }));
  assert.deepEqual(
    uses(["databases"]).error?.issues.map((i) => [i.path.join("."), i.message]),
    [["app.uses.0", 'must be one of: "services"']],
  );
  assert.deepEqual(
    uses(["services", "services"]).error?.issues.map((i) => [i.path.join("."), i.message]),
    [["app.uses", "lists an entry twice"]],
  );
  assert.deepEqual(web("shop").app.uses, []);
  assert.equal(siteNames("shop").edgeNetwork, "shop-edge");
  assert.ok(hostNamesOf("shop").includes("shop-edge"));
  // A site named like another site's edge network is refused, naming both files.
  const problems = checkSites([website("shop"), website("shop-edge")]);
  assert.ok(
    problems.some((p) => /"shop-edge"/.test(p) && /sites\/shop\.ts/.test(p)),
    problems.join("\n"),
  );
});

test("the edge attachment's command lines take only checked words", () => {
  const lines = networkAttachCommandLines("shop-edge", "agi-edge");
  assert.equal(
    lines.attach,
    "docker network connect shop-edge agi-edge || docker network inspect --format '{{range .Containers}}{{println .Name}}{{end}}' shop-edge 2>/dev/null | grep -qx -e agi-edge",
  );
  assert.equal(
    lines.detach,
    "docker network disconnect shop-edge agi-edge || ! docker network inspect --format '{{range .Containers}}{{println .Name}}{{end}}' shop-edge 2>/dev/null | grep -qx -e agi-edge",
  );
  assert.throws(() => networkAttachCommandLines("x;reboot", "agi-edge"), /unsafe argument/);
  assert.throws(() => networkAttachCommandLines("x", "$(id)"), /unsafe argument/);
});

const LOCAL = (isolation?: string) =>
  settings({
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
    ...(isolation ? { isolation } : {}),
  });

async function run(isolation: string | undefined) {
  const sites = [
    website("shop", {
      dns: { provider: "external" },
      domains: ["shop.localhost"],
      database: { mode: "none" },
    }),
    website("tools", {
      dns: { provider: "external" },
      domains: ["tools.localhost"],
      database: { mode: "none" },
      app: { ...appOf("tools"), uses: ["services"] },
    }),
    website("later", {
      status: "paused",
      dns: { provider: "external" },
      domains: ["later.localhost"],
    }),
  ];
  const { root, sitesDir } = writeProject("test", LOCAL(isolation), sites);
  const { engine, program } = await runUnderMocks(root, "test", sitesDir, "sites");
  await resolveOutput(program.inventory);
  const inventory = (await resolveOutput(program.inventory)).value;
  await engine.settle();
  return { engine, inventory };
}

test("per-site: a network per active app (agi-network only when used), the edge attached by a command, the route after it", async () => {
  const { engine, inventory } = await run("per-site");
  const net = engine.byName("shop-edge-network");
  assert.deepEqual(
    [net.type, net.inputs.name, net.inputs.internal],
    ["docker:index/network:Network", "shop-edge", undefined],
  );
  assert.deepEqual(engine.byName("shop-app").inputs.networksAdvanced, [{ name: "shop-edge" }]);
  assert.deepEqual(engine.byName("tools-app").inputs.networksAdvanced, [
    { name: "tools-edge" },
    { name: "agi-network" },
  ]);
  const attach = engine.byName("shop-edge-attach-box");
  const lines = networkAttachCommandLines("shop-edge", "agi-edge");
  assert.equal(attach.type, "command:local:Command");
  assert.deepEqual(
    [attach.inputs.create, attach.inputs.update, attach.inputs.delete],
    [lines.attach, lines.attach, lines.detach],
  );
  const edge = engine.byName("box-edge");
  // Made again when the edge container is (its ID is the trigger); one edge for every site.
  assert.deepEqual(attach.inputs.triggers, engine.byName("tools-edge-attach-box").inputs.triggers);
  assert.match(String((attach.inputs.triggers as unknown[])[0]), /^id-/);
  // Replaced (a new edge): the old one's disconnect runs first, or it would detach the new edge.
  assert.equal(attach.options.deleteBeforeReplace, true);
  for (const dep of [edge.urn, net.urn]) assert.ok(attach.options.dependsOn.includes(dep), dep);
  assert.ok(engine.byName("shop-route-box").options.dependsOn.includes(attach.urn));
  // The edge itself: on agi-network only, its network list left to the sites' commands.
  assert.deepEqual(edge.inputs.networksAdvanced, [{ aliases: ["edge"], name: "agi-network" }]);
  assert.deepEqual(edge.options.ignoreChanges, ["networksAdvanced"]);
  // A paused site runs no app: no network, no attachment.
  assert.ok(!engine.resources.some((r) => r.name.startsWith("later-edge")));
  assert.ok(inventory.hosts.box.names.includes("shop-edge"));
});

test("shared-network (the default): apps on agi-network, and each meets the edge on its own network", async () => {
  const { engine } = await run(undefined);
  // The edge network exists in both settings: the live version's alias lives there.
  assert.equal(engine.byName("shop-edge-network").inputs.name, "shop-edge");
  assert.deepEqual(engine.byName("shop-app").inputs.networksAdvanced, [
    { name: "shop-edge" },
    { name: "agi-network" },
  ]);
  assert.ok(
    engine
      .byName("shop-route-box")
      .options.dependsOn.includes(engine.byName("shop-edge-attach-box").urn),
  );
  assert.deepEqual(engine.byName("box-edge").options.ignoreChanges, ["networksAdvanced"]);
  // The edge's declared inputs are the same in both settings: switching never replaces it.
  const perSite = await run("per-site");
  assert.deepEqual(perSite.engine.byName("box-edge").inputs, engine.byName("box-edge").inputs);
});
