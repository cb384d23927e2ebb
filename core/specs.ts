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
 * about twice the idle use measured on a real engine (docs/benchmarks.md): socket proxy 7 MiB, edge
 * 12-17 MiB; their limits stay the ceilings for bursts (a reload). Backups reserve nothing: a host
 * timer runs them (core/timers.ts), no container waits for them.
 */
export const SOCKET_PROXY_RESERVATION_MIB = 16;
export const EDGE_RESERVATION_MIB = 32;
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
