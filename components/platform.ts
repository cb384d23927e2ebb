import * as docker from "@pulumi/docker";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import * as random from "@pulumi/random";
import { CONTAINER_DEFAULTS, containerLabels } from "../core/containers";
import { GATE_SCRIPT, ROUTE_SCRIPT, hostCommand } from "./route";
import {
  EDGE_CONFIG_DIR,
  EDGE_STOP_GRACE_SECONDS,
  edgeTarget,
  installScriptCommandLine,
  sshOptions,
  type EdgeTarget,
} from "../core/host";
import {
  EDGE_ALIAS,
  EDGE_CONTAINER,
  EDGE_VOLUMES,
  PLATFORM_NETWORK,
  PLATFORM_OWNER,
  sharedClusterVolume,
} from "../core/names";
import { toMiB } from "../core/units";
import {
  DB_STOP_GRACE_SECONDS,
  EDGE_RESERVATION_MIB,
  SHARED_CLUSTER_RESERVATION_MIB,
  WAIT_TIMEOUT_SECONDS,
} from "../core/specs";
import { CLUSTER_PASSWORD_FILE, clusterCommand, clusterInitSql } from "../core/postgres";
import {
  BACKUP_JOB_SCRIPTS,
  installSecretCommand,
  installUnitsCommand,
  jobHost,
  offsiteEnvFile,
  removeUnitsCommand,
  type JobHost,
} from "../core/timers";
import { OPS_SCRIPTS, opsHost, opsUnits } from "../core/ops";
import {
  DEFAULT_SHARED_CLUSTER_MEMORY,
  type HostSettings,
  type StackSettings,
} from "../stacks/settings";

export interface PlatformArgs {
  /** The host's settings from the stack. */
  readonly host: HostSettings;
  /** Edge settings of the stack (ports, certificates, memory). */
  readonly edge: StackSettings["edge"];
  /** Pinned Caddy image. */
  readonly caddyImage: string;
  /** The main Caddyfile text. */
  readonly caddyfile: string;
  /** Name of the shared network; default "agi-network". */
  readonly networkName?: string;
  /**
   * Password of the shared cluster's administrative role; required when the host has an existing
   * one, not used when the program creates it (`sharedDatabase.create`: generated).
   */
  readonly sharedDatabasePassword?: pulumi.Input<string>;
  /** Pinned PostgreSQL image of a cluster the program creates; required with `sharedDatabase.create`. */
  readonly postgresImage?: string;
  /**
   * Off-site copies (the stack's `offsite`), with the storage credentials from their secret config
   * keys; they reach the host only as the uploader's 0600 environment file.
   */
  readonly offsite?: {
    readonly settings: NonNullable<StackSettings["offsite"]>;
    readonly image: string;
    readonly accessKeyId: pulumi.Input<string>;
    readonly secretAccessKey: pulumi.Input<string>;
  };
}

/** The Docker engine address (and SSH options) of a host. */
export function dockerConnection(host: HostSettings): docker.ProviderArgs {
  const d = host.docker;
  if (d.connection === "socket") return { host: d.socket };
  return { host: `ssh://${d.user}@${d.address}:${d.port}`, sshOpts: sshOptions(d) };
}

/**
 * One Docker host: its engine connection, agi-network, the edge Caddy (the only container that
 * publishes ports) and, where the host has one, the connection to its shared PostgreSQL cluster.
 */
export class Platform extends pulumi.ComponentResource {
  /** Provider of the host's Docker engine: pass it to the sites on this host. */
  public readonly dockerProvider: docker.Provider;
  /** Provider of the host's shared PostgreSQL cluster, if it has one. */
  public readonly sharedDatabaseProvider?: postgresql.Provider;
  /** Name of the shared network. */
  public readonly networkName: pulumi.Output<string>;
  /** Name of the edge container. */
  public readonly edgeContainerName: pulumi.Output<string>;
  /** The edge container: routes wait for it. */
  public readonly edge: docker.Container;
  /** Where routes are written on this host and how the edge reloads. */
  public readonly edgeTarget: EdgeTarget;
  /** The route script installed on the host: routes wait for it. */
  public readonly routeScript: pulumi.Resource;
  /** Where the host keeps the sites' backup jobs, and their installed scripts (timers wait for them). */
  public readonly backupJob: { readonly host: JobHost; readonly ready: pulumi.Resource[] };
  /** The app gate script installed on the host: app gates wait for it. */
  public readonly gateScript: pulumi.Resource;

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agi:host:Platform", name, {}, opts);
    const { host, edge } = args;
    const networkName = args.networkName ?? PLATFORM_NETWORK;

    this.dockerProvider = new docker.Provider(`${name}-docker`, dockerConnection(host), {
      parent: this,
    });
    const child = { parent: this, provider: this.dockerProvider };

    if (host.createNetwork) {
      const network = new docker.Network(
        `${name}-network`,
        { name: networkName, driver: "bridge", labels: containerLabels(PLATFORM_OWNER, "network") },
        child,
      );
      this.networkName = network.name;
    } else {
      // On an existing host the network predates the program: look it up, fail early if missing.
      this.networkName = docker.getNetworkOutput({ name: networkName }, child).name;
    }

    this.edgeTarget = edgeTarget(host, edge.adminAddress);
    const install = installScriptCommandLine(this.edgeTarget.script);
    this.routeScript = hostCommand(
      `${name}-edge-route-script`,
      this.edgeTarget.host,
      { create: install, update: install, stdin: ROUTE_SCRIPT },
      { parent: this },
    );
    // The backup job's scripts, run by the sites' timers (components/backup, core/timers.ts).
    const o = args.offsite;
    const jobs = jobHost(
      host,
      this.edgeTarget.host,
      o ? { offsite: o.settings, images: { uploader: o.image } } : undefined,
    );
    const offsiteReady: pulumi.Resource[] = [];
    if (o && jobs.offsite) {
      // The uploader's image on the host ahead of the first upload (the prune keeps it), and its
      // settings with the credentials, written from standard input (never on a command line).
      offsiteReady.push(
        new docker.RemoteImage(
          `${name}-uploader-image`,
          { name: o.image, keepLocally: true },
          child,
        ),
      );
      const write = installSecretCommand(jobs.offsite.envFile);
      offsiteReady.push(
        hostCommand(
          `${name}-offsite-env`,
          this.edgeTarget.host,
          {
            create: write,
            update: write,
            delete: `rm -f ${jobs.offsite.envFile}`,
            stdin: pulumi.secret(
              pulumi
                .all([o.accessKeyId, o.secretAccessKey])
                .apply(([id, key]) => offsiteEnvFile(o.settings, id, key)),
            ),
          },
          { parent: this },
        ),
      );
    }
    this.backupJob = {
      host: jobs,
      ready: [
        ...offsiteReady,
        ...BACKUP_JOB_SCRIPTS.map((file) => {
          const installFile = installScriptCommandLine(`${jobs.scriptDir}/${file}`);
          return hostCommand(
            `${name}-backup-${file.replace(/\.sh$/, "")}`,
            this.edgeTarget.host,
            {
              create: installFile,
              update: installFile,
              stdin: fs.readFileSync(path.join(__dirname, "backup", file), "utf8"),
            },
            { parent: this },
          );
        }),
      ],
    };
    // The host's own operations (core/ops.ts): their scripts, then their timers.
    const ops = opsHost(host);
    const opsScripts = OPS_SCRIPTS.map((file) => {
      const installFile = installScriptCommandLine(`${ops.scriptDir}/${file}`);
      return hostCommand(
        `${name}-ops-${file.replace(/\.sh$/, "")}`,
        this.edgeTarget.host,
        {
          create: installFile,
          update: installFile,
          stdin: fs.readFileSync(path.join(__dirname, "ops", file), "utf8"),
        },
        { parent: this },
      );
    });
    for (const units of Object.values(opsUnits(ops, jobs.offsite ? [jobs.offsite.image] : []))) {
      const installUnits = installUnitsCommand(units, jobs);
      hostCommand(
        `${name}-${units.name}-timer`,
        this.edgeTarget.host,
        {
          create: installUnits,
          update: installUnits,
          delete: removeUnitsCommand(units, jobs),
        },
        { parent: this, dependsOn: opsScripts },
      );
    }
    const installGate = installScriptCommandLine(this.edgeTarget.gateScript);
    this.gateScript = hostCommand(
      `${name}-app-gate-script`,
      this.edgeTarget.host,
      { create: installGate, update: installGate, stdin: GATE_SCRIPT },
      { parent: this },
    );
    // Docker refuses to bind-mount a directory that does not exist.
    const sitesDir = hostCommand(
      `${name}-edge-sites-dir`,
      this.edgeTarget.host,
      { create: `mkdir -p ${this.edgeTarget.sitesDir} && chmod 755 ${this.edgeTarget.sitesDir}` },
      { parent: this },
    );

    const image = new docker.RemoteImage(
      `${name}-edge-image`,
      { name: args.caddyImage, keepLocally: true },
      child,
    );
    const data = new docker.Volume(
      `${name}-edge-data`,
      { name: EDGE_VOLUMES.data, labels: containerLabels(PLATFORM_OWNER, "edge-data") },
      { ...child, retainOnDelete: true },
    );
    const config = new docker.Volume(
      `${name}-edge-config`,
      { name: EDGE_VOLUMES.config, labels: containerLabels(PLATFORM_OWNER, "edge-config") },
      { ...child, retainOnDelete: true },
    );
    const ports: docker.types.input.ContainerPort[] = [
      { internal: edge.httpPort, external: edge.httpPort, ip: edge.bindAddress, protocol: "tcp" },
      { internal: edge.httpsPort, external: edge.httpsPort, ip: edge.bindAddress, protocol: "tcp" },
      { internal: edge.httpsPort, external: edge.httpsPort, ip: edge.bindAddress, protocol: "udp" },
    ];
    const container = new docker.Container(
      `${name}-edge`,
      {
        ...CONTAINER_DEFAULTS,
        name: EDGE_CONTAINER,
        image: image.imageId,
        ports,
        uploads: [{ file: `${EDGE_CONFIG_DIR}/Caddyfile`, content: args.caddyfile }],
        mounts: [
          {
            type: "bind",
            source: this.edgeTarget.sitesDir,
            target: `${EDGE_CONFIG_DIR}/sites.d`,
            readOnly: true,
          },
          { type: "volume", source: data.name, target: "/data" },
          { type: "volume", source: config.name, target: "/config" },
        ],
        networksAdvanced: [{ name: this.networkName, aliases: [EDGE_ALIAS] }],
        healthcheck: {
          // The admin API listens on localhost inside the container only.
          tests: ["CMD", "wget", "-q", "-O", "/dev/null", `http://${edge.adminAddress}/config/`],
          // Docker 20.10 runs the first probe one interval after the start, and the sites' edge
          // networks are attached once the edge is healthy: a short interval keeps a replacement's
          // gap short (each probe is one wget inside the edge, on loopback).
          interval: "2s",
          timeout: "5s",
          startPeriod: "10s",
          retries: 3,
        },
        wait: true,
        waitTimeout: 120,
        memory: toMiB(edge.memory),
        memoryReservation: Math.min(EDGE_RESERVATION_MIB, toMiB(edge.memory)),
        stopTimeout: EDGE_STOP_GRACE_SECONDS,
        destroyGraceSeconds: EDGE_STOP_GRACE_SECONDS,
        securityOpts: ["no-new-privileges:true"],
        labels: containerLabels(PLATFORM_OWNER, "edge"),
      },
      // Host ports and a fixed name cannot be held by two containers at once.
      {
        ...child,
        deleteBeforeReplace: true,
        dependsOn: [sitesDir],
        // The sites' edge networks are attached by the sites' own commands (DECISIONS 3).
        ignoreChanges: ["networksAdvanced"],
      },
    );
    this.edge = container;
    this.edgeContainerName = container.name;

    if (host.sharedDatabase) {
      const s = host.sharedDatabase;
      let password: pulumi.Input<string>;
      const ready: pulumi.Resource[] = [];
      if (s.create) {
        if (args.postgresImage === undefined) {
          throw new Error(
            `host ${host.name}: creating the shared cluster needs the PostgreSQL image`,
          );
        }
        const created = this.sharedCluster(name, s, args.postgresImage, child);
        password = created.password;
        ready.push(created.container);
      } else {
        if (args.sharedDatabasePassword === undefined) {
          throw new Error(
            `host ${host.name}: the shared database needs its administrative password`,
          );
        }
        password = args.sharedDatabasePassword;
      }
      this.sharedDatabaseProvider = new postgresql.Provider(
        `${name}-shared-db`,
        {
          host: s.adminAddress,
          port: s.adminPort,
          username: s.adminUser,
          password,
          database: "postgres",
          // Reached through an SSH tunnel to the host's loopback: TLS would add nothing.
          sslmode: "disable",
          superuser: false,
          connectTimeout: 15,
        },
        // A created cluster first: its container is created only once it reports healthy (wait).
        { parent: this, dependsOn: ready },
      );
    }

    this.registerOutputs({
      networkName: this.networkName,
      edgeContainerName: this.edgeContainerName,
    });
  }

  /**
   * The shared cluster of a host whose stack asks the program to create it (`sharedDatabase.create`,
   * the `local` stack): PostgreSQL from the stack's image on agi-network under its container name,
   * a generated admin password given as a file, its own retained data volume, and the admin port
   * published on the stack's loopback address only, for the PostgreSQL provider.
   */
  private sharedCluster(
    name: string,
    s: NonNullable<HostSettings["sharedDatabase"]>,
    postgresImage: string,
    child: pulumi.CustomResourceOptions,
  ): { container: docker.Container; password: pulumi.Output<string> } {
    const password = pulumi.secret(
      new random.RandomPassword(
        `${name}-shared-db-admin-password`,
        { length: 32, special: false },
        { parent: this },
      ).result,
    );
    const image = new docker.RemoteImage(
      `${name}-shared-db-image`,
      { name: postgresImage, keepLocally: true },
      child,
    );
    const volume = new docker.Volume(
      `${name}-shared-db-data`,
      {
        name: sharedClusterVolume(s.container),
        labels: containerLabels(PLATFORM_OWNER, "shared-db-data"),
      },
      { ...child, retainOnDelete: true },
    );
    const memory = s.memory ?? DEFAULT_SHARED_CLUSTER_MEMORY;
    const container = new docker.Container(
      `${name}-shared-db-cluster`,
      {
        ...CONTAINER_DEFAULTS,
        name: s.container,
        image: image.imageId,
        command: clusterCommand(memory, s.port),
        envs: [
          `POSTGRES_USER=${s.adminUser}`,
          `POSTGRES_PASSWORD_FILE=${CLUSTER_PASSWORD_FILE}`,
          "PGDATA=/var/lib/postgresql/data/pgdata",
        ],
        uploads: [
          // Inside this container only; 0444 because the image's entrypoint may read it as postgres.
          { file: CLUSTER_PASSWORD_FILE, content: password, permissions: "0444" },
          {
            file: "/docker-entrypoint-initdb.d/10-agi-close-postgres.sql",
            content: clusterInitSql(),
            permissions: "0444",
          },
        ],
        mounts: [{ type: "volume", source: volume.name, target: "/var/lib/postgresql/data" }],
        networksAdvanced: [{ name: this.networkName, aliases: [s.container] }],
        // The admin port on the stack's loopback address only (validated), for the provider.
        ports: [{ internal: s.port, external: s.adminPort, ip: s.adminAddress, protocol: "tcp" }],
        healthcheck: {
          // -h 127.0.0.1: the image's first-start server listens on its socket only, so this passes
          // once the real server takes TCP connections.
          tests: [
            "CMD",
            "pg_isready",
            "-h",
            "127.0.0.1",
            "-p",
            String(s.port),
            "-U",
            s.adminUser,
            "-d",
            "postgres",
          ],
          interval: "5s",
          timeout: "5s",
          startPeriod: "60s",
          retries: 5,
        },
        wait: true,
        waitTimeout: WAIT_TIMEOUT_SECONDS,
        memory: toMiB(memory),
        memoryReservation: Math.min(SHARED_CLUSTER_RESERVATION_MIB, toMiB(memory)),
        stopSignal: "SIGINT",
        stopTimeout: DB_STOP_GRACE_SECONDS,
        destroyGraceSeconds: DB_STOP_GRACE_SECONDS,
        securityOpts: ["no-new-privileges:true"],
        labels: containerLabels(PLATFORM_OWNER, "shared-db"),
      },
      // A fixed name, a published port and one data volume: the old server stops first.
      { ...child, deleteBeforeReplace: true },
    );
    return { container, password };
  }
}
