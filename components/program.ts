/**
 * The program: read and validate the stack settings and every site file, then build one Platform
 * per host, one Zone per managed Cloudflare zone and one component per site. `index.ts` runs it under
 * the Pulumi engine; `synth` and the tests run the very same function under the SDK's mocks.
 */
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { fragmentFileName, fragmentOptions, hasRoute, renderMainCaddyfile } from "../core/caddy";
import { buildInventory, type Inventory } from "../core/inventory";
import { Platform } from "./platform";
import { backupHostDir } from "../core/host";
import { RoutedService } from "./routed-service";
import type { Site } from "../core/site";
import {
  formatProblem,
  loadSiteEntries,
  parseStackSettings,
  secretKeysFor,
  unpinnedHosts,
  validateAll,
  ValidationError,
} from "../core/validate";
import { Website } from "./website";
import { Zone, zoneResourceName } from "./zone";
import { PROJECT, SETTINGS_KEY, SITE_SECRETS_KEY, type StackSettings } from "../stacks/settings";
import { hostOf } from "../core/capacity";

export interface ProgramOptions {
  /** Directory of the site files. */
  readonly sitesDir: string;
  /** How the directory is named in messages; default "sites". */
  readonly sitesShownAs?: string;
}

export interface ProgramOutputs {
  /** The `inventory` stack output. */
  readonly inventory: pulumi.Output<Inventory>;
  /** Edge configuration files by path: "Caddyfile" and "sites.d/<site>.caddy". */
  readonly caddy: pulumi.Output<Record<string, string>>;
}

/** Reads settings and sites and fails with every problem at once (no resource is registered then). */
export function loadAndValidate(options: ProgramOptions): {
  settings: StackSettings;
  sites: Site[];
} {
  const stackFile = `Pulumi.${pulumi.getStack()}.yaml`;
  const config = new pulumi.Config(PROJECT);
  const parsed = parseStackSettings(config.getObject<unknown>(SETTINGS_KEY), stackFile);
  const loaded = loadSiteEntries(options.sitesDir, options.sitesShownAs ?? "sites");
  const problems = [...parsed.problems, ...loaded.problems];
  if (!parsed.settings) throw new ValidationError(problems);
  const checked = validateAll(loaded.entries, [{ file: stackFile, settings: parsed.settings }]);
  problems.push(...checked.problems);
  if (problems.length) throw new ValidationError(problems);
  return { settings: parsed.settings, sites: checked.sites.map((s) => s.site) };
}

export function runProgram(options: ProgramOptions): ProgramOutputs {
  let loaded: { settings: StackSettings; sites: Site[] };
  try {
    loaded = loadAndValidate(options);
  } catch (err) {
    // RunError: the engine prints the message alone, without a stack trace.
    if (err instanceof ValidationError) throw new pulumi.RunError(err.message);
    throw err;
  }
  const { settings, sites } = loaded;
  if (!pulumi.runtime.isDryRun()) {
    // Routes are applied over SSH with the pinned key; an update never runs against an unchecked host.
    const unpinned = unpinnedHosts(settings, `Pulumi.${pulumi.getStack()}.yaml`);
    if (unpinned.length) throw new pulumi.RunError(unpinned.map(formatProblem).join("\n"));
  }
  const config = new pulumi.Config(PROJECT);
  const caddyfile = renderMainCaddyfile(settings);
  const adopted = new Set<string>();
  const transformations = [adoptTransformation(settings.adopt, adopted)];

  const cloudflareProvider =
    settings.dns.provider === "cloudflare"
      ? new cloudflare.Provider("cloudflare", {
          apiToken: config.requireSecret(settings.dns.apiTokenSecret),
        })
      : undefined;

  // Zones with at least one record to manage.
  const zones = new Map<string, Zone>();
  if (cloudflareProvider) {
    const names = new Set<string>();
    for (const s of sites) {
      if (s.status !== "planned" && s.domains.length && s.dns?.provider === "cloudflare")
        names.add(s.dns.zone);
    }
    for (const zone of [...names].sort()) {
      zones.set(
        zone,
        new Zone(
          zoneResourceName(zone),
          { zone },
          { provider: cloudflareProvider, transformations },
        ),
      );
    }
  }

  const platforms = new Map<string, Platform>();
  for (const host of settings.hosts) {
    platforms.set(
      host.name,
      new Platform(
        host.name,
        {
          host,
          edge: settings.edge,
          caddyImage: settings.images.caddy,
          caddyfile,
          sharedDatabasePassword: host.sharedDatabase?.adminPasswordSecret
            ? config.requireSecret(host.sharedDatabase.adminPasswordSecret)
            : undefined,
          postgresImage: settings.images.postgres,
          offsite: settings.offsite
            ? {
                settings: settings.offsite,
                image: settings.images.uploader,
                accessKeyId: config.requireSecret(settings.offsite.accessKeyIdSecret),
                secretAccessKey: config.requireSecret(settings.offsite.secretAccessKeySecret),
              }
            : undefined,
        },
        { transformations },
      ),
    );
  }

  // Each site's secrets, read only when a site has any: `secrets.<site>.<key>`.
  let secretsObject: pulumi.Output<unknown> | undefined;
  const siteSecrets = () =>
    (secretsObject ??= checkedSiteSecrets(config, secretKeysFor(settings, sites)));

  const fragments: Record<string, pulumi.Output<string>> = {};
  const appNames: Record<string, pulumi.Output<string | undefined>> = {};
  for (const site of sites) {
    if (site.status === "planned") continue; // reserved: nothing is created
    const hostName = hostOf(site, settings);
    const host = settings.hosts.find((h) => h.name === hostName)!;
    const platform = platforms.get(hostName)!;
    const zoneId =
      site.dns?.provider === "cloudflare" && site.domains.length
        ? zones.get(site.dns.zone)?.zoneId
        : undefined;
    const edge = {
      target: platform.edgeTarget,
      ready: [platform.edge, platform.routeScript],
      gateReady: [platform.gateScript],
      fragment: fragmentOptions(settings),
      containerId: platform.edge.id,
    };
    const providers: pulumi.ProviderResource[] = [platform.dockerProvider];
    if (cloudflareProvider) providers.push(cloudflareProvider);
    if (platform.sharedDatabaseProvider) providers.push(platform.sharedDatabaseProvider);

    if (site.kind === "website") {
      const secretEnv: Record<string, pulumi.Output<string>> = {};
      if (site.status === "active") {
        for (const [env, key] of Object.entries(site.app.secretEnv))
          secretEnv[env] = siteSecret(siteSecrets(), site.name, key);
      }
      const web = new Website(
        site.name,
        {
          site,
          network: platform.networkName,
          publicIp: host.publicIp,
          zoneId,
          images: settings.images,
          sharedDatabase: host.sharedDatabase
            ? {
                container: host.sharedDatabase.container,
                port: host.sharedDatabase.port,
                created: host.sharedDatabase.create,
              }
            : undefined,
          secretEnv,
          edge,
          isolation: settings.isolation,
          backupDir: backupHostDir(host, site.name),
          backupJob: platform.backupJob,
        },
        { providers, transformations },
      );
      if (hasRoute(site)) fragments[fragmentFileName(site.name)] = web.caddyFragment;
      appNames[site.name] = web.appContainerName;
    } else {
      const svc = new RoutedService(
        site.name,
        { site, publicIp: host.publicIp, zoneId, edge },
        { providers, transformations },
      );
      if (hasRoute(site)) fragments[fragmentFileName(site.name)] = svc.caddyFragment;
    }
  }

  // Every entry of `adopt` must have found its resource: a typo would otherwise create a duplicate.
  const unmatched = Object.keys(settings.adopt).filter((n) => !adopted.has(n));
  if (unmatched.length) {
    throw new pulumi.RunError(
      unmatched
        .map(
          (n) =>
            `Pulumi.${pulumi.getStack()}.yaml: ${PROJECT}:${SETTINGS_KEY}.adopt.${n}: no resource of the program is named "${n}" (names are in npm run synth's manifest.json)`,
        )
        .join("\n"),
    );
  }

  const caddy = pulumi
    .all(fragments)
    .apply((f): Record<string, string> => ({ Caddyfile: caddyfile, ...sortedRecord(f) }));
  const inventory = pulumi
    .all(appNames)
    .apply((names) => buildInventory(pulumi.getStack(), settings, sites, names));
  return { inventory, caddy };
}

function sortedRecord<T>(r: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Takes over existing resources: each custom resource named in `adopt` gets Pulumi's `import` option
 * with the given ID. Given to every top-level component, whose children it reaches; `matched` fills
 * while the program registers resources.
 */
function adoptTransformation(
  adopt: Record<string, string>,
  matched: Set<string>,
): pulumi.ResourceTransformation {
  return (args) => {
    const id = Object.hasOwn(adopt, args.name) ? adopt[args.name] : undefined;
    if (id === undefined || !(args.resource instanceof pulumi.CustomResource)) return undefined;
    matched.add(args.name);
    return { props: args.props, opts: pulumi.mergeOptions(args.opts, { import: id }) };
  };
}

/**
 * The `secrets` config object as a secret Output, after checking that every site secret the program
 * reads is set (the message names the paths, never a value), so a missing one stops the run before any
 * resource is registered.
 */
function checkedSiteSecrets(config: pulumi.Config, paths: string[]): pulumi.Output<unknown> {
  const raw = pulumi.runtime.getConfig(`${PROJECT}:${SITE_SECRETS_KEY}`);
  let present: unknown;
  try {
    present = raw === undefined ? undefined : JSON.parse(raw);
  } catch {
    present = undefined;
  }
  const missing = paths.filter((p) => {
    if (!p.startsWith(`${SITE_SECRETS_KEY}.`)) return false;
    const [, site, key] = p.split(".");
    const bySite = (present as Record<string, Record<string, unknown>> | undefined)?.[site];
    return typeof bySite?.[key] !== "string";
  });
  if (missing.length) {
    throw new pulumi.RunError(
      missing
        .map(
          (p) =>
            `Pulumi.${pulumi.getStack()}.yaml: ${PROJECT}:${p}: is not set; pulumi config set --path --secret '${p}' <value>`,
        )
        .join("\n"),
    );
  }
  return config.requireSecretObject<unknown>(SITE_SECRETS_KEY);
}

/** One of a site's secrets, from its own namespace of the `secrets` object only. */
function siteSecret(all: pulumi.Output<unknown>, site: string, key: string): pulumi.Output<string> {
  return pulumi.secret(all.apply((s) => (s as Record<string, Record<string, string>>)[site][key]));
}
