/** The Cloudflare records of a site's domains, from the planned set in core/dns.ts. */
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { AUTO_TTL, plannedRecords, recordComment, recordSlug } from "../core/dns";
import type { Site } from "../core/site";

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
