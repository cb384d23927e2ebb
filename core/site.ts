/**
 * The site file format: one file per website or routed service in `sites/`, validated by this schema.
 * Pure data; no Pulumi here. Defaults live in the named constants below, next to the schema.
 */
import { z } from "zod";
import { defaultDatabaseName } from "./names";
import { DURATION_PATTERN, MEMORY_PATTERN, fnv1a, toMiB, toSeconds } from "./units";

export const SITE_NAME_PATTERN = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;
/** 58 at most: the app role is "<name>_app" and PostgreSQL names stop at 63 bytes. */
export const DATABASE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,57}$/;
/** Names PostgreSQL itself uses. */
export const RESERVED_DATABASES = ["postgres", "template0", "template1"] as const;
/** Seconds a deploy waits for a new container to report healthy. */
export const HEALTHY_WITHIN_SECONDS = 180;
export const DOMAIN_PATTERN =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]*$/;
export const CONFIG_KEY_PATTERN = /^[a-zA-Z][a-zA-Z0-9_.-]*$/;
export const CRON_PATTERN = /^(\S+\s+){4}\S+$/;
const CRON_FIELD = /^(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?)*$/;
const CRON_BOUNDS: [string, number, number][] = [
  ["minute", 0, 59],
  ["hour", 0, 23],
  ["day of month", 1, 31],
  ["month", 1, 12],
  ["day of week", 0, 7],
];

/** What the backup scheduler cannot run in a cron schedule, or undefined: numbers, *, a-b, /n, lists. */
export function cronProblem(schedule: string): string | undefined {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) return 'must be a five-field cron schedule such as "17 2 * * *"';
  for (const [i, field] of fields.entries()) {
    const [what, lo, hi] = CRON_BOUNDS[i];
    if (!CRON_FIELD.test(field)) {
      return `${what} field ${JSON.stringify(field)}: use numbers, *, a-b, */n and commas (no names)`;
    }
    if (/\/0+(,|$)/.test(field))
      return `${what} field ${JSON.stringify(field)}: a step of 0 never repeats`;
    for (const n of field.match(/[0-9]+/g) ?? []) {
      const isStep = field.includes(`/${n}`);
      if (!isStep && (Number(n) < lo || Number(n) > hi))
        return `${what} field ${JSON.stringify(field)}: ${n} is outside ${lo}-${hi}`;
    }
  }
  return undefined;
}
/** Env names that look like credentials: their values must come from secret stack config (`secretEnv`). */
export const SECRET_ENV_NAME =
  /(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|AUTH_KEY|_DSN$|^DSN$)/;
/** Env names the platform sets itself. */
export const RESERVED_ENV = ["DATABASE_URL", "DOCKER_HOST", "PORT"] as const;

export const DEFAULT_APP_RESOURCES = {
  memory: "512Mi",
  memoryReservation: "256Mi",
  cpus: 0.5,
} as const;
export const DEFAULT_DATABASE_MEMORY = "256Mi";
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
    /** Env name -> name of a secret stack config key (`pulumi config set --secret <key>`). */
    secretEnv: z
      .record(
        z.string().regex(ENV_NAME_PATTERN, { error: "env names must match ^[A-Z_][A-Z0-9_]*$" }),
        z.string().regex(CONFIG_KEY_PATTERN, {
          error: 'must be the name of a stack config key, such as "mysite-stripe-key"',
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
      } else if (SECRET_ENV_NAME.test(name)) {
        ctx.addIssue({
          code: "custom",
          path: ["env", name],
          message:
            "looks like a secret; move it to app.secretEnv as an env name -> secret config key",
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
      "must match ^[a-z][a-z0-9_]{0,57}$ (the app role adds _app; PostgreSQL names stop at 63)",
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
          /** Memory limit of the database container; PostgreSQL settings follow it; default 256Mi. */
          memory: memorySchema.default(DEFAULT_DATABASE_MEMORY),
          /** Optional CPU limit of the database container; default none. */
          cpus: cpus.optional(),
        })
        .default({ memory: DEFAULT_DATABASE_MEMORY }),
    }),
    z.strictObject({
      mode: z.literal("shared"),
      /** Database name in the host's shared cluster; default: the site name with "-" replaced by "_". */
      name: databaseNameSchema.optional(),
      /**
       * For a database that existed before the platform: a role (created by hand, NOLOGIN) that owns
       * its tables. The app role becomes a member, so it may use and change them, and the backup job
       * (which logs in as the app) may read them. Default none: the app role owns what it creates.
       */
      ownerRole: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, {
          error: "must be a PostgreSQL role name (lower-case letters, digits, _)",
        })
        .refine((n) => n !== "postgres" && !n.startsWith("pg_"), {
          error: "must not be a superuser or built-in role: membership would pass its rights on",
        })
        .optional(),
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

const backupSchema = z.strictObject({
  /** Five-field cron schedule; default: daily at a minute between 02:00 and 03:59 derived from the name. */
  schedule: z
    .string()
    .superRefine((v, ctx) => {
      const problem = cronProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional(),
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
  /** Container name or network alias on agi-network. */
  host: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, { error: "must be a container name or network alias" }),
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

export const WebsiteSchema = z
  .strictObject({
    ...common,
    kind: z.literal("website"),
    domains: common.domains.min(1, { error: "a website needs at least one domain" }),
    app: appSchema,
    database: databaseSchema.default({ mode: "none" }),
    backup: backupSchema.default({ retention: { ...DEFAULT_RETENTION } }),
  })
  .superRefine(checkDomains);

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

/** The database name a site uses, or undefined without a database. */
export function databaseName(site: WebsiteSite): string | undefined {
  if (site.database.mode === "none") return undefined;
  return site.database.name ?? defaultDatabaseName(site.name);
}
