/** What each site commits on its host: the sums the capacity check and the inventory both use. */
import type { Site } from "./site";
import type { StackSettings } from "../stacks/settings";
import { DEFAULT_BACKUP_MEMORY, DEFAULT_SOCKET_PROXY_MEMORY } from "../stacks/settings";
import { toMiB } from "./units";

export interface Footprint {
  /** Sum of memory limits of the containers the site runs, in MiB. */
  memoryMiB: number;
  /** Sum of CPU limits of the containers the site runs. */
  cpus: number;
  /** Per container role, for messages and the inventory. */
  parts: { role: string; memoryMiB: number; cpus?: number }[];
}

const NOTHING: Footprint = { memoryMiB: 0, cpus: 0, parts: [] };

/** Only active websites run containers; services are existing containers the program does not own. */
export function siteFootprint(site: Site): Footprint {
  if (site.kind !== "website" || site.status !== "active") return NOTHING;
  const parts: Footprint["parts"] = [
    { role: "app", memoryMiB: toMiB(site.app.resources.memory), cpus: site.app.resources.cpus },
  ];
  if (site.database.mode === "dedicated") {
    parts.push({
      role: "db",
      memoryMiB: toMiB(site.database.resources.memory),
      cpus: site.database.resources.cpus,
    });
  }
  if (site.database.mode !== "none") {
    parts.push({ role: "backup", memoryMiB: toMiB(DEFAULT_BACKUP_MEMORY) });
  }
  if (site.app.dockerReadAccess) {
    parts.push({ role: "docker-proxy", memoryMiB: toMiB(DEFAULT_SOCKET_PROXY_MEMORY) });
  }
  return {
    memoryMiB: parts.reduce((a, p) => a + p.memoryMiB, 0),
    cpus: Math.round(parts.reduce((a, p) => a + (p.cpus ?? 0), 0) * 100) / 100,
    parts,
  };
}

/** The edge container every host runs. */
export function edgeFootprint(settings: StackSettings): Footprint {
  const memoryMiB = toMiB(settings.edge.memory);
  return { memoryMiB, cpus: 0, parts: [{ role: "edge", memoryMiB }] };
}

/** The host a site runs on: its own `host`, or the stack's first host. */
export function hostOf(site: Site, settings: StackSettings): string {
  return site.host ?? settings.hosts[0].name;
}
