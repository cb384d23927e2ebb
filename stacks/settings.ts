/**
 * Per-stack settings: the `agi-platform:settings` object in `Pulumi.<stack>.yaml`, validated here.
 * Secrets never appear in settings: they are named here and set with `pulumi config set --secret`.
 */
import { z } from "zod";
import {
  DOMAIN_PATTERN,
  SITE_NAME_PATTERN,
  imageRefSchema,
  looksLikeSecretValue,
  memorySchema,
  portSchema,
} from "../core/site";

/** The project name: the config namespace of every key. */
export const PROJECT = "agi-platform";
/** A stack's name, as `Pulumi.<stack>.yaml` and `--stack` give it. */
export const STACK_NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;
/** The config key (in the project namespace) that holds the settings object. */
export const SETTINGS_KEY = "settings";
/** The config key whose `<site>.<key>` entries are each site's own secrets. */
export const SITE_SECRETS_KEY = "secrets";

/** Pinned images the platform itself runs; a stack may override them. */
export const DEFAULT_IMAGES = {
  /** Dedicated databases; the backup job uses the same image so pg_dump matches the server. */
  postgres: "postgres:15.14-bookworm",
  /** The edge; the Caddy version the tests run against (Debian's caddy 2.6.2). */
  caddy: "caddy:2.6.2-alpine",
  /** HAProxy for the read-only Docker API proxy (dockerReadAccess); the version the tests run. */
  socketProxy: "haproxy:2.6.12-alpine",
} as const;

export const DEFAULT_NETWORK = "agi-network";
export const DEFAULT_EDGE_MEMORY = "256Mi";
export const DEFAULT_SOCKET_PROXY_MEMORY = "32Mi";

const imageRef = imageRefSchema;
const memory = memorySchema;
const port = portSchema;
/** A platform secret's key: flat (no path), and never the settings or the sites' secrets. */
const secretName = z
  .string()
  .regex(/^[a-zA-Z][a-zA-Z0-9_-]{0,62}$/, {
    error: "must be the name of a secret config key (letters, digits, - and _)",
  })
  .refine((k) => !looksLikeSecretValue(k), {
    error: "looks like a secret value itself; write the name of the config key that holds it",
  })
  .refine((k) => k !== SETTINGS_KEY && k !== SITE_SECRETS_KEY, {
    error: `must not be "${SETTINGS_KEY}" or "${SITE_SECRETS_KEY}": those keys are taken`,
  });
const ipv4 = z
  .string()
  .regex(/^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/, {
    error: "must be an IPv4 address",
  });
/** An absolute path of plain segments: no "..", no empty segment, nothing a shell or Caddy expands. */
const absPath = z
  .string()
  .regex(/^(\/[A-Za-z0-9._-]+)+$/, {
    error: 'must be an absolute path of letters, digits, ".", "_" and "-" such as "/srv/agi"',
  })
  .refine((p) => !p.split("/").includes(".."), { error: 'must not contain ".."' });
/** A host name or IPv4 address: never starts with "-" (it would read as an option). */
const hostName = z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, {
  error: "must be a host name or IPv4 address",
});
/** A container name on the platform network, as apps resolve it. */
const containerName = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, {
  error: "must be a container name: lower-case letters, digits, - and _",
});
/** A PostgreSQL role name. */
const roleName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: "must be a PostgreSQL role name" });

const dockerSchema = z.discriminatedUnion(
  "connection",
  [
    z.strictObject({
      /** The Docker engine over SSH, as a non-root user in the docker group. */
      connection: z.literal("ssh"),
      user: z
        .string()
        .regex(/^[a-z_][a-z0-9_-]*$/, { error: "must be a Unix user name" })
        .refine((u) => u !== "root", { error: "must not be root: deploy as a non-root user" }),
      address: hostName,
      /** SSH port; default 22. */
      port: port.default(22),
      /**
       * known_hosts file holding the host's pinned key; default ~/.ssh/known_hosts.
       * Host keys are checked strictly: an unknown or changed key stops the run.
       */
      knownHostsFile: z
        .string()
        .regex(/^(~|)(\/[A-Za-z0-9._-]+)+$/, {
          error: 'must be a file path such as "~/.ssh/known_hosts"',
        })
        .refine((p) => !p.split("/").includes(".."), { error: 'must not contain ".."' })
        .default("~/.ssh/known_hosts"),
      /**
       * The host's public key ("ssh-ed25519 AAAA..."), checked out of band and pinned here; when set,
       * it is the only key accepted and knownHostsFile is not read. Not secret: review it in PRs.
       */
      hostKey: z
        .string()
        .regex(
          /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa|rsa-sha2-(256|512)) [A-Za-z0-9+/]+={0,3}$/,
          {
            error:
              'must be a public key line such as "ssh-ed25519 AAAA..." (no host name, no comment)',
          },
        )
        .optional(),
    }),
    z.strictObject({
      /** The Docker engine of the machine running Pulumi. */
      connection: z.literal("socket"),
      /** Default unix:///var/run/docker.sock. */
      socket: z
        .string()
        .regex(/^unix:\/\/(\/[A-Za-z0-9._-]+)+$/, {
          error: 'must be a unix socket address such as "unix:///var/run/docker.sock"',
        })
        .default("unix:///var/run/docker.sock"),
    }),
  ],
  { error: 'must have connection "ssh" or "socket"' },
);

const sharedDatabaseSchema = z.strictObject({
  /** Container name of the shared cluster on agi-network: how apps reach it. */
  container: containerName,
  /** Port inside that container; default 5432. */
  port: port.default(5432),
  /** Where the Pulumi run reaches the cluster to manage roles (an SSH tunnel on prod). */
  adminAddress: hostName,
  adminPort: port,
  /** Administrative role; default postgres. */
  adminUser: roleName.default("postgres"),
  /** Name of the secret config key holding that role's password. */
  adminPasswordSecret: secretName,
});

const hostSchema = z.strictObject({
  name: z.string().regex(SITE_NAME_PATTERN, { error: "must match ^[a-z][a-z0-9-]{1,30}[a-z0-9]$" }),
  /** Public IPv4 address DNS records point to. */
  publicIp: ipv4,
  docker: dockerSchema,
  /** What managed containers may commit on this host (limits, not usage). */
  capacity: z.strictObject({
    /** Memory the managed containers may reserve in all (admission counts reservations). */
    memory,
    /** CPU cores, for the inventory and for no single container's limit to exceed. */
    cpus: z.number().positive({ error: "must be positive" }),
    /**
     * How far the containers' memory limits may add up beyond `memory`: limits are ceilings a site
     * rarely reaches at once. Default 1 (no overcommit).
     */
    overcommit: z
      .number()
      .min(1, { error: "must be at least 1 (limits may not add up to less than the reservations)" })
      .max(8, { error: "must be at most 8" })
      .default(1),
  }),
  /** Host directory for platform files; backups live under <root>/backups, Caddy under <root>/edge. */
  root: absPath.default("/srv/agi"),
  /** true: the program creates agi-network; false: it must already exist (it is looked up). */
  createNetwork: z.boolean().default(false),
  sharedDatabase: sharedDatabaseSchema.optional(),
});

const edgeSchema = z.strictObject({
  /** Interface the edge publishes on; default all interfaces (it is the only published container). */
  bindAddress: ipv4.default("0.0.0.0"),
  /** Host ports for HTTP and HTTPS; default 80 and 443. */
  httpPort: port.default(80),
  httpsPort: port.default(443),
  /** ACME account e-mail for Let's Encrypt; required unless localCerts. */
  acmeEmail: z
    .string()
    .regex(/^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$/, {
      error: 'must be an e-mail address such as "ops@example.com"',
    })
    .optional(),
  /** Use Let's Encrypt's staging CA (first runs, to spare the rate limits); default false. */
  acmeStaging: z.boolean().default(false),
  /** Use Caddy's internal CA instead of ACME (local stack); default false. */
  localCerts: z.boolean().default(false),
  /** Memory limit of the edge container; default 256Mi. */
  memory: memory.default(DEFAULT_EDGE_MEMORY),
  /** Caddy's admin API; default localhost:2019 (inside the edge container only: never published). */
  adminAddress: z
    .string()
    .regex(/^(localhost|127\.0\.0\.1):[0-9]{1,5}$/, {
      error: 'must be "localhost:<port>" or "127.0.0.1:<port>"',
    })
    .default("localhost:2019"),
  /** Directory of the per-site access logs, as the edge sees it; default /data/logs (its data volume). */
  logDir: absPath.default("/data/logs"),
});

export const StackSettingsSchema = z
  .strictObject({
    /** Hosts; sites without `host` go to the first. */
    hosts: z.array(hostSchema).min(1, { error: "needs at least one host" }),
    edge: edgeSchema,
    dns: z.discriminatedUnion(
      "provider",
      [
        z.strictObject({
          provider: z.literal("cloudflare"),
          /** Secret config key with a Cloudflare API token (Zone:DNS:Edit, Zone Settings:Edit). */
          apiTokenSecret: secretName.default("cloudflareApiToken"),
        }),
        /** DNS is not managed: records are listed in the inventory for someone else to create. */
        z.strictObject({ provider: z.literal("none") }),
      ],
      { error: 'must have provider "cloudflare" or "none"' },
    ),
    /**
     * Zones more than one site may use (the company's own zone, with its services). Every other zone
     * belongs to the one site that names it: no other site may hold a name in it. Default none.
     */
    sharedZones: z
      .array(
        z
          .string()
          .regex(DOMAIN_PATTERN, { error: 'must be a lower-case DNS name such as "example.com"' }),
      )
      .default([]),
    images: z
      .strictObject({
        postgres: imageRef.default(DEFAULT_IMAGES.postgres),
        caddy: imageRef.default(DEFAULT_IMAGES.caddy),
        socketProxy: imageRef.default(DEFAULT_IMAGES.socketProxy),
        /**
         * Whether every image this stack runs (the platform's and the deployed sites' apps) must be
         * pinned by digest (`name@sha256:...`), as prod requires. Default false.
         */
        requireDigest: z.boolean().default(false),
        /**
         * Images still pinned by tag only on a stack that requires digests, each listed until a
         * digest is taken from the registry and verified: the check passes them and says so.
         */
        toPin: z.array(imageRef).default([]),
      })
      .default({ ...DEFAULT_IMAGES, requireDigest: false, toPin: [] }),
    /**
     * Resources that already exist, by the name the program gives them (see `npm run synth`'s
     * manifest), with the provider's ID: the next `pulumi up` takes each over (Pulumi's `import`
     * option) instead of creating a second one, and fails if it differs from the code. Remove an
     * entry once adopted. Default none.
     */
    adopt: z
      .record(
        z.string().regex(/^[a-z0-9][a-z0-9-]*$/, { error: "must be a resource name" }),
        z.string().min(1, { error: "must be the provider's ID of the resource" }),
      )
      .default({}),
  })
  .superRefine((s, ctx) => {
    const seen = new Map<string, number>();
    s.hosts.forEach((h, i) => {
      const first = seen.get(h.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["hosts", i, "name"],
          message: `"${h.name}" is already the name of hosts.${first}`,
        });
      }
      seen.set(h.name, i);
    });
    const ports: [string, number][] = [
      ["httpPort", s.edge.httpPort],
      ["httpsPort", s.edge.httpsPort],
      ["adminAddress", Number(s.edge.adminAddress.split(":")[1])],
    ];
    ports.forEach(([field, p], i) => {
      const clash = ports.slice(0, i).find(([, q]) => q === p);
      if (clash) {
        ctx.addIssue({
          code: "custom",
          path: ["edge", field],
          message: `uses port ${p}, which edge.${clash[0]} already uses; the edge needs a port for each`,
        });
      }
    });
    if (!s.edge.localCerts && !s.edge.acmeEmail) {
      ctx.addIssue({
        code: "custom",
        path: ["edge", "acmeEmail"],
        message: "is required unless edge.localCerts is true (Let's Encrypt needs a contact)",
      });
    }
  });

export type StackSettings = z.output<typeof StackSettingsSchema>;
export type HostSettings = StackSettings["hosts"][number];
