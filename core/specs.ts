/**
 * What the platform's containers are made of, as plain data: ports, grace periods, probes and the
 * backup job's files. The components wire resources from these.
 */
import { HEALTHY_WITHIN_SECONDS } from "./site";
import { toMiB } from "./units";
import { DEFAULT_BACKUP_MEMORY } from "../stacks/settings";

/** Port PostgreSQL listens on inside its container. */
export const POSTGRES_PORT = 5432;
/** Port of the Docker API socket proxy on the site's internal network. */
export const SOCKET_PROXY_PORT = 2375;
/** Memory limit of the socket proxy (MiB). */
export const SOCKET_PROXY_MEMORY_MIB = 32;
/**
 * Memory reservations of the platform's own containers (MiB): what admission counts for them. Each is
 * what `npm run bench:e2e` gives: twice the idle peak or the light-load peak, whichever is more,
 * rounded up to 16 MiB (README, "Capacity"). Measured (docker stats, idle / light load): socket proxy
 * 4.2 / 4.2 MiB -> 16; backup scheduler 1.0 / 1.3 MiB -> 16; edge 9.9 / 12.6 MiB -> 32. Their limits
 * stay the ceilings for bursts (a dump, a reload).
 */
export const SOCKET_PROXY_RESERVATION_MIB = 16;
export const BACKUP_RESERVATION_MIB = 16;
export const EDGE_RESERVATION_MIB = 32;
/**
 * Memory reservation of a shared cluster the program creates (`sharedDatabase.create`, MiB): what
 * admission counts for it on that host. Its limit is `sharedDatabase.memory`. From `npm run
 * bench:e2e`: 51.0 MiB idle (twice: 102), 49.5 MiB under light load, with two databases -> 112.
 */
export const SHARED_CLUSTER_RESERVATION_MIB = 112;
/** Seconds PostgreSQL gets to shut down cleanly. */
export const DB_STOP_GRACE_SECONDS = 60;
/** Seconds `pulumi up` waits for a new container to report healthy (the site schema checks against it). */
export const WAIT_TIMEOUT_SECONDS = HEALTHY_WITHIN_SECONDS;

/** The default healthcheck: a Node.js fetch of the app's own health path. */
export function httpProbe(port: number, path: string): string[] {
  const url = `http://127.0.0.1:${port}${path}`;
  return [
    "CMD",
    "node",
    "-e",
    `fetch(${JSON.stringify(url)}).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
  ];
}

/** The backup job's scripts, as kept in the repository, and where the container gets them. */
export const BACKUP_SCRIPTS = [
  "scheduler.sh",
  "pg-backup.sh",
  "verify-dump.sh",
  "retention.sh",
  "pg-restore.sh",
];
export const BACKUP_SCRIPT_DIR = "/opt/agi";
/** Memory limit of the backup container (MiB): pg_dump and pg_restore of one database. */
export const BACKUP_MEMORY_MIB = toMiB(DEFAULT_BACKUP_MEMORY);
