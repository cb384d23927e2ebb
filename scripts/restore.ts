/**
 * npm run restore -- --stack NAME --site NAME [--backup FILE | --latest] [--into-scratch] [--yes]
 *   [--from offsite --identity FILE] [--from offsite --list]
 *
 * Restores a site's database from one of its verified dumps, through the backup job installed on its
 * host (components/backup/site-backup.sh, as the site's timer runs it): over SSH (strict host-key checking, the pinned key where the stack has one) or, on a
 * stack whose Docker engine is a local socket, on this machine. The dump is verified before anything
 * stops; a real restore stops the site's app while it runs and starts it again afterwards; the
 * result is checked against the dump's manifest. --into-scratch is the restore drill: it restores
 * into a throwaway database, checks, and drops it, with the app left running.
 *
 * --from offsite takes the dump from the stack's off-site storage: the host downloads it and decrypts
 * it with the age identity read here from --identity FILE, which travels inside the SSH session's
 * standard input and is held in the host shell's memory only (never a file, an argument or the
 * environment there); then the dump is verified against its manifest before anything stops, as a
 * local one is. --list shows the off-site dumps.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline/promises";
import { parseArgs } from "node:util";
import { formatProblem, loadSiteEntries, parseSites } from "../core/validate";
import { databaseName, type Site } from "../core/site";
import { hostOf } from "../core/capacity";
import { commandLine, hostTarget, sshOptions } from "../core/host";
import { backupJobArgs, jobHost, siteBackupJob } from "../core/timers";
import { Refusal, readStack } from "./stack";
import { processIo, type Io } from "./args";
import type { HostSettings } from "../stacks/settings";

const USAGE =
  "usage: npm run restore -- --stack NAME --site NAME [--backup FILE | --latest] [--into-scratch] [--yes] [--sites DIR]\n" +
  "       [--from offsite --identity FILE]   the dump from off-site storage, decrypted on the host with the age identity in FILE\n" +
  "       [--from offsite --list]            the site's off-site dumps";
export const HOST_SCRIPT = path.join(__dirname, "..", "components", "backup", "host-restore.sh");
/** A dump as the backup directory names it: `daily/<site>-<time>.dump`, or just the file name. */
const BACKUP_FILE = /^(?:(?:daily|weekly|monthly)\/)?[A-Za-z0-9_.-]+\.dump$/;
/** An off-site dump as `--list` names it: `<site>-<time>`, `.dump` optional. */
const OFFSITE_NAME = /^[a-z0-9][a-z0-9-]*-[0-9]{8}T[0-9]{6}Z(?:\.dump)?$/;
/** An age identity line, as age-keygen writes it. */
const AGE_IDENTITY = /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/;

export interface RestoreArgs {
  stack: string;
  site: string;
  backup?: string;
  intoScratch: boolean;
  yes: boolean;
  sites: string;
  /** Where the dump comes from: the host's backup directory, or the stack's off-site storage. */
  from: "local" | "offsite";
  /** The age identity file (--from offsite). */
  identity?: string;
  /** List the off-site dumps instead of restoring. */
  list: boolean;
}

export function parseRestoreArgs(argv: string[]): RestoreArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      site: { type: "string" },
      backup: { type: "string" },
      latest: { type: "boolean", default: false },
      "into-scratch": { type: "boolean", default: false },
      yes: { type: "boolean", short: "y", default: false },
      sites: { type: "string", default: "sites" },
      from: { type: "string", default: "local" },
      identity: { type: "string" },
      list: { type: "boolean", default: false },
    },
    allowPositionals: false,
    strict: true,
  });
  if (!values.stack) throw new Error("--stack is required");
  if (!values.site) throw new Error("--site is required");
  if (values.backup !== undefined && values.latest) {
    throw new Error("--backup and --latest exclude each other");
  }
  if (values.from !== "local" && values.from !== "offsite") {
    throw new Error(`--from: ${JSON.stringify(values.from)} is not "local" or "offsite"`);
  }
  const offsite = values.from === "offsite";
  if (values.list && !offsite) throw new Error("--list is for --from offsite");
  if (values.list && (values.backup !== undefined || values.latest || values["into-scratch"])) {
    throw new Error(
      "--list restores nothing: give it without --backup, --latest or --into-scratch",
    );
  }
  if (offsite && !values.list && values.identity === undefined) {
    throw new Error(
      "--from offsite needs --identity FILE: the age identity (AGE-SECRET-KEY-1...) whose public key the stack's offsite.recipient is",
    );
  }
  if (!offsite && values.identity !== undefined)
    throw new Error("--identity is for --from offsite");
  if (offsite && values.backup !== undefined && !OFFSITE_NAME.test(values.backup)) {
    throw new Error(
      `--backup: ${JSON.stringify(values.backup)} is not an off-site dump's name; give one as --list shows it, e.g. <site>-20260304T021700Z`,
    );
  }
  if (!offsite && values.backup !== undefined && !BACKUP_FILE.test(values.backup)) {
    throw new Error(
      `--backup: ${JSON.stringify(values.backup)} is not a dump name; give one as the backup ` +
        "directory lists it, e.g. daily/<site>-20260304T021700Z.dump",
    );
  }
  return {
    stack: values.stack,
    site: values.site,
    backup: values.backup,
    intoScratch: values["into-scratch"],
    yes: values.yes,
    sites: values.sites,
    from: offsite ? "offsite" : "local",
    identity: values.identity,
    list: values.list,
  };
}

/**
 * The age identity from FILE, as the one line that reaches the host. The file's text is never put in
 * an error message.
 */
export function readIdentity(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new Refusal(`--identity: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
  const keys = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => AGE_IDENTITY.test(l));
  if (keys.length !== 1) {
    throw new Refusal(
      `--identity: ${file} must hold exactly one age identity line (AGE-SECRET-KEY-1...), as age-keygen writes it; it holds ${keys.length}`,
    );
  }
  return keys[0];
}

export interface RestorePlan {
  site: Site;
  host: HostSettings;
  database: string;
  mode: "dedicated" | "shared";
  /** Arguments of host-restore.sh. */
  scriptArgs: string[];
  /** The age identity line (--from offsite): put at the head of the script's text, never in argv. */
  identity?: string;
}

/** Everything that can be checked before touching the host: the stack, the site, its database. */
export function planRestore(root: string, args: RestoreArgs): RestorePlan {
  const { settings } = readStack(root, args.stack);
  const loaded = loadSiteEntries(path.resolve(root, args.sites), args.sites);
  const entry = loaded.entries.find((e) => path.basename(e.file, ".ts") === args.site);
  if (!entry) {
    const broken = loaded.problems.find((p) => path.basename(p.file, ".ts") === args.site);
    if (broken) throw new Refusal(formatProblem(broken));
    throw new Refusal(
      `no site ${JSON.stringify(args.site)}: there is no ${path.join(args.sites, `${args.site}.ts`)}`,
    );
  }
  const parsed = parseSites([entry]);
  if (parsed.problems.length) throw new Refusal(parsed.problems.map(formatProblem).join("\n"));
  const site = parsed.sites[0].site;
  if (site.kind !== "website" || site.database.mode === "none") {
    throw new Refusal(
      `${entry.file}: ${site.name} has no database, so there is nothing to restore`,
    );
  }
  const hostName = hostOf(site, settings);
  const host = settings.hosts.find((h) => h.name === hostName);
  if (!host) {
    throw new Refusal(`${entry.file}: host: ${hostName} is not a host of stack ${args.stack}`);
  }
  const database = databaseName(site) as string;
  const mode = site.database.mode;
  if (mode === "shared" && !host.sharedDatabase) {
    throw new Refusal(
      `${entry.file}: ${site.name} uses the shared cluster, but host ${host.name} has none`,
    );
  }
  const onHost = jobHost(host, hostTarget(host), settings);
  if (args.from === "offsite" && !onHost.offsite) {
    throw new Refusal(
      `stack ${args.stack} declares no off-site storage (offsite in Pulumi.${args.stack}.yaml)`,
    );
  }
  const job = backupJobArgs(siteBackupJob(site, host)!, onHost);
  const script = `${onHost.scriptDir}/site-backup.sh`;
  const scriptArgs = args.list
    ? [script, "--offsite", "--list", ...job]
    : [
        script,
        ...(args.from === "offsite" ? ["--offsite"] : []),
        ...(args.backup ? ["--backup", args.backup] : ["--latest"]),
        args.intoScratch ? "--into-scratch" : "--into",
        ...job,
      ];
  commandLine(scriptArgs);
  const identity =
    args.from === "offsite" && !args.list
      ? readIdentity(path.resolve(root, args.identity!))
      : undefined;
  return { site, host, database, mode, scriptArgs, ...(identity ? { identity } : {}) };
}

/**
 * What the host's shell reads on standard input: host-restore.sh, preceded by the identity as a shell
 * variable when there is one (its characters are checked: letters, digits and "-" only).
 */
export function hostScriptText(identity?: string): string {
  const script = fs.readFileSync(HOST_SCRIPT, "utf8");
  if (identity === undefined) return script;
  if (!AGE_IDENTITY.test(identity)) throw new Error("not an age identity line");
  return `AGI_AGE_IDENTITY=${identity}\n${script}`;
}

/** The command that runs host-restore.sh (read from standard input) on the site's host. */
export function hostInvocation(
  host: HostSettings,
  scriptArgs: string[],
  env: NodeJS.ProcessEnv = process.env,
): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const d = host.docker;
  if (d.connection === "socket") {
    return {
      command: "sh",
      args: ["-s", "--", ...scriptArgs],
      env: { ...env, DOCKER_HOST: d.socket },
    };
  }
  return {
    command: "ssh",
    args: [
      ...sshOptions(d),
      "-p",
      String(d.port),
      `${d.user}@${d.address}`,
      commandLine(["sh", "-s", "--", ...scriptArgs]),
    ],
    env,
  };
}

async function confirm(plan: RestorePlan, args: RestoreArgs, io: Io): Promise<void> {
  if (args.intoScratch || args.yes || args.list) return;
  const what = `${plan.site.name}'s database ${plan.database} on ${plan.host.name} (stack ${args.stack})`;
  if (!io.interactive) {
    throw new Refusal(`replacing ${what} needs --yes (or an answer on a terminal)`);
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(
    `This replaces ${what} and stops its app while it runs.\nType the site name to go on: `,
  );
  rl.close();
  if (answer.trim() !== plan.site.name) throw new Refusal("not confirmed; nothing was changed");
}

/** Runs the restore on the host, passing its output through; resolves to the exit code. */
function runOnHost(plan: RestorePlan, io: Io): Promise<number> {
  const { command, args, env } = hostInvocation(plan.host, plan.scriptArgs, io.env);
  // Its own process group, so a Ctrl-C reaches only this process. The part of a restore that stops
  // the app runs detached on the host and finishes (starting the app again) even if we stop
  // following it; the first Ctrl-C says so, the second stops following.
  const child = spawn(command, args, {
    env,
    stdio: io.inheritStdio ? ["pipe", "inherit", "inherit"] : ["pipe", "pipe", "pipe"],
    detached: true,
  });
  child.stdout?.on("data", (d: Buffer) => io.stdout(d.toString()));
  child.stderr?.on("data", (d: Buffer) => io.stderr(d.toString()));
  child.stdin!.end(hostScriptText(plan.identity));
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts += 1;
    if (interrupts === 1) {
      io.stderr(
        "\nrestore: the host finishes the restore and starts the app again whatever you do here; " +
          "Ctrl-C again to stop following it (its log stays on the host)\n",
      );
    } else {
      child.kill("SIGTERM");
    }
  };
  process.on("SIGINT", onInterrupt);
  return new Promise((resolve) => {
    child.on("error", (err) => {
      io.stderr(`restore: cannot run ${command}: ${err.message}\n`);
      resolve(1);
    });
    child.on("close", (code, signal) => {
      process.off("SIGINT", onInterrupt);
      resolve(code ?? (signal ? 130 : 1));
    });
  });
}

/** The command: `argv` without the node and script; resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  return (await run(argv, io)).code;
}

/** The command, saying also whether it ended at once (a bad command line, a refusal). */
async function run(argv: string[], io: Io): Promise<{ code: number; atOnce: boolean }> {
  let args: RestoreArgs;
  try {
    if (argv.some((a) => a === "--help" || a === "-h")) {
      io.stdout(`${USAGE}\n`);
      return { code: 0, atOnce: false };
    }
    args = parseRestoreArgs(argv);
  } catch (err) {
    io.stderr(`${(err as Error).message}\n${USAGE}\n`);
    return { code: 2, atOnce: true };
  }
  try {
    const plan = planRestore(io.cwd, args);
    await confirm(plan, args, io);
    const via = plan.host.docker.connection === "ssh" ? `over SSH to ${plan.host.name}` : "locally";
    if (args.list) {
      io.stderr(`restore: ${plan.site.name}: the off-site dumps, ${via}\n`);
    } else {
      const where = args.from === "offsite" ? " from off-site storage" : "";
      const dump = args.backup ?? `the latest verified dump${where}`;
      const into = args.intoScratch ? "a throwaway database (restore drill)" : plan.database;
      io.stderr(`restore: ${plan.site.name}: ${dump} into ${into}, ${via}\n`);
    }
    return { code: await runOnHost(plan, io), atOnce: false };
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    for (const line of err.message.split("\n")) io.stderr(`restore: ${line}\n`);
    return { code: 1, atOnce: true };
  }
}

if (require.main === module) {
  void run(process.argv.slice(2), processIo()).then(({ code, atOnce }) => {
    // A bad command line or a refusal ends at once; the host's exit code is the process's.
    if (atOnce) process.exit(code);
    process.exitCode = code;
  });
}
