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
  /** rclone, the off-site uploader (`offsite`); the version the tests run (Debian's rclone 1.60.1). */
  uploader: "rclone/rclone:1.60.1",
} as const;

export const DEFAULT_NETWORK = "agi-network";
/** How client apps meet the edge and the platform network; see `isolation` below. */
export const ISOLATION_MODES = ["shared-network", "per-site"] as const;
export const DEFAULT_ISOLATION = "shared-network";
export const DEFAULT_EDGE_MEMORY = "256Mi";
export const DEFAULT_SOCKET_PROXY_MEMORY = "32Mi";
/** Memory limit of a shared cluster the program creates (`sharedDatabase.create`). */
export const DEFAULT_SHARED_CLUSTER_MEMORY = "512Mi";

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

/** A loopback IPv4 address: the only place a cluster the program creates may publish its admin port. */
const loopbackIpv4 = z
  .string()
  .regex(/^127\.(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){2}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/, {
    error: "must be a loopback IPv4 address (127.x.x.x)",
  });

const sharedDatabaseSchema = z
  .strictObject({
    /** Container name of the shared cluster on agi-network: how apps reach it. */
    container: containerName,
    /** Port inside that container; default 5432. */
    port: port.default(5432),
    /** Where the Pulumi run reaches the cluster to manage roles (an SSH tunnel on prod). */
    adminAddress: hostName,
    adminPort: port,
    /** Administrative role; default postgres. */
    adminUser: roleName.default("postgres"),
    /**
     * Name of the secret config key holding that role's password: required for a cluster that
     * exists; not allowed with `create` (the program generates the password then).
     */
    adminPasswordSecret: secretName.optional(),
    /**
     * true: the program runs the cluster itself (a workstation's `local` stack): the container, its
     * retained data volume, a generated admin password, the admin port published on `adminAddress`
     * (loopback) only. Default false: the cluster exists and is never created or altered (prod).
     */
    create: z.boolean().default(false),
    /** Memory limit of a created cluster; only with `create`. Default 512Mi. */
    memory: memory.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.create) {
      if (!loopbackIpv4.safeParse(s.adminAddress).success) {
        ctx.addIssue({
          code: "custom",
          path: ["adminAddress"],
          message:
            "must be a loopback IPv4 address (127.x.x.x) when create is true: the created cluster publishes its admin port there and nowhere else",
        });
      }
      if (s.adminPasswordSecret !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["adminPasswordSecret"],
          message:
            "must not be set when create is true: the program generates the created cluster's password",
        });
      }
    } else {
      if (s.adminPasswordSecret === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["adminPasswordSecret"],
          message:
            "is required for an existing cluster (create is false): the name of the secret config key holding its admin password",
        });
      }
      if (s.memory !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["memory"],
          message: "is only for a cluster the program creates (create: true)",
        });
      }
    }
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

/** An http(s) endpoint; plain http only to a loopback or private address (a test server, a LAN box). */
const endpointUrl = z
  .string()
  .regex(/^https?:\/\/[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?\/?$/, {
    error:
      'must be an http(s) URL of a host and an optional port, such as "https://<account>.r2.cloudflarestorage.com"',
  })
  .refine(
    (u) =>
      u.startsWith("https://") ||
      /^http:\/\/(?:localhost|127(?:\.\d{1,3}){3}|10(?:\.\d{1,3}){3}|192\.168(?:\.\d{1,3}){2}|172\.(?:1[6-9]|2\d|3[01])(?:\.\d{1,3}){2})(?::\d{1,5})?\/?$/.test(
        u,
      ),
    { error: "must use https (plain http only to a loopback or private address)" },
  );

/** Default off-site retention: longer than the local default (7 daily, 4 weekly, 12 monthly). */
export const DEFAULT_OFFSITE_RETENTION = { daily: 14, weekly: 8, monthly: 24 } as const;
const retentionCount = (max: number) =>
  z.number().int({ error: "must be a whole number" }).min(0).max(max);

/**
 * Off-site copies of every verified dump: encrypted on the host to `recipient` (an age public key;
 * its private half stays with the operators, never on the host) and uploaded to S3-compatible storage
 * by a short-lived container of `images.uploader`, the only one that receives the credentials.
 */
const offsiteSchema = z
  .strictObject({
    /** rclone's S3 provider: "Cloudflare" (R2), "AWS", "Other" (Backblaze B2, MinIO, ...). */
    provider: z
      .string()
      .regex(/^[A-Z][A-Za-z]{1,31}$/, {
        error: 'must be an rclone S3 provider name such as "Cloudflare"',
      })
      .default("Other"),
    endpoint: endpointUrl,
    region: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/, {
        error: 'must be a region name such as "auto" or "eu-central-1"',
      })
      .default("auto"),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
      error: "must be a bucket name: 3-63 lower-case letters, digits, '.' and '-'",
    }),
    /** Path inside the bucket; each site's dumps go to <bucket>/<prefix>/<site>/. Default none. */
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/, {
        error: 'must be a path of plain segments such as "agi/prod"',
      })
      .optional(),
    /** The age public key the dumps are encrypted to ("age1..."). Not secret. */
    recipient: z.string().regex(/^age1[02-9ac-hj-np-z]{58}$/, {
      error: 'must be an age public key ("age1" and 58 more characters, as age-keygen prints it)',
    }),
    /** Secret config keys holding the storage's access key id and secret access key. */
    accessKeyIdSecret: secretName.default("offsiteAccessKeyId"),
    secretAccessKeySecret: secretName.default("offsiteSecretAccessKey"),
    /** The newest dump of each of the last `daily` days, `weekly` ISO weeks, `monthly` months. */
    retention: z
      .strictObject({
        daily: retentionCount(366).default(DEFAULT_OFFSITE_RETENTION.daily),
        weekly: retentionCount(520).default(DEFAULT_OFFSITE_RETENTION.weekly),
        monthly: retentionCount(1200).default(DEFAULT_OFFSITE_RETENTION.monthly),
      })
      .default({ ...DEFAULT_OFFSITE_RETENTION })
      .refine((r) => r.daily + r.weekly + r.monthly > 0, {
        error: "keeps nothing: at least one of daily, weekly and monthly must be above 0",
      }),
  })
  .refine((o) => o.accessKeyIdSecret !== o.secretAccessKeySecret, {
    error: "accessKeyIdSecret and secretAccessKeySecret must be two keys",
    path: ["secretAccessKeySecret"],
  });
export type OffsiteSettings = z.output<typeof offsiteSchema>;

export const StackSettingsSchema = z
  .strictObject({
    /** Hosts; sites without `host` go to the first. */
    hosts: z.array(hostSchema).min(1, { error: "needs at least one host" }),
    edge: edgeSchema,
    /**
     * "shared-network" (default): every app sits on agi-network with its alias, beside the other
     * sites' apps, the services and the shared cluster. "per-site": each app meets the edge on a
     * network of its own (`<site>-edge`) and joins agi-network only when its site file uses the
     * services (`app.uses`) or the shared cluster (`database.mode: "shared"`).
     */
    isolation: z
      .enum(ISOLATION_MODES, { error: 'must be "shared-network" or "per-site"' })
      .default(DEFAULT_ISOLATION),
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
        uploader: imageRef.default(DEFAULT_IMAGES.uploader),
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
    /** Off-site copies of every site's verified dumps; none when absent. */
    offsite: offsiteSchema.optional(),
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
    s.hosts.forEach((h, i) => {
      // A host whose network predates the program is an existing host: its cluster exists too, and
      // the program never creates or alters it (prod's supabase-db).
      if (h.sharedDatabase?.create && !h.createNetwork) {
        ctx.addIssue({
          code: "custom",
          path: ["hosts", i, "sharedDatabase", "create"],
          message:
            "is only for a host whose platform the program creates whole (createNetwork: true); an existing host's cluster is never created or altered",
        });
      }
      const db = h.sharedDatabase;
      if (db?.create && [db.adminAddress, "0.0.0.0"].includes(s.edge.bindAddress)) {
        const clash = [s.edge.httpPort, s.edge.httpsPort].includes(db.adminPort);
        if (clash) {
          ctx.addIssue({
            code: "custom",
            path: ["hosts", i, "sharedDatabase", "adminPort"],
            message: `uses port ${db.adminPort} on ${db.adminAddress}, which the edge publishes`,
          });
        }
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
