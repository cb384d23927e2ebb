/**
 * The host timers of the backups (core/timers.ts): the cron schedule translated to systemd calendars
 * and checked against systemd's own reading of them, the unit files checked by systemd-analyze, and
 * the install and remove commands run on a directory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { cronNextFires, cronProblem } from "../core/cron";
import { defaultBackupSchedule } from "../core/site";
import {
  backupExecStart,
  backupUnits,
  installUnitsCommand,
  onCalendar,
  removeUnitsCommand,
  type BackupJob,
  type JobHost,
} from "../core/timers";
import { tempDir } from "./helpers";

const ANALYZE = "/usr/bin/systemd-analyze";
const skip = !fs.existsSync(ANALYZE) && !process.env.CI ? "systemd-analyze not installed" : false;

/** systemd's next `n` elapses of the calendars after `base`, merged (UTC, ISO, whole minutes). */
function systemdFires(calendars: string[], base: Date, n: number): string[] {
  const r = spawnSync(
    ANALYZE,
    [
      "calendar",
      `--iterations=${n}`,
      `--base-time=@${Math.floor(base.getTime() / 1000)}`,
      ...calendars,
    ],
    { encoding: "utf8", env: { ...process.env, TZ: "UTC" } },
  );
  assert.equal(r.status, 0, `${calendars.join(" | ")}: ${r.stderr}`);
  const out = new Set<string>();
  for (const m of r.stdout.matchAll(/(?:Next elapse|Iter\. #\d+): \w+ (\S+) (\S+) UTC/g)) {
    out.add(`${m[1]}T${m[2].slice(0, 5)}Z`);
  }
  return [...out].sort().slice(0, n);
}

const iso = (d: Date) => d.toISOString().slice(0, 16) + "Z";

/** A deterministic stream of numbers (the same expressions on every run). */
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** A random valid field within lo..hi: *, N, a-b, * /n, a-b/n, N/n or a list of them. */
function field(r: () => number, lo: number, hi: number): string {
  const int = (a: number, b: number) => a + Math.floor(r() * (b - a + 1));
  const part = (): string => {
    const k = r();
    if (k < 0.2) return "*";
    if (k < 0.45) return String(int(lo, hi));
    const a = int(lo, hi);
    const b = int(a, hi);
    if (k < 0.65) return `${a}-${b}`;
    if (k < 0.8) return `*/${int(1, Math.max(1, Math.ceil((hi - lo) / 2)))}`;
    if (k < 0.9) return `${a}-${b}/${int(1, 5)}`;
    return `${a}/${int(1, 7)}`;
  };
  return Array.from({ length: r() < 0.7 ? 1 : int(2, 3) }, part).join(",");
}

test(
  "the timer's calendars fire exactly when cron would, for many schedules (systemd's own reading)",
  { skip },
  () => {
    const fixed = [
      "17 2 * * *",
      "*/15 * * * *",
      "0 3 * * 0",
      "0 3 * * 7",
      "0 3 1 * 1", // both day fields restricted: the 1st or a Monday
      "0 3 */2 * 1", // "*/2" does not restrict the day: odd days that are Mondays
      "0 3 1,15 * 1-5",
      "30 4 29 2 *", // only 29 February
      "0 0 31 * *",
      "5/20 0-10/5 * 6 *",
      "0 08 * * *",
      ...["a", "b", "site-42"].map(defaultBackupSchedule),
    ];
    const r = rng(20261202);
    const random: string[] = [];
    while (random.length < 50) {
      const cron = [
        field(r, 0, 59),
        field(r, 0, 23),
        field(r, 1, 31),
        field(r, 1, 12),
        field(r, 0, 7),
      ].join(" ");
      if (cronProblem(cron) === undefined) random.push(cron);
    }
    for (const [i, cron] of [...fixed, ...random].entries()) {
      const base = new Date(Date.UTC(2026, (i * 5) % 12, 1 + (i % 27), i % 24, (i * 7) % 60, 30));
      const n = 12;
      const want = cronNextFires(cron, base, n).map(iso);
      assert.equal(want.length, n, cron);
      assert.deepEqual(
        systemdFires(onCalendar(cron), base, n),
        want,
        `${cron} after ${base.toISOString()}`,
      );
    }
  },
);

test("calendars: explicit values, UTC, two calendars for cron's either-day rule", () => {
  assert.deepEqual(onCalendar("17 2 * * *"), ["*-*-* 02:17:00 UTC"]);
  assert.deepEqual(onCalendar("0 3 1,15 * 1-5"), [
    "*-*-01,15 03:00:00 UTC",
    "Mon,Tue,Wed,Thu,Fri *-*-* 03:00:00 UTC",
  ]);
  assert.deepEqual(onCalendar("0 3 */2 6 7"), [
    "Sun *-06-01,03,05,07,09,11,13,15,17,19,21,23,25,27,29,31 03:00:00 UTC",
  ]);
  assert.throws(() => onCalendar("0 3 31 2 *"), /never fires/);
});

const host: JobHost = {
  target: { kind: "local" },
  scriptDir: "/srv/agi/bin/backup",
  unitDir: "/srv/agi/timers",
  secretDir: "/srv/agi/secrets",
  shared: { container: "supabase-db", port: 5432 },
};
const job = (mode: "dedicated" | "shared"): BackupJob => ({
  site: "shop",
  database: "shop_db",
  mode,
  dir: "/srv/agi/backups/shop",
  retention: { daily: 7, weekly: 4, monthly: 12 },
});

test("the service runs the installed script with the site's job words; the secret stays a path", () => {
  assert.equal(
    backupExecStart(job("dedicated"), host),
    "/bin/sh /srv/agi/bin/backup/site-backup.sh backup site=shop database=shop_db dir=/srv/agi/backups/shop retention=7:4:12 dedicated=shop-db",
  );
  assert.equal(
    backupExecStart(job("shared"), host),
    "/bin/sh /srv/agi/bin/backup/site-backup.sh backup site=shop database=shop_db dir=/srv/agi/backups/shop retention=7:4:12 shared=supabase-db:5432 network=agi-network role=shop_db_app pgpass=/srv/agi/secrets/shop.pgpass",
  );
  // A word a shell would read as syntax never reaches the unit.
  assert.throws(
    () => backupExecStart({ ...job("dedicated"), dir: "/srv/agi/x;reboot" }, host),
    /unsafe argument/,
  );
  assert.throws(
    () => backupExecStart(job("shared"), { ...host, shared: undefined }),
    /needs the host's sharedDatabase/,
  );
});

test(
  "systemd-analyze verify accepts the generated units, and refuses a broken one",
  { skip },
  () => {
    const dir = tempDir("units");
    const runtime = tempDir("units-runtime");
    fs.chmodSync(runtime, 0o700);
    const verify = (files: string[]) =>
      spawnSync(ANALYZE, ["verify", "--user", ...files], {
        encoding: "utf8",
        env: { ...process.env, XDG_RUNTIME_DIR: runtime },
      });
    for (const mode of ["dedicated", "shared"] as const) {
      const u = backupUnits(job(mode), host, "0 3 1 * 1");
      const service = path.join(dir, `${u.name}.service`);
      const timer = path.join(dir, `${u.name}.timer`);
      fs.writeFileSync(service, u.service);
      fs.writeFileSync(timer, u.timer);
      const r = verify([timer, service]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(
        u.timer,
        /^OnCalendar=\*-\*-01 03:00:00 UTC\nOnCalendar=Mon \*-\*-\* 03:00:00 UTC\nPersistent=true$/m,
      );
      // The same unit with a calendar systemd cannot read is refused: the check can fail.
      fs.writeFileSync(timer, u.timer.replace(/^OnCalendar=.*$/gm, "OnCalendar=3 o'clock"));
      assert.notEqual(verify([timer, service]).status, 0);
    }
  },
);

test("install writes both units atomically, remove takes them away; no user systemd is an error", () => {
  const root = tempDir("timers");
  const h = { ...host, unitDir: path.join(root, "timers") };
  const u = backupUnits(job("dedicated"), h, "17 2 * * *");
  const sh = (script: string, env: Record<string, string> = {}) =>
    spawnSync("/bin/sh", ["-c", script], { encoding: "utf8", env: { ...process.env, ...env } });
  let r = sh(installUnitsCommand(u, h), { AGI_TIMERS: "files" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /not enabled \(AGI_TIMERS=files\)/);
  assert.deepEqual(fs.readdirSync(h.unitDir).sort(), [
    "agi-backup-shop.service",
    "agi-backup-shop.timer",
  ]);
  assert.equal(fs.readFileSync(path.join(h.unitDir, "agi-backup-shop.service"), "utf8"), u.service);
  assert.equal(fs.readFileSync(path.join(h.unitDir, "agi-backup-shop.timer"), "utf8"), u.timer);
  // Without a user manager (as here) and without AGI_TIMERS=files, a deploy must not pass silently.
  const noManager = sh("systemctl --user show-environment >/dev/null 2>&1");
  if (noManager.status !== 0) {
    r = sh(installUnitsCommand(u, h), { AGI_TIMERS: "" });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no systemd user manager; run 'loginctl enable-linger'/);
  }
  r = sh(removeUnitsCommand(u, h), { AGI_TIMERS: "files" });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(h.unitDir), []);
});
