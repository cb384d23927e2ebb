/**
 * Every name the platform derives: containers, network aliases, networks, volumes, database roles and
 * files. Components, validation, the inventory and the commands all take names from here, so a name
 * the platform uses is reserved against every site by the same list that creates it.
 */
import * as crypto from "node:crypto";

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

/** The data volume of a shared cluster the program creates (`sharedDatabase.create`), by its container. */
export function sharedClusterVolume(container: string): string {
  return `${container}-pgdata`;
}

/** Names compared as Docker's and DNS's resolvers compare them: case-insensitive, trailing dots dropped. */
export function normalName(name: string): string {
  return name.toLowerCase().replace(/\.+$/, "");
}

/**
 * A website's app container is named per version: `<site>-app-<8 hex>`, the hex the start of a
 * sha256 over every input of the container (see appVersion). A new version gets a new name, so it
 * starts beside the old one, and the edge reaches exactly the version it was switched to.
 */
export const APP_CONTAINER_INFIX = "-app-";
/** The version part of an app container's name: 8 hex digits, new per deploy. */
const APP_VERSION = "[0-9a-f]{8}";
/** One site's app container names, as a regular expression's source (unanchored). */
export function appContainerPatternOf(site: string): string {
  return `${site}${APP_CONTAINER_INFIX}${APP_VERSION}`;
}
/** The one pattern of a versioned app container name: where such a name enters a shell, this checks it. */
export const APP_CONTAINER_PATTERN = new RegExp(
  `^${appContainerPatternOf("[a-z][a-z0-9-]{1,30}[a-z0-9]")}$`,
);
/** Any name of that form, whatever its site part: reserved, no site or upstream may take one. */
export const VERSIONED_APP_NAME = new RegExp(`${APP_CONTAINER_INFIX}${APP_VERSION}$`);

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(obj[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * The version of an app container: the first 8 hex digits of the sha256 of its inputs (image id,
 * env with secret values, networks, healthcheck, limits, ...). Only a hash leaves: it shows nothing of
 * a secret input, so the name may be shown.
 */
export function appVersion(inputs: unknown): string {
  return crypto.createHash("sha256").update(stableJson(inputs)).digest("hex").slice(0, 8);
}

/** The app container's name for one version; refuses anything but the strict pattern. */
export function appContainerName(site: string, version: string): string {
  const name = `${site}${APP_CONTAINER_INFIX}${version}`;
  if (!APP_CONTAINER_PATTERN.test(name)) {
    throw new Error(`not an app container name: ${JSON.stringify(name)}`);
  }
  return name;
}

/** Suffixes of the names a website derives from its own name, with what each names. */
export const SITE_NAME_SUFFIXES = {
  database: "-db",
  internalNetwork: "-internal",
  dockerProxy: "-docker",
  backup: "-backup",
  offsite: "-offsite",
  databaseVolume: "-pgdata",
  edgeNetwork: "-edge",
} as const;

/** Everything a website's name gives it on its host. */
export interface SiteNames {
  /**
   * The site's own name, kept on the host: no other site's container, alias or upstream may take it.
   * It is the alias of the app version that passed its gate, on the site's edge network only.
   */
  readonly name: string;
  /** The dedicated database container and its alias on the internal network. */
  readonly database: string;
  /** The site's internal network (database and socket proxy; never routed). */
  readonly internalNetwork: string;
  /** The read-only Docker API proxy container and its alias. */
  readonly dockerProxy: string;
  /** The short-lived container a shared-mode site's backup job runs its tools in (while it runs). */
  readonly backup: string;
  /** The short-lived uploader container of the site's off-site copies (while it runs). */
  readonly offsite: string;
  /** The dedicated database's data volume (retained when the site goes). */
  readonly databaseVolume: string;
  /**
   * The network only the site's app versions and the edge share, where the version that passed its
   * gate holds the site's name as an alias (every active website, whatever the isolation).
   */
  readonly edgeNetwork: string;
  /** The site's Caddy fragment file in the edge's sites.d. */
  readonly fragmentFile: string;
}

export function siteNames(site: string): SiteNames {
  const s = SITE_NAME_SUFFIXES;
  return {
    name: site,
    database: `${site}${s.database}`,
    internalNetwork: `${site}${s.internalNetwork}`,
    dockerProxy: `${site}${s.dockerProxy}`,
    backup: `${site}${s.backup}`,
    offsite: `${site}${s.offsite}`,
    databaseVolume: `${site}${s.databaseVolume}`,
    edgeNetwork: `${site}${s.edgeNetwork}`,
    fragmentFile: `${site}.caddy`,
  };
}

/** Every name a website takes on its host's Docker engine (containers, aliases, networks, volumes). */
export function hostNamesOf(site: string): string[] {
  const n = siteNames(site);
  return [
    n.name,
    n.database,
    n.internalNetwork,
    n.dockerProxy,
    n.backup,
    n.offsite,
    n.databaseVolume,
    n.edgeNetwork,
  ];
}

/** The database a site's name gives it by default: the name with "-" replaced by "_". */
export function defaultDatabaseName(site: string): string {
  return site.replace(/-/g, "_");
}

/** The roles a database gets: the app's login role, and the owner role of an adopted database. */
export function databaseRoles(database: string): { app: string; owner: string } {
  return { app: `${database}_app`, owner: `${database}_owner` };
}
