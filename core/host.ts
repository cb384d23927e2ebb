/**
 * Where things live on a host and how commands reach it: directories, SSH options, and command lines
 * built only from words that need no quoting. Pure: the components and the commands share it.
 */
import * as crypto from "node:crypto";
import * as path from "node:path";
import type { HostSettings } from "../stacks/settings";
import { APP_CONTAINER_PATTERN, EDGE_CONTAINER } from "./names";
import { WAIT_TIMEOUT_SECONDS } from "./specs";

/** Inside the edge container: the main Caddyfile and the fragment directory beside it. */
export const EDGE_CONFIG_DIR = "/etc/caddy";
/** Seconds Caddy gets to finish in-flight requests when the edge is stopped. */
export const EDGE_STOP_GRACE_SECONDS = 30;

/** An SSH connection to a host as the deploy user, checked against the pinned host key when given. */
export interface SshConnection {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly hostKey?: string;
}

/** How commands reach a host. */
export type HostTarget =
  { readonly kind: "local" } | { readonly kind: "ssh"; readonly connection: SshConnection };

/** Where an edge keeps its fragments and how it is told to reload. */
export interface EdgeTarget {
  /** The host's name in the stack settings. */
  readonly hostName: string;
  readonly host: HostTarget;
  /** The host directory bind-mounted as the edge's sites.d. */
  readonly sitesDir: string;
  /** The main Caddyfile, as Caddy sees it. */
  readonly caddyfile: string;
  /** Caddy's admin address, as Caddy sees it. */
  readonly adminAddress: string;
  /** Prefix that runs a command where Caddy runs (e.g. docker exec into the edge). */
  readonly exec: readonly string[];
  /** Host path of the installed route script. */
  readonly script: string;
  /** Host path of the installed app gate script (health-gated app versions). */
  readonly gateScript: string;
}

/** The host directory of one site's backups. */
export function backupHostDir(host: HostSettings, site: string): string {
  return `${host.root}/backups/${site}`;
}

/** The host directory whose `sites.d` holds the site fragments. */
export function edgeHostDir(host: HostSettings): string {
  return `${host.root}/edge`;
}

/**
 * SSH options for the deploy connection: batch mode (never a password prompt) and strict host-key
 * checking, against the pinned key when the stack has one, else against the known_hosts file.
 */
export function sshOptions(d: Extract<HostSettings["docker"], { connection: "ssh" }>): string[] {
  const known = d.hostKey
    ? [
        "UserKnownHostsFile=/dev/null",
        "GlobalKnownHostsFile=/dev/null",
        // %H is the name ssh looks up ("[host]:port" off port 22): the pinned key answers for it.
        `KnownHostsCommand=/bin/echo %H ${d.hostKey}`,
      ]
    : [`UserKnownHostsFile=${d.knownHostsFile}`];
  return ["StrictHostKeyChecking=yes", ...known, "BatchMode=yes", "ConnectTimeout=20"].flatMap(
    (o) => ["-o", o],
  );
}

/** How commands reach a host: locally, or over SSH as the deploy user with the pinned host key. */
export function hostTarget(host: HostSettings): HostTarget {
  const d = host.docker;
  if (d.connection === "socket") return { kind: "local" };
  return {
    kind: "ssh",
    connection: { host: d.address, port: d.port, user: d.user, hostKey: d.hostKey },
  };
}

/** The edge of a host: where its fragments go, how it reloads, where the route script is installed. */
export function edgeTarget(host: HostSettings, adminAddress: string): EdgeTarget {
  return {
    hostName: host.name,
    host: hostTarget(host),
    sitesDir: `${edgeHostDir(host)}/sites.d`,
    caddyfile: `${EDGE_CONFIG_DIR}/Caddyfile`,
    adminAddress,
    exec: ["docker", "exec", EDGE_CONTAINER],
    script: `${host.root}/bin/edge-route.sh`,
    gateScript: `${host.root}/bin/app-gate.sh`,
  };
}

/** The one pattern of a word that may reach a host's shell: no quoting needed, no syntax possible. */
export const SAFE_ARG = /^[A-Za-z0-9_./:@=-]+$/;

/**
 * A command line for a host's shell from words that need no quoting; anything else is refused, so a
 * value can never become shell syntax on the host.
 */
export function commandLine(args: readonly string[]): string {
  for (const a of args) {
    if (!SAFE_ARG.test(a)) throw new Error(`unsafe argument ${JSON.stringify(a)}`);
  }
  return args.join(" ");
}

/** The command line that runs the installed route script; `remove` names the fragment it may remove. */
export function routeCommandLine(
  action: "apply" | "remove",
  site: string,
  edge: EdgeTarget,
  fragment?: string,
): string {
  const guard = action === "remove" ? [sha256(fragment ?? "")] : [];
  const fixed = [edge.script, action, site, edge.sitesDir, edge.caddyfile, edge.adminAddress];
  return commandLine(["sh", ...fixed, ...guard, ...edge.exec]);
}

/**
 * How long the gate waits for a new app version to be healthy: the bound every container of a deploy
 * gets (WAIT_TIMEOUT_SECONDS, what `wait: true` gave the app before the gate). Not a per-site figure
 * from the healthcheck's timing: on a busy host a good version's probes time out for a while (the
 * engine suite saw three in a row at load 18 on 2 cores), and Docker turns it healthy again later.
 */
export const GATE_DEADLINE_SECONDS = WAIT_TIMEOUT_SECONDS;

/**
 * The command line that runs the installed gate script for one app container: `wait` until it is
 * healthy within `seconds` (else remove it and fail), or `remove` it after a stop with `seconds` of
 * grace. The container name must be a versioned app container's name of this site.
 */
export function gateCommandLine(
  action: "wait" | "remove",
  site: string,
  container: string,
  seconds: number,
  edge: EdgeTarget,
  /** wait only: the grace the previous version gets to finish its requests once this one serves. */
  grace?: number,
): string {
  if (!APP_CONTAINER_PATTERN.test(container) || !container.startsWith(`${site}-app-`)) {
    throw new Error(`not an app container of site ${site}: ${JSON.stringify(container)}`);
  }
  for (const n of grace === undefined ? [seconds] : [seconds, grace]) {
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`gate ${action}: not a whole number of seconds: ${n}`);
    }
  }
  if (grace !== undefined && action !== "wait") throw new Error("gate remove: no second number");
  const words = ["sh", edge.gateScript, action, site, container, String(seconds)];
  return commandLine(grace === undefined ? words : [...words, String(grace)]);
}

export function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** The command line that installs a host script (read from standard input) atomically. */
export function installScriptCommandLine(script: string): string {
  const dir = path.posix.dirname(script);
  commandLine([dir, script]);
  return `mkdir -p ${dir} && cat > ${script}.new && chmod 755 ${script}.new && mv -f ${script}.new ${script}`;
}

/**
 * The command lines that attach a container (the edge) to a network and detach it, both idempotent:
 * attaching a container that is already there succeeds, and so does detaching one that is gone or a
 * network that no longer exists. Only checked words reach the shell.
 */
export function networkAttachCommandLines(
  network: string,
  container: string,
): { attach: string; detach: string } {
  const connect = commandLine(["docker", "network", "connect", network, container]);
  const disconnect = commandLine(["docker", "network", "disconnect", network, container]);
  // The members of the network, one name a line; the name must match a whole line.
  const members = `docker network inspect --format '{{range .Containers}}{{println .Name}}{{end}}' ${network} 2>/dev/null | grep -qx -e ${container}`;
  return {
    attach: `${connect} || ${members}`,
    detach: `${disconnect} || ! ${members}`,
  };
}
