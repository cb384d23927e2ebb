import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";

export interface ZoneArgs {
  /** The zone's domain, e.g. "agistaffers.com". */
  readonly zone: string;
}

/**
 * A Cloudflare zone the platform manages records in: looked up by name (the zone itself is created
 * in Cloudflare's dashboard with the registrar), and held at SSL mode "strict" so Cloudflare only
 * talks to the origin over HTTPS with a valid certificate.
 */
export class Zone extends pulumi.ComponentResource {
  /** The zone's id, for its records. */
  public readonly zoneId: pulumi.Output<string>;

  constructor(name: string, args: ZoneArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agi:dns:Zone", name, {}, opts);
    const found = cloudflare.getZoneOutput({ filter: { name: args.zone } }, { parent: this });
    this.zoneId = found.zoneId;
    new cloudflare.ZoneSetting(
      `${name}-ssl`,
      { zoneId: this.zoneId, settingId: "ssl", value: "strict" },
      { parent: this },
    );
    this.registerOutputs({ zoneId: this.zoneId });
  }
}

/** Component name of a zone: "zone-agistaffers-com". */
export function zoneResourceName(zone: string): string {
  return `zone-${zone.replace(/\./g, "-")}`;
}
