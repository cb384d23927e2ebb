import * as docker from "@pulumi/docker";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { hasRoute, renderSiteFragment } from "../core/caddy";
import { CONTAINER_DEFAULTS, appCapabilityDrops, containerLabels } from "../core/containers";
import { createDnsRecords } from "./dns";
import {
  ENTRYPOINT_PATH,
  SECRET_DIR,
  appRoleInitScript,
  entrypointScript,
  postgresCommand,
} from "../core/postgres";
import { createRoute, hostCommand, type SiteEdge } from "./route";
import { socketProxyConfig } from "../core/socket-proxy";
import {
  adoptedOwnerRole,
  databaseName,
  databaseReservationMiB,
  defaultBackupSchedule,
  type WebsiteSite,
} from "../core/site";
import { databaseRoles, siteNames } from "../core/names";
import {
  backupUnits,
  installSecretCommand,
  installUnitsCommand,
  pgpassFile,
  removeUnitsCommand,
  type JobHost,
} from "../core/timers";
import {
  DB_STOP_GRACE_SECONDS,
  POSTGRES_PORT,
  SOCKET_PROXY_MEMORY_MIB,
  SOCKET_PROXY_PORT,
  SOCKET_PROXY_RESERVATION_MIB,
  WAIT_TIMEOUT_SECONDS,
  httpProbe,
} from "../core/specs";
import { toMiB } from "../core/units";

export interface WebsiteArgs {
  /** The validated site file. */
  readonly site: WebsiteSite;
  /** The shared network the edge reaches apps on (agi-network). */
  readonly network: pulumi.Input<string>;
  /** Public IPv4 address the DNS records point to. */
  readonly publicIp: string;
  /** Id of the site's Cloudflare zone; records are created only when it is given. */
  readonly zoneId?: pulumi.Input<string>;
  /** Pinned images of the database and the Docker API socket proxy. */
  readonly images: { readonly postgres: string; readonly socketProxy: string };
  /** The host's shared PostgreSQL cluster as apps reach it; required for database mode "shared". */
  readonly sharedDatabase?: { readonly container: string; readonly port: number };
  /** The host's edge: the site's route goes there. */
  readonly edge: SiteEdge;
  /** Host directory of this site's backups. */
  readonly backupDir: string;
  /** Where the host keeps the backup job, and what its timer waits for (the installed scripts). */
  readonly backupJob: { readonly host: JobHost; readonly ready: pulumi.Resource[] };
  /** Values of `app.secretEnv`, resolved from secret stack config; default none. */
  readonly secretEnv?: Readonly<Record<string, pulumi.Input<string>>>;
}

/**
 * A client website: its app container (zero-downtime replacement behind a network alias), its
 * database (a dedicated PostgreSQL container, or a role and database in the host's shared cluster),
 * its DNS records and its Caddy fragment. Data outlives the site: volumes are retained on delete.
 */
export class Website extends pulumi.ComponentResource {
  /** The site's Caddy fragment (sites.d/<site>.caddy); empty when the site is not routed. */
  public readonly caddyFragment: pulumi.Output<string>;
  /** Name Docker gave the app container; undefined when no app runs (paused). */
  public readonly appContainerName: pulumi.Output<string | undefined>;
  /** The primary URL. */
  public readonly url: pulumi.Output<string>;

  constructor(name: string, args: WebsiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agi:web:Website", name, {}, opts);
    const site = args.site;
    const active = site.status === "active";
    const db = databaseName(site);
    const names = siteNames(site.name);
    const appRole = db ? databaseRoles(db).app : undefined;
    const child = { parent: this };
    const needsInternal = site.database.mode === "dedicated" || site.app.dockerReadAccess;

    const internal = needsInternal
      ? new docker.Network(
          `${name}-internal`,
          {
            name: names.internalNetwork,
            internal: true,
            driver: "bridge",
            labels: containerLabels(site.name, "internal-network"),
          },
          child,
        )
      : undefined;

    let databaseUrl: pulumi.Output<string> | undefined;
    // What the backup timer waits for, when the site has a database and runs.
    let backupSource: BackupSource | undefined;
    const appDependsOn: pulumi.Resource[] = [];

    if (site.database.mode === "dedicated" && db && appRole && internal) {
      const superPassword = password(`${name}-db-superuser-password`, this);
      const appPassword = password(`${name}-db-app-password`, this);
      const volume = new docker.Volume(
        `${name}-db-data`,
        { name: names.databaseVolume, labels: containerLabels(site.name, "db-data") },
        { parent: this, retainOnDelete: true },
      );
      const dbHost = names.database;
      databaseUrl = pulumi.interpolate`postgresql://${appRole}:${appPassword}@${dbHost}:${POSTGRES_PORT}/${db}`;
      if (active) {
        const image = new docker.RemoteImage(
          `${name}-db-image`,
          { name: args.images.postgres, keepLocally: true },
          child,
        );
        const memory = site.database.resources.memory;
        const dbContainer = new docker.Container(
          `${name}-db`,
          {
            ...CONTAINER_DEFAULTS,
            name: dbHost,
            image: image.imageId,
            // The image's entrypoint, wrapped: passwords follow the secret files on every start.
            entrypoints: [ENTRYPOINT_PATH],
            command: postgresCommand(memory),
            envs: [
              `POSTGRES_DB=${db}`,
              "POSTGRES_USER=postgres",
              `POSTGRES_PASSWORD_FILE=${SECRET_DIR}/superuser-password`,
              `APP_DB_USER=${appRole}`,
              `APP_DB_PASSWORD_FILE=${SECRET_DIR}/app-password`,
              "PGDATA=/var/lib/postgresql/data/pgdata",
            ],
            uploads: [
              // Readable inside this container only; 0444 because the entrypoint reads them as postgres.
              {
                file: `${SECRET_DIR}/superuser-password`,
                content: superPassword,
                permissions: "0444",
              },
              { file: `${SECRET_DIR}/app-password`, content: appPassword, permissions: "0444" },
              {
                file: "/docker-entrypoint-initdb.d/10-agi-app-role.sh",
                content: appRoleInitScript(),
                // 0755: the image's entrypoint runs init scripts as postgres, and runs (rather
                // than sources) only those it may execute; the provider's "executable" is 0744.
                permissions: "0755",
              },
              { file: ENTRYPOINT_PATH, content: entrypointScript(), executable: true },
            ],
            mounts: [{ type: "volume", source: volume.name, target: "/var/lib/postgresql/data" }],
            networksAdvanced: [{ name: internal.name, aliases: [dbHost] }],
            healthcheck: {
              // -h 127.0.0.1: the image's temporary init server listens on the socket only, so this
              // passes once the real server accepts TCP connections; the mark follows the password sync.
              tests: [
                "CMD-SHELL",
                `pg_isready -h 127.0.0.1 -p ${POSTGRES_PORT} -U postgres -d ${db} && test -f ${SECRET_DIR}/ready`,
              ],
              interval: "5s",
              timeout: "5s",
              startPeriod: "60s",
              retries: 5,
            },
            wait: true,
            waitTimeout: WAIT_TIMEOUT_SECONDS,
            memory: toMiB(memory),
            memoryReservation: databaseReservationMiB(site.database.resources),
            ...(site.database.resources.cpus !== undefined
              ? { cpus: String(site.database.resources.cpus) }
              : {}),
            stopSignal: "SIGINT",
            stopTimeout: DB_STOP_GRACE_SECONDS,
            destroyGraceSeconds: DB_STOP_GRACE_SECONDS,
            labels: containerLabels(site.name, "db"),
          },
          // A fixed name and one data volume: the old server must stop before the new one starts.
          { parent: this, deleteBeforeReplace: true },
        );
        appDependsOn.push(dbContainer);
        backupSource = { mode: "dedicated", after: [dbContainer] };
      }
    } else if (site.database.mode === "shared" && db && appRole) {
      if (!args.sharedDatabase) {
        throw new Error(
          `site ${site.name}: database mode "shared" needs the host's sharedDatabase`,
        );
      }
      const appPassword = password(`${name}-db-app-password`, this);
      const role = new postgresql.Role(
        `${name}-db-role`,
        {
          name: appRole,
          login: true,
          password: appPassword,
          superuser: false,
          createDatabase: false,
          createRole: false,
          inherit: true,
          // An adopted database's objects belong to its owner role; membership gives the app their
          // rights without per-table grants (which would differ again with every new table).
          roles: adoptedOwnerRole(site) ? [adoptedOwnerRole(site)!] : [],
        },
        child,
      );
      // The database stays owned by the administrative role; the app gets what it needs by grants.
      const database = new postgresql.Database(`${name}-database`, { name: db }, child);
      const grant = (suffix: string, args: Omit<postgresql.GrantArgs, "database">) =>
        new postgresql.Grant(`${name}-db-${suffix}`, { database: database.name, ...args }, child);
      const revoke = grant("revoke-public", {
        role: "public",
        objectType: "database",
        privileges: [],
      });
      const connect = grant("grant-connect", {
        role: role.name,
        objectType: "database",
        privileges: ["CONNECT", "TEMPORARY"],
      });
      const schema = grant("grant-schema", {
        role: role.name,
        schema: "public",
        objectType: "schema",
        privileges: ["CREATE", "USAGE"],
      });
      appDependsOn.push(revoke, connect, schema);
      if (active) {
        backupSource = { mode: "shared", password: appPassword, after: [revoke, connect, schema] };
      }
      const { container, port } = args.sharedDatabase;
      databaseUrl = pulumi.interpolate`postgresql://${role.name}:${appPassword}@${container}:${port}/${database.name}`;
    }

    let proxyHost: string | undefined;
    if (active && site.app.dockerReadAccess && internal) {
      proxyHost = names.dockerProxy;
      const proxyImage = new docker.RemoteImage(
        `${name}-docker-proxy-image`,
        { name: args.images.socketProxy, keepLocally: true },
        child,
      );
      const proxy = new docker.Container(
        `${name}-docker-proxy`,
        {
          ...CONTAINER_DEFAULTS,
          name: proxyHost,
          image: proxyImage.imageId,
          // HAProxy with a list of readable endpoints (see socket-proxy.ts); it needs the socket's
          // owner to read it, so it runs as root, read-only mount and no new privileges.
          user: "root",
          uploads: [
            {
              file: "/usr/local/etc/haproxy/haproxy.cfg",
              content: socketProxyConfig({
                socket: "/var/run/docker.sock",
                port: SOCKET_PROXY_PORT,
              }),
            },
          ],
          mounts: [
            {
              type: "bind",
              source: "/var/run/docker.sock",
              target: "/var/run/docker.sock",
              readOnly: true,
            },
          ],
          networksAdvanced: [{ name: internal.name, aliases: [proxyHost] }],
          healthcheck: {
            tests: [
              "CMD",
              "wget",
              "-q",
              "-O",
              "/dev/null",
              `http://127.0.0.1:${SOCKET_PROXY_PORT}/_ping`,
            ],
            interval: "10s",
            timeout: "5s",
            startPeriod: "10s",
            retries: 3,
          },
          wait: true,
          waitTimeout: WAIT_TIMEOUT_SECONDS,
          memory: SOCKET_PROXY_MEMORY_MIB,
          memoryReservation: SOCKET_PROXY_RESERVATION_MIB,
          securityOpts: ["no-new-privileges:true"],
          labels: containerLabels(site.name, "docker-proxy"),
        },
        { parent: this, deleteBeforeReplace: true },
      );
      appDependsOn.push(proxy);
    }

    let appName: pulumi.Output<string | undefined> = pulumi.output(undefined);
    let appContainer: docker.Container | undefined;
    if (active) {
      const app = site.app;
      const image = new docker.RemoteImage(
        `${name}-app-image`,
        { name: app.image, keepLocally: true },
        child,
      );
      const plain: Record<string, string> = { ...app.env, PORT: String(app.port) };
      if (proxyHost) plain.DOCKER_HOST = `tcp://${proxyHost}:${SOCKET_PROXY_PORT}`;
      const secret: Record<string, pulumi.Input<string>> = { ...(args.secretEnv ?? {}) };
      if (databaseUrl) secret.DATABASE_URL = databaseUrl;
      const networks: docker.types.input.ContainerNetworksAdvanced[] = [
        { name: args.network, aliases: [names.alias] },
      ];
      if (internal) networks.push({ name: internal.name });
      const container = new docker.Container(
        `${name}-app`,
        {
          ...CONTAINER_DEFAULTS,
          // No name: Docker names each container anew, so the replacement can start beside the old one.
          image: image.imageId,
          envs: envList(plain, secret),
          networksAdvanced: networks,
          healthcheck: {
            tests: app.healthcheck.command ?? httpProbe(app.port, app.healthcheck.path),
            interval: app.healthcheck.interval,
            timeout: app.healthcheck.timeout,
            startPeriod: app.healthcheck.startPeriod,
            retries: app.healthcheck.retries,
          },
          wait: true,
          waitTimeout: WAIT_TIMEOUT_SECONDS,
          memory: toMiB(app.resources.memory),
          memoryReservation: toMiB(app.resources.memoryReservation),
          cpus: String(app.resources.cpus),
          stopSignal: "SIGTERM",
          stopTimeout: app.stopGracePeriod,
          destroyGraceSeconds: app.stopGracePeriod,
          securityOpts: ["no-new-privileges:true"],
          capabilities: { drops: appCapabilityDrops(app.port) },
          labels: containerLabels(site.name, "app"),
        },
        // Create the new container, wait until it is healthy, then remove the old one.
        { parent: this, deleteBeforeReplace: false, dependsOn: appDependsOn },
      );
      appName = container.name;
      appContainer = container;
    }

    if (backupSource && db) {
      createBackup(name, site, db, backupSource, args, this);
    }

    if (args.zoneId !== undefined) createDnsRecords(name, site, args.publicIp, args.zoneId, child);

    const fragment = renderSiteFragment(site, args.edge.fragment);
    if (hasRoute(site)) {
      // Routed once the app (or, paused, the maintenance page) can answer.
      createRoute(name, site.name, fragment, args.edge.target, {
        parent: this,
        dependsOn: appContainer ? [...args.edge.ready, appContainer] : args.edge.ready,
      });
    }
    this.caddyFragment = pulumi.output(fragment);
    this.appContainerName = appName;
    this.url = pulumi.output(`https://${site.domains[0]}`);
    this.registerOutputs({
      caddyFragment: this.caddyFragment,
      appContainerName: this.appContainerName,
      url: this.url,
    });
  }
}

/**
 * A generated password: URL-safe (no specials), so it can stand in DATABASE_URL unescaped. The value
 * is wrapped as secret here rather than trusting the engine to mark the provider's output.
 */
function password(name: string, parent: pulumi.Resource): pulumi.Output<string> {
  return pulumi.secret(
    new random.RandomPassword(name, { length: 32, special: false }, { parent }).result,
  );
}

/**
 * `NAME=value` pairs sorted by name. Each secret pair stays a secret element of its own, so a
 * preview still shows the plain ones.
 */
function envList(
  plain: Record<string, string>,
  secret: Record<string, pulumi.Input<string>>,
): pulumi.Input<string>[] {
  const names = [...new Set([...Object.keys(plain), ...Object.keys(secret)])].sort();
  return names.map((n) =>
    n in secret ? pulumi.secret(pulumi.interpolate`${n}=${secret[n]}`) : `${n}=${plain[n]}`,
  );
}

interface BackupSource {
  mode: "dedicated" | "shared";
  /** The app role's password (shared mode: the job dumps as that role). */
  password?: pulumi.Output<string>;
  after: pulumi.Resource[];
}

/**
 * The site's backup schedule: a systemd timer of the deploy user on the host (core/timers.ts), whose
 * service runs the installed `site-backup.sh backup ...`, so nothing of it is resident between runs.
 * A dedicated database is dumped inside its own container; a shared-mode site by a short-lived
 * container of the cluster's image with the site's role, its password in a 0600 pgpass file on the
 * host (written from standard input, never on a command line).
 */
function createBackup(
  name: string,
  site: WebsiteSite,
  db: string,
  source: BackupSource,
  args: WebsiteArgs,
  parent: pulumi.Resource,
): pulumi.Resource {
  const child = { parent };
  const host = args.backupJob.host;
  const dir = hostCommand(
    `${name}-backup-dir`,
    host.target,
    { create: `mkdir -p ${args.backupDir} && chmod 700 ${args.backupDir}` },
    child,
  );
  const dependsOn: pulumi.Resource[] = [dir, ...args.backupJob.ready, ...source.after];
  if (source.mode === "shared") {
    const file = pgpassFile(host, site.name);
    const write = installSecretCommand(file);
    dependsOn.push(
      hostCommand(
        `${name}-backup-secret`,
        host.target,
        {
          create: write,
          update: write,
          delete: `rm -f ${file}`,
          stdin: pulumi.secret(pulumi.interpolate`*:*:*:*:${source.password!}\n`),
        },
        child,
      ),
    );
  }
  const job = {
    site: site.name,
    database: db,
    mode: source.mode,
    dir: args.backupDir,
    retention: { ...site.backup.retention },
  };
  const units = backupUnits(job, host, site.backup.schedule ?? defaultBackupSchedule(site.name));
  const install = installUnitsCommand(units, host);
  return hostCommand(
    `${name}-backup-timer`,
    host.target,
    { create: install, update: install, delete: removeUnitsCommand(units, host) },
    { parent, dependsOn },
  );
}
