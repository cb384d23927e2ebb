/** DNS records for a site's domains: the planned set (pure) and the Cloudflare resources that create it. */
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
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

/** Creates the Cloudflare records of a site as children of `parent`. */
export function createDnsRecords(
  name: string,
  site: Site,
  publicIp: string,
  zoneId: pulumi.Input<string>,
  opts: pulumi.CustomResourceOptions,
): cloudflare.DnsRecord[] {
  if (site.dns?.provider !== "cloudflare") return [];
  const zone = site.dns.zone;
  return plannedRecords(site, publicIp).map(
    (r) =>
      new cloudflare.DnsRecord(
        `${name}-dns-${recordSlug(r.name, zone)}`,
        {
          zoneId,
          name: r.name,
          type: r.type,
          content: r.content,
          proxied: r.proxied,
          ttl: AUTO_TTL,
          comment: recordComment(site.name, r.proxied),
        },
        opts,
      ),
  );
}
