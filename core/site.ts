/**
 * The site file format: one file per website or routed service in `sites/`, validated by this schema.
 * Pure data; no Pulumi here. Defaults live in the named constants below, next to the schema.
 */
import { z } from "zod";
import { PLATFORM_NAMES, VERSIONED_APP_NAME, databaseRoles, defaultDatabaseName } from "./names";
import { DURATION_PATTERN, MEMORY_PATTERN, fnv1a, toMiB, toSeconds } from "./units";

export const SITE_NAME_PATTERN = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;
/** 57 at most: the roles are "<name>_app" and "<name>_owner", and PostgreSQL names stop at 63 bytes. */
export const DATABASE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,56}$/;
/** Names PostgreSQL itself uses. */
export const RESERVED_DATABASES = ["postgres", "template0", "template1"] as const;
/** Seconds a deploy waits for a new container to report healthy. */
export const HEALTHY_WITHIN_SECONDS = 180;
export const DOMAIN_PATTERN =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A container name a service may route to: starts with a letter, so it is never an address. */
export const UPSTREAM_HOST_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/;
export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]*$/;
export const CONFIG_KEY_PATTERN = /^[a-zA-Z][a-zA-Z0-9_.-]*$/;
import { cronFrequencyProblem, cronProblem } from "./cron";
export { CRON_PATTERN, cronFrequencyProblem, cronNote, cronProblem } from "./cron";
/** Env names that are public by definition (bundled into the browser's JavaScript). */
export const PUBLIC_ENV_PREFIXES = ["NEXT_PUBLIC_", "PUBLIC_", "VITE_PUBLIC_"] as const;
/** Words that make an env name a credential wherever they stand in it. */
const SECRET_NAME_PARTS =
  /PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|APIKEY|CREDENTIAL|PRIVATE|JWT|COOKIE_SIGN/;
/** Words that make an env name a credential when they stand alone between underscores. */
const SECRET_NAME_WORDS = new Set(["PASS", "PWD", "KEY", "KEYS", "SALT", "DSN", "AUTH", "CERT"]);

/**
 * Whether an env name looks like a credential, whose value must come from the site's secrets
 * (`secretEnv`): STRIPE_KEY, SMTP_PASS, SESSION_KEY, JWT, DATABASE_DSN... Public names are exempt.
 */
export function looksLikeSecretName(name: string): boolean {
  if (PUBLIC_ENV_PREFIXES.some((p) => name.startsWith(p))) return false;
  if (SECRET_NAME_PARTS.test(name)) return true;
  return name.split("_").some((w) => SECRET_NAME_WORDS.has(w));
}

/**
 * Whether a value has the shape of a credential: a private key, credentials in a URL, a well-known
 * token prefix, or a long random-looking string. Such values are never quoted back in a message.
 */
export function looksLikeSecretValue(value: string): boolean {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value)) return true;
  if (/[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/i.test(value)) return true;
  if (
    /^(sk|rk)_(live|test)_|^gh[pousr]_[A-Za-z0-9]{20,}|^github_pat_|^xox[abposr]-|^glpat-|^AKIA[0-9A-Z]{16}$|^SG\.[A-Za-z0-9_-]{10,}\.|^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\./.test(
      value,
    )
  )
    return true;
  return highEntropy(value);
}

/** 24 or more token characters with upper case, lower case and digits, and little repetition. */
function highEntropy(value: string): boolean {
  if (value.length < 24 || !/^[A-Za-z0-9+/=_.~-]+$/.test(value)) return false;
  if (!/[A-Z]/.test(value) || !/[a-z]/.test(value) || !/[0-9]/.test(value)) return false;
  const counts = new Map<string, number>();
  for (const c of value) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= (n / value.length) * Math.log2(n / value.length);
  return bits >= 4;
}

/** A field path as messages show it: a segment shaped like a credential is replaced, never shown. */
export function shownPath(segments: readonly (string | number)[]): string {
  return segments
    .map((k) => (typeof k === "string" && looksLikeSecretValue(k) ? "(name not shown)" : String(k)))
    .join(".");
}

/** The name of one of a site's own secrets: `pulumi config set --path --secret secrets.<site>.<key>`. */
export const SECRET_KEY_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
/** What an app may say it uses on the platform network (`app.uses`). */
export const APP_USES = ["services"] as const;
/** Env names the platform sets itself. */
export const RESERVED_ENV = ["DATABASE_URL", "DOCKER_HOST", "PORT"] as const;

export const DEFAULT_APP_RESOURCES = {
  memory: "512Mi",
  memoryReservation: "256Mi",
  cpus: 0.5,
} as const;
export const DEFAULT_DATABASE_MEMORY = "256Mi";
/** From `npm run bench:e2e`: an idle dedicated PostgreSQL 15 at 128Mi takes 25.4 MiB, 26.7 under light load (x2, to 16 MiB: 64). */
export const DEFAULT_DATABASE_RESERVATION = "64Mi";
/** The smallest memory limit of a dedicated database (MiB). */
export const DATABASE_MIN_MIB = 64;
export const DEFAULT_RETENTION = { daily: 7, weekly: 4, monthly: 12 } as const;
export const DEFAULT_HEALTHCHECK = {
  path: "/",
  interval: "10s",
  timeout: "5s",
  startPeriod: "20s",
  retries: 3,
} as const;
export const DEFAULT_PROXIED = true;

/**
 * Image references must be pinned: `repo:tag` (not `latest`) or `repo@sha256:<digest>`.
 * A registry port is only recognised when a path follows it, so `postgres:15` is a tag.
 */
const IMAGE_REF =
  /^(?<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+(?=\/))?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::(?<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$/;

export function imageProblem(ref: string): string | undefined {
  const m = IMAGE_REF.exec(ref);
  if (!m?.groups) {
    return "is not a valid image reference; expected registry/name:tag or registry/name@sha256:<64 hex>";
  }
  const { tag, digest } = m.groups;
  if (!tag && !digest)
    return "has no tag; pin a version tag (name:1.4.2) or a digest (name@sha256:...)";
  if (tag === "latest" && !digest) {
    return 'uses the moving tag "latest"; pin a version tag (name:1.4.2) or a digest (name@sha256:...)';
  }
  return undefined;
}

/** Schemas shared with the stack settings. */
export const imageRefSchema = z.string().superRefine((ref, ctx) => {
  const problem = imageProblem(ref);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

export const memorySchema = z
  .string()
  .regex(MEMORY_PATTERN, { error: 'must be a whole number of Mi or Gi, such as "512Mi" or "1Gi"' })
  .refine((q) => !MEMORY_PATTERN.test(q) || toMiB(q) >= 6, {
    error: "must be at least 6Mi (Docker's minimum)",
  });

const duration = z
  .string()
  .regex(DURATION_PATTERN, { error: 'must be a duration such as "10s", "1m30s" or "500ms"' });

const domain = z
  .string()
  .regex(DOMAIN_PATTERN, { error: 'must be a lower-case DNS name such as "example.com"' });

export const portSchema = z
  .number({ error: "must be a TCP port number (1-65535)" })
  .int({ error: "must be a whole TCP port number (1-65535)" })
  .min(1, { error: "must be a TCP port number (1-65535)" })
  .max(65535, { error: "must be a TCP port number (1-65535)" });

const cpus = z
  .number({ error: "must be a number of CPUs such as 0.5" })
  .min(0.05, { error: "must be at least 0.05 CPUs" })
  .max(64, { error: "must be at most 64 CPUs" });

const healthcheckSchema = z
  .strictObject({
    /** HTTP path probed inside the container; default "/". */
    path: z
      .string()
      .regex(/^\/[^\s'"\\`$]*$/, { error: 'must be an absolute URL path such as "/api/health"' })
      .default(DEFAULT_HEALTHCHECK.path),
    /** Time between probes; default 10s. */
    interval: duration.default(DEFAULT_HEALTHCHECK.interval),
    /** Time one probe may take; default 5s. */
    timeout: duration.default(DEFAULT_HEALTHCHECK.timeout),
    /** Grace period after start during which failures do not count; default 20s. */
    startPeriod: duration.default(DEFAULT_HEALTHCHECK.startPeriod),
    /** Failures in a row before the container is unhealthy; default 3. */
    retries: z
      .number()
      .int({ error: "must be a whole number from 1 to 10" })
      .min(1, { error: "must be a whole number from 1 to 10" })
      .max(10, { error: "must be a whole number from 1 to 10" })
      .default(DEFAULT_HEALTHCHECK.retries),
    /**
     * Probe command in Docker's exec form, for images without Node.js;
     * default: a Node.js fetch of http://127.0.0.1:<port><path>.
     */
    command: z
      .array(z.string())
      .min(2, { error: 'must be ["CMD", program, args...] or ["CMD-SHELL", "shell command"]' })
      .refine((c) => c[0] === "CMD" || c[0] === "CMD-SHELL", {
        error: 'must start with "CMD" or "CMD-SHELL" (Docker ignores any other probe)',
      })
      .optional(),
  })
  .superRefine(checkHealthTiming);

/** The first probe runs one interval after the start period; it must come before the deploy stops waiting. */
function checkHealthTiming(
  h: { interval?: unknown; startPeriod?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (typeof h.interval !== "string" || typeof h.startPeriod !== "string") return;
  if (!DURATION_PATTERN.test(h.interval) || !DURATION_PATTERN.test(h.startPeriod)) return;
  const first = toSeconds(h.startPeriod) + toSeconds(h.interval);
  if (first > HEALTHY_WITHIN_SECONDS - 30) {
    ctx.addIssue({
      code: "custom",
      path: ["startPeriod"],
      message: `with interval ${h.interval}, the first counted probe comes after ${first}s; a deploy waits ${HEALTHY_WITHIN_SECONDS}s for healthy, so keep startPeriod + interval within ${HEALTHY_WITHIN_SECONDS - 30}s`,
    });
  }
}

const appResourcesSchema = z.strictObject({
  /** Hard memory limit; default 512Mi. */
  memory: memorySchema.default(DEFAULT_APP_RESOURCES.memory),
  /** Soft reservation; default 256Mi. */
  memoryReservation: memorySchema.default(DEFAULT_APP_RESOURCES.memoryReservation),
  /** CPU limit; default 0.5. */
  cpus: cpus.default(DEFAULT_APP_RESOURCES.cpus),
});

const envSchema = z.record(
  z.string().regex(ENV_NAME_PATTERN, { error: "env names must match ^[A-Z_][A-Z0-9_]*$" }),
  z.string({ error: "env values must be strings" }),
);

const appSchema = z
  .strictObject({
    /** Container image, pinned by tag or digest. */
    image: imageRefSchema,
    /** Port the app listens on inside the container. */
    port: portSchema,
    /** Plain environment values. */
    env: envSchema.default({}),
    /**
     * Env name -> the name of one of this site's own secrets, set with
     * `pulumi config set --path --secret 'secrets.<site>.<key>'`. A site reaches no other secret.
     */
    secretEnv: z
      .record(
        z.string().regex(ENV_NAME_PATTERN, { error: "env names must match ^[A-Z_][A-Z0-9_]*$" }),
        z.string().regex(SECRET_KEY_PATTERN, {
          error:
            'must name one of this site\'s secrets: lower-case letters, digits and dashes, such as "stripe-key" (set as secrets.<site>.stripe-key)',
        }),
      )
      .default({}),
    /** Container healthcheck; defaults as in DEFAULT_HEALTHCHECK. */
    healthcheck: healthcheckSchema.default({ ...DEFAULT_HEALTHCHECK }),
    /** Limits; defaults as in DEFAULT_APP_RESOURCES. */
    resources: appResourcesSchema.default({ ...DEFAULT_APP_RESOURCES }),
    /**
     * Read-only Docker API access through a socket-proxy sidecar (DOCKER_HOST is set for the app);
     * default false. The app never mounts the Docker socket itself.
     */
    dockerReadAccess: z.boolean().default(false),
    /**
     * What on the platform network the app needs, with the stack's `isolation: "per-site"`:
     * "services" (the AI services and anything else on agi-network). A shared-cluster database
     * (`database.mode: "shared"`) implies it. Default none: the app meets only the edge and its own
     * database.
     */
    uses: z
      .array(
        z.enum(APP_USES, { error: `must be one of: ${APP_USES.map((u) => `"${u}"`).join(", ")}` }),
      )
      .refine((u) => new Set(u).size === u.length, { error: "lists an entry twice" })
      .default([]),
    /** Seconds the app gets to finish requests after SIGTERM before it is killed; default 30. */
    stopGracePeriod: z.number().int().min(1).max(600).default(30),
  })
  .superRefine((app, ctx) => {
    // Runs even when other fields failed, so every problem is reported at once; values are guarded.
    const reserved = RESERVED_ENV as readonly string[];
    const env = typeof app.env === "object" && app.env ? Object.keys(app.env) : [];
    const secretEnv = typeof app.secretEnv === "object" && app.secretEnv ? app.secretEnv : {};
    for (const name of env) {
      if (reserved.includes(name)) {
        ctx.addIssue({
          code: "custom",
          path: ["env", name],
          message: `is set by the platform; remove it (reserved: ${RESERVED_ENV.join(", ")})`,
        });
      } else if (looksLikeSecretName(name)) {
        ctx.addIssue({
          code: "custom",
          path: ["env", name],
          message:
            "looks like a secret; move it to app.secretEnv as an env name -> the name of one of the site's secrets",
        });
      } else if (typeof app.env[name] === "string" && looksLikeSecretValue(app.env[name])) {
        ctx.addIssue({
          code: "custom",
          path: ["env", name],
          message:
            "has a value shaped like a credential (not shown); move it to app.secretEnv, or write a value that is not secret",
        });
      }
      if (name in secretEnv) {
        ctx.addIssue({
          code: "custom",
          path: ["env", name],
          message: "is also set in app.secretEnv; keep one",
        });
      }
    }
    for (const name of Object.keys(secretEnv)) {
      if (reserved.includes(name)) {
        ctx.addIssue({
          code: "custom",
          path: ["secretEnv", name],
          message: `is set by the platform; remove it (reserved: ${RESERVED_ENV.join(", ")})`,
        });
      }
    }
    const r = app.resources;
    if (r && MEMORY_PATTERN.test(r.memory) && MEMORY_PATTERN.test(r.memoryReservation)) {
      if (toMiB(r.memoryReservation) > toMiB(r.memory)) {
        ctx.addIssue({
          code: "custom",
          path: ["resources", "memoryReservation"],
          message: `${JSON.stringify(r.memoryReservation)} is above the limit app.resources.memory ${JSON.stringify(r.memory)}`,
        });
      }
    }
  });

/** A database name the platform can use: its app role (name + "_app") must fit PostgreSQL's 63. */
const databaseNameSchema = z
  .string()
  .regex(DATABASE_NAME_PATTERN, {
    error:
      "must match ^[a-z][a-z0-9_]{0,56}$ (the roles add _app and _owner; PostgreSQL names stop at 63)",
  })
  .refine((n) => !(RESERVED_DATABASES as readonly string[]).includes(n), {
    error: `is reserved by PostgreSQL (${RESERVED_DATABASES.join(", ")})`,
  });

const databaseSchema = z.discriminatedUnion(
  "mode",
  [
    z.strictObject({
      mode: z.literal("dedicated"),
      /** Database name; default: the site name with "-" replaced by "_". */
      name: databaseNameSchema.optional(),
      resources: z
        .strictObject({
          /**
           * Memory limit of the database container; PostgreSQL settings follow it; default 256Mi,
           * at least 64Mi.
           */
          memory: memorySchema
            .refine(
              (q) => !MEMORY_PATTERN.test(q) || toMiB(q) < 6 || toMiB(q) >= DATABASE_MIN_MIB,
              {
                error: `must be at least ${DATABASE_MIN_MIB}Mi: PostgreSQL's smallest settings (shared_buffers 16MB, 20 connections) take about 22 MiB idle, and each connection and query needs room beyond that`,
              },
            )
            .default(DEFAULT_DATABASE_MEMORY),
          /**
           * What the database needs, reserved on the host (admission counts it); default 64Mi (or
           * the limit, if lower), twice the 14-32 MiB an idle PostgreSQL 15 was measured to use.
           */
          memoryReservation: memorySchema.optional(),
          /** Optional CPU limit of the database container; default none. */
          cpus: cpus.optional(),
        })
        .default({ memory: DEFAULT_DATABASE_MEMORY })
        .superRefine((r, ctx) => {
          const { memory, memoryReservation: reservation } = r;
          if (reservation === undefined || !MEMORY_PATTERN.test(reservation)) return;
          if (!MEMORY_PATTERN.test(memory ?? "") || toMiB(reservation) <= toMiB(memory)) return;
          ctx.addIssue({
            code: "custom",
            path: ["memoryReservation"],
            message: `${JSON.stringify(reservation)} is above the limit database.resources.memory ${JSON.stringify(memory)}`,
          });
        }),
    }),
    z.strictObject({
      mode: z.literal("shared"),
      /** Database name in the host's shared cluster; default: the site name with "-" replaced by "_". */
      name: databaseNameSchema.optional(),
      /**
       * For a database that existed before the platform (adopted): true. Its tables belong to the
       * role the platform derives, "<database>_owner" (components/adopt-database.sql hands them over),
       * and the app role becomes its member. Writing that derived name instead of true is accepted;
       * any other role is refused. Default false: the app role owns what it creates.
       */
      ownerRole: z
        .union([z.boolean(), z.string()], {
          error: 'must be true (the derived role "<database>_owner") or false',
        })
        .default(false),
    }),
    z.strictObject({ mode: z.literal("none") }),
  ],
  { error: 'must have mode "dedicated", "shared" or "none"' },
);

const retentionCount = (min: number, max: number) =>
  z
    .number()
    .int({ error: `must be a whole number from ${min} to ${max}` })
    .min(min, { error: `must be a whole number from ${min} to ${max}` })
    .max(max, { error: `must be a whole number from ${min} to ${max}` });

/** A site job's schedule: valid cron that fires, and at most once an `atMost`. */
function jobSchedule(atMost: "hour" | "day") {
  return z
    .string()
    .superRefine((v, ctx) => {
      const problem = cronProblem(v) ?? cronFrequencyProblem(v, atMost);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional();
}

const backupSchema = z.strictObject({
  /**
   * Five-field cron schedule, at most once an hour; default: daily at a minute between 02:00 and
   * 03:59 derived from the name.
   */
  schedule: jobSchedule("hour"),
  /**
   * When the restore drill runs (five-field cron, UTC, at most once a day): the newest verified dump
   * restored into a throwaway database and compared with its manifest. Default: weekly, on a day and
   * at a minute between 04:00 and 05:59 derived from the name (after the backup).
   */
  drillSchedule: jobSchedule("day"),
  /** Dumps kept per tier; default 7 daily, 4 weekly, 12 monthly. */
  retention: z
    .strictObject({
      // At least 1: the newest dump is always kept.
      daily: retentionCount(1, 60).default(DEFAULT_RETENTION.daily),
      weekly: retentionCount(0, 52).default(DEFAULT_RETENTION.weekly),
      monthly: retentionCount(0, 120).default(DEFAULT_RETENTION.monthly),
    })
    .default({ ...DEFAULT_RETENTION }),
});

const dnsSchema = z.discriminatedUnion(
  "provider",
  [
    z.strictObject({
      provider: z.literal("cloudflare"),
      /** The Cloudflare zone that holds every domain of the site. */
      zone: domain,
      /** Whether records go through Cloudflare's proxy; default true. */
      proxied: z.boolean().default(DEFAULT_PROXIED),
    }),
    z.strictObject({ provider: z.literal("external") }),
  ],
  { error: 'must have provider "cloudflare" (with a zone) or "external"' },
);

const upstreamSchema = z.strictObject({
  /**
   * The container's name on agi-network. Never an address, a domain, loopback or the edge: only a
   * name Docker's resolver answers for a container.
   */
  host: z
    .string()
    .regex(UPSTREAM_HOST_PATTERN, {
      error:
        "must be the name of a container on agi-network: lower-case letters, digits, - and _ (no address, no dots)",
    })
    .refine((h) => !VERSIONED_APP_NAME.test(h), {
      error:
        "has the form of an app container's name (<site>-app-<8 hex digits>), which changes with every update of that site; a service may not route to it",
    })
    .refine((h) => !(PLATFORM_NAMES as readonly string[]).includes(h), {
      error: "is a name the platform keeps; a service may not route to it",
    }),
  /** Port inside that container. */
  port: portSchema,
});

const common = {
  /** Site name: the file name, the network alias, the prefix of every resource. */
  name: z.string().regex(SITE_NAME_PATTERN, {
    error: "must match ^[a-z][a-z0-9-]{1,30}[a-z0-9]$ (3-32 lower-case letters, digits, dashes)",
  }),
  /** "active" (served), "paused" (data kept, not served) or "planned" (reserved, nothing created). */
  status: z
    .enum(["active", "paused", "planned"], { error: 'must be "active", "paused" or "planned"' })
    .default("active"),
  /** Host that runs the site; default: the stack's first host. */
  host: z.string().optional(),
  /** The first domain is primary; the others redirect to it. */
  domains: z.array(domain),
  /** How DNS is managed for the domains; required when there are domains. */
  dns: dnsSchema.optional(),
  /** Source repository, "owner/name". */
  repo: z
    .string()
    .regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, { error: 'must be "owner/name"' })
    .optional(),
  /** Free-form note for the operator (shown nowhere else). */
  description: z.string().optional(),
};

/** Checks within one site's domains: no duplicates, DNS settings present, every domain in the zone. */
function checkDomains(
  site: { domains?: unknown; dns?: { provider?: unknown; zone?: unknown } },
  ctx: z.RefinementCtx,
): void {
  const domains = Array.isArray(site.domains) ? (site.domains as unknown[]) : [];
  const seen = new Map<unknown, number>();
  domains.forEach((d, i) => {
    const first = seen.get(d);
    if (first !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["domains", i],
        message: `${JSON.stringify(d)} is already listed as domains.${first}`,
      });
    }
    seen.set(d, i);
  });
  if (domains.length > 0 && site.dns === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["dns"],
      message:
        'is required when the site has domains: { provider: "cloudflare", zone: "..." } or { provider: "external" }',
    });
  }
  const zone = site.dns?.provider === "cloudflare" ? site.dns.zone : undefined;
  if (typeof zone === "string") {
    domains.forEach((d, i) => {
      if (typeof d === "string" && d !== zone && !d.endsWith(`.${zone}`)) {
        ctx.addIssue({
          code: "custom",
          path: ["domains", i],
          message: `${JSON.stringify(d)} is not in the zone ${JSON.stringify(zone)} (dns.zone); use a domain under it or another site file`,
        });
      }
    });
  }
}

/** An adopted database's owner role is derived; the written form must be that very name. */
function checkOwnerRole(
  site: { name?: unknown; database?: { mode?: unknown; name?: unknown; ownerRole?: unknown } },
  ctx: z.RefinementCtx,
): void {
  const role = site.database?.ownerRole;
  if (typeof role !== "string" || typeof site.name !== "string") return;
  const db =
    typeof site.database?.name === "string" ? site.database.name : defaultDatabaseName(site.name);
  const derived = databaseRoles(db).owner;
  if (role !== derived) {
    ctx.addIssue({
      code: "custom",
      path: ["database", "ownerRole"],
      message: `must be true, or the derived name ${JSON.stringify(derived)}: a site may only adopt its own database's owner role`,
    });
  }
}

export const WebsiteSchema = z
  .strictObject({
    ...common,
    kind: z.literal("website"),
    domains: common.domains.min(1, { error: "a website needs at least one domain" }),
    app: appSchema,
    database: databaseSchema.default({ mode: "none" }),
    backup: backupSchema.default({ retention: { ...DEFAULT_RETENTION } }),
  })
  .superRefine(checkDomains)
  .superRefine(checkOwnerRole);

export const ServiceSchema = z
  .strictObject({
    ...common,
    kind: z.literal("service"),
    /** The existing container that answers for the domains. */
    upstream: upstreamSchema,
  })
  .superRefine(checkDomains);

export const SiteSchema = z.discriminatedUnion("kind", [WebsiteSchema, ServiceSchema], {
  error: 'must be "website" or "service"',
});

export type SiteInput = z.input<typeof SiteSchema>;
export type Site = z.output<typeof SiteSchema>;
export type WebsiteSite = z.output<typeof WebsiteSchema>;
export type ServiceSite = z.output<typeof ServiceSchema>;

/** Typed identity for site files: `export default defineSite({...})`. */
export function defineSite<const T extends SiteInput>(site: T): T {
  return site;
}

/** The default backup time: daily at a minute between 02:00 and 03:59, derived from the site name. */
export function defaultBackupSchedule(name: string): string {
  const slot = fnv1a(name) % 120;
  return `${slot % 60} ${2 + Math.floor(slot / 60)} * * *`;
}

/** The default drill time: weekly, a day and a minute between 04:00 and 05:59 from the site name. */
export function defaultDrillSchedule(name: string): string {
  const slot = fnv1a(name) % 120;
  return `${slot % 60} ${4 + Math.floor(slot / 60)} * * ${fnv1a(`${name}/drill`) % 7}`;
}

/** A website's backup and drill schedules, its own or the defaults. */
export function siteSchedules(site: WebsiteSite): { backup: string; drill: string } {
  return {
    backup: site.backup.schedule ?? defaultBackupSchedule(site.name),
    drill: site.backup.drillSchedule ?? defaultDrillSchedule(site.name),
  };
}

/** The database name a site uses, or undefined without a database. */
export function databaseName(site: WebsiteSite): string | undefined {
  if (site.database.mode === "none") return undefined;
  return site.database.name ?? defaultDatabaseName(site.name);
}

/** The owner role of an adopted database ("<database>_owner"), or undefined when not adopted. */
export function adoptedOwnerRole(site: WebsiteSite): string | undefined {
  if (site.database.mode !== "shared" || site.database.ownerRole === false) return undefined;
  return databaseRoles(databaseName(site)!).owner;
}

/** What a dedicated database reserves (MiB): its own setting, else 64Mi or its limit if lower. */
export function databaseReservationMiB(resources: {
  memory: string;
  memoryReservation?: string;
}): number {
  return resources.memoryReservation !== undefined
    ? toMiB(resources.memoryReservation)
    : Math.min(toMiB(DEFAULT_DATABASE_RESERVATION), toMiB(resources.memory));
}
