import * as pulumi from "@pulumi/pulumi";
import { hasRoute, renderSiteFragment } from "../core/caddy";
import { createDnsRecords } from "./dns";
import { createRoute, type SiteEdge } from "./route";
import type { ServiceSite } from "../core/site";

export interface RoutedServiceArgs {
  /** The validated site file of kind "service". */
  readonly site: ServiceSite;
  /** Public IPv4 address the DNS records point to. */
  readonly publicIp: string;
  /** Id of the site's Cloudflare zone; records are created only when it is given. */
  readonly zoneId?: pulumi.Input<string>;
  /** The host's edge: the service's route goes there. */
  readonly edge: SiteEdge;
}

/**
 * A container the platform does not run (n8n, open-webui, ...) but routes to: DNS records and a
 * Caddy fragment that proxies to its container on agi-network. Without domains it is only listed.
 */
export class RoutedService extends pulumi.ComponentResource {
  /** The Caddy fragment (sites.d/<site>.caddy); empty without a public route. */
  public readonly caddyFragment: pulumi.Output<string>;
  /** The primary URL, or undefined without a public route. */
  public readonly url: pulumi.Output<string | undefined>;

  constructor(name: string, args: RoutedServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agi:web:Service", name, {}, opts);
    if (args.zoneId !== undefined) {
      createDnsRecords(name, args.site, args.publicIp, args.zoneId, { parent: this });
    }
    const fragment = renderSiteFragment(args.site, args.edge.fragment);
    if (hasRoute(args.site)) {
      createRoute(name, args.site.name, fragment, args.edge.target, {
        parent: this,
        dependsOn: args.edge.ready,
      });
    }
    this.caddyFragment = pulumi.output(fragment);
    this.url = pulumi.output(
      args.site.domains.length ? `https://${args.site.domains[0]}` : undefined,
    );
    this.registerOutputs({ caddyFragment: this.caddyFragment, url: this.url });
  }
}
