/**
 * Putting a site's Caddy fragment on its edge: one `@pulumi/command` resource per site that runs
 * `edge-route.sh` (kept next to this file, installed on the host by the Platform) over SSH with the
 * pinned host key, or locally on the `local` stack. The fragment travels on standard input.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { FragmentOptions } from "./caddy";

/** How commands reach a host. */
export type HostTarget =
  | { readonly kind: "local" }
  | { readonly kind: "ssh"; readonly connection: command.types.input.remote.ConnectionArgs };

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
}

/** What a site component needs to route its domains through its host's edge. */
export interface SiteEdge {
  readonly target: EdgeTarget;
  /** Resources a route waits for: the edge container and the installed script. */
  readonly ready: pulumi.Resource[];
  /** How this stack renders fragments. */
  readonly fragment: FragmentOptions;
}

/** The route script's text, as kept in the repository. */
export const ROUTE_SCRIPT = fs.readFileSync(path.join(__dirname, "edge-route.sh"), "utf8");
const SAFE_ARG = /^[A-Za-z0-9_./:@=-]+$/;

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

export function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** The command line that installs the route script (read from standard input) atomically. */
export function installScriptCommandLine(script: string): string {
  const dir = path.posix.dirname(script);
  commandLine([dir, script]);
  return `mkdir -p ${dir} && cat > ${script}.new && chmod 755 ${script}.new && mv -f ${script}.new ${script}`;
}

/** Runs a command line on a host, as a child of `opts.parent`. */
export function hostCommand(
  name: string,
  host: HostTarget,
  args: { create: string; update?: string; delete?: string; stdin?: pulumi.Input<string> },
  opts: pulumi.CustomResourceOptions,
): command.local.Command | command.remote.Command {
  if (host.kind === "local") return new command.local.Command(name, { ...args }, opts);
  // No previous output in the environment: sshd refuses unknown variables unless AcceptEnv lists them.
  return new command.remote.Command(
    name,
    { connection: host.connection, addPreviousOutputInEnv: false, ...args },
    opts,
  );
}

/**
 * The route of one site on one host: apply on create and on every change of the fragment text (an
 * unchanged fragment is no change, so no reload), remove on delete. The host is part of the name, so
 * a site moving to another host gets a new route there and loses the old one. The remove only takes a
 * fragment that is still the one this resource applied, so a successor (a site that changed kind, or
 * a replacement) is never undone by its predecessor's delete.
 */
export function createRoute(
  name: string,
  site: string,
  fragment: string,
  edge: EdgeTarget,
  opts: pulumi.CustomResourceOptions,
): command.local.Command | command.remote.Command {
  const apply = routeCommandLine("apply", site, edge);
  return hostCommand(
    `${name}-route-${edge.hostName}`,
    edge.host,
    {
      create: apply,
      update: apply,
      delete: routeCommandLine("remove", site, edge, fragment),
      stdin: fragment,
    },
    opts,
  );
}
