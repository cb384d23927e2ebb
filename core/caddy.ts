/**
 * Caddy configuration as pure text: the main Caddyfile of an edge and one fragment per site
 * (`sites.d/<site>.caddy`). Deterministic: the same site and settings give the same bytes.
 */
import type { Site } from "./site";
import type { StackSettings } from "../stacks/settings";
import { cidrProblem, cloudflareRanges } from "./cloudflare";

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

/**
 * The upstream `host:port` a site's primary domain proxies to. A website's is its own name on its
 * edge network (`<site>-edge`): an alias that only the app version which passed its gate holds (the
 * gate gives it; see components/app-gate.sh), resolved by the edge per new connection. So the
 * fragment never names a version and an app update never reloads Caddy.
 */
export function upstreamOf(site: Site): string {
  if (site.kind === "service") return `${site.upstream.host}:${site.upstream.port}`;
  return `${site.name}:${site.app.port}`;
}

/** Whether the site gets a fragment at all: planned sites and services without domains do not. */
export function hasRoute(site: Site): boolean {
  return site.status !== "planned" && site.domains.length > 0;
}

export interface FragmentOptions {
  /** Directory of access logs as the edge sees it. */
  readonly logDir: string;
  /**
   * Address to proxy to instead of the site's own upstream (upstreamOf): in tests, a stub server.
   */
  readonly upstream?: string;
  /** The public HTTPS port; redirects name it when it is not 443 (the local stack's 8443). */
  readonly httpsPort?: number;
  /**
   * The proxies' address ranges (Cloudflare's) when the stack's DNS is Cloudflare: a site whose
   * records are proxied answers only clients from these. Undefined: every client is answered.
   */
  readonly proxyRanges?: readonly string[];
}

/** The ranges of the proxy in front of the edge: Cloudflare's when the stack manages DNS there. */
export function proxyRanges(settings: StackSettings): string[] | undefined {
  return settings.dns.provider === "cloudflare" ? cloudflareRanges() : undefined;
}

/** Fragment options from the stack settings: what synth and the host get. */
export function fragmentOptions(settings: StackSettings): FragmentOptions {
  return {
    logDir: settings.edge.logDir,
    httpsPort: settings.edge.httpsPort,
    proxyRanges: proxyRanges(settings),
  };
}

/** Whether the site's records go through Cloudflare's proxy (the site file's `dns.proxied`). */
export function isProxied(site: Site): boolean {
  return site.dns?.provider === "cloudflare" && site.dns.proxied;
}

/** The matcher name of clients outside the proxy's ranges. */
export const OUTSIDE_PROXY_MATCHER = "@outside_proxy";

/**
 * On a proxied site, the lines that refuse every client that is not the proxy (direct connections to
 * the origin would skip Cloudflare's protection and could claim any client address).
 */
function originGuard(site: Site, options: FragmentOptions): string[] {
  if (!options.proxyRanges || !isProxied(site)) return [];
  for (const range of options.proxyRanges) {
    const problem = cidrProblem(range);
    if (problem) throw new Error(`proxy range ${JSON.stringify(range)} ${problem}`);
  }
  return [
    `	${OUTSIDE_PROXY_MATCHER} not remote_ip ${options.proxyRanges.join(" ")}`,
    `	respond ${OUTSIDE_PROXY_MATCHER} "This origin answers through Cloudflare only." 403 {`,
    "		close",
    "	}",
  ];
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
  const guard = originGuard(site, options);
  lines.push(`${primary} {`, ...guard, ...securityHeaders(), ...accessLog(site, options.logDir));
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
      // Behind the proxy, the client's address it sends in X-Forwarded-For is kept for the app (from
      // anyone else Caddy replaces the header with the connecting address). Caddy 2.6.2 sets this per
      // reverse_proxy; 2.6.3 and later moved it to the global `servers` option.
      ...(guard.length ? [`\t\ttrusted_proxies ${options.proxyRanges!.join(" ")}`] : []),
      `\t\tlb_try_duration ${LB_TRY_DURATION}`,
      `\t\tlb_try_interval ${LB_TRY_INTERVAL}`,
      "\t}",
    );
  }
  lines.push("}");
  for (const alias of others) {
    const redirect = [
      `\theader Strict-Transport-Security "${HSTS}"`,
      `\tredir https://${primary}${port}{uri} permanent`,
    ];
    // Caddy orders redir before respond: a route keeps the guard first.
    const body = guard.length
      ? [guard[0], "\troute {", ...[...guard.slice(1), ...redirect].map((l) => `\t${l}`), "\t}"]
      : redirect;
    lines.push("", `${alias} {`, ...body, "}");
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
