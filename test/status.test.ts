/**
 * The status report as data: a host's collector output (in the exact formats Docker 20.10 and
 * /proc print) parsed, and each check judged at its bound, on both sides of it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import {
  dockerBytes,
  judge,
  judgeDns,
  parseHostReport,
  sections,
  statusTable,
  type CertFacts,
} from "../core/status";
import { inRanges } from "../core/cloudflare";
import { loadSiteEntries, readStackFile, validateAll } from "../core/validate";
import { expectations, main, scheduleIntervalSeconds } from "../scripts/status";
import { ROOT, runInProcess } from "./helpers";

const NOW = Date.parse("2026-12-02T06:00:00Z") / 1000;
const MiB = 1024 * 1024;

function inspect(name: string, site: string, role: string, over: Record<string, unknown> = {}) {
  return {
    Name: `/${name}`,
    Config: {
      Image: `img-${role}`,
      Labels: { "agi.site": site, "agi.role": role, "agi.managed-by": "agi-platform" },
    },
    State: { Status: "running", StartedAt: "2026-12-01T00:00:00Z", Health: { Status: "healthy" } },
    RestartCount: 0,
    HostConfig: { Memory: 256 * MiB, MemoryReservation: 64 * MiB },
    ...over,
  };
}

function report(containers: unknown[], extra: Record<string, string> = {}): string {
  const stats = [
    { Name: "shop-app-0123abcd", MemUsage: "46.02MiB / 256MiB", CPUPerc: "12.20%" },
    { Name: "shop-db", MemUsage: "80MiB / 256MiB", CPUPerc: "0.50%" },
  ].map((x) => JSON.stringify(x));
  return [
    "### now",
    String(NOW),
    "### containers",
    JSON.stringify(containers),
    "### stats",
    ...stats,
    "### events",
    extra.events ?? "",
    "### backups",
    "=== shop",
    extra.backup ??
      JSON.stringify({
        site: "shop",
        lastAttempt: "2026-12-02T02:00:05Z",
        lastSuccess: "2026-12-02T02:00:05Z",
        lastError: null,
      }),
    ...(extra.drill ? ["=== shop drill", extra.drill] : []),
    "### heal",
    extra.heal ?? "",
    "### memory",
    extra.memory ?? "",
    "### loadavg",
    "0.52 0.40 0.33 1/200 999",
    "### meminfo",
    "MemTotal:        4000000 kB",
    "MemAvailable:    1000000 kB",
    "### df",
    "Filesystem     1024-blocks     Used Available Capacity Mounted on",
    `/dev/vda         100 ${extra.used ?? "50"} 50      ${extra.used ?? "50"}% /`,
    "### dockerdf",
    JSON.stringify({ Type: "Images", Size: "1.034GB", Reclaimable: "96.15MB (66%)" }),
    "### end",
    "",
  ].join("\n");
}

const SHOP = {
  site: "shop",
  roles: ["app", "db"],
  backupIntervalSeconds: 86400,
  backupDir: "shop",
  domains: ["shop.example.com"],
};

test("sizes as Docker prints them", () => {
  assert.equal(dockerBytes("46.02MiB"), Math.round(46.02 * MiB));
  assert.equal(dockerBytes("1.034GB"), 1_034_000_000);
  assert.equal(dockerBytes("838B"), 838);
  assert.ok(Number.isNaN(dockerBytes("lots")));
});

test("a report cut short is refused rather than read as healthy", () => {
  assert.throws(() => sections("### now\n1\n### containers\n[]\n"), /ended early/);
});

test("a healthy site: every check ok, with memory against reservation and limit", () => {
  const facts = parseHostReport(
    report([
      inspect("shop-app-0123abcd", "shop", "app"),
      inspect("shop-db", "shop", "db", {
        HostConfig: { Memory: 256 * MiB, MemoryReservation: 128 * MiB },
      }),
    ]),
  );
  const checks = judge(facts, [SHOP], []);
  assert.deepEqual(
    checks.filter((c) => c.subject === "shop").map((c) => [c.check, c.verdict, c.detail]),
    [
      [
        "app",
        "ok",
        "shop-app-0123abcd; healthy; mem 46Mi (res 64Mi, limit 256Mi); cpu 12.2%; image img-app",
      ],
      ["db", "ok", "shop-db; healthy; mem 80Mi (res 128Mi, limit 256Mi); cpu 0.5%"],
      ["backup", "ok", "last verified 4.0 h ago (bound 36.0 h)"],
    ],
  );
  assert.deepEqual(
    checks.filter((c) => c.subject === "host").map((c) => [c.check, c.verdict]),
    [
      ["disk /", "ok"],
      ["memory", "info"],
      ["load", "info"],
      ["docker images", "info"],
    ],
  );
  assert.match(statusTable(checks), /^SUBJECT\s+CHECK\s+DETAIL\nshop\s+app\s+ok {3}/);
});

test("each bound, crossed: unhealthy, exits, memory over reservation, missing db, old backup, full disk", () => {
  const facts = parseHostReport(
    report(
      [
        inspect("shop-app-0123abcd", "shop", "app", {
          State: { Status: "running", StartedAt: "x", Health: { Status: "unhealthy" } },
        }),
        inspect("shop-db", "shop", "db", { State: { Status: "exited", StartedAt: "x" } }),
      ],
      {
        events: JSON.stringify({ Actor: { Attributes: { name: "shop-app-0123abcd" } } }),
        backup: JSON.stringify({
          site: "shop",
          lastSuccess: "2026-11-30T17:00:00Z",
          lastError: null,
        }),
        used: "85",
      },
    ),
  );
  const byCheck = Object.fromEntries(judge(facts, [SHOP], []).map((c) => [c.check, c]));
  assert.equal(byCheck.app.verdict, "fail");
  assert.match(byCheck.app.detail, /^unhealthy; 1 exit\(s\) in 24 h; shop-app/);
  assert.deepEqual(
    [byCheck.db.verdict, byCheck.db.detail],
    ["fail", "not running (shop-db: exited)"],
  );
  assert.deepEqual(
    [byCheck.backup.verdict, byCheck.backup.detail],
    ["fail", "last verified 37.0 h ago (bound 36.0 h)"],
  );
  assert.equal(byCheck["disk /"].verdict, "fail");

  const over = parseHostReport(
    report([
      inspect("shop-app-0123abcd", "shop", "app", {
        HostConfig: { Memory: 256 * MiB, MemoryReservation: 32 * MiB },
      }),
    ]),
  );
  // Over its reservation now, but not for the last hour: shown, not a failure.
  const app = judge(over, [{ ...SHOP, roles: ["app"] }], []).find((c) => c.check === "app");
  assert.equal(app?.verdict, "ok");
  assert.match(
    app?.detail ?? "",
    /; over its reservation now, not for the last hour; image img-app$/,
  );
  // Just inside the backup bound: 35.9 h.
  const fresh = parseHostReport(
    report([], {
      backup: JSON.stringify({ lastSuccess: new Date((NOW - 35.9 * 3600) * 1000).toISOString() }),
    }),
  );
  assert.equal(
    judge(fresh, [{ ...SHOP, roles: [] }], []).find((c) => c.check === "backup")?.verdict,
    "ok",
  );
  const failed = parseHostReport(
    report([], {
      backup: JSON.stringify({ lastSuccess: "2026-12-02T02:00:05Z", lastError: "disk full" }),
    }),
  );
  assert.match(
    judge(failed, [{ ...SHOP, roles: [] }], []).find((c) => c.check === "backup")?.detail ?? "",
    /last attempt failed: disk full/,
  );
});

test("certificates: 30 days for public ones, a third of the lifetime for the local CA", () => {
  const facts = parseHostReport(report([]));
  const cert = (days: number, life: number, pub: boolean): CertFacts => ({
    domain: "shop.example.com",
    validFrom: new Date((NOW - (life - days) * 86400) * 1000),
    validTo: new Date((NOW + days * 86400) * 1000),
    issuer: pub ? "R11" : "Caddy Local Authority",
    publiclyTrusted: pub,
  });
  const v = (c: CertFacts) =>
    judge(facts, [{ ...SHOP, roles: [] }], [c]).find((x) => x.check.startsWith("cert"))?.verdict;
  assert.equal(v(cert(31, 90, true)), "ok");
  assert.equal(v(cert(30, 90, true)), "fail");
  assert.equal(v(cert(2.5, 7, false)), "ok"); // local CA: 7-day certificates, bound 2.33 days
  assert.equal(v(cert(2.3, 7, false)), "fail");
  assert.equal(
    judge(
      facts,
      [{ ...SHOP, roles: [] }],
      [{ ...cert(1, 1, true), error: "connection refused" }],
    ).find((x) => x.check.startsWith("cert"))?.detail,
    "connection refused",
  );
});

test("status: what each site of the repository's prod stack should run, and its backup bound", () => {
  const { settings } = readStackFile(path.join(ROOT, "Pulumi.prod.yaml"), "Pulumi.prod.yaml");
  assert.ok(settings);
  const checked = validateAll(loadSiteEntries(path.join(ROOT, "sites"), "sites").entries, [
    { file: "Pulumi.prod.yaml", settings },
  ]);
  const now = new Date("2026-12-02T06:00:00Z");
  const sites = checked.sites.map((s) => s.site);
  const exp = expectations(sites, settings, settings.hosts[0], now);
  const dash = exp.find((e) => e.site === "admin-dashboard");
  assert.deepEqual(dash?.roles, ["app", "docker-proxy"]);
  assert.equal(dash?.backupDir, "admin-dashboard");
  assert.ok(!exp.some((e) => e.site === "vaina"), "a planned site runs nothing");
  assert.equal(scheduleIntervalSeconds("17 2 * * *", now), 86400);
  // Weekdays only: the weekend gap is what the bound must allow.
  assert.equal(scheduleIntervalSeconds("0 3 * * 1-5", now), 3 * 86400);
});

test("status: a bad command line is refused with the usage (exit 2)", async () => {
  for (const argv of [[], ["--stack", "prod", "--bogus"], ["--stack", "-x"]]) {
    const r = await runInProcess(main, argv);
    assert.equal(r.code, 2, argv.join(" "));
    assert.match(r.stderr, /usage: npm run status/);
  }
});

/** Memory samples of a container, one a minute for `minutes`, each `mib` MiB. */
function samples(name: string, minutes: number, mib: (i: number) => number): string {
  return Array.from(
    { length: minutes },
    (_, i) => `${NOW - 60 * (i + 1)} ${name} ${Math.round(mib(i) * MiB)}`,
  ).join("\n");
}

test("memory over the reservation for the last hour fails; a dip or too few samples does not", () => {
  const containers = [
    inspect("shop-app-0123abcd", "shop", "app", {
      HostConfig: { Memory: 256 * MiB, MemoryReservation: 32 * MiB },
    }),
  ];
  const app = (memory: string) =>
    judge(parseHostReport(report(containers, { memory })), [{ ...SHOP, roles: ["app"] }], []).find(
      (c) => c.check === "app",
    )!;
  const hour = app(samples("shop-app-0123abcd", 60, () => 40));
  assert.equal(hour.verdict, "fail");
  assert.match(
    hour.detail,
    /^memory over its reservation 32Mi for the last hour \(59 samples, lowest 40Mi\)/,
  );
  // One sample under the reservation in the hour: not "the last hour".
  assert.equal(app(samples("shop-app-0123abcd", 60, (i) => (i === 30 ? 20 : 40))).verdict, "ok");
  // 40 minutes of samples (the timer was off): not enough to say.
  assert.equal(app(samples("shop-app-0123abcd", 40, () => 40)).verdict, "ok");
  // Another container's samples do not count.
  assert.equal(app(samples("shop-app-fedcba98", 60, () => 40)).verdict, "ok");
});

test("healing: restarts are shown; the hour's limit reached is a failure while it lasts", () => {
  const containers = [inspect("shop-app-0123abcd", "shop", "app")];
  const app = (heal: string) =>
    judge(parseHostReport(report(containers, { heal })), [{ ...SHOP, roles: ["app"] }], []).find(
      (c) => c.check === "app",
    )!;
  const restarted = app(
    [
      `${NOW - 600} shop-app-0123abcd restarted 6`,
      `${NOW - 200} shop-app-0123abcd restarted 6`,
    ].join("\n"),
  );
  assert.equal(restarted.verdict, "ok");
  assert.match(restarted.detail, /; restarted 2x by healing in 24 h; image img-app$/);
  const limit = app(`${NOW - 100} shop-app-0123abcd limit 9`);
  assert.equal(limit.verdict, "fail");
  assert.match(limit.detail, /^stayed unhealthy through the hour's restarts: healing stopped/);
  // Over an hour ago, or another version: no longer a failure.
  assert.equal(app(`${NOW - 3700} shop-app-0123abcd limit 9`).verdict, "fail", "two ticks' slack");
  assert.equal(app(`${NOW - 3800} shop-app-0123abcd limit 9`).verdict, "ok");
  assert.equal(app(`${NOW - 100} shop-app-fedcba98 limit 9`).verdict, "ok");
  // Healing's restarts are Docker "die" events too: those are not counted as exits, others are.
  const die = JSON.stringify({ Actor: { Attributes: { name: "shop-app-0123abcd" } } });
  const withEvents = (events: string) =>
    judge(
      parseHostReport(
        report(containers, { heal: `${NOW - 600} shop-app-0123abcd restarted 6`, events }),
      ),
      [{ ...SHOP, roles: ["app"] }],
      [],
    ).find((c) => c.check === "app")!;
  assert.equal(withEvents(die).verdict, "ok");
  const twice = withEvents(`${die}\n${die}`);
  assert.equal(twice.verdict, "fail");
  assert.match(twice.detail, /^1 exit\(s\) in 24 h/);
  // Lines that are not records are ignored.
  assert.equal(app("garbage\n12 x").verdict, "ok");
});

test("restore drill: none yet, failed, older than its interval, and fresh", () => {
  const site = { ...SHOP, roles: [], drillIntervalSeconds: 7 * 86400 };
  const drill = (d?: Record<string, unknown>) =>
    judge(parseHostReport(report([], d ? { drill: JSON.stringify(d) } : {})), [site], []).find(
      (c) => c.check === "drill",
    )!;
  assert.deepEqual(
    [drill().verdict, drill().detail],
    [
      "fail",
      "no restore drill has run yet (its timer runs it; npm run restore -- --into-scratch runs one now)",
    ],
  );
  const iso = (secondsAgo: number) => new Date((NOW - secondsAgo) * 1000).toISOString();
  const failed = drill({
    lastAttempt: iso(60),
    lastSuccess: iso(86400),
    lastError: "row counts differ",
  });
  assert.equal(failed.verdict, "fail");
  assert.match(failed.detail, /last drill failed: row counts differ/);
  assert.equal(drill({ lastSuccess: null, lastError: "no verified dump" }).verdict, "fail");
  // The bound is the interval and an hour: 7 d 1 h.
  assert.equal(drill({ lastSuccess: iso(7 * 86400 + 3500), lastError: null }).verdict, "ok");
  const late = drill({ lastSuccess: iso(7 * 86400 + 3700), lastError: null });
  assert.equal(late.verdict, "fail");
  assert.match(late.detail, /^last passed .* ago \(bound/);
});

test("DNS: a proxied record answers Cloudflare only; a DNS-only one the host only", () => {
  const site = {
    ...SHOP,
    roles: [],
    records: [
      { name: "shop.example.com", type: "A" as const, content: "203.0.113.10", proxied: true },
      { name: "api.example.com", type: "A" as const, content: "203.0.113.10", proxied: false },
    ],
  };
  const verdicts = (answers: Record<string, string[] | Error>) =>
    judgeDns(
      site,
      Object.entries(answers).map(([domain, a]) =>
        a instanceof Error ? { domain, answers: [], error: a.message } : { domain, answers: a },
      ),
    ).map((c) => [c.check, c.verdict, c.detail]);
  assert.deepEqual(
    verdicts({
      "shop.example.com": ["104.21.3.4", "172.67.1.2"],
      "api.example.com": ["203.0.113.10"],
    }),
    [
      ["dns shop.example.com", "ok", "104.21.3.4, 172.67.1.2 (Cloudflare, proxied)"],
      ["dns api.example.com", "ok", "203.0.113.10 (the host, DNS only)"],
    ],
  );
  // The proxy switched off: the origin's address is public.
  assert.deepEqual(verdicts({ "shop.example.com": ["203.0.113.10"] })[0].slice(0, 2), [
    "dns shop.example.com",
    "fail",
  ]);
  // A stray AAAA record outside Cloudflare's ranges exposes the origin; Cloudflare's own is fine.
  assert.equal(verdicts({ "shop.example.com": ["104.21.3.4", "2001:db8::1"] })[0][1], "fail");
  assert.equal(
    verdicts({ "shop.example.com": ["104.21.3.4", "2606:4700:3030::6815:1"] })[0][1],
    "ok",
  );
  // A DNS-only record pointing elsewhere, or also elsewhere; no answer at all.
  assert.equal(verdicts({ "api.example.com": ["198.51.100.7"] })[0][1], "fail");
  assert.equal(verdicts({ "api.example.com": ["203.0.113.10", "198.51.100.7"] })[0][1], "fail");
  assert.deepEqual(verdicts({ "api.example.com": new Error("no answer: ENOTFOUND") })[0], [
    "dns api.example.com",
    "fail",
    "no answer: ENOTFOUND",
  ]);
  // Only declared records are judged.
  assert.deepEqual(verdicts({ "other.example.com": ["1.2.3.4"] }), []);
});

test("addresses in CIDR ranges, both families, at the edges of a block", () => {
  assert.ok(inRanges("104.16.0.0", ["104.16.0.0/13"]));
  assert.ok(inRanges("104.23.255.255", ["104.16.0.0/13"]));
  assert.ok(!inRanges("104.24.0.0", ["104.16.0.0/13"]));
  assert.ok(inRanges("2606:4700::6810:1", ["2606:4700::/32"]));
  assert.ok(!inRanges("2606:4701::1", ["2606:4700::/32"]));
  assert.ok(!inRanges("104.16.0.1", ["2606:4700::/32"]), "no cross-family match");
  assert.ok(!inRanges("not-an-ip", ["0.0.0.0/0"]));
});
