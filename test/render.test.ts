/** Pure renderers: PostgreSQL settings, Caddy text, units, the inventory table. Exact outputs. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { postgresCommand, postgresSettings } from "../core/postgres";
import { renderMainCaddyfile, renderSiteFragment, upstreamOf } from "../core/caddy";
import { SiteSchema } from "../core/site";
import { formatMiB, toMiB, toSeconds } from "../core/units";
import { StackSettingsSchema } from "../stacks/settings";
import { buildInventory, inventoryTable } from "../core/inventory";
import { service, settings, website } from "./helpers";

test("PostgreSQL settings follow the memory limit", () => {
  const table: [string, Record<string, string>][] = [
    [
      "128Mi",
      {
        shared_buffers: "16MB",
        max_connections: "20",
        work_mem: "1MB",
        maintenance_work_mem: "8MB",
        effective_cache_size: "64MB",
      },
    ],
    [
      "256Mi",
      {
        shared_buffers: "32MB",
        max_connections: "32",
        work_mem: "1MB",
        maintenance_work_mem: "16MB",
        effective_cache_size: "128MB",
      },
    ],
    [
      "1Gi",
      {
        shared_buffers: "128MB",
        max_connections: "128",
        work_mem: "1MB",
        maintenance_work_mem: "64MB",
        effective_cache_size: "512MB",
      },
    ],
    [
      "4Gi",
      {
        shared_buffers: "512MB",
        max_connections: "200",
        work_mem: "4MB",
        maintenance_work_mem: "256MB",
        effective_cache_size: "2048MB",
      },
    ],
  ];
  for (const [memory, expected] of table) {
    const got = Object.fromEntries(postgresSettings(memory));
    for (const [k, v] of Object.entries(expected)) assert.equal(got[k], v, `${memory} ${k}`);
  }
  assert.deepEqual(postgresCommand("256Mi").slice(0, 5), [
    "postgres",
    "-c",
    "shared_buffers=32MB",
    "-c",
    "max_connections=32",
  ]);
});

test("memory units", () => {
  assert.deepEqual(["512Mi", "2Gi", "1Mi"].map(toMiB), [512, 2048, 1]);
  assert.deepEqual([512, 2048, 1536, 0].map(formatMiB), ["512Mi", "2Gi", "1536Mi", "0Mi"]);
  assert.throws(() => toMiB("512MB"), /not a memory quantity/);
  assert.deepEqual(["10s", "1m30s", "500ms", "1h"].map(toSeconds), [10, 90, 0.5, 3600]);
  assert.throws(() => toSeconds("10 seconds"), /not a duration/);
});

const parse = (v: Record<string, unknown>) => SiteSchema.parse(v);
const OPTS = { logDir: "/data/logs" };

const HEADERS = [
  "\theader {",
  '\t\tStrict-Transport-Security "max-age=31536000"',
  '\t\tX-Content-Type-Options "nosniff"',
  '\t\tX-Frame-Options "SAMEORIGIN"',
  '\t\tReferrer-Policy "strict-origin-when-cross-origin"',
  "\t\t-Server",
  "\t}",
];
const LOG = (site: string) => [
  "\tlog {",
  `\t\toutput file /data/logs/${site}.access.log {`,
  "\t\t\troll_size 10MiB",
  "\t\t\troll_keep 5",
  "\t\t}",
  "\t\tformat json",
  "\t}",
];

test("website fragment: headers, access log, compression, proxy with retries; aliases redirect", () => {
  assert.equal(
    renderSiteFragment(parse(website("shop")), OPTS),
    [
      '# Site "shop" (website, active), managed by agi-platform.',
      "",
      "shop.example.com {",
      ...HEADERS,
      ...LOG("shop"),
      "\tencode zstd gzip",
      "\treverse_proxy shop:3000 {",
      "\t\tlb_try_duration 30s",
      "\t\tlb_try_interval 250ms",
      "\t}",
      "}",
      "",
      "www.shop.example.com {",
      '\theader Strict-Transport-Security "max-age=31536000"',
      "\tredir https://shop.example.com{uri} permanent",
      "}",
      "",
    ].join("\n"),
  );
});

test("service fragment proxies to its upstream; no route without domains or when planned", () => {
  const text = renderSiteFragment(parse(service("tool")), OPTS);
  assert.match(text, /\n\tencode zstd gzip\n\treverse_proxy tool:8080 \{\n/);
  assert.match(text, /output file \/data\/logs\/tool\.access\.log \{/);
  assert.equal(
    renderSiteFragment(parse(service("tool", { domains: [], dns: undefined })), OPTS),
    "",
  );
  assert.equal(renderSiteFragment(parse(website("shop", { status: "planned" })), OPTS), "");
});

test("an upstream override changes only the proxy address", () => {
  const site = parse(website("shop"));
  const normal = renderSiteFragment(site, OPTS);
  const stubbed = renderSiteFragment(site, { ...OPTS, upstream: "127.0.0.1:4000" });
  assert.equal(
    stubbed,
    normal.replace("reverse_proxy shop:3000 {", "reverse_proxy 127.0.0.1:4000 {"),
  );
});

test("an active website proxies to its own name on its edge network, never to a version", () => {
  const site = parse(website("shop"));
  assert.equal(upstreamOf(site), "shop:3000");
  const other = parse(website("shop", { app: { image: "ghcr.io/acme/shop:1.2.3", port: 8080 } }));
  assert.equal(upstreamOf(other), "shop:8080");
  // A new app version changes nothing in the fragment, so an update never reloads the edge.
  assert.equal(
    renderSiteFragment(
      parse(website("shop", { app: { image: "ghcr.io/acme/shop:1.2.4", port: 3000 } })),
      OPTS,
    ),
    renderSiteFragment(site, OPTS),
  );
});

test("paused fragment answers 503 with a maintenance page and proxies nothing", () => {
  const text = renderSiteFragment(parse(website("shop", { status: "paused" })), OPTS);
  assert.match(
    text,
    /\t\}\n\theader Content-Type "text\/html; charset=utf-8"\n\theader Retry-After 3600\n\trespond `<!doctype html>/,
  );
  assert.match(text, /shop\.example\.com is down for maintenance/);
  assert.match(text, /` 503\n\}/);
  assert.doesNotMatch(text, /reverse_proxy/);
  assert.match(
    text,
    /www\.shop\.example\.com \{\n.*\n\tredir https:\/\/shop\.example\.com\{uri\} permanent/,
  );
});

test("main Caddyfile: prod, staging CA, local certificates on high ports", () => {
  assert.equal(
    renderMainCaddyfile(StackSettingsSchema.parse(settings())),
    "# Main Caddyfile, managed by agi-platform. Site routes live in sites.d/, one file per site.\n{\n\temail ops@example.com\n\tadmin localhost:2019\n}\n\nimport sites.d/*.caddy\n",
  );
  assert.match(
    renderMainCaddyfile(
      StackSettingsSchema.parse(settings({ edge: { acmeEmail: "a@b.co", acmeStaging: true } })),
    ),
    /\tacme_ca https:\/\/acme-staging-v02\.api\.letsencrypt\.org\/directory\n/,
  );
  const local = renderMainCaddyfile(
    StackSettingsSchema.parse(
      settings({ edge: { localCerts: true, httpPort: 8080, httpsPort: 8443 } }),
    ),
  );
  assert.equal(
    local.split("\n").slice(1, 8).join("\n"),
    "{\n\tlocal_certs\n\tskip_install_trust\n\tadmin localhost:2019\n\thttp_port 8080\n\thttps_port 8443\n}",
  );
});

test("inventory table: one row per site and a capacity line per host", () => {
  const stack = StackSettingsSchema.parse(settings());
  const sites = [parse(website("shop")), parse(service("tool"))];
  const table = inventoryTable(buildInventory("test", stack, sites, { shop: "shop-app-0123abcd" }));
  const lines = table.trimEnd().split("\n");
  assert.match(
    lines[0],
    /^SITE +KIND +STATUS +HOST +URL +UPSTREAM +DATABASE +BACKUP +MEMORY RESERVED\/LIMIT +DNS$/,
  );
  assert.match(
    lines[2],
    /^shop +website +active +vps1 +https:\/\/shop\.example\.com +shop:3000 +dedicated:shop +\d+ [23] \* \* \* +320Mi\/768Mi +cloudflare$/,
  );
  assert.match(
    lines[3],
    /^tool +service +active +vps1 +https:\/\/tool\.example\.com +tool:8080 +- +- +- +cloudflare$/,
  );
  assert.equal(
    lines[5],
    "host vps1 (ssh://deploy@203.0.113.10:22): memory 352Mi reserved of 4Gi, 3744Mi headroom, limits 1Gi of 4Gi; CPU limits 0.5 on 4 cores; ports 0.0.0.0:80/tcp, 0.0.0.0:443/tcp, 0.0.0.0:443/udp",
  );
});
