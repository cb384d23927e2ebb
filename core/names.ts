/**
 * Every name the platform derives: containers, network aliases, networks, volumes, database roles and
 * files. Components, validation, the inventory and the commands all take names from here, so a name
 * the platform uses is reserved against every site by the same list that creates it.
 */

/** The platform's own network on every host: the edge, the services and the shared cluster meet there. */
export const PLATFORM_NETWORK = "agi-network";
/** Container name of every host's edge. */
export const EDGE_CONTAINER = "agi-edge";
/** The edge's alias on the platform network. */
export const EDGE_ALIAS = "edge";
/** The edge's retained volumes: certificates and ACME account (data), Caddy's autosave (config). */
export const EDGE_VOLUMES = { data: "agi-edge-data", config: "agi-edge-config" } as const;
/** The `agi.site` label value of the platform's own resources. */
export const PLATFORM_OWNER = "platform";

/**
 * Names no site may take on any host: the platform's own, and words that would mean something else to
 * Docker, Caddy or a resolver.
 */
export const PLATFORM_NAMES = [
  EDGE_CONTAINER,
  EDGE_ALIAS,
  PLATFORM_NETWORK,
  EDGE_VOLUMES.data,
  EDGE_VOLUMES.config,
  "caddy",
  "host",
  "localhost",
  "bridge",
  "none",
  "default",
  "gateway",
  "host.docker.internal",
] as const;

/** Names compared as Docker's and DNS's resolvers compare them: case-insensitive, trailing dots dropped. */
export function normalName(name: string): string {
  return name.toLowerCase().replace(/\.+$/, "");
}

/** Suffixes of the names a website derives from its own name, with what each names. */
export const SITE_NAME_SUFFIXES = {
  database: "-db",
  internalNetwork: "-internal",
  dockerProxy: "-docker",
  backup: "-backup",
  databaseVolume: "-pgdata",
} as const;

/** Everything a website's name gives it on its host. */
export interface SiteNames {
  /** The app's network alias: the edge and other containers reach the app by it. */
  readonly alias: string;
  /** The dedicated database container and its alias on the internal network. */
  readonly database: string;
  /** The site's internal network (database and socket proxy; never routed). */
  readonly internalNetwork: string;
  /** The read-only Docker API proxy container and its alias. */
  readonly dockerProxy: string;
  /** The short-lived container a shared-mode site's backup job runs its tools in (while it runs). */
  readonly backup: string;
  /** The dedicated database's data volume (retained when the site goes). */
  readonly databaseVolume: string;
  /** The site's Caddy fragment file in the edge's sites.d. */
  readonly fragmentFile: string;
}

export function siteNames(site: string): SiteNames {
  const s = SITE_NAME_SUFFIXES;
  return {
    alias: site,
    database: `${site}${s.database}`,
    internalNetwork: `${site}${s.internalNetwork}`,
    dockerProxy: `${site}${s.dockerProxy}`,
    backup: `${site}${s.backup}`,
    databaseVolume: `${site}${s.databaseVolume}`,
    fragmentFile: `${site}.caddy`,
  };
}

/** Every name a website takes on its host's Docker engine (containers, aliases, networks, volumes). */
export function hostNamesOf(site: string): string[] {
  const n = siteNames(site);
  return [n.alias, n.database, n.internalNetwork, n.dockerProxy, n.backup, n.databaseVolume];
}

/** The database a site's name gives it by default: the name with "-" replaced by "_". */
export function defaultDatabaseName(site: string): string {
  return site.replace(/-/g, "_");
}

/** The roles a database gets: the app's login role, and the owner role of an adopted database. */
export function databaseRoles(database: string): { app: string; owner: string } {
  return { app: `${database}_app`, owner: `${database}_owner` };
}
