/**
 * A site file and a stack file are written by whoever opens the pull request. Each case here is one
 * an attacker tried: it must be refused with an exact message that never shows a secret value.
 * Pure: the checks run on data, as `validate`, `synth` and the program run them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  formatProblem,
  parseStackSettings,
  readStackFile,
  secretKeysFor,
  siteNotes,
  validateAll,
} from "../core/validate";
import { looksLikeSecretName, looksLikeSecretValue } from "../core/site";
import { StackSettingsSchema } from "../stacks/settings";
import { checkSites, service, settings, siteEntry, tempDir, website } from "./helpers";

const STACK = StackSettingsSchema.parse(settings());
const check = checkSites;
const entry = siteEntry;

const app = (extra: Record<string, unknown>) => ({
  image: "ghcr.io/acme/shop:1.2.3",
  port: 3000,
  ...extra,
});

test("secrets: a site names only keys of its own namespace, never a platform or another site's key", () => {
  const shop = website("shop", {
    database: { mode: "none" },
    app: app({ secretEnv: { STOLEN: "jwt-secret", MINE: "stripe-key" } }),
  });
  const dash = website("dash", {
    database: { mode: "none" },
    app: app({ secretEnv: { JWT_SECRET: "jwt-secret" } }),
  });
  const { sites, problems } = validateAll([entry(shop), entry(dash)], []);
  assert.deepEqual(problems, []);
  // The same key name is a different path per site; platform keys are flat and unreachable.
  assert.deepEqual(
    secretKeysFor(
      STACK,
      sites.map((s) => s.site),
    ),
    [
      "cloudflareApiToken",
      "secrets.dash.jwt-secret",
      "secrets.shop.jwt-secret",
      "secrets.shop.stripe-key",
      "sharedDbPassword",
    ],
  );
  for (const key of ["sharedDbPassword", "cloudflareApiToken", "dash.jwt-secret", "../x", "a.b"]) {
    assert.deepEqual(
      check([website("shop", { app: app({ secretEnv: { X: key } }) })]),
      [
        `sites/shop.ts: app.secretEnv.X: must name one of this site's secrets: lower-case letters, digits and dashes, such as "stripe-key" (set as secrets.<site>.stripe-key)`,
      ],
      key,
    );
  }
});

test("secrets: platform secret keys cannot be the settings or the sites' namespace", () => {
  const r = parseStackSettings(
    settings({ dns: { provider: "cloudflare", apiTokenSecret: "secrets" } }),
    "Pulumi.test.yaml",
  );
  assert.deepEqual(r.problems.map(formatProblem), [
    'Pulumi.test.yaml: agi-platform:settings.dns.apiTokenSecret: must not be "settings" or "secrets": those keys are taken',
  ]);
});

test("plain-text secrets: credential names in env are refused; public names pass", () => {
  for (const name of [
    "STRIPE_KEY",
    "SMTP_PASS",
    "DB_PASS",
    "SESSION_KEY",
    "ENCRYPTION_KEY",
    "JWT",
    "JWT_SIGNING",
    "NEXTAUTH_SECRET",
    "GITHUB_TOKEN",
    "OPENAI_APIKEY",
    "SENTRY_DSN",
    "PASSWORD_SALT",
    "DB_PWD",
    "AWS_SECRET_ACCESS_KEY",
  ]) {
    assert.equal(looksLikeSecretName(name), true, name);
  }
  for (const name of [
    "NODE_ENV",
    "NEXT_PUBLIC_STRIPE_KEY",
    "PUBLIC_API_KEY",
    "KEYCLOAK_URL",
    "PASSENGER_COUNT",
    "PORT_RANGE",
    "AUTHOR",
  ]) {
    assert.equal(looksLikeSecretName(name), false, name);
  }
  assert.deepEqual(check([website("shop", { app: app({ env: { SMTP_PASS: "hunter2" } }) })]), [
    "sites/shop.ts: app.env.SMTP_PASS: looks like a secret; move it to app.secretEnv as an env name -> the name of one of the site's secrets",
  ]);
});

test("plain-text secrets: a value shaped like a credential is refused under any name, and never shown", () => {
  const values = [
    "sk_live_51HqLyjWDarjtT1zdp7dc",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "postgres://app:s3cretpassw0rd@db:5432/app",
    // A fake key's shape, assembled so no key-like line stands in the repository.
    ["-----BEGIN OPENSSH", "PRIVATE KEY-----\nabc\n-----END OPENSSH", "PRIVATE KEY-----"].join(" "),
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghij",
    "q8Zr4Lm2Xv9Tb7Nc1Wd5Kp3Hs6Gf0Ja",
  ];
  for (const v of values) {
    assert.equal(looksLikeSecretValue(v), true, v);
    const lines = check([website("shop", { app: app({ env: { SETTING: v } }) })]);
    assert.deepEqual(
      lines,
      [
        "sites/shop.ts: app.env.SETTING: has a value shaped like a credential (not shown); move it to app.secretEnv, or write a value that is not secret",
      ],
      v,
    );
  }
  for (const v of [
    "production",
    "https://shop.example.com/api",
    "en-US",
    "0123456789abcdef0123456789abcdef01234567",
    "3000",
  ]) {
    assert.equal(looksLikeSecretValue(v), false, v);
  }
});

test("a secret pasted where a name belongs is never printed back", () => {
  const secret = "sk_live_51HqLyjWDarjtT1zdp7dcXYZ";
  const lines = [
    ...check([website("shop", { app: app({ secretEnv: { STRIPE_KEY: secret } }) })]),
    ...check([website("shop", { app: app({ env: { [secret]: "x" } }) })]),
    ...check([website("shop", { description: 42, repo: secret })]),
    ...parseStackSettings(
      settings({ dns: { provider: "cloudflare", apiTokenSecret: secret } }),
      "Pulumi.test.yaml",
    ).problems.map(formatProblem),
  ];
  assert.equal(lines.length, 5, lines.join("\n"));
  for (const line of lines) assert.ok(!line.includes(secret), line);
});

test("a plain value in a stack file's secret keys is refused without showing it", () => {
  const dir = tempDir("stack");
  const file = path.join(dir, "Pulumi.x.yaml");
  fs.writeFileSync(
    file,
    [
      "config:",
      "  agi-platform:sharedDbPassword: correct-horse-battery",
      "  agi-platform:secrets:",
      "    shop:",
      "      stripe-key: sk_live_plain_value_here",
      "      jwt-secret:",
      "        secure: v1:abc",
      "",
    ].join("\n"),
  );
  const read = readStackFile(file);
  const lines = read.problems.map(formatProblem);
  assert.deepEqual(lines.slice(0, 2), [
    "Pulumi.x.yaml: agi-platform:sharedDbPassword: is stored in plain text; this key holds a secret: set it with pulumi config set --path --secret 'sharedDbPassword' (the value is not shown)",
    "Pulumi.x.yaml: agi-platform:secrets.shop.stripe-key: is stored in plain text; this key holds a secret: set it with pulumi config set --path --secret 'secrets.shop.stripe-key' (the value is not shown)",
  ]);
  assert.deepEqual(read.secureKeys, ["agi-platform:secrets.shop.jwt-secret"]);
  assert.ok(!lines.join("\n").includes("correct-horse") && !lines.join("\n").includes("sk_live"));
});

test("database rights: the owner role is derived; another tenant's role or a superuser is refused", () => {
  const shared = (ownerRole: unknown) =>
    website("shop", { database: { mode: "shared", ownerRole } });
  assert.deepEqual(check([shared(true)]), []);
  assert.deepEqual(check([shared("shop_owner")]), []);
  for (const role of ["admin_dashboard_app", "stepperslife_owner", "supabase_admin", "postgres"]) {
    assert.deepEqual(
      check([shared(role)]),
      [
        `sites/shop.ts: database.ownerRole: must be true, or the derived name "shop_owner": a site may only adopt its own database's owner role, got ${JSON.stringify(role)}`,
      ],
      role,
    );
  }
});

test("names: derived names are reserved against the platform, the shared cluster and every site", () => {
  assert.deepEqual(check([website("agi-edge")]), [
    'sites/agi-edge.ts: name: "agi-edge" is reserved by the platform',
  ]);
  // The stack's shared cluster is "shared-pg": neither a site nor its derived names may take it.
  assert.deepEqual(check([website("shared-pg")]), [
    'sites/shared-pg.ts: name: would take "shared-pg", the shared database cluster\'s container in Pulumi.test.yaml',
  ]);
  assert.deepEqual(check([website("shared", { database: { mode: "none" } })]), []);
  const pg = StackSettingsSchema.parse(
    settings({
      hosts: [
        {
          ...(settings().hosts as Record<string, unknown>[])[0],
          sharedDatabase: {
            container: "shop-db",
            adminAddress: "127.0.0.1",
            adminPort: 15432,
            adminPasswordSecret: "pw",
          },
        },
      ],
    }),
  );
  assert.deepEqual(check([website("shop", { database: { mode: "none" } })], pg), [
    'sites/shop.ts: name: would take "shop-db", the shared database cluster\'s container in Pulumi.test.yaml',
  ]);
  // <site>-backup is reserved like -db, -internal and -docker.
  assert.deepEqual(
    check([website("shop"), website("shop-backup", { database: { mode: "none" } })]),
    [
      'sites/shop-backup.ts: name: the container name or alias "shop-backup" (derived from the name) is already used by sites/shop.ts (name)',
    ],
  );
});

test("names: the form of a versioned app container name is kept from every site and upstream", () => {
  // Site "x" runs its app as x-app-<8 hex>: a site of that name would take its container's name.
  assert.deepEqual(check([website("x-app-deadbeef", { database: { mode: "none" } })]), [
    'sites/x-app-deadbeef.ts: name: "x-app-deadbeef" has the form of an app container\'s name (<site>-app-<8 hex digits>), which the platform keeps',
  ]);
  assert.deepEqual(
    check([service("shop-app-0123abcd", { upstream: { host: "n8n", port: 5678 } })]),
    [
      'sites/shop-app-0123abcd.ts: name: "shop-app-0123abcd" has the form of an app container\'s name (<site>-app-<8 hex digits>), which the platform keeps',
    ],
  );
  assert.deepEqual(
    check([service("tool", { upstream: { host: "shop-app-0123abcd", port: 3000 } })]),
    [
      'sites/tool.ts: upstream.host: has the form of an app container\'s name (<site>-app-<8 hex digits>), which changes with every update of that site; a service may not route to it, got "shop-app-0123abcd"',
    ],
  );
  // Not that form: other lengths, upper-case hex, or more after it are ordinary names.
  assert.deepEqual(check([website("x-app-deadbee", { database: { mode: "none" } })]), []);
  assert.deepEqual(check([website("x-app-deadbeef0", { database: { mode: "none" } })]), []);
});

test("zones: a client's zone serves that client alone unless the stack shares it", () => {
  const own = StackSettingsSchema.parse(settings({ sharedZones: ["agistaffers.com"] }));
  const steppers = website("stepperslife", {
    domains: ["stepperslife.com"],
    dns: { provider: "cloudflare", zone: "stepperslife.com" },
  });
  assert.deepEqual(
    check(
      [
        steppers,
        website("thief", {
          domains: ["shop.stepperslife.com"],
          dns: { provider: "cloudflare", zone: "stepperslife.com" },
        }),
        website("sneak", { domains: ["x.stepperslife.com"], dns: { provider: "external" } }),
      ],
      own,
    ),
    [
      'sites/thief.ts: dns.zone: the zone "stepperslife.com" belongs to sites/stepperslife.ts; a zone serves one client site unless Pulumi.test.yaml lists it in agi-platform:settings.sharedZones',
      'sites/sneak.ts: domains.0: "x.stepperslife.com" is under "stepperslife.com", which belongs to sites/stepperslife.ts; a zone serves one client site unless Pulumi.test.yaml lists it in agi-platform:settings.sharedZones',
    ],
  );
  const tools = (name: string) =>
    service(name, {
      domains: [`${name}.agistaffers.com`],
      dns: { provider: "cloudflare", zone: "agistaffers.com" },
    });
  assert.deepEqual(check([tools("n8n"), tools("flowise")], own), []);
});

test("upstreams: container names only; never an address, loopback, the edge or a reserved name", () => {
  const msg =
    "must be the name of a container on agi-network: lower-case letters, digits, - and _ (no address, no dots)";
  for (const host of [
    "169.254.169.254",
    "127.0.0.1",
    "SUPABASE-DB",
    "supabase-db.",
    "agi-edge.local",
    "2130706433",
    "0x7f000001",
    "[::1]",
  ]) {
    assert.deepEqual(
      check([service("tool", { upstream: { host, port: 2019 } })]),
      [`sites/tool.ts: upstream.host: ${msg}, got ${JSON.stringify(host)}`],
      host,
    );
  }
  for (const host of ["localhost", "agi-edge", "edge", "caddy"]) {
    assert.deepEqual(
      check([service("tool", { upstream: { host, port: 2019 } })]),
      [
        `sites/tool.ts: upstream.host: is a name the platform keeps; a service may not route to it, got ${JSON.stringify(host)}`,
      ],
      host,
    );
  }
});

test("stack strings that reach the Caddyfile, a shell or ssh are checked where they enter", () => {
  const cases: [Record<string, unknown>, string][] = [
    [
      { edge: { acmeEmail: 'ops@example.com"\n}\n:80 {' } },
      'agi-platform:settings.edge.acmeEmail: must be an e-mail address such as "ops@example.com"',
    ],
    [
      { edge: { acmeEmail: "{$HOME}@example.com" } },
      'agi-platform:settings.edge.acmeEmail: must be an e-mail address such as "ops@example.com"',
    ],
    [
      { edge: { acmeEmail: "ops@example.com#x" } },
      'agi-platform:settings.edge.acmeEmail: must be an e-mail address such as "ops@example.com"',
    ],
    [
      { edge: { acmeEmail: "ops@example.com", httpPort: 2019 } },
      "agi-platform:settings.edge.adminAddress: uses port 2019, which edge.httpPort already uses; the edge needs a port for each",
    ],
    [
      { edge: { acmeEmail: "ops@example.com", httpPort: 443 } },
      "agi-platform:settings.edge.httpsPort: uses port 443, which edge.httpPort already uses; the edge needs a port for each",
    ],
  ];
  for (const [over, expected] of cases) {
    const lines = parseStackSettings(settings(over), "Pulumi.test.yaml").problems.map((p) =>
      formatProblem(p).replace(/, got .*$/s, ""),
    );
    assert.deepEqual(lines, [`Pulumi.test.yaml: ${expected}`], JSON.stringify(over));
  }
  const host = (docker: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    settings({
      hosts: [{ ...(settings().hosts as Record<string, unknown>[])[0], docker, ...extra }],
    });
  const hostCases: [Record<string, unknown>, string][] = [
    [
      host({ connection: "ssh", user: "deploy", address: "-oProxyCommand=id" }),
      "hosts.0.docker.address: must be a host name or IPv4 address",
    ],
    [
      host({
        connection: "ssh",
        user: "deploy",
        address: "h",
        knownHostsFile: "-oProxyCommand=id",
      }),
      'hosts.0.docker.knownHostsFile: must be a file path such as "~/.ssh/known_hosts"',
    ],
    [
      host({ connection: "ssh", user: "deploy", address: "h", knownHostsFile: "/etc/../root/x" }),
      'hosts.0.docker.knownHostsFile: must not contain ".."',
    ],
    [
      host({ connection: "ssh", user: "deploy", address: "h" }, { root: "/srv/../etc" }),
      'hosts.0.root: must not contain ".."',
    ],
    [
      host(
        { connection: "ssh", user: "deploy", address: "h" },
        {
          sharedDatabase: {
            container: "db;id",
            adminAddress: "127.0.0.1",
            adminPort: 15432,
            adminPasswordSecret: "pw",
          },
        },
      ),
      "hosts.0.sharedDatabase.container: must be a container name: lower-case letters, digits, - and _",
    ],
  ];
  for (const [raw, expected] of hostCases) {
    const lines = parseStackSettings(raw, "Pulumi.test.yaml").problems.map((p) =>
      formatProblem(p).replace(/, got .*$/s, ""),
    );
    assert.deepEqual(lines, [`Pulumi.test.yaml: agi-platform:settings.${expected}`]);
  }
});

test("schedules that never fire are refused; rare ones pass with a note", () => {
  const at = (schedule: string) =>
    check([website("shop", { backup: { schedule } })]).map((l) =>
      l.replace(/^sites\/shop\.ts: /, ""),
    );
  assert.deepEqual(at("0 3 31 2 *"), [
    'backup.schedule: "0 3 31 2 *" names no day that exists (such as 31 February), so it never fires',
  ]);
  assert.deepEqual(at("0 5-1 * * *"), [
    'backup.schedule: hour field "5-1": the range 5-1 runs backwards, so it never matches; write 1-5 or a list, got "0 5-1 * * *"',
  ]);
  assert.deepEqual(at("0 0 31 4,6,9,11 *").length, 1);
  assert.deepEqual(at("0 3 29 2 *"), []);
  const { sites } = validateAll(
    [entry(website("shop", { backup: { schedule: "0 3 29 2 *" } }))],
    [],
  );
  assert.deepEqual(siteNotes(sites).map(formatProblem), [
    'sites/shop.ts: backup.schedule: "0 3 29 2 *" fires on 1 day in four years, less than once a month',
  ]);
});

test("a site's jobs cannot run so often that they load the host: backups hourly at most, drills daily", () => {
  const problems = (backup: Record<string, string>) =>
    check([website("shop", { backup })]).map((l) => l.replace(/^sites\/shop\.ts: /, ""));
  for (const schedule of ["* * * * *", "*/5 3 * * *", "0,30 * * * *"]) {
    assert.deepEqual(
      problems({ schedule }),
      [
        `backup.schedule: fires more than once an hour; at most once an hour (give the minute as one number), got ${JSON.stringify(schedule)}`,
      ],
      schedule,
    );
  }
  assert.deepEqual(problems({ schedule: "7 * * * *" }), [], "hourly backups are allowed");
  for (const drillSchedule of ["* 4 * * 1", "15 */6 * * *", "15 4,5 * * *", "7 * * * *"]) {
    assert.deepEqual(
      problems({ drillSchedule }),
      [
        `backup.drillSchedule: fires more than once a day; at most once a day (give the minute and the hour as one number each), got ${JSON.stringify(drillSchedule)}`,
      ],
      drillSchedule,
    );
  }
  assert.deepEqual(problems({ drillSchedule: "15 4 * * 1" }), []);
  assert.deepEqual(problems({ drillSchedule: "15 4 * * *" }), [], "daily drills are allowed");
  // A drill schedule is checked like any other: one that never fires is refused.
  assert.equal(problems({ drillSchedule: "0 3 31 2 *" }).length, 1);
});

test("a dedicated database too small for PostgreSQL is refused", () => {
  assert.deepEqual(
    check([website("shop", { database: { mode: "dedicated", resources: { memory: "32Mi" } } })]),
    [
      `sites/shop.ts: database.resources.memory: must be at least 64Mi: PostgreSQL's smallest settings (shared_buffers 16MB, 20 connections) take about 22 MiB idle, and each connection and query needs room beyond that, got "32Mi"`,
    ],
  );
});
