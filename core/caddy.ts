/**
 * Caddy configuration as pure text: the main Caddyfile of an edge and one fragment per site
 * (`sites.d/<site>.caddy`). Deterministic: the same site and settings give the same bytes.
 */
import type { Site } from "./site";
import { APP_CONTAINER_PATTERN } from "./names";
import type { StackSettings } from "../stacks/settings";

/** Where fragments live, relative to the main Caddyfile (inside the edge container: /etc/caddy). */
export const FRAGMENT_DIR = "sites.d";
/** How long Caddy keeps retrying an upstream (an app container being swapped) before it gives up. */
export const LB_TRY_DURATION = "30s";
export const LB_TRY_INTERVAL = "250ms";
/** HSTS for a year; not includeSubDomains, since a zone may hold hosts this edge does not serve. */
export const HSTS = "max-age=31536000";
/** Access logs roll at 10 MiB and keep 5 files per site. */
export const LOG_ROLL_SIZE = "10MiB";
export const LOG_ROLL_KEEP = 5;

export const ACME_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

export function fragmentFileName(site: string): string {
  return `${FRAGMENT_DIR}/${site}.caddy`;
}

/** A website's upstream: its app container of the current version, by name, on the app's port. */
export function appUpstream(container: string, port: number): string {
  if (!APP_CONTAINER_PATTERN.test(container)) {
    throw new Error(`not an app container name: ${JSON.stringify(container)}`);
  }
  return `${container}:${port}`;
}

/**
 * The upstream `host:port` a site's primary domain proxies to. A website's is its app container of
 * the current version (`<site>-app-<8 hex>`): there is no stable alias, so the name must be given.
 */
export function upstreamOf(site: Site, appContainer?: string): string {
  if (site.kind === "service") return `${site.upstream.host}:${site.upstream.port}`;
  if (appContainer === undefined) {
    throw new Error(`site ${site.name}: a website's upstream is its app container; none was given`);
  }
  return appUpstream(appContainer, site.app.port);
}

/** Whether the site gets a fragment at all: planned sites and services without domains do not. */
export function hasRoute(site: Site): boolean {
  return site.status !== "planned" && site.domains.length > 0;
}

export interface FragmentOptions {
  /** Directory of access logs as the edge sees it. */
  readonly logDir: string;
  /**
   * Address to proxy to: an active website's app container (appUpstream), or, in tests, a stub
   * server instead of the site's own upstream. Required for an active website.
   */
  readonly upstream?: string;
  /** The public HTTPS port; redirects name it when it is not 443 (the local stack's 8443). */
  readonly httpsPort?: number;
}

/** Fragment options from the stack settings: what synth and the host get. */
export function fragmentOptions(settings: StackSettings): FragmentOptions {
  return { logDir: settings.edge.logDir, httpsPort: settings.edge.httpsPort };
}

function maintenancePage(site: Site): string {
  return (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Down for maintenance</title>" +
    "<body style='font-family:sans-serif;max-width:36em;margin:4em auto'>" +
    `<h1>${site.domains[0]} is down for maintenance</h1><p>Please come back soon.</p></body></html>`
  );
}

/** Response headers on every answer of the primary domain. */
function securityHeaders(): string[] {
  return [
    "\theader {",
    `\t\tStrict-Transport-Security "${HSTS}"`,
    '\t\tX-Content-Type-Options "nosniff"',
    '\t\tX-Frame-Options "SAMEORIGIN"',
    '\t\tReferrer-Policy "strict-origin-when-cross-origin"',
    "\t\t-Server",
    "\t}",
  ];
}

function accessLog(site: Site, logDir: string): string[] {
  return [
    "\tlog {",
    `\t\toutput file ${logDir}/${site.name}.access.log {`,
    `\t\t\troll_size ${LOG_ROLL_SIZE}`,
    `\t\t\troll_keep ${LOG_ROLL_KEEP}`,
    "\t\t}",
    "\t\tformat json",
    "\t}",
  ];
}

/** The fragment of one site, or "" when it has no route. */
export function renderSiteFragment(site: Site, options: FragmentOptions): string {
  if (!hasRoute(site)) return "";
  const [primary, ...others] = site.domains;
  const port =
    options.httpsPort !== undefined && options.httpsPort !== 443 ? `:${options.httpsPort}` : "";
  const lines = [
    `# Site "${site.name}" (${site.kind}, ${site.status}), managed by agi-platform.`,
    "",
  ];
  lines.push(`${primary} {`, ...securityHeaders(), ...accessLog(site, options.logDir));
  if (site.status === "paused") {
    lines.push(
      '\theader Content-Type "text/html; charset=utf-8"',
      "\theader Retry-After 3600",
      `\trespond \`${maintenancePage(site)}\` 503`,
    );
  } else {
    lines.push(
      "\tencode zstd gzip",
      `\treverse_proxy ${options.upstream ?? upstreamOf(site)} {`,
      `\t\tlb_try_duration ${LB_TRY_DURATION}`,
      `\t\tlb_try_interval ${LB_TRY_INTERVAL}`,
      "\t}",
    );
  }
  lines.push("}");
  for (const alias of others) {
    lines.push(
      "",
      `${alias} {`,
      `\theader Strict-Transport-Security "${HSTS}"`,
      `\tredir https://${primary}${port}{uri} permanent`,
      "}",
    );
  }
  if (port) {
    // Caddy's own HTTP->HTTPS redirect drops a non-standard port (measured on 2.6.2): say it here.
    lines.push(
      "",
      `${site.domains.map((d) => `http://${d}`).join(", ")} {`,
      `\tredir https://{host}${port}{uri} permanent`,
      "}",
    );
  }
  return `${lines.join("\n")}\n`;
}

/** The main Caddyfile of every edge of the stack: global options, then every fragment. */
export function renderMainCaddyfile(settings: StackSettings): string {
  const { edge } = settings;
  const global: string[] = [];
  if (edge.acmeEmail) global.push(`\temail ${edge.acmeEmail}`);
  if (edge.localCerts) global.push("\tlocal_certs", "\tskip_install_trust");
  else if (edge.acmeStaging) global.push(`\tacme_ca ${ACME_STAGING}`);
  // The admin API answers only inside the edge container (never published); reloads run there.
  global.push(`\tadmin ${edge.adminAddress}`);
  if (edge.httpPort !== 80) global.push(`\thttp_port ${edge.httpPort}`);
  if (edge.httpsPort !== 443) global.push(`\thttps_port ${edge.httpsPort}`);
  return [
    "# Main Caddyfile, managed by agi-platform. Site routes live in sites.d/, one file per site.",
    "{",
    ...global,
    "}",
    "",
    `import ${FRAGMENT_DIR}/*.caddy`,
    "",
  ].join("\n");
}
