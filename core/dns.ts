/** The DNS records a site's domains get: pure data that the Cloudflare component and the inventory share. */
import type { Site } from "./site";

export interface PlannedRecord {
  name: string;
  type: "A";
  content: string;
  proxied: boolean;
}

/**
 * The mark a record's comment carries when its site file asks for DNS only (not proxied): the policy
 * pack lets an unproxied record through only with it, so an unproxied record is always intended.
 */
export const UNPROXIED_MARK = "proxied: false in its site file";

/** The comment of a site's records. */
export function recordComment(site: string, proxied: boolean): string {
  return proxied ? `agi-platform: site ${site}` : `agi-platform: site ${site}; ${UNPROXIED_MARK}`;
}

/** Cloudflare's "automatic" TTL. */
export const AUTO_TTL = 1;

/** One A record per domain, pointing at the host's public address. */
export function plannedRecords(site: Site, publicIp: string): PlannedRecord[] {
  const proxied = site.dns?.provider === "cloudflare" ? site.dns.proxied : false;
  return site.domains.map((name) => ({ name, type: "A", content: publicIp, proxied }));
}

/** Stable child-name suffix of a record: "apex" for the zone itself, else the labels below it. */
export function recordSlug(domain: string, zone: string): string {
  if (domain === zone) return "apex";
  return domain.slice(0, -(zone.length + 1)).replace(/\./g, "-");
}
