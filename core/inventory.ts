/**
 * The `inventory` stack output: what runs where, built from site data and stack settings only
 * (plus the versioned names of the app containers). It never holds a secret: no password, no URL with
 * credentials, no env value.
 */
import { hostLoads, hostOf, siteFootprint } from "./capacity";
import { fragmentFileName, hasRoute, upstreamOf } from "./caddy";
import { plannedRecords, type PlannedRecord } from "./dns";
import { backupHostDir } from "./host";
import {
  EDGE_CONTAINER,
  EDGE_ALIAS,
  EDGE_VOLUMES,
  PLATFORM_NETWORK,
  sharedClusterVolume,
  siteNames,
} from "./names";
import { hasEdgeNetwork } from "./networks";
import { databaseName, databaseReservationMiB, siteSchedules, type Site } from "./site";
import { formatMiB } from "./units";
import { backupUnitName, drillUnitName } from "./timers";
import { POSTGRES_PORT, SOCKET_PROXY_PORT } from "./specs";
import type { StackSettings } from "../stacks/settings";

export interface InventoryContainer {
  role: "app" | "db" | "docker-proxy" | "upstream";
  /** Container name; for the app, the name of its current version (`<site>-app-<8 hex>`). */
  name: string;
  /** Network alias the edge or the app uses to reach it. */
  alias?: string;
  port?: number;
  /** Whether this program creates it (false: an existing container it only routes to). */
  managed: boolean;
}

export interface InventorySite {
  kind: Site["kind"];
  status: Site["status"];
  host: string;
  domains: string[];
  url?: string;
  image?: string;
  repo?: string;
  route?: { fragment: string; upstream: string };
  containers: InventoryContainer[];
  database?: { name: string; mode: "dedicated" | "shared"; host: string; port: number };
  backup?: {
    schedule: string;
    retention: { daily: number; weekly: number; monthly: number };
    path: string;
    /** The deploy user's systemd timer that runs it (no container waits between runs). */
    timer: string;
    /** The scheduled restore drill: its schedule (cron, UTC) and its systemd user timer. */
    drill: { schedule: string; timer: string };
  };
  dns: {
    provider: "cloudflare" | "external" | "none";
    zone?: string;
    managed: boolean;
    records: PlannedRecord[];
  };
  resources?: {
    app: { memory: string; memoryReservation: string; cpus: number };
    database?: { memory: string; memoryReservation: string; cpus?: number };
    /** Reservations of every container of the site: what the host's admission counts. */
    committedMemory: string;
    /** Limits of every container of the site: the ceiling it may reach. */
    memoryLimit: string;
  };
}

export interface InventoryHost {
  publicIp: string;
  docker: string;
  capacity: {
    /**
     * committed: the reservations of every container; available: what is left of the budget for
     * new sites (the headroom); limits: the ceilings, bounded by limitCeiling (budget x overcommit).
     */
    memory: {
      committed: string;
      available: string;
      budget: string;
      limits: string;
      limitCeiling: string;
    };
    /** The containers' CPU limits (ceilings, not admitted) against the host's cores. */
    cpus: { committed: number; budget: number };
  };
  /** Host ports the platform publishes (only the edge publishes any). */
  ports: string[];
  /** Container names, network names and aliases taken on the host. */
  names: string[];
  sites: string[];
}

export interface Inventory {
  stack: string;
  sites: Record<string, InventorySite>;
  hosts: Record<string, InventoryHost>;
}

export function buildInventory(
  stack: string,
  settings: StackSettings,
  sites: Site[],
  appContainerNames: Record<string, string | undefined>,
): Inventory {
  const hosts = new Map(settings.hosts.map((h) => [h.name, h]));
  const out: Inventory = { stack, sites: {}, hosts: {} };
  const sorted = [...sites].sort((a, b) => a.name.localeCompare(b.name));

  for (const site of sorted) {
    const host = hosts.get(hostOf(site, settings))!;
    const managedDns =
      settings.dns.provider === "cloudflare" && site.dns?.provider === "cloudflare";
    const entry: InventorySite = {
      kind: site.kind,
      status: site.status,
      host: host.name,
      domains: [...site.domains],
      containers: [],
      dns: {
        provider: site.domains.length === 0 ? "none" : (site.dns?.provider ?? "none"),
        ...(site.dns?.provider === "cloudflare" ? { zone: site.dns.zone } : {}),
        managed: managedDns && site.status !== "planned",
        records: plannedRecords(site, host.publicIp),
      },
    };
    if (site.domains.length) entry.url = `https://${site.domains[0]}`;
    if (site.repo) entry.repo = site.repo;
    if (hasRoute(site)) {
      const upstream =
        site.kind === "website" && site.status === "paused"
          ? "(paused: maintenance page)"
          : upstreamOf(site);
      entry.route = { fragment: fragmentFileName(site.name), upstream };
    }

    if (site.kind === "service") {
      entry.containers.push({
        role: "upstream",
        name: site.upstream.host,
        port: site.upstream.port,
        managed: false,
      });
    } else {
      entry.image = site.app.image;
      const running = site.status === "active";
      if (running) {
        entry.containers.push({
          role: "app",
          name: appContainerNames[site.name] ?? "(not created yet)",
          // The alias the edge proxies to, on the site's edge network, held by the live version.
          alias: site.name,
          port: site.app.port,
          managed: true,
        });
      }
      const db = databaseName(site);
      const n = siteNames(site.name);
      if (site.database.mode === "dedicated" && db) {
        if (running) {
          entry.containers.push({
            role: "db",
            name: n.database,
            alias: n.database,
            port: POSTGRES_PORT,
            managed: true,
          });
        }
        entry.database = {
          name: db,
          mode: "dedicated",
          host: n.database,
          port: POSTGRES_PORT,
        };
      } else if (site.database.mode === "shared" && db) {
        const shared = host.sharedDatabase;
        entry.database = {
          name: db,
          mode: "shared",
          host: shared?.container ?? "(no shared cluster)",
          port: shared?.port ?? POSTGRES_PORT,
        };
      }
      if (running && site.app.dockerReadAccess) {
        entry.containers.push({
          role: "docker-proxy",
          name: n.dockerProxy,
          alias: n.dockerProxy,
          port: SOCKET_PROXY_PORT,
          managed: true,
        });
      }
      if (db) {
        entry.backup = {
          schedule: siteSchedules(site).backup,
          retention: { ...site.backup.retention },
          path: backupHostDir(host, site.name),
          timer: `${backupUnitName(site.name)}.timer`,
          drill: {
            schedule: siteSchedules(site).drill,
            timer: `${drillUnitName(site.name)}.timer`,
          },
        };
      }
      const f = siteFootprint(site);
      entry.resources = {
        app: { ...site.app.resources },
        ...(site.database.mode === "dedicated"
          ? {
              database: {
                ...site.database.resources,
                memoryReservation: formatMiB(databaseReservationMiB(site.database.resources)),
              },
            }
          : {}),
        committedMemory: formatMiB(f.reservationMiB),
        memoryLimit: formatMiB(f.limitMiB),
      };
    }
    out.sites[site.name] = entry;
  }

  const loads = hostLoads(
    settings,
    sorted.map((site) => ({ site })),
    (s) => s.site.name,
  );
  for (const load of loads) {
    const host = load.host;
    const onHost = sorted.filter((s) => hostOf(s, settings) === host.name);
    const names = new Set<string>([
      EDGE_CONTAINER,
      PLATFORM_NETWORK,
      EDGE_VOLUMES.data,
      EDGE_VOLUMES.config,
      EDGE_ALIAS,
    ]);
    if (host.sharedDatabase) names.add(host.sharedDatabase.container);
    if (host.sharedDatabase?.create) names.add(sharedClusterVolume(host.sharedDatabase.container));
    for (const s of onHost) {
      for (const c of out.sites[s.name].containers) {
        if (c.role !== "app" || appContainerNames[s.name]) names.add(c.name);
        if (c.alias) names.add(c.alias);
      }
      if (s.kind === "website" && s.status !== "planned") {
        if (s.database.mode === "dedicated") names.add(siteNames(s.name).databaseVolume);
        if (s.database.mode === "dedicated" || s.app.dockerReadAccess)
          names.add(siteNames(s.name).internalNetwork);
        if (hasEdgeNetwork(s)) names.add(siteNames(s.name).edgeNetwork);
      }
    }
    const { edge: e } = settings;
    out.hosts[host.name] = {
      publicIp: host.publicIp,
      docker:
        host.docker.connection === "ssh"
          ? `ssh://${host.docker.user}@${host.docker.address}:${host.docker.port}`
          : host.docker.socket,
      capacity: {
        memory: {
          committed: formatMiB(load.reservationMiB),
          available: formatMiB(load.headroomMiB),
          budget: host.capacity.memory,
          limits: formatMiB(load.limitMiB),
          limitCeiling: formatMiB(load.limitCeilingMiB),
        },
        cpus: { committed: load.cpus, budget: host.capacity.cpus },
      },
      ports: [
        `${e.bindAddress}:${e.httpPort}/tcp`,
        `${e.bindAddress}:${e.httpsPort}/tcp`,
        `${e.bindAddress}:${e.httpsPort}/udp`,
        // A created cluster's admin port, on loopback only (validated).
        ...(host.sharedDatabase?.create
          ? [`${host.sharedDatabase.adminAddress}:${host.sharedDatabase.adminPort}/tcp`]
          : []),
      ],
      names: [...names].sort(),
      sites: onHost.map((s) => s.name),
    };
  }
  return out;
}

/** The inventory as a plain-text table, as `synth` prints it. */
export function inventoryTable(inv: Inventory): string {
  const rows = [
    [
      "SITE",
      "KIND",
      "STATUS",
      "HOST",
      "URL",
      "UPSTREAM",
      "DATABASE",
      "BACKUP",
      "MEMORY RESERVED/LIMIT",
      "DNS",
    ],
  ];
  for (const [name, s] of Object.entries(inv.sites)) {
    rows.push([
      name,
      s.kind,
      s.status,
      s.host,
      s.url ?? "-",
      s.route?.upstream ?? "-",
      s.database ? `${s.database.mode}:${s.database.name}` : "-",
      s.backup ? s.backup.schedule : "-",
      s.resources ? `${s.resources.committedMemory}/${s.resources.memoryLimit}` : "-",
      s.dns.provider === "none" ? "-" : `${s.dns.provider}${s.dns.managed ? "" : " (unmanaged)"}`,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd(),
  );
  lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  for (const [name, h] of Object.entries(inv.hosts)) {
    lines.push(
      "",
      `host ${name} (${h.docker}): memory ${h.capacity.memory.committed} reserved of ${h.capacity.memory.budget}, ` +
        `${h.capacity.memory.available} headroom, limits ${h.capacity.memory.limits} of ${h.capacity.memory.limitCeiling}; ` +
        `CPU limits ${h.capacity.cpus.committed} on ${h.capacity.cpus.budget} cores; ` +
        `ports ${h.ports.join(", ")}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
