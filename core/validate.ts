/**
 * Validation of site files and stack settings: every problem at once, each as
 * `<file>: <field.path>: <message>`, quoting the bad value unless it may be secret.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import {
  SITE_NAME_PATTERN,
  SiteSchema,
  cronNote,
  databaseName,
  looksLikeSecretValue,
  shownPath,
  type Site,
} from "./site";
import { PLATFORM_NAMES, VERSIONED_APP_NAME, hostNamesOf, normalName } from "./names";
import { readSiteFile } from "./site-file";
import { hostLoads, hostOf, loadParts, siteFootprint } from "./capacity";
import { formatMiB } from "./units";
import {
  PROJECT,
  SETTINGS_KEY,
  SITE_SECRETS_KEY,
  StackSettingsSchema,
  type StackSettings,
} from "../stacks/settings";

export interface Problem {
  file: string;
  path: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.file}: ${p.path || "(file)"}: ${p.message}`;
}

/** A validation failure: the message is the whole list of problems, one per line, with no stack trace. */
export class ValidationError extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ValidationError";
  }
}

/** Paths under which values may be secret: never quoted back. */
const SECRET_VALUE_PATHS = [/^app\.env\./, /^app\.secretEnv\./, /Secret$/, /\.secrets\./];

/** A value as a message shows it; a value shaped like a credential is never shown. */
function quote(value: unknown): string {
  if (typeof value === "string" && looksLikeSecretValue(value)) return "(value not shown)";
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function valueAt(root: unknown, at: PropertyKey[]): unknown {
  let v = root;
  for (const key of at) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** zod issues -> problems, with the bad value quoted where it is safe and useful. */
export function zodProblems(
  file: string,
  error: z.ZodError,
  root: unknown,
  prefix = "",
): Problem[] {
  const out: Problem[] = [];
  for (const issue of error.issues) {
    const basePath = shownPath([prefix, ...issue.path.map(String)].filter(Boolean));
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({
          file,
          path: shownPath([basePath, key].filter(Boolean)),
          message: "unknown field; check its spelling against the site file format",
        });
      }
      continue;
    }
    const input = valueAt(root, issue.path);
    let message = issue.message;
    if (issue.code === "invalid_type" && input === undefined) {
      message = `is required (${issue.message.replace(/^Invalid input: /, "")})`;
    } else if (issue.code === "invalid_union" && input === undefined) {
      message = `is required; ${issue.message}`;
    } else if (issue.code === "invalid_key") {
      message = `${(issue.issues[0]?.message ?? issue.message).replace(/^Invalid string: /, "")}, got ${quote(issue.path.at(-1))}`;
    } else if (
      input !== undefined &&
      typeof input !== "object" &&
      !(typeof input === "string" && message.includes(quote(input))) &&
      !SECRET_VALUE_PATHS.some((re) => re.test(basePath))
    ) {
      message = `${message}, got ${quote(input)}`;
    }
    out.push({ file, path: basePath, message });
  }
  return out;
}

export interface SiteEntry {
  /** The file as shown in messages, e.g. "sites/vaina.ts". */
  file: string;
  /** The file's default export. */
  value: unknown;
}

export interface ParsedSite {
  file: string;
  site: Site;
}

/**
 * Reads every `*.ts` site file of a directory (sorted by name) as data, without running any of it,
 * and without validating it yet. A directory without site files is a problem: a mistyped path must
 * never pass as "0 sites OK".
 */
export function loadSiteEntries(
  dir: string,
  shownAs = dir,
): { entries: SiteEntry[]; problems: Problem[] } {
  const entries: SiteEntry[] = [];
  const problems: Problem[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith(".ts") && !n.endsWith(".d.ts"));
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such directory" : String(err);
    return {
      entries,
      problems: [{ file: shownAs, path: "", message: `cannot read site files: ${reason}` }],
    };
  }
  for (const name of names.sort()) {
    const file = path.join(shownAs, name);
    let text: string;
    try {
      text = fs.readFileSync(path.resolve(dir, name), "utf8");
    } catch (err) {
      problems.push({ file, path: "", message: `cannot be read: ${(err as Error).message}` });
      continue;
    }
    const read = readSiteFile(text, name);
    if (read.problems.length) {
      problems.push(...read.problems.map((p) => ({ file, ...p })));
      continue;
    }
    entries.push({ file, value: read.value });
  }
  if (names.length === 0 && problems.length === 0) {
    problems.push({
      file: shownAs,
      path: "",
      message: "holds no site file (*.ts); check the directory, or add sites/<name>.ts",
    });
  }
  return { entries, problems };
}

/** Parses each entry on its own: schema, file name, and the checks within one file. */
export function parseSites(entries: SiteEntry[]): { sites: ParsedSite[]; problems: Problem[] } {
  const sites: ParsedSite[] = [];
  const problems: Problem[] = [];
  for (const { file, value } of entries) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      problems.push({
        file,
        path: "",
        message: `the default export must be a site object, got ${quote(value)}`,
      });
      continue;
    }
    const result = SiteSchema.safeParse(value);
    const own = checkFile(file, value as Record<string, unknown>);
    problems.push(...own);
    if (!result.success) {
      problems.push(...zodProblems(file, result.error, value));
      continue;
    }
    if (own.length === 0) sites.push({ file, site: result.data });
  }
  return { sites, problems };
}

/** Checks that need the file: its name, and names the platform keeps. They run on the raw value. */
function checkFile(file: string, value: Record<string, unknown>): Problem[] {
  const out: Problem[] = [];
  const name = value.name;
  if (typeof name !== "string" || !SITE_NAME_PATTERN.test(name)) return out;
  const expected = path.basename(file, ".ts");
  if (name !== expected) {
    out.push({
      file,
      path: "name",
      message: `must equal the file name "${expected}", got ${quote(name)}`,
    });
  }
  const taken = hostNamesOf(name).find((n) =>
    (PLATFORM_NAMES as readonly string[]).includes(normalName(n)),
  );
  if (taken !== undefined) {
    out.push({
      file,
      path: "name",
      message:
        taken === name
          ? `${quote(name)} is reserved by the platform`
          : `${quote(name)} would take ${quote(taken)}, a name the platform keeps`,
    });
  }
  // `<site>-app-<8 hex>` names the app containers, version by version: no site name or upstream may
  // take that form, whichever site's container it would be (site "x-app-deadbeef" vs site "x").
  if (VERSIONED_APP_NAME.test(normalName(name))) {
    out.push({
      file,
      path: "name",
      message: `${quote(name)} has the form of an app container's name (<site>-app-<8 hex digits>), which the platform keeps`,
    });
  }
  return out;
}

/** Checks across site files: each message names both files involved. */
export function crossSiteProblems(sites: ParsedSite[]): Problem[] {
  const out: Problem[] = [];
  const claim = <K>(
    map: Map<K, { file: string; path: string }>,
    key: K,
    file: string,
    p: string,
    what: string,
  ) => {
    const prev = map.get(key);
    if (prev && prev.file !== file) {
      out.push({
        file,
        path: p,
        message: `${what} is already used by ${prev.file} (${prev.path})`,
      });
    } else if (!prev) {
      map.set(key, { file, path: p });
    }
  };
  const names = new Map<string, { file: string; path: string }>();
  const domains = new Map<string, { file: string; path: string }>();
  const databases = new Map<string, { file: string; path: string }>();
  const upstreams = new Map<string, { file: string; path: string }>();
  // Names on agi-network or on the host: website aliases and their derived container names,
  // and the containers that routed services point at.
  const hostNames = new Map<string, { file: string; path: string }>();

  for (const { file, site } of sites) {
    claim(names, site.name, file, "name", `the name ${quote(site.name)}`);
    site.domains.forEach((d, i) =>
      claim(domains, d, file, `domains.${i}`, `the domain ${quote(d)}`),
    );
    if (site.kind === "website") {
      const db = databaseName(site);
      if (db) claim(databases, db, file, "database.name", `the database name ${quote(db)}`);
    }
  }
  // Several services may share one container (on different ports); a website may not take its name.
  for (const { file, site } of sites) {
    if (site.kind !== "service") continue;
    const key = `${site.upstream.host}:${site.upstream.port}`;
    claim(upstreams, key, file, "upstream", `the upstream ${quote(key)}`);
    if (!hostNames.has(site.upstream.host))
      hostNames.set(site.upstream.host, { file, path: "upstream.host" });
  }
  for (const { file, site } of sites) {
    if (site.kind !== "website") continue;
    for (const derived of hostNamesOf(site.name)) {
      claim(
        hostNames,
        derived,
        file,
        "name",
        `the container name or alias ${quote(derived)} (derived from the name)`,
      );
    }
  }
  return out;
}

/** Checks of sites against one stack's settings: hosts, shared clusters, capacity. */
export function stackProblems(
  sites: ParsedSite[],
  settings: StackSettings,
  stackFile: string,
): Problem[] {
  const out: Problem[] = [];
  const hosts = new Map(settings.hosts.map((h) => [h.name, h]));
  for (const { file, site } of sites) {
    if (site.host !== undefined && !hosts.has(site.host)) {
      out.push({
        file,
        path: "host",
        message: `${quote(site.host)} is not a host of ${stackFile}; valid: ${[...hosts.keys()].map((h) => quote(h)).join(", ")}`,
      });
      continue;
    }
    const host = hosts.get(hostOf(site, settings))!;
    if (site.kind === "website" && site.database.mode === "shared" && site.status !== "planned") {
      if (!host.sharedDatabase) {
        out.push({
          file,
          path: "database.mode",
          message: `is "shared" but host ${quote(host.name)} has no sharedDatabase in ${stackFile}; use "dedicated" or configure the shared cluster`,
        });
      }
    }
    if (
      host.sharedDatabase &&
      site.kind === "service" &&
      site.domains.length > 0 &&
      site.upstream.host === host.sharedDatabase.container
    ) {
      // A routed service pointing at the shared cluster would publish the database: never.
      out.push({
        file,
        path: "upstream.host",
        message: `${quote(site.upstream.host)} is the shared database cluster of ${stackFile}; databases get no public route`,
      });
    }
  }
  out.push(...zoneProblems(sites, settings, stackFile));
  for (const { file, site } of sites) {
    if (site.kind !== "website") continue;
    const cluster = hosts.get(hostOf(site, settings))?.sharedDatabase?.container;
    const taken =
      cluster !== undefined &&
      hostNamesOf(site.name).find((n) => normalName(n) === normalName(cluster));
    if (taken) {
      out.push({
        file,
        path: "name",
        message: `would take ${quote(taken)}, the shared database cluster's container in ${stackFile}`,
      });
    }
  }
  out.push(...capacityProblems(sites, settings, stackFile));
  return out;
}

/**
 * Admission, once per host: the reservations must fit its memory, and the limits its memory times
 * the overcommit ratio. The problem is the host's, in the stack file, and lists what it is made of:
 * no single site file is blamed for a sum. No container's CPU limit may exceed the host's cores.
 */
function capacityProblems(
  sites: ParsedSite[],
  settings: StackSettings,
  stackFile: string,
): Problem[] {
  const out: Problem[] = [];
  const settingsPath = `${PROJECT}:${SETTINGS_KEY}`;
  hostLoads(settings, sites, (s) => s.file).forEach((load, i) => {
    const at = `${settingsPath}.hosts.${i}.capacity`;
    const host = quote(load.host.name);
    if (load.reservationMiB > load.capacityMiB) {
      out.push({
        file: stackFile,
        path: `${at}.memory`,
        message: `host ${host} needs ${formatMiB(load.reservationMiB)} of memory reservations, over its ${formatMiB(load.capacityMiB)} (${loadParts(load, "reservationMiB")}); lower a site's memoryReservation, move a site to another host, or raise ${at}.memory`,
      });
    }
    if (load.limitMiB > load.limitCeilingMiB) {
      out.push({
        file: stackFile,
        path: `${at}.overcommit`,
        message: `host ${host} has ${formatMiB(load.limitMiB)} of memory limits, over ${formatMiB(load.limitCeilingMiB)} (capacity ${formatMiB(load.capacityMiB)} x overcommit ${load.host.capacity.overcommit}) (${loadParts(load, "limitMiB")}); lower a limit or raise ${at}.overcommit`,
      });
    }
  });
  for (const { file, site } of sites) {
    const host = settings.hosts.find((h) => h.name === hostOf(site, settings));
    if (!host) continue;
    for (const part of siteFootprint(site).parts) {
      if (part.cpus !== undefined && part.cpus > host.capacity.cpus) {
        out.push({
          file,
          path: part.role === "app" ? "app.resources.cpus" : "database.resources.cpus",
          message: `${part.cpus} CPUs is more than host ${quote(host.name)} has (${host.capacity.cpus})`,
        });
      }
    }
  }
  return out;
}

/**
 * A zone belongs to one site, unless the stack lists it in `sharedZones`: no other site may hold a
 * name in it or below one of that site's domains, where the browser would give it the owner's
 * cookies. The first file (by name) that claims a zone owns it; later ones are named in the message.
 */
function zoneProblems(sites: ParsedSite[], settings: StackSettings, stackFile: string): Problem[] {
  const out: Problem[] = [];
  const shared = new Set(settings.sharedZones);
  const owners = new Map<string, string>(); // zone or domain -> owning file
  for (const { file, site } of sites) {
    const zone = site.dns?.provider === "cloudflare" ? site.dns.zone : undefined;
    if (zone && !shared.has(zone)) {
      const owner = owners.get(zone);
      if (owner && owner !== file) {
        out.push({
          file,
          path: "dns.zone",
          message: `the zone ${quote(zone)} belongs to ${owner}; a zone serves one client site unless ${stackFile} lists it in ${PROJECT}:${SETTINGS_KEY}.sharedZones`,
        });
      } else owners.set(zone, file);
    }
    for (const d of site.domains) if (!shared.has(d) && !owners.has(d)) owners.set(d, file);
  }
  for (const { file, site } of sites) {
    if (out.some((p) => p.file === file && p.path === "dns.zone")) continue; // said once
    site.domains.forEach((d, i) => {
      // A domain two files list is reported as a duplicate, once.
      if (sites.some((o) => o.file !== file && o.site.domains.includes(d))) return;
      const labels = d.split(".");
      for (let k = 1; k < labels.length - 1; k++) {
        const parent = labels.slice(k).join(".");
        const owner = owners.get(parent);
        if (owner !== undefined && owner !== file) {
          out.push({
            file,
            path: `domains.${i}`,
            message: `${quote(d)} is under ${quote(parent)}, which belongs to ${owner}; a zone serves one client site unless ${stackFile} lists it in ${PROJECT}:${SETTINGS_KEY}.sharedZones`,
          });
          break;
        }
      }
    });
  }
  return out;
}

/** Parses the settings object of a stack, from the parsed config value. */
export function parseStackSettings(
  raw: unknown,
  stackFile: string,
): { settings?: StackSettings; problems: Problem[] } {
  const prefix = `${PROJECT}:${SETTINGS_KEY}`;
  if (raw === undefined) {
    return {
      problems: [
        {
          file: stackFile,
          path: prefix,
          message: "is missing; see the stack settings in the README",
        },
      ],
    };
  }
  const result = StackSettingsSchema.safeParse(raw);
  if (!result.success) return { problems: zodProblems(stackFile, result.error, raw, prefix) };
  return { settings: result.data, problems: [] };
}

/** Reads `Pulumi.<stack>.yaml`: the settings object and the names of the secure (secret) keys set there. */
export function readStackFile(
  file: string,
  shownAs = path.basename(file),
): {
  settings?: StackSettings;
  secureKeys: string[];
  problems: Problem[];
} {
  let doc: { config?: Record<string, unknown> } | null;
  try {
    doc = parseYaml(fs.readFileSync(file, "utf8")) as typeof doc;
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === "ENOENT"
        ? "no such stack file"
        : String((err as Error).message).split("\n")[0];
    return { secureKeys: [], problems: [{ file: shownAs, path: "", message: reason }] };
  }
  const config = doc?.config ?? {};
  const { secureKeys, problems: plain } = secureConfigPaths(config, shownAs);
  const { settings, problems } = parseStackSettings(config[`${PROJECT}:${SETTINGS_KEY}`], shownAs);
  return { settings, secureKeys, problems: [...plain, ...problems] };
}

/**
 * The secure (encrypted) config values of a stack file, as full paths ("agi-platform:key" or
 * "agi-platform:secrets.<site>.<key>"), and a problem for every value of the project's namespace
 * other than the settings that is stored in plain text: those keys hold secrets only. No value is
 * ever quoted.
 */
function secureConfigPaths(
  config: Record<string, unknown>,
  file: string,
): { secureKeys: string[]; problems: Problem[] } {
  const secureKeys: string[] = [];
  const problems: Problem[] = [];
  const isSecure = (v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v) && "secure" in v;
  const walk = (value: unknown, at: string, depth: number) => {
    if (isSecure(value)) {
      secureKeys.push(at);
    } else if (depth > 0 && typeof value === "object" && value !== null && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, `${at}.${k}`, depth - 1);
    } else if (at.startsWith(`${PROJECT}:`)) {
      problems.push({
        file,
        path: at,
        message: `is stored in plain text; this key holds a secret: set it with pulumi config set --path --secret '${at.slice(PROJECT.length + 1)}' (the value is not shown)`,
      });
    }
  };
  for (const [key, value] of Object.entries(config)) {
    if (key === `${PROJECT}:${SETTINGS_KEY}`) continue;
    // secrets.<site>.<key> is two levels deep; platform keys are flat.
    walk(value, key, key === `${PROJECT}:${SITE_SECRETS_KEY}` ? 2 : 0);
  }
  return { secureKeys, problems };
}

/** Everything `validate` checks for one set of site entries against zero or more stacks. */
export function validateAll(
  entries: SiteEntry[],
  stacks: { file: string; settings: StackSettings }[],
): { sites: ParsedSite[]; problems: Problem[] } {
  const { sites, problems } = parseSites(entries);
  problems.push(...crossSiteProblems(sites));
  for (const s of stacks) {
    problems.push(...stackProblems(sites, s.settings, s.file));
    problems.push(...digestChecks(sites, s.settings, s.file).problems);
  }
  return { sites, problems };
}

/** The config path of one of a site's own secrets: `secrets.<site>.<key>`. */
export function siteSecretPath(site: string, key: string): string {
  return `${SITE_SECRETS_KEY}.${site}.${key}`;
}

/**
 * Every secret config path the program reads for these settings and sites: the platform's own keys
 * (top level) and each site's `secrets.<site>.<key>`, which no other site's file can name.
 */
export function secretKeysFor(settings: StackSettings, sites: Site[]): string[] {
  const keys = new Set<string>();
  if (settings.dns.provider === "cloudflare") keys.add(settings.dns.apiTokenSecret);
  if (settings.offsite) {
    keys.add(settings.offsite.accessKeyIdSecret);
    keys.add(settings.offsite.secretAccessKeySecret);
  }
  for (const h of settings.hosts) {
    // A cluster the program creates has a generated password: no secret to set.
    const secret = h.sharedDatabase?.adminPasswordSecret;
    if (secret !== undefined) keys.add(secret);
  }
  for (const s of sites) {
    if (s.kind === "website" && s.status === "active") {
      for (const key of Object.values(s.app.secretEnv)) keys.add(siteSecretPath(s.name, key));
    }
  }
  return [...keys].sort();
}

/** SSH hosts without a pinned host key: previews work, updates refuse to run. */
export function unpinnedHosts(settings: StackSettings, stackFile: string): Problem[] {
  return settings.hosts.flatMap((h, i) =>
    h.docker.connection === "ssh" && !h.docker.hostKey
      ? [
          {
            file: stackFile,
            path: `${PROJECT}:${SETTINGS_KEY}.hosts.${i}.docker.hostKey`,
            message:
              "is required to deploy over SSH: pin the host's public key: the first two fields of /etc/ssh/ssh_host_ed25519_key.pub on the host, its fingerprint (ssh-keygen -lf) compared out of band",
          },
        ]
      : [],
  );
}

/** Every image a stack runs or will run, where it is set: the platform's and every website's app. */
function stackImages(
  sites: ParsedSite[],
  settings: StackSettings,
  stackFile: string,
): { image: string; file: string; path: string }[] {
  const base = `${PROJECT}:${SETTINGS_KEY}.images`;
  const kinds: ("postgres" | "caddy" | "socketProxy" | "uploader")[] = [
    "postgres",
    "caddy",
    "socketProxy",
    ...(settings.offsite ? (["uploader"] as const) : []),
  ];
  const out = kinds.map((k) => ({
    image: settings.images[k],
    file: stackFile,
    path: `${base}.${k}`,
  }));
  for (const { file, site } of sites) {
    if (site.kind === "website") {
      out.push({ image: site.app.image, file, path: "app.image" });
    }
  }
  return out;
}

const hasDigest = (image: string) => /@sha256:[a-f0-9]{64}$/.test(image);

/**
 * On a stack that requires digests: an image pinned by tag only is a problem, unless the stack
 * lists it in `images.toPin` (no digest verified yet), which is a note; a stale `toPin` entry is a
 * problem, so the list only shrinks. Returns both.
 */
export function digestChecks(
  sites: ParsedSite[],
  settings: StackSettings,
  stackFile: string,
): { problems: Problem[]; notes: Problem[] } {
  const problems: Problem[] = [];
  const notes: Problem[] = [];
  if (!settings.images.requireDigest) return { problems, notes };
  const listed = new Set(settings.images.toPin);
  const used = stackImages(sites, settings, stackFile);
  for (const u of used) {
    if (hasDigest(u.image)) continue;
    if (listed.has(u.image)) {
      notes.push({
        file: u.file,
        path: u.path,
        message: `${quote(u.image)} is pinned by tag only: to be pinned by digest (listed in ${stackFile} images.toPin)`,
      });
    } else {
      problems.push({
        file: u.file,
        path: u.path,
        message: `${quote(u.image)} is pinned by tag only; ${stackFile} requires a digest (name@sha256:<64 hex>, taken from the registry), or list it in images.toPin until one is verified`,
      });
    }
  }
  settings.images.toPin.forEach((image, i) => {
    if (!used.some((u) => u.image === image)) {
      problems.push({
        file: stackFile,
        path: `${PROJECT}:${SETTINGS_KEY}.images.toPin.${i}`,
        message: `${quote(image)} is not an image this stack runs by tag; remove it from the list`,
      });
    }
  });
  return { problems, notes };
}

/** Things worth knowing that are not problems: schedules that fire less than once a month. */
export function siteNotes(sites: ParsedSite[]): Problem[] {
  const out: Problem[] = [];
  for (const { file, site } of sites) {
    if (site.kind !== "website" || site.backup.schedule === undefined) continue;
    const note = cronNote(site.backup.schedule);
    if (note) out.push({ file, path: "backup.schedule", message: note });
  }
  return out;
}
