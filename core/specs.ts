/**
 * What the platform's containers are made of, as plain data: ports, grace periods and probes. The
 * components wire resources from these.
 */
import { HEALTHY_WITHIN_SECONDS } from "./site";

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
 * 4.2 / 4.2 MiB -> 16; edge 9.9 / 12.6 MiB -> 32. Their limits stay the ceilings for bursts (a
 * reload). Backups reserve nothing: a host timer runs them (core/timers.ts), no container waits.
 */
export const SOCKET_PROXY_RESERVATION_MIB = 16;
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
