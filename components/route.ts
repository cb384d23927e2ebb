/**
 * Putting a site's Caddy fragment on its edge: one `@pulumi/command` resource per site that runs
 * `edge-route.sh` (kept next to this file, installed on the host by the Platform) over SSH with the
 * pinned host key, or locally on the `local` stack. The fragment travels on standard input.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import type { FragmentOptions } from "../core/caddy";
import {
  networkAttachCommandLines,
  routeCommandLine,
  type EdgeTarget,
  type HostTarget,
} from "../core/host";
import { EDGE_CONTAINER } from "../core/names";

/** What a site component needs to route its domains through its host's edge. */
export interface SiteEdge {
  readonly target: EdgeTarget;
  /** Resources a route waits for: the edge container and the installed script. */
  readonly ready: pulumi.Resource[];
  /** Resources an app gate waits for: the installed gate script. */
  readonly gateReady: pulumi.Resource[];
  /** How this stack renders fragments. */
  readonly fragment: FragmentOptions;
  /** The edge container's ID: attachments to per-site networks are made again when it changes. */
  readonly containerId: pulumi.Input<string>;
}

/** The route script's text, as kept in the repository. */
export const ROUTE_SCRIPT = fs.readFileSync(path.join(__dirname, "edge-route.sh"), "utf8");
/** The app gate script's text, as kept in the repository. */
export const GATE_SCRIPT = fs.readFileSync(path.join(__dirname, "app-gate.sh"), "utf8");
/** Runs a command line on a host, as a child of `opts.parent`. */
export function hostCommand(
  name: string,
  host: HostTarget,
  args: {
    create: pulumi.Input<string>;
    update?: pulumi.Input<string>;
    delete?: pulumi.Input<string>;
    stdin?: pulumi.Input<string>;
    /** A change of any of these replaces the command: create the new one, then delete the old. */
    triggers?: pulumi.Input<unknown>[];
  },
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
  fragment: pulumi.Input<string>,
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
      delete: pulumi.output(fragment).apply((f) => routeCommandLine("remove", site, edge, f)),
      stdin: fragment,
    },
    opts,
  );
}

/**
 * Attaches the host's edge to one site's network (`isolation: "per-site"`) without touching the edge
 * container's declared inputs, so the edge is never replaced when sites come and go: a command on the
 * host connects it (delete disconnects). A new edge container (its ID changes) is attached again.
 */
export function attachEdge(
  name: string,
  network: pulumi.Output<string>,
  edge: SiteEdge,
  opts: pulumi.CustomResourceOptions,
): command.local.Command | command.remote.Command {
  const lines = network.apply((n) => networkAttachCommandLines(n, EDGE_CONTAINER));
  return hostCommand(
    `${name}-edge-attach-${edge.target.hostName}`,
    edge.target.host,
    {
      create: lines.attach,
      update: lines.attach,
      delete: lines.detach,
      triggers: [edge.containerId],
    },
    // The old attachment's delete disconnects the edge by name: it must run before the new one.
    { ...opts, deleteBeforeReplace: true },
  );
}
