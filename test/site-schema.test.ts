/**
 * The site file format: every bad file gets exact `<file>: <field.path>: <message>` lines.
 * Pure: no Pulumi, no files.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatProblem, parseSites } from "../core/validate";
import { defaultBackupSchedule, imageProblem } from "../core/site";
import { service, website } from "./helpers";

function problemsOf(value: unknown, file = "sites/shop.ts"): string[] {
  return parseSites([{ file, value }]).problems.map(formatProblem);
}

const app = (extra: Record<string, unknown>) => ({
  image: "ghcr.io/acme/shop:1.2.3",
  port: 3000,
  ...extra,
});

const BAD: { title: string; value: unknown; file?: string; expected: string[] }[] = [
  {
    title: "upper-case name",
    value: website("Shop"),
    expected: [
      'sites/shop.ts: name: must match ^[a-z][a-z0-9-]{1,30}[a-z0-9]$ (3-32 lower-case letters, digits, dashes), got "Shop"',
      'sites/shop.ts: domains.0: must be a lower-case DNS name such as "example.com", got "Shop.example.com"',
      'sites/shop.ts: domains.1: must be a lower-case DNS name such as "example.com", got "www.Shop.example.com"',
      'sites/shop.ts: app.image: is not a valid image reference; expected registry/name:tag or registry/name@sha256:<64 hex>, got "ghcr.io/acme/Shop:1.2.3"',
    ],
  },
  {
    title: "name too short",
    value: { ...website(), name: "ab" },
    expected: [
      'sites/shop.ts: name: must match ^[a-z][a-z0-9-]{1,30}[a-z0-9]$ (3-32 lower-case letters, digits, dashes), got "ab"',
    ],
  },
  {
    title: "name ending in a dash",
    value: { ...website(), name: "shop-" },
    expected: [
      'sites/shop.ts: name: must match ^[a-z][a-z0-9-]{1,30}[a-z0-9]$ (3-32 lower-case letters, digits, dashes), got "shop-"',
    ],
  },
  {
    title: "name differs from the file name",
    value: website("store"),
    expected: ['sites/shop.ts: name: must equal the file name "shop", got "store"'],
  },
  {
    title: "name reserved by the platform",
    value: website("edge"),
    file: "sites/edge.ts",
    expected: ['sites/edge.ts: name: "edge" is reserved by the platform'],
  },
  {
    title: "unknown kind",
    value: { ...website(), kind: "blog" },
    expected: ['sites/shop.ts: kind: must be "website" or "service", got "blog"'],
  },
  {
    title: "missing kind",
    value: { name: "shop", domains: ["shop.example.com"] },
    expected: ['sites/shop.ts: kind: is required; must be "website" or "service"'],
  },
  {
    title: "unknown status",
    value: website("shop", { status: "live" }),
    expected: ['sites/shop.ts: status: must be "active", "paused" or "planned", got "live"'],
  },
  {
    title: "website without domains",
    value: website("shop", { domains: [] }),
    expected: ["sites/shop.ts: domains: a website needs at least one domain"],
  },
  {
    title: "duplicate domain in one file",
    value: website("shop", { domains: ["shop.example.com", "shop.example.com"] }),
    expected: ['sites/shop.ts: domains.1: "shop.example.com" is already listed as domains.0'],
  },
  {
    title: "domain outside the zone",
    value: website("shop", { domains: ["shop.example.com", "shop.example.org"] }),
    expected: [
      'sites/shop.ts: domains.1: "shop.example.org" is not in the zone "example.com" (dns.zone); use a domain under it or another site file',
    ],
  },
  {
    title: "zone that only ends like the domain",
    value: website("shop", { domains: ["shopexample.com"] }),
    expected: [
      'sites/shop.ts: domains.0: "shopexample.com" is not in the zone "example.com" (dns.zone); use a domain under it or another site file',
    ],
  },
  {
    title: "domains without dns",
    value: website("shop", { dns: undefined }),
    expected: [
      'sites/shop.ts: dns: is required when the site has domains: { provider: "cloudflare", zone: "..." } or { provider: "external" }',
    ],
  },
  {
    title: "unknown dns provider",
    value: website("shop", { dns: { provider: "route53", zone: "example.com" } }),
    expected: [
      'sites/shop.ts: dns.provider: must have provider "cloudflare" (with a zone) or "external", got "route53"',
    ],
  },
  {
    title: "cloudflare without zone",
    value: website("shop", { dns: { provider: "cloudflare" } }),
    expected: ["sites/shop.ts: dns.zone: is required (expected string, received undefined)"],
  },
  {
    title: "website without app",
    value: website("shop", { app: undefined }),
    expected: ["sites/shop.ts: app: is required (expected object, received undefined)"],
  },
  {
    title: "image without tag",
    value: website("shop", { app: app({ image: "ghcr.io/acme/shop" }) }),
    expected: [
      'sites/shop.ts: app.image: has no tag; pin a version tag (name:1.4.2) or a digest (name@sha256:...), got "ghcr.io/acme/shop"',
    ],
  },
  {
    title: "image on latest",
    value: website("shop", { app: app({ image: "ghcr.io/acme/shop:latest" }) }),
    expected: [
      'sites/shop.ts: app.image: uses the moving tag "latest"; pin a version tag (name:1.4.2) or a digest (name@sha256:...), got "ghcr.io/acme/shop:latest"',
    ],
  },
  {
    title: "image with upper-case repository",
    value: website("shop", { app: app({ image: "ghcr.io/Acme/shop:1" }) }),
    expected: [
      'sites/shop.ts: app.image: is not a valid image reference; expected registry/name:tag or registry/name@sha256:<64 hex>, got "ghcr.io/Acme/shop:1"',
    ],
  },
  {
    title: "port zero",
    value: website("shop", { app: app({ port: 0 }) }),
    expected: ["sites/shop.ts: app.port: must be a TCP port number (1-65535), got 0"],
  },
  {
    title: "port as a string",
    value: website("shop", { app: app({ port: "3000" }) }),
    expected: ['sites/shop.ts: app.port: must be a TCP port number (1-65535), got "3000"'],
  },
  {
    title: "fractional port",
    value: website("shop", { app: app({ port: 3000.5 }) }),
    expected: ["sites/shop.ts: app.port: must be a whole TCP port number (1-65535), got 3000.5"],
  },
  {
    title: "secret-looking env name, value never quoted",
    value: website("shop", { app: app({ env: { STRIPE_SECRET_KEY: "sk_live_abcdef" } }) }),
    expected: [
      "sites/shop.ts: app.env.STRIPE_SECRET_KEY: looks like a secret; move it to app.secretEnv as an env name -> the name of one of the site's secrets",
    ],
  },
  {
    title: "password in env",
    value: website("shop", { app: app({ env: { SMTP_PASSWORD: "hunter2hunter2" } }) }),
    expected: [
      "sites/shop.ts: app.env.SMTP_PASSWORD: looks like a secret; move it to app.secretEnv as an env name -> the name of one of the site's secrets",
    ],
  },
  {
    title: "lower-case env name",
    value: website("shop", { app: app({ env: { node_env: "production" } }) }),
    expected: [
      'sites/shop.ts: app.env.node_env: env names must match ^[A-Z_][A-Z0-9_]*$, got "node_env"',
    ],
  },
  {
    title: "env value not a string",
    value: website("shop", { app: app({ env: { WORKERS: 4 } }) }),
    expected: ["sites/shop.ts: app.env.WORKERS: env values must be strings"],
  },
  {
    title: "reserved env name",
    value: website("shop", { app: app({ env: { DATABASE_URL: "postgres://x" } }) }),
    expected: [
      "sites/shop.ts: app.env.DATABASE_URL: is set by the platform; remove it (reserved: DATABASE_URL, DOCKER_HOST, PORT)",
    ],
  },
  {
    title: "secretEnv pointing at a bad config key",
    value: website("shop", { app: app({ secretEnv: { STRIPE_KEY: "stripe key" } }) }),
    expected: [
      `sites/shop.ts: app.secretEnv.STRIPE_KEY: must name one of this site's secrets: lower-case letters, digits and dashes, such as "stripe-key" (set as secrets.<site>.stripe-key)`,
    ],
  },
  {
    title: "the same env name plain and secret",
    value: website("shop", {
      app: app({ env: { SHOP_REGION: "a" }, secretEnv: { SHOP_REGION: "shop-region" } }),
    }),
    expected: ["sites/shop.ts: app.env.SHOP_REGION: is also set in app.secretEnv; keep one"],
  },
  {
    title: "healthcheck interval in words",
    value: website("shop", { app: app({ healthcheck: { interval: "10 seconds" } }) }),
    expected: [
      'sites/shop.ts: app.healthcheck.interval: must be a duration such as "10s", "1m30s" or "500ms", got "10 seconds"',
    ],
  },
  {
    title: "relative healthcheck path",
    value: website("shop", { app: app({ healthcheck: { path: "api/health" } }) }),
    expected: [
      'sites/shop.ts: app.healthcheck.path: must be an absolute URL path such as "/api/health", got "api/health"',
    ],
  },
  {
    title: "memory in MB",
    value: website("shop", { app: app({ resources: { memory: "512MB" } }) }),
    expected: [
      'sites/shop.ts: app.resources.memory: must be a whole number of Mi or Gi, such as "512Mi" or "1Gi", got "512MB"',
    ],
  },
  {
    title: "reservation above the limit",
    value: website("shop", {
      app: app({ resources: { memory: "256Mi", memoryReservation: "512Mi" } }),
    }),
    expected: [
      'sites/shop.ts: app.resources.memoryReservation: "512Mi" is above the limit app.resources.memory "256Mi"',
    ],
  },
  {
    title: "zero CPUs",
    value: website("shop", { app: app({ resources: { cpus: 0 } }) }),
    expected: ["sites/shop.ts: app.resources.cpus: must be at least 0.05 CPUs, got 0"],
  },
  {
    title: "unknown database mode",
    value: website("shop", { database: { mode: "mysql" } }),
    expected: [
      'sites/shop.ts: database.mode: must have mode "dedicated", "shared" or "none", got "mysql"',
    ],
  },
  {
    title: "bad database name",
    value: website("shop", { database: { mode: "shared", name: "Shop-DB" } }),
    expected: [
      'sites/shop.ts: database.name: must match ^[a-z][a-z0-9_]{0,56}$ (the roles add _app and _owner; PostgreSQL names stop at 63), got "Shop-DB"',
    ],
  },
  {
    title: "database name too long for its app role",
    value: website("shop", { database: { mode: "shared", name: `s${"x".repeat(58)}` } }),
    expected: [
      `sites/shop.ts: database.name: must match ^[a-z][a-z0-9_]{0,56}$ (the roles add _app and _owner; PostgreSQL names stop at 63), got "s${"x".repeat(58)}"`,
    ],
  },
  {
    title: "database name PostgreSQL keeps for itself",
    value: website("shop", { database: { mode: "shared", name: "postgres" } }),
    expected: [
      'sites/shop.ts: database.name: is reserved by PostgreSQL (postgres, template0, template1), got "postgres"',
    ],
  },
  {
    title: "an owner role that would hand a superuser's rights to the app",
    value: website("shop", { database: { mode: "shared", ownerRole: "postgres" } }),
    expected: [
      `sites/shop.ts: database.ownerRole: must be true, or the derived name "shop_owner": a site may only adopt its own database's owner role, got "postgres"`,
    ],
  },
  {
    title: "an owner role for a dedicated database",
    value: website("shop", { database: { mode: "dedicated", ownerRole: "shop_owner" } }),
    expected: [
      "sites/shop.ts: database.ownerRole: unknown field; check its spelling against the site file format",
    ],
  },
  {
    title: "healthcheck command without a probe type",
    value: website("shop", {
      app: app({ healthcheck: { command: ["curl", "-f", "http://127.0.0.1:3000/"] } }),
    }),
    expected: [
      'sites/shop.ts: app.healthcheck.command: must start with "CMD" or "CMD-SHELL" (Docker ignores any other probe)',
    ],
  },
  {
    title: "healthcheck slower than a deploy waits",
    value: website("shop", { app: app({ healthcheck: { interval: "1m", startPeriod: "2m" } }) }),
    expected: [
      'sites/shop.ts: app.healthcheck.startPeriod: with interval 1m, the first counted probe comes after 180s; a deploy waits 180s for healthy, so keep startPeriod + interval within 150s, got "2m"',
    ],
  },
  {
    title: "memory below Docker's minimum",
    value: website("shop", { database: { mode: "dedicated", resources: { memory: "4Mi" } } }),
    expected: [
      'sites/shop.ts: database.resources.memory: must be at least 6Mi (Docker\'s minimum), got "4Mi"',
    ],
  },
  {
    title: "database resources in shared mode",
    value: website("shop", { database: { mode: "shared", resources: { memory: "1Gi" } } }),
    expected: [
      "sites/shop.ts: database.resources: unknown field; check its spelling against the site file format",
    ],
  },
  {
    title: "backup schedule in words",
    value: website("shop", { backup: { schedule: "daily" } }),
    expected: [
      'sites/shop.ts: backup.schedule: must be a five-field cron schedule such as "17 2 * * *", got "daily"',
    ],
  },
  {
    title: "backup schedule with a day name",
    value: website("shop", { backup: { schedule: "0 3 * * MON" } }),
    expected: [
      'sites/shop.ts: backup.schedule: day of week field "MON": use numbers, *, a-b, */n and commas (no names), got "0 3 * * MON"',
    ],
  },
  {
    title: "backup schedule out of range",
    value: website("shop", { backup: { schedule: "61 2 * * *" } }),
    expected: [
      'sites/shop.ts: backup.schedule: minute field "61": 61 is outside 0-59, got "61 2 * * *"',
    ],
  },
  {
    title: "negative retention",
    value: website("shop", { backup: { retention: { daily: -1 } } }),
    expected: [
      "sites/shop.ts: backup.retention.daily: must be a whole number from 1 to 60, got -1",
    ],
  },
  {
    title: "misspelt top-level field",
    value: { ...website(), domian: ["x.example.com"] },
    expected: [
      "sites/shop.ts: domian: unknown field; check its spelling against the site file format",
    ],
  },
  {
    title: "misspelt nested field",
    value: website("shop", {
      app: { imag: "ghcr.io/acme/shop:1", image: "ghcr.io/acme/shop:1", port: 3000 },
    }),
    expected: [
      "sites/shop.ts: app.imag: unknown field; check its spelling against the site file format",
    ],
  },
  {
    title: "service without upstream",
    value: service("shop", { upstream: undefined }),
    expected: ["sites/shop.ts: upstream: is required (expected object, received undefined)"],
  },
  {
    title: "service with an app",
    value: service("shop", { app: app({}) }),
    expected: [
      "sites/shop.ts: app: unknown field; check its spelling against the site file format",
    ],
  },
  {
    title: "default export that is not an object",
    value: "shop",
    expected: ['sites/shop.ts: (file): the default export must be a site object, got "shop"'],
  },
];

test("at least 25 bad site files are covered", () => {
  assert.ok(BAD.length >= 25, `only ${BAD.length} cases`);
});

for (const c of BAD) {
  test(`bad site file: ${c.title}`, () => {
    const { sites, problems } = parseSites([{ file: c.file ?? "sites/shop.ts", value: c.value }]);
    assert.deepEqual(problems.map(formatProblem), c.expected);
    assert.equal(sites.length, 0, "a bad file must not be accepted");
  });
}

test("a secret value in env is never quoted back", () => {
  const lines = problemsOf(
    website("shop", { app: app({ env: { API_TOKEN: "tok_12345678", MODE: 5 } }) }),
  );
  assert.ok(lines.length > 0);
  assert.ok(
    lines.every((l) => !l.includes("tok_12345678")),
    lines.join("\n"),
  );
});

test("defaults are applied to a minimal website", () => {
  const { sites, problems } = parseSites([{ file: "sites/shop.ts", value: website() }]);
  assert.deepEqual(problems, []);
  const site = sites[0].site;
  assert.equal(site.kind, "website");
  if (site.kind !== "website") return;
  assert.equal(site.status, "active");
  assert.deepEqual(site.app.resources, { memory: "512Mi", memoryReservation: "256Mi", cpus: 0.5 });
  assert.deepEqual(site.app.healthcheck, {
    path: "/",
    interval: "10s",
    timeout: "5s",
    startPeriod: "20s",
    retries: 3,
  });
  assert.deepEqual(site.backup.retention, { daily: 7, weekly: 4, monthly: 12 });
  assert.equal(site.backup.schedule, undefined);
  assert.deepEqual(site.database, { mode: "dedicated", resources: { memory: "256Mi" } });
  assert.deepEqual(site.dns, { provider: "cloudflare", zone: "example.com", proxied: true });
});

test("image references: tags, digests and registries with ports", () => {
  const digest = `sha256:${"a".repeat(64)}`;
  for (const ok of [
    "postgres:15",
    "ghcr.io/acme/shop:1.4.2",
    `ghcr.io/acme/shop@${digest}`,
    "localhost:5000/shop:v1",
    `shop:latest@${digest}`,
  ]) {
    assert.equal(imageProblem(ok), undefined, ok);
  }
  assert.match(imageProblem("localhost:5000/shop") ?? "", /has no tag/);
  assert.match(imageProblem("shop:latest") ?? "", /moving tag "latest"/);
});

test("default backup schedule: between 02:00 and 03:59, stable, spread across sites", () => {
  const names = Array.from({ length: 200 }, (_, i) => `site-${i}`);
  const slots = new Set<string>();
  for (const n of names) {
    const cron = defaultBackupSchedule(n);
    const m = /^(\d+) (\d+) \* \* \*$/.exec(cron);
    assert.ok(m, cron);
    const [minute, hour] = [Number(m[1]), Number(m[2])];
    assert.ok(minute >= 0 && minute < 60 && (hour === 2 || hour === 3), cron);
    assert.equal(defaultBackupSchedule(n), cron, "stable for the same name");
    slots.add(cron);
  }
  // 200 names over 120 slots: a constant or badly skewed hash would give far fewer distinct slots.
  assert.ok(slots.size > 80, `only ${slots.size} distinct slots`);
});
