/**
 * What each site needs and may use on its host, and the admission of a host: the one computation
 * that validation, the inventory and the benchmarks share.
 *
 * A host is admitted on reservations (what its containers need), as Kubernetes schedules on
 * requests and Nomad on `memory` beside `memory_max`. Limits (ceilings) may add up to more than the
 * host has, up to the stack's `capacity.overcommit` ratio. CPU limits are ceilings, not admission:
 * CPU is compressible, so a busy site slows its neighbours and never kills them.
 */
import { databaseReservationMiB, type Site } from "./site";
import type { HostSettings, StackSettings } from "../stacks/settings";
import {
  EDGE_RESERVATION_MIB,
  SOCKET_PROXY_MEMORY_MIB,
  SOCKET_PROXY_RESERVATION_MIB,
} from "./specs";
import { formatMiB, toMiB } from "./units";

/** One container's needs: reservation (admitted), limit (ceiling) and CPU limit, if any. */
export interface ContainerNeed {
  role: "app" | "db" | "docker-proxy" | "edge";
  reservationMiB: number;
  limitMiB: number;
  cpus?: number;
}

export interface Footprint {
  /** Sum of the memory reservations of the containers, in MiB: what admission counts. */
  reservationMiB: number;
  /** Sum of the memory limits, in MiB: what the overcommit ratio bounds. */
  limitMiB: number;
  /** Sum of the CPU limits (shown, not admitted). */
  cpus: number;
  parts: ContainerNeed[];
}

const round2 = (n: number) => Math.round(n * 100) / 100;

function footprint(parts: ContainerNeed[]): Footprint {
  return {
    reservationMiB: parts.reduce((a, p) => a + p.reservationMiB, 0),
    limitMiB: parts.reduce((a, p) => a + p.limitMiB, 0),
    cpus: round2(parts.reduce((a, p) => a + (p.cpus ?? 0), 0)),
    parts,
  };
}

/** Only active websites run containers; services are existing containers the program does not own. */
export function siteFootprint(site: Site): Footprint {
  if (site.kind !== "website" || site.status !== "active") return footprint([]);
  const r = site.app.resources;
  const parts: ContainerNeed[] = [
    {
      role: "app",
      reservationMiB: toMiB(r.memoryReservation),
      limitMiB: toMiB(r.memory),
      cpus: r.cpus,
    },
  ];
  if (site.database.mode === "dedicated") {
    const d = site.database.resources;
    parts.push({
      role: "db",
      reservationMiB: databaseReservationMiB(d),
      limitMiB: toMiB(d.memory),
      cpus: d.cpus,
    });
  }
  // Backups add nothing: a host timer starts them (core/timers.ts); no container waits between runs.
  if (site.app.dockerReadAccess) {
    parts.push({
      role: "docker-proxy",
      reservationMiB: SOCKET_PROXY_RESERVATION_MIB,
      limitMiB: SOCKET_PROXY_MEMORY_MIB,
    });
  }
  return footprint(parts);
}

/** The edge container every host runs. */
export function edgeFootprint(settings: StackSettings): Footprint {
  const limitMiB = toMiB(settings.edge.memory);
  return footprint([
    { role: "edge", reservationMiB: Math.min(EDGE_RESERVATION_MIB, limitMiB), limitMiB },
  ]);
}

/** The host a site runs on: its own `host`, or the stack's first host. */
export function hostOf(site: Site, settings: StackSettings): string {
  return site.host ?? settings.hosts[0].name;
}

/** What one host carries, against what it has. */
export interface HostLoad {
  host: HostSettings;
  /** The edge, then each site on the host that runs containers, by name. */
  parts: { label: string; footprint: Footprint }[];
  reservationMiB: number;
  limitMiB: number;
  cpus: number;
  capacityMiB: number;
  /** capacity x overcommit: what the limits may add up to. */
  limitCeilingMiB: number;
  /** capacity - reservations: what a new site may still reserve (negative when over). */
  headroomMiB: number;
}

/** The load of every host; `label` names each site in messages (its file, or its name). */
export function hostLoads<S extends { site: Site }>(
  settings: StackSettings,
  sites: S[],
  label: (s: S) => string,
): HostLoad[] {
  return settings.hosts.map((host) => {
    const parts = [{ label: "edge", footprint: edgeFootprint(settings) }];
    for (const s of sites) {
      if (hostOf(s.site, settings) !== host.name) continue;
      const f = siteFootprint(s.site);
      if (f.parts.length) parts.push({ label: label(s), footprint: f });
    }
    const sum = (k: "reservationMiB" | "limitMiB" | "cpus") =>
      round2(parts.reduce((a, p) => a + p.footprint[k], 0));
    const capacityMiB = toMiB(host.capacity.memory);
    const reservationMiB = sum("reservationMiB");
    return {
      host,
      parts,
      reservationMiB,
      limitMiB: sum("limitMiB"),
      cpus: sum("cpus"),
      capacityMiB,
      limitCeilingMiB: Math.floor(capacityMiB * host.capacity.overcommit),
      headroomMiB: capacityMiB - reservationMiB,
    };
  });
}

/** "edge 32Mi, sites/a.ts 320Mi, ..." for a message, by reservation or by limit. */
export function loadParts(load: HostLoad, key: "reservationMiB" | "limitMiB"): string {
  return load.parts.map((p) => `${p.label} ${formatMiB(p.footprint[key])}`).join(", ");
}
