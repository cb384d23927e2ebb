/**
 * npm run status -- --stack NAME [--sites DIR] [--json]
 * What actually runs, from each host of the stack (over SSH with the pinned key, or locally): every
 * site's containers (state, health, exits in 24 h, memory against reservation and limit, CPU, the
 * app's image), the age of its last verified backup against its schedule, every domain's
 * certificate as the live edge serves it (SNI), and the host's load, memory, disks and Docker's use.
 * A table, or JSON with --json. Progress on standard error. Exit 0 when every check is within its
 * bound, 1 when one is not (or a host cannot be reached), 2 on a bad command line.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import { type Io, parseStrict, processIo, runCommand, readCommandLine } from "./args";
import { hostInvocation } from "./restore";
import { opsHost } from "../core/ops";
import { hostOf } from "../core/capacity";
import { hasRoute } from "../core/caddy";
import { cronNextFires } from "../core/cron";
import { databaseName, siteSchedules, type Site } from "../core/site";
import {
  judge,
  parseHostReport,
  statusTable,
  type CertFacts,
  judgeDns,
  type Check,
  type DnsFacts,
  type SiteExpectation,
} from "../core/status";
import { plannedRecords } from "../core/dns";
import { promises as dnsPromises } from "node:dns";
import { formatProblem, loadSiteEntries, readStackFile, validateAll } from "../core/validate";
import type { HostSettings, StackSettings } from "../stacks/settings";

const USAGE = "usage: npm run status -- --stack NAME [--sites DIR] [--json]";
const COLLECTOR = fs.readFileSync(
  path.join(__dirname, "..", "components", "ops", "status-collect.sh"),
  "utf8",
);

/** The longest gap between two of the schedule's next runs: what "on time" allows. */
export function scheduleIntervalSeconds(schedule: string, now: Date): number {
  const fires = cronNextFires(schedule, now, 32);
  let gap = 0;
  for (let i = 1; i < fires.length; i++)
    gap = Math.max(gap, fires[i].getTime() - fires[i - 1].getTime());
  return gap / 1000;
}

/** What each site on `host` should have running, by the site files. */
export function expectations(
  sites: Site[],
  settings: StackSettings,
  host: HostSettings,
  now: Date,
): SiteExpectation[] {
  return sites
    .filter((s) => hostOf(s, settings) === host.name && s.status !== "planned")
    .map((s): SiteExpectation => {
      if (s.kind !== "website")
        return { site: s.name, roles: [], domains: hasRoute(s) ? [...s.domains] : [] };
      const roles: string[] = [];
      if (s.status === "active") roles.push("app");
      if (s.database.mode === "dedicated") roles.push("db");
      if (s.status === "active" && s.app.dockerReadAccess) roles.push("docker-proxy");
      const backups = databaseName(s) !== undefined;
      return {
        site: s.name,
        roles,
        backupIntervalSeconds: backups
          ? scheduleIntervalSeconds(siteSchedules(s).backup, now)
          : undefined,
        backupDir: backups ? s.name : undefined,
        drillIntervalSeconds: backups
          ? scheduleIntervalSeconds(siteSchedules(s).drill, now)
          : undefined,
        offsite: backups && settings.offsite !== undefined,
        domains: hasRoute(s) ? [...s.domains] : [],
        ...(settings.dns.provider !== "none" && hasRoute(s)
          ? { records: plannedRecords(s, host.publicIp) }
          : {}),
      };
    });
}

/** Runs the collector on the host; its whole standard output. */
function collect(host: HostSettings, timeoutMs: number): Promise<string> {
  const inv = hostInvocation(host, [`${host.root}/backups`, opsHost(host).stateDir]);
  return new Promise((resolve, reject) => {
    const child = spawn(inv.command, inv.args, { env: inv.env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(
            `host ${host.name}: the collector exited ${code}: ${err.trim().split("\n").slice(-2).join(" ")}`,
          ),
        );
    });
    child.stdin.end(COLLECTOR);
  });
}

/**
 * The A and AAAA records resolvers answer for `domain` (the system's resolver, 5 s at most each). A
 * name with no record of one family is normal (ENODATA); a failure of both is the error.
 */
export async function resolveA(domain: string, timeoutMs = 5000): Promise<DnsFacts> {
  const resolver = new dnsPromises.Resolver({ timeout: timeoutMs, tries: 2 });
  const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(domain), resolver.resolve6(domain)]);
  const answers = [
    ...(v4.status === "fulfilled" ? v4.value : []),
    ...(v6.status === "fulfilled" ? v6.value : []),
  ];
  const failures = [v4, v6]
    .filter((r): r is PromiseRejectedResult => r.status === "rejected")
    .map((r) => code(r.reason))
    .filter((c) => c !== "ENODATA");
  if (!answers.length) {
    return { domain, answers, error: `no answer: ${failures[0] ?? "ENODATA"}` };
  }
  return { domain, answers };
}

/** The certificate the edge serves for `domain` (SNI), read over TLS without trusting it. */
export function edgeCertificate(
  address: string,
  port: number,
  domain: string,
  publiclyTrusted: boolean,
  timeoutMs = 5000,
): Promise<CertFacts> {
  return new Promise((resolve) => {
    const failed = (error: string) =>
      resolve({
        domain,
        validFrom: new Date(0),
        validTo: new Date(0),
        issuer: "",
        publiclyTrusted,
        error,
      });
    const socket = tls.connect({
      host: address,
      port,
      servername: domain,
      rejectUnauthorized: false,
    });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      failed(`no TLS answer from ${address}:${port} within ${timeoutMs / 1000} s`);
    });
    socket.once("error", (e: Error) => failed(`TLS to ${address}:${port}: ${e.message}`));
    socket.once("secureConnect", () => {
      const c = socket.getPeerCertificate();
      socket.end();
      if (!c?.valid_to) return failed("the edge sent no certificate");
      resolve({
        domain,
        validFrom: new Date(c.valid_from),
        validTo: new Date(c.valid_to),
        issuer: [c.issuer?.O, c.issuer?.CN].filter(Boolean).join(" / "),
        publiclyTrusted,
      });
    });
  });
}

export interface StatusReport {
  stack: string;
  generatedAt: string;
  ok: boolean;
  checks: Check[];
}

/** The command: `argv` without the node and script; resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const values = readCommandLine(
    () =>
      parseStrict(
        argv,
        USAGE,
        {
          stack: { type: "string" },
          sites: { type: "string", default: "sites" },
          json: { type: "boolean", default: false },
          help: { type: "boolean", short: "h", default: false },
        },
        (v) => {
          if (!v.help && v.stack === undefined) throw new Error("--stack is required");
        },
      ),
    USAGE,
    io,
  );
  if (typeof values === "number") return values;
  const stack = values.stack!;
  const file = `Pulumi.${stack}.yaml`;
  const read = readStackFile(path.join(io.cwd, file), file);
  const loaded = loadSiteEntries(path.resolve(io.cwd, values.sites), values.sites);
  const problems = [...read.problems, ...loaded.problems];
  const checked = read.settings
    ? validateAll(loaded.entries, [{ file, settings: read.settings }])
    : undefined;
  if (checked) problems.push(...checked.problems);
  if (problems.length || !read.settings || !checked) {
    for (const p of problems) io.stderr(`${formatProblem(p)}\n`);
    io.stderr("status: the stack or the site files do not validate; nothing checked\n");
    return 1;
  }
  const settings = read.settings;
  const sites = checked.sites.map((s) => s.site);
  const now = new Date();
  const checks: Check[] = [];
  for (const host of settings.hosts) {
    io.stderr(
      `status: ${host.name}: collecting (${host.docker.connection === "ssh" ? "over SSH" : "locally"}) ...\n`,
    );
    const expected = expectations(sites, settings, host, now);
    const address =
      host.docker.connection === "ssh"
        ? host.publicIp
        : settings.edge.bindAddress === "0.0.0.0"
          ? "127.0.0.1"
          : settings.edge.bindAddress;
    const domains = expected.flatMap((e) => e.domains);
    io.stderr(
      `status: ${host.name}: ${domains.length} certificates from ${address}:${settings.edge.httpsPort} ...\n`,
    );
    const names = expected.flatMap((e) => (e.records ?? []).map((r) => r.name));
    if (names.length) io.stderr(`status: ${host.name}: ${names.length} DNS answers ...\n`);
    const [report, certs, dns] = await Promise.all([
      collect(host, 60_000).then(
        (text) => ({ text }),
        (e: Error) => ({ error: e.message }),
      ),
      Promise.all(
        domains.map((d) =>
          edgeCertificate(address, settings.edge.httpsPort, d, !settings.edge.localCerts),
        ),
      ),
      Promise.all(names.map((n) => resolveA(n))),
    ]);
    for (const e of expected) checks.push(...judgeDns(e, dns));
    if ("error" in report) {
      checks.push({
        subject: "host",
        check: `reach ${host.name}`,
        verdict: "fail",
        detail: report.error,
      });
      continue;
    }
    let facts;
    try {
      facts = parseHostReport(report.text);
    } catch (e) {
      checks.push({
        subject: "host",
        check: `report ${host.name}`,
        verdict: "fail",
        detail: (e as Error).message,
      });
      continue;
    }
    checks.push(...judge(facts, expected, certs));
  }
  const out: StatusReport = {
    stack,
    generatedAt: now.toISOString(),
    ok: checks.every((c) => c.verdict !== "fail"),
    checks,
  };
  io.stdout(values.json ? `${JSON.stringify(out, null, 2)}\n` : statusTable(checks));
  const failing = checks.filter((c) => c.verdict === "fail").length;
  io.stderr(
    `status: ${failing ? `${failing} check(s) out of bounds` : "every check within its bound"}\n`,
  );
  return failing ? 1 : 0;
}

if (require.main === module) runCommand(main);
