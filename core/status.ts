/**
 * What `npm run status` reports, as data: the collector's output on a host (components/ops/
 * status-collect.sh) parsed, and every check judged against its bound. Pure: the command collects
 * and prints, the tests feed recorded output.
 *
 * Bounds: a container unhealthy, restarting or not running; restarts in the last 24 h; memory over
 * its reservation; a backup older than 1.5x its schedule's interval or failed; a certificate with 30
 * days or less (publicly trusted) or less than a third of its lifetime left; a file system 85 % full.
 */
import { cloudflareRanges, inRanges } from "./cloudflare";
import type { PlannedRecord } from "./dns";

/** The sections the collector prints, by name (the text after `### `). */
export function sections(output: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  let lines: string[] = [];
  for (const line of output.split("\n")) {
    const m = /^### (\w+)$/.exec(line);
    if (m) {
      if (name) out.set(name, lines.join("\n"));
      name = m[1];
      lines = [];
    } else if (name) {
      lines.push(line);
    }
  }
  if (name) out.set(name, lines.join("\n"));
  if (!out.has("end")) throw new Error("status: the host's report ended early (no end marker)");
  return out;
}

export interface ContainerFacts {
  name: string;
  site?: string;
  role?: string;
  image: string;
  /** The commit the image came from, when its label says (org.opencontainers.image.revision). */
  revision?: string;
  state: string;
  health?: string;
  startedAt: string;
  restartCount: number;
  memoryReservationBytes: number;
  memoryLimitBytes: number;
  memoryUsedBytes?: number;
  cpuPercent?: number;
  /** Exits in the last 24 h (Docker's `die` events). */
  exits24h: number;
}

export interface BackupFacts {
  dir: string;
  site?: string;
  lastAttempt?: string;
  lastSuccess?: string | null;
  lastError?: string | null;
  /** The scheduled restore drill's record (drill.json), when one ran. */
  drill?: JobRecord;
  /** The off-site upload's record (offsite.json), when one ran. */
  offsite?: JobRecord;
}

/** A job's record beside a site's backups: when it last ran, last passed, and its last error. */
export interface JobRecord {
  lastAttempt?: string;
  lastSuccess: string | null;
  lastError: string | null;
}

/** The records the collector prints after a site's status.json, by the word after its directory. */
const SIDE_RECORDS = { drill: "drill.json", offsite: "offsite.json" } as const;

/** One line of the ops timer's heal.log: a restart, or the hourly limit reached. */
export interface HealEvent {
  at: number;
  container: string;
  event: "restarted" | "limit";
  failingStreak: number;
}

/** One line of the ops timer's memory.log: a container's memory at a minute. */
export interface MemorySample {
  at: number;
  container: string;
  bytes: number;
}

export interface HostFacts {
  now: number;
  containers: ContainerFacts[];
  backups: BackupFacts[];
  load: [number, number, number];
  memory: { totalBytes: number; availableBytes: number };
  disks: { mount: string; usedPercent: number }[];
  docker: { type: string; size: string; reclaimable: string }[];
  heal: HealEvent[];
  memorySamples: MemorySample[];
}

interface Inspect {
  Name: string;
  Config: { Image: string; Labels?: Record<string, string> | null };
  State: { Status: string; StartedAt: string; Health?: { Status: string } };
  RestartCount: number;
  HostConfig: { Memory: number; MemoryReservation: number };
}

/** Parses the collector's report of one host. */
export function parseHostReport(output: string): HostFacts {
  const s = sections(output);
  const inspect = JSON.parse(s.get("containers") || "[]") as Inspect[];
  const stats = new Map<string, { mem?: number; cpu?: number }>();
  for (const line of (s.get("stats") ?? "").split("\n")) {
    if (!line.trim()) continue;
    const j = JSON.parse(line) as { Name: string; MemUsage: string; CPUPerc: string };
    const used = j.MemUsage.split("/")[0].trim();
    stats.set(j.Name, { mem: dockerBytes(used), cpu: Number.parseFloat(j.CPUPerc) });
  }
  const exits = new Map<string, number>();
  for (const line of (s.get("events") ?? "").split("\n")) {
    if (!line.trim()) continue;
    const j = JSON.parse(line) as { Actor?: { Attributes?: { name?: string } } };
    const n = j.Actor?.Attributes?.name;
    if (n) exits.set(n, (exits.get(n) ?? 0) + 1);
  }
  const containers = inspect.map((c): ContainerFacts => {
    const name = c.Name.replace(/^\//, "");
    const labels = c.Config.Labels ?? {};
    const st = stats.get(name);
    return {
      name,
      site: labels["agi.site"],
      role: labels["agi.role"],
      image: c.Config.Image,
      revision: labels["org.opencontainers.image.revision"],
      state: c.State.Status,
      health: c.State.Health?.Status,
      startedAt: c.State.StartedAt,
      restartCount: c.RestartCount,
      memoryReservationBytes: c.HostConfig.MemoryReservation,
      memoryLimitBytes: c.HostConfig.Memory,
      memoryUsedBytes: st?.mem,
      cpuPercent: st?.cpu,
      exits24h: exits.get(name) ?? 0,
    };
  });
  const backups: BackupFacts[] = [];
  const text = s.get("backups") ?? "";
  for (const part of text.split(/^=== /m).slice(1)) {
    const nl = part.indexOf("\n");
    const head = part.slice(0, nl).trim();
    const side = (Object.keys(SIDE_RECORDS) as (keyof typeof SIDE_RECORDS)[]).find((k) =>
      head.endsWith(` ${k}`),
    );
    if (side) {
      const owner = backups.find((b) => b.dir === head.slice(0, -(side.length + 1)));
      if (!owner) continue;
      try {
        const j = JSON.parse(part.slice(nl + 1)) as Record<string, unknown>;
        owner[side] = {
          lastAttempt: typeof j.lastAttempt === "string" ? j.lastAttempt : undefined,
          lastSuccess: typeof j.lastSuccess === "string" ? j.lastSuccess : null,
          lastError: typeof j.lastError === "string" ? j.lastError : null,
        };
      } catch {
        owner[side] = { lastSuccess: null, lastError: `${SIDE_RECORDS[side]} is not valid JSON` };
      }
      continue;
    }
    const dir = head;
    try {
      const j = JSON.parse(part.slice(nl + 1)) as Record<string, unknown>;
      backups.push({
        dir,
        site: typeof j.site === "string" ? j.site : undefined,
        lastAttempt: typeof j.lastAttempt === "string" ? j.lastAttempt : undefined,
        lastSuccess: (j.lastSuccess as string | null | undefined) ?? null,
        lastError: (j.lastError as string | null | undefined) ?? null,
      });
    } catch {
      backups.push({ dir, lastError: "status.json is not valid JSON" });
    }
  }
  const [l1, l5, l15] = (s.get("loadavg") ?? "").trim().split(/\s+/).map(Number);
  const mem = Object.fromEntries(
    (s.get("meminfo") ?? "")
      .split("\n")
      .map((l) => /^(\w+):\s+(\d+) kB/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], Number(m[2]) * 1024]),
  );
  const disks: HostFacts["disks"] = [];
  for (const line of (s.get("df") ?? "").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const mount = f.slice(5).join(" ");
    if (!disks.some((d) => d.mount === mount))
      disks.push({ mount, usedPercent: Number.parseInt(f[4], 10) });
  }
  const docker = (s.get("dockerdf") ?? "")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      const j = JSON.parse(l) as { Type: string; Size: string; Reclaimable: string };
      return { type: j.Type, size: j.Size, reclaimable: j.Reclaimable };
    });
  const lines = (name: string) =>
    (s.get(name) ?? "")
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 3 && /^\d+$/.test(f[0]));
  const heal = lines("heal")
    .filter((f) => f[2] === "restarted" || f[2] === "limit")
    .map((f): HealEvent => ({
      at: Number(f[0]),
      container: f[1],
      event: f[2] as HealEvent["event"],
      failingStreak: Number(f[3] ?? 0),
    }));
  const memorySamples = lines("memory").map((f): MemorySample => ({
    at: Number(f[0]),
    container: f[1],
    bytes: Number(f[2]),
  }));
  return {
    now: Number((s.get("now") ?? "").trim()),
    containers,
    backups,
    load: [l1, l5, l15],
    memory: { totalBytes: mem.MemTotal ?? 0, availableBytes: mem.MemAvailable ?? 0 },
    disks,
    docker,
    heal,
    memorySamples,
  };
}

/** Docker's human sizes (`46.02MiB`, `1.034GB`, `838B`) in bytes. */
export function dockerBytes(text: string): number {
  const m = /^([\d.]+)\s*([KMGT]?i?B)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const n = Number.parseFloat(m[1]);
  const unit = m[2];
  const pow = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit[0] as "B"] ?? 0;
  const base = unit.includes("i") ? 1024 : 1000;
  return Math.round(n * base ** pow);
}

export type Verdict = "ok" | "fail" | "info";

export interface Check {
  /** The site, or "host". */
  subject: string;
  check: string;
  verdict: Verdict;
  detail: string;
}

export interface CertFacts {
  domain: string;
  validFrom: Date;
  validTo: Date;
  issuer: string;
  /** Issued by a public CA (not the edge's local CA). */
  publiclyTrusted: boolean;
  error?: string;
}

export interface SiteExpectation {
  site: string;
  /** Roles of the containers the site should run (app, db, docker-proxy). */
  roles: string[];
  /** Seconds between two runs of the backup schedule, when the site has backups. */
  backupIntervalSeconds?: number;
  /** The site's backup directory name under the host's backup root. */
  backupDir?: string;
  /** Seconds between two runs of the restore drill's schedule, when the site has backups. */
  drillIntervalSeconds?: number;
  /** Whether the stack copies the site's dumps off-site (its offsite.json is judged). */
  offsite?: boolean;
  domains: string[];
  /** The DNS records its site file declares, when the stack manages or lists DNS. */
  records?: PlannedRecord[];
}

/** What a resolver answered for a domain's A and AAAA records (addresses of both families). */
export interface DnsFacts {
  domain: string;
  answers: string[];
  error?: string;
}

/**
 * The DNS checks of a site: each declared record against what resolvers answer, A and AAAA. A
 * proxied record must answer only Cloudflare's addresses, of both families (the host's own address
 * there, or a stray AAAA record, exposes the origin); a DNS-only one exactly the host's address.
 */
export function judgeDns(site: SiteExpectation, dns: DnsFacts[]): Check[] {
  const out: Check[] = [];
  for (const r of site.records ?? []) {
    const d = dns.find((x) => x.domain === r.name);
    if (!d) continue;
    const check = `dns ${r.name}`;
    if (d.error || d.answers.length === 0) {
      out.push({
        subject: site.site,
        check,
        verdict: "fail",
        detail: d.error ?? "no address record",
      });
      continue;
    }
    const got = [...d.answers].sort().join(", ");
    const ok = r.proxied
      ? d.answers.every((a) => inRanges(a, cloudflareRanges()))
      : d.answers.length === 1 && d.answers[0] === r.content;
    out.push({
      subject: site.site,
      check,
      verdict: ok ? "ok" : "fail",
      detail: r.proxied
        ? ok
          ? `${got} (Cloudflare, proxied)`
          : `${got}: not only Cloudflare's addresses, though the record should be proxied to ${r.content}`
        : ok
          ? `${got} (the host, DNS only)`
          : `${got}: should be ${r.content} only`,
    });
  }
  return out;
}

/** A memory sample every minute: an hour "over" needs this many of the last hour's, all over. */
export const MEMORY_HOUR_MIN_SAMPLES = 50;
/**
 * How long a "limit" line of healing counts: the hour, and two runs of the minute timer, which writes
 * the next line only once the last one is an hour old (so the failure never lapses between them).
 */
export const HEAL_LIMIT_WINDOW = 3600 + 120;
/** What a drill may be late by, beyond its interval (the drill's own run time, a slow timer). */
export const DRILL_SLACK_SECONDS = 3600;

const MiB = 1024 * 1024;
const mib = (b: number) => `${(b / MiB).toFixed(0)}Mi`;
const DAY = 86400;

/** Judges one host's facts against what its sites should have. */
export function judge(
  facts: HostFacts,
  sites: SiteExpectation[],
  certs: CertFacts[],
  now = facts.now,
): Check[] {
  const out: Check[] = [];
  for (const site of sites) {
    const mine = facts.containers.filter((c) => c.site === site.site);
    for (const role of site.roles) {
      const cs = mine.filter((c) => c.role === role);
      const running = cs.filter((c) => c.state === "running");
      if (!running.length) {
        out.push({
          subject: site.site,
          check: `${role}`,
          verdict: "fail",
          detail: cs.length
            ? `not running (${cs.map((c) => `${c.name}: ${c.state}`).join(", ")})`
            : "no container",
        });
        continue;
      }
      for (const c of running) {
        const problems: string[] = [];
        if (c.health && c.health !== "healthy") problems.push(c.health);
        // Healing's own restarts are shown below, not counted as exits.
        const healedExits = facts.heal.filter(
          (h) => h.container === c.name && h.event === "restarted" && h.at > now - DAY,
        ).length;
        const exits = Math.max(0, c.exits24h - healedExits);
        if (exits > 0) problems.push(`${exits} exit(s) in 24 h`);
        const used = c.memoryUsedBytes;
        const res = c.memoryReservationBytes;
        const hour = facts.memorySamples.filter((m) => m.container === c.name && m.at > now - 3600);
        const notes: string[] = [];
        if (res > 0 && hour.length >= MEMORY_HOUR_MIN_SAMPLES && hour.every((m) => m.bytes > res)) {
          const lowest = Math.min(...hour.map((m) => m.bytes));
          problems.push(
            `memory over its reservation ${mib(res)} for the last hour (${hour.length} samples, lowest ${mib(lowest)})`,
          );
        } else if (used !== undefined && res > 0 && used > res) {
          notes.push(`over its reservation now, not for the last hour`);
        }
        if (role === "app") {
          const healed = facts.heal.filter(
            (h) => h.container === c.name && h.event === "restarted" && h.at > now - DAY,
          );
          if (healed.length) notes.push(`restarted ${healed.length}x by healing in 24 h`);
          if (
            facts.heal.some(
              (h) =>
                h.container === c.name && h.event === "limit" && h.at > now - HEAL_LIMIT_WINDOW,
            )
          ) {
            problems.push(
              `stayed unhealthy through the hour's restarts: healing stopped, look at it (docker logs ${c.name})`,
            );
          }
        }
        const parts = [
          `${c.name}`,
          c.health ?? c.state,
          used !== undefined
            ? `mem ${mib(used)} (res ${mib(c.memoryReservationBytes)}, limit ${mib(c.memoryLimitBytes)})`
            : "mem ?",
          c.cpuPercent !== undefined ? `cpu ${c.cpuPercent.toFixed(1)}%` : "cpu ?",
          ...notes,
        ];
        if (role === "app")
          parts.push(`image ${c.image}${c.revision ? ` @${c.revision.slice(0, 12)}` : ""}`);
        out.push({
          subject: site.site,
          check: role,
          verdict: problems.length ? "fail" : "ok",
          detail: [...problems, ...parts].join("; "),
        });
      }
    }
    if (site.backupDir) {
      const b = facts.backups.find((x) => x.dir === site.backupDir);
      if (site.backupIntervalSeconds !== undefined) {
        out.push(
          judgeRecord(site.site, "backup", b, 1.5 * site.backupIntervalSeconds, now, {
            missing: "no status record",
            never: "no verified backup yet",
            last: "last verified",
            failed: "last attempt failed",
          }),
        );
        if (site.offsite) {
          // A copy is due after each backup; one missed run is allowed for, as for the backup.
          out.push(
            judgeRecord(site.site, "offsite", b?.offsite, 1.5 * site.backupIntervalSeconds, now, {
              missing:
                "no off-site upload has run yet (the backup timer runs it after each backup)",
              never: "no off-site upload has succeeded yet",
              last: "last complete upload",
              failed: "last upload failed",
            }),
          );
        }
      }
      if (site.drillIntervalSeconds !== undefined) {
        out.push(
          judgeRecord(
            site.site,
            "drill",
            b?.drill,
            site.drillIntervalSeconds + DRILL_SLACK_SECONDS,
            now,
            {
              missing:
                "no restore drill has run yet (its timer runs it; npm run restore -- --into-scratch runs one now)",
              never: "no restore drill has passed yet",
              last: "last passed",
              failed: "last drill failed",
            },
          ),
        );
      }
    }
    for (const d of site.domains) {
      const c = certs.find((x) => x.domain === d);
      if (!c) continue;
      if (c.error) {
        out.push({ subject: site.site, check: `cert ${d}`, verdict: "fail", detail: c.error });
        continue;
      }
      const left = (c.validTo.getTime() / 1000 - now) / DAY;
      const life = (c.validTo.getTime() - c.validFrom.getTime()) / 1000 / DAY;
      const bound = c.publiclyTrusted ? Math.max(30, life / 3) : life / 3;
      out.push({
        subject: site.site,
        check: `cert ${d}`,
        verdict: left <= bound ? "fail" : "ok",
        detail: `${left.toFixed(1)} days left of ${life.toFixed(0)} (bound ${bound.toFixed(1)}); issuer ${c.issuer}`,
      });
    }
  }
  for (const d of facts.disks) {
    out.push({
      subject: "host",
      check: `disk ${d.mount}`,
      verdict: d.usedPercent >= 85 ? "fail" : "ok",
      detail: `${d.usedPercent}% used`,
    });
  }
  out.push({
    subject: "host",
    check: "memory",
    verdict: "info",
    detail: `${mib(facts.memory.availableBytes)} available of ${mib(facts.memory.totalBytes)}`,
  });
  out.push({ subject: "host", check: "load", verdict: "info", detail: facts.load.join(" ") });
  for (const x of facts.docker) {
    out.push({
      subject: "host",
      check: `docker ${x.type.toLowerCase()}`,
      verdict: "info",
      detail: `${x.size} (reclaimable ${x.reclaimable})`,
    });
  }
  return out;
}

/**
 * A job's record (a backup's status.json, a drill's drill.json) against its bound: out of bounds when
 * missing, never successful, failed last time, or its last success older than `bound` seconds.
 */
function judgeRecord(
  subject: string,
  check: string,
  record: { lastSuccess?: string | null; lastError?: string | null } | undefined,
  bound: number,
  now: number,
  words: { missing: string; never: string; last: string; failed: string },
): Check {
  if (!record?.lastSuccess) {
    return {
      subject,
      check,
      verdict: "fail",
      detail: record
        ? `${words.never}${record.lastError ? `; last error: ${record.lastError}` : ""}`
        : words.missing,
    };
  }
  const age = now - Date.parse(record.lastSuccess) / 1000;
  return {
    subject,
    check,
    verdict: age > bound || record.lastError ? "fail" : "ok",
    detail:
      `${words.last} ${ago(age)} ago (bound ${ago(bound)})` +
      (record.lastError ? `; ${words.failed}: ${record.lastError}` : ""),
  };
}

function ago(seconds: number): string {
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * DAY) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / DAY).toFixed(1)} days`;
}

/** The checks as a table for people. */
export function statusTable(checks: Check[]): string {
  const w1 = Math.max(7, ...checks.map((c) => c.subject.length));
  const w2 = Math.max(5, ...checks.map((c) => c.check.length));
  const mark = { ok: "ok  ", fail: "FAIL", info: "    " };
  const lines = [`${"SUBJECT".padEnd(w1)}  ${"CHECK".padEnd(w2)}  ${"    "}  DETAIL`];
  for (const c of checks) {
    lines.push(`${c.subject.padEnd(w1)}  ${c.check.padEnd(w2)}  ${mark[c.verdict]}  ${c.detail}`);
  }
  return `${lines.join("\n")}\n`;
}
