/**
 * Caddy configuration as pure text: the main Caddyfile of an edge and one fragment per site
 * (`sites.d/<site>.caddy`). Deterministic: the same site gives the same bytes.
 */
import type { Site } from "./site";
import type { StackSettings } from "../stacks/settings";

/** Where fragments live, relative to the main Caddyfile (inside the edge container: /etc/caddy). */
export const FRAGMENT_DIR = "sites.d";
/** How long Caddy keeps retrying an upstream (an app container being swapped) before it gives up. */
export const LB_TRY_DURATION = "30s";
export const LB_TRY_INTERVAL = "250ms";

const ACME_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

export function fragmentFileName(site: string): string {
  return `${FRAGMENT_DIR}/${site}.caddy`;
}

/** The upstream `host:port` a site's primary domain proxies to, or undefined if it proxies nothing. */
export function upstreamOf(site: Site): string | undefined {
  if (site.kind === "website") return `${site.name}:${site.app.port}`;
  return `${site.upstream.host}:${site.upstream.port}`;
}

/** Whether the site gets a fragment at all: planned sites and services without domains do not. */
export function hasRoute(site: Site): boolean {
  return site.status !== "planned" && site.domains.length > 0;
}

function maintenancePage(site: Site): string {
  return (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Down for maintenance</title>" +
    "<body style='font-family:sans-serif;max-width:36em;margin:4em auto'>" +
    `<h1>${site.domains[0]} is down for maintenance</h1><p>Please come back soon.</p></body></html>`
  );
}

/** The fragment of one site, or "" when it has no route. */
export function renderSiteFragment(site: Site): string {
  if (!hasRoute(site)) return "";
  const [primary, ...others] = site.domains;
  const lines = [
    `# Site "${site.name}" (${site.kind}, ${site.status}), managed by agi-platform.`,
    "",
  ];
  lines.push(`${primary} {`);
  if (site.status === "paused") {
    lines.push(
      '\theader Content-Type "text/html; charset=utf-8"',
      "\theader Retry-After 3600",
      `\trespond \`${maintenancePage(site)}\` 503`,
    );
  } else {
    lines.push(
      "\tencode zstd gzip",
      `\treverse_proxy ${upstreamOf(site)} {`,
      `\t\tlb_try_duration ${LB_TRY_DURATION}`,
      `\t\tlb_try_interval ${LB_TRY_INTERVAL}`,
      "\t}",
    );
  }
  lines.push("}");
  for (const alias of others) {
    lines.push("", `${alias} {`, `\tredir https://${primary}{uri} permanent`, "}");
  }
  return `${lines.join("\n")}\n`;
}

/** The main Caddyfile of every edge of the stack: global options, then every fragment. */
export function renderMainCaddyfile(settings: StackSettings): string {
  const { edge } = settings;
  const global: string[] = [];
  if (edge.acmeEmail) global.push(`\temail ${edge.acmeEmail}`);
  if (edge.localCerts) global.push("\tlocal_certs");
  else if (edge.acmeStaging) global.push(`\tacme_ca ${ACME_STAGING}`);
  // The admin API answers only inside the edge container; reloads run there.
  global.push("\tadmin localhost:2019");
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
