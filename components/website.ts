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
import { attachEdge, createRoute, hostCommand, type SiteEdge } from "./route";
import { GATE_DEADLINE_SECONDS, gateCommandLine, type EdgeTarget } from "../core/host";
import {
  appNetworks,
  hasEdgeNetwork,
  needsInternalNetwork,
  type Isolation,
} from "../core/networks";
import { socketProxyConfig } from "../core/socket-proxy";
import {
  adoptedOwnerRole,
  databaseName,
  databaseReservationMiB,
  siteSchedules,
  type WebsiteSite,
} from "../core/site";
import { appContainerName, appVersion, databaseRoles, siteNames } from "../core/names";
import {
  backupUnits,
  drillUnits,
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
  readonly sharedDatabase?: {
    readonly container: string;
    readonly port: number;
    /**
     * Whether the program created the cluster (`sharedDatabase.create`); then it also creates what
     * an adopted database finds ready on an existing cluster (its owner role). Default false.
     */
    readonly created?: boolean;
  };
  /** The host's edge: the site's route goes there. */
  readonly edge: SiteEdge;
  /** Host directory of this site's backups. */
  readonly backupDir: string;
  /** Where the host keeps the backup job, and what its timer waits for (the installed scripts). */
  readonly backupJob: { readonly host: JobHost; readonly ready: pulumi.Resource[] };
  /** Values of `app.secretEnv`, resolved from secret stack config; default none. */
  readonly secretEnv?: Readonly<Record<string, pulumi.Input<string>>>;
  /** The stack's isolation setting; default "shared-network". */
  readonly isolation?: Isolation;
}

/**
 * A client website: its app container (one per version, switched to by the edge only once healthy), its
 * database (a dedicated PostgreSQL container, or a role and database in the host's shared cluster),
 * its DNS records and its Caddy fragment. Data outlives the site: volumes are retained on delete.
 */
export class Website extends pulumi.ComponentResource {
  /** The site's Caddy fragment (sites.d/<site>.caddy); empty when the site is not routed. */
  public readonly caddyFragment: pulumi.Output<string>;
  /** The app container's versioned name (`<site>-app-<8 hex>`); undefined when no app runs (paused). */
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
    const needsInternal = needsInternalNetwork(site);
    const isolation = args.isolation ?? "shared-network";

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
      const ownerRole = adoptedOwnerRole(site);
      const roleDependsOn: pulumi.Resource[] = [];
      if (ownerRole && args.sharedDatabase.created) {
        // On an existing cluster components/adopt-database.sql made the owner role before the first
        // deployment; on a cluster the program created, it is made here, as that script makes it.
        roleDependsOn.push(adoptedOwner(name, ownerRole, this));
      }
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
          roles: ownerRole ? [ownerRole] : [],
        },
        { parent: this, dependsOn: roleDependsOn },
      );
      // The database stays owned by the administrative role; the app gets what it needs by grants.
      const database = new postgresql.Database(`${name}-database`, { name: db }, child);
      const grant = (
        suffix: string,
        args: Omit<postgresql.GrantArgs, "database">,
        dependsOn: pulumi.Resource[] = [],
      ) =>
        new postgresql.Grant(
          `${name}-db-${suffix}`,
          { database: database.name, ...args },
          { parent: this, dependsOn },
        );
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
      if (roleDependsOn.length) {
        // The owner may create in schema public, as adopt-database.sql grants it.
        appDependsOn.push(
          grant(
            "owner-schema",
            {
              role: ownerRole!,
              schema: "public",
              objectType: "schema",
              privileges: ["CREATE", "USAGE"],
            },
            roleDependsOn,
          ),
        );
      }
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
                site: site.name,
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
    let appGate: pulumi.Resource | undefined;
    let edgeAttachment: pulumi.Resource | undefined;
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
      // The app meets the edge on a network of its own, where the gate gives the site's name to the
      // version that passed it.
      let edgeNetwork: docker.Network | undefined;
      if (hasEdgeNetwork(site)) {
        edgeNetwork = new docker.Network(
          `${name}-edge-network`,
          {
            name: names.edgeNetwork,
            driver: "bridge",
            labels: containerLabels(site.name, "edge-network"),
          },
          child,
        );
        // Routed only once the edge is on the site's network.
        edgeAttachment = attachEdge(name, edgeNetwork.name, args.edge, {
          parent: this,
          dependsOn: args.edge.ready,
        });
      }
      const networkNames = {
        platform: args.network,
        edge: edgeNetwork?.name,
        internal: internal?.name,
      };
      const networks: docker.types.input.ContainerNetworksAdvanced[] = appNetworks(
        site,
        isolation,
      ).map((n) => ({ name: networkNames[n.network]! }));
      const spec = {
        ...CONTAINER_DEFAULTS,
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
        // The gate below waits for healthy, and removes a version that never gets there.
        wait: false,
        memory: toMiB(app.resources.memory),
        memoryReservation: toMiB(app.resources.memoryReservation),
        cpus: String(app.resources.cpus),
        stopSignal: "SIGTERM",
        stopTimeout: app.stopGracePeriod,
        destroyGraceSeconds: app.stopGracePeriod,
        securityOpts: ["no-new-privileges:true"],
        capabilities: { drops: appCapabilityDrops(app.port) },
        labels: containerLabels(site.name, "app"),
      };
      // One name per version: a hash of every input (secret values included, only the hash leaves).
      const containerName = pulumi.unsecret(
        pulumi.output(spec).apply((inputs) => appContainerName(site.name, appVersion(inputs))),
      );
      const container = new docker.Container(
        `${name}-app`,
        { ...spec, name: containerName },
        {
          parent: this,
          // The new version starts beside the old one. Pulumi never removes an app container itself:
          // the gate does (a failed version at once, the old one after the switch), so a failed update
          // cannot leave the serving container marked for deletion at the next run.
          deleteBeforeReplace: false,
          retainOnDelete: true,
          dependsOn: appDependsOn,
          // The gate moves the version onto its edge network again with the site's alias. The name
          // hashes every input, networks included, so a change of networks is a new version anyway.
          ignoreChanges: ["networksAdvanced"],
        },
      );
      const gate = appGateCommands(site.name, app, containerName, args.edge.target);
      appGate = hostCommand(
        `${name}-app-gate`,
        args.edge.target.host,
        { create: gate.create, delete: gate.delete, triggers: [containerName] },
        { parent: this, dependsOn: [container, ...args.edge.gateReady] },
      );
      appName = containerName;
    }

    if (backupSource && db) {
      createBackup(name, site, db, backupSource, args, this);
    }

    if (args.zoneId !== undefined) createDnsRecords(name, site, args.publicIp, args.zoneId, child);

    // The edge proxies to the site's name on its edge network: the version that passed its gate.
    const fragment = pulumi.output(renderSiteFragment(site, args.edge.fragment));
    if (hasRoute(site)) {
      // Routed once the app is healthy (or, paused, to the maintenance page).
      createRoute(name, site.name, fragment, args.edge.target, {
        parent: this,
        dependsOn: [
          ...args.edge.ready,
          ...(appGate ? [appGate] : []),
          ...(edgeAttachment ? [edgeAttachment] : []),
        ],
      });
    }
    this.caddyFragment = fragment;
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
 * The gate's command lines for one app container version: create waits until it is healthy (else
 * removes it and fails), delete drains and removes it.
 */
function appGateCommands(
  site: string,
  app: WebsiteSite["app"],
  container: pulumi.Output<string>,
  edge: EdgeTarget,
): { create: pulumi.Output<string>; delete: pulumi.Output<string> } {
  return {
    create: container.apply((c) =>
      gateCommandLine("wait", site, c, GATE_DEADLINE_SECONDS, edge, app.stopGracePeriod),
    ),
    delete: container.apply((c) => gateCommandLine("remove", site, c, app.stopGracePeriod, edge)),
  };
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

/**
 * An adopted database's owner role as components/adopt-database.sql leaves it on an existing
 * cluster: NOLOGIN, no other attribute (its grant on schema public follows the database).
 */
function adoptedOwner(name: string, owner: string, parent: pulumi.Resource): postgresql.Role {
  return new postgresql.Role(
    `${name}-db-owner-role`,
    {
      name: owner,
      login: false,
      superuser: false,
      createDatabase: false,
      createRole: false,
      inherit: true,
    },
    { parent },
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
  const schedules = siteSchedules(site);
  const units = backupUnits(job, host, schedules.backup);
  const install = installUnitsCommand(units, host);
  const drill = drillUnits(job, host, schedules.drill);
  const installDrill = installUnitsCommand(drill, host);
  hostCommand(
    `${name}-drill-timer`,
    host.target,
    { create: installDrill, update: installDrill, delete: removeUnitsCommand(drill, host) },
    { parent, dependsOn },
  );
  return hostCommand(
    `${name}-backup-timer`,
    host.target,
    { create: install, update: install, delete: removeUnitsCommand(units, host) },
    { parent, dependsOn },
  );
}
