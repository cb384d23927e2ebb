/**
 * The platform's guard rails as plain functions over one resource (type, name, inputs): the policy
 * pack runs them inside `pulumi preview` / `pulumi up`, and `npm run policy` runs the same functions
 * over the synth manifest, offline. Each violation message names the resource and the fix.
 */
import { imageProblem } from "../core/site";
import { UNPROXIED_MARK } from "../core/dns";

/** One resource as a rule sees it. */
export interface CheckedResource {
  type: string;
  name: string;
  props: Record<string, unknown>;
  /**
   * Whether the resource is kept when deleted. The synth manifest records it; the engine does not
   * show it to policy packs, so there it is undefined and the rule that needs it cannot decide.
   */
  retainOnDelete?: boolean;
  /**
   * The resource's URN: its type chain names the component that created it. The engine and the
   * manifest both give it; a platform container is recognised by it, never by a label.
   */
  urn?: string;
}

export interface Rule {
  /** Policy name (lower-case, dashes). */
  name: string;
  description: string;
  /** Resource type tokens the rule looks at. */
  types: readonly string[];
  /** The violation message, or undefined when the resource complies. */
  check(r: CheckedResource): string | undefined;
}

export const CONTAINER = "docker:index/container:Container";
export const REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage";
export const VOLUME = "docker:index/volume:Volume";
export const ZONE_SETTING = "cloudflare:index/zoneSetting:ZoneSetting";
export const DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord";

/** Restart policies that bring a container back after a crash and after a reboot ("on-failure" does not). */
const RESTARTING = ["always", "unless-stopped"];

/** Whether a published port stays on this machine (loopback); no address means every interface. */
function isLoopback(ip: string | null | undefined): boolean {
  return typeof ip === "string" && (/^127\./.test(ip) || ip === "::1" || ip === "[::1]");
}

/** Host paths that give the Docker engine away: its socket, containerd's, or a directory above them. */
const SOCKET_DIRS = [
  "/",
  "/run",
  "/var",
  "/var/run",
  "/run/docker",
  "/var/run/docker",
  "/run/containerd",
  "/var/run/containerd",
  "/var/lib/docker",
];

interface Port {
  internal?: number;
  external?: number;
  ip?: string | null;
}
interface Mount {
  type?: string;
  source?: string;
  target?: string;
  readOnly?: boolean;
}
interface Volume {
  hostPath?: string;
  containerPath?: string;
  readOnly?: boolean;
}

function list<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

/** The value of a Docker label on a container, from the provider's `labels: [{label, value}]`. */
export function label(props: Record<string, unknown>, name: string): string | undefined {
  return list<{ label?: string; value?: string }>(props.labels).find((l) => l.label === name)
    ?.value;
}

function isDatabase(props: Record<string, unknown>): boolean {
  if (label(props, "agi.role") === "db") return true;
  return list<unknown>(props.envs).some(
    (e) => typeof e === "string" && /^(POSTGRES_[A-Z_]+|PGDATA)=/.test(e),
  );
}

function portText(p: Port): string {
  return String(p.external ?? p.internal ?? "?");
}

function isDockerSocket(path: string | undefined): boolean {
  if (typeof path !== "string") return false;
  const clean = path.replace(/\/+$/, "") || "/";
  return /(^|\/)(docker|containerd)\.sock$/.test(clean) || SOCKET_DIRS.includes(clean);
}

const container = (r: CheckedResource) => `container ${r.name}`;

/** The type of the component that created a resource, from its URN's type chain. */
export function createdBy(r: CheckedResource): string | undefined {
  const chain = r.urn?.split("::")[2];
  if (!chain) return undefined;
  const types = chain.split("$");
  return types.length > 1 ? types[types.length - 2] : undefined;
}

/** The platform's socket proxy: a container a Website component creates as `<site>-docker-proxy`. */
function isPlatformProxy(r: CheckedResource): boolean {
  return createdBy(r) === "agi:web:Website" && r.name.endsWith("-docker-proxy");
}

/** The platform's edge: the container a Platform component creates as `<host>-edge`. */
function isPlatformEdge(r: CheckedResource): boolean {
  return createdBy(r) === "agi:host:Platform" && r.name.endsWith("-edge");
}

/**
 * A shared cluster the program creates (`sharedDatabase.create`, workstations only): the container a
 * Platform component creates as `<host>-shared-db-cluster`.
 */
function isPlatformSharedCluster(r: CheckedResource): boolean {
  return createdBy(r) === "agi:host:Platform" && r.name.endsWith("-shared-db-cluster");
}

/** Host directories no container may bind, nor any directory inside them or above them. */
const SENSITIVE_HOST_DIRS = [
  "/etc",
  "/proc",
  "/sys",
  "/dev",
  "/boot",
  "/root",
  "/home",
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib64",
  "/var/lib",
  "/var/log",
  "/run",
  "/var/run",
];

/** A host path as the kernel resolves it: repeated and trailing slashes and "." and ".." removed. */
export function normalHostPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

function isSensitiveHostPath(p: string): boolean {
  const n = normalHostPath(p);
  if (n === "/" || !p.startsWith("/")) return true;
  return SENSITIVE_HOST_DIRS.some((d) => n === d || n.startsWith(`${d}/`) || d.startsWith(`${n}/`));
}

/** Host paths a container binds: bind mounts and the old `volumes` with a host path. */
function hostBinds(props: Record<string, unknown>): { path: string; readOnly: boolean }[] {
  return [
    ...list<Mount>(props.mounts)
      .filter((m) => m.type === "bind" && typeof m.source === "string")
      .map((m) => ({ path: m.source!, readOnly: m.readOnly === true })),
    ...list<Volume>(props.volumes)
      .filter((v) => typeof v.hostPath === "string")
      .map((v) => ({ path: v.hostPath!, readOnly: v.readOnly === true })),
  ];
}

export const RULES: readonly Rule[] = [
  {
    name: "database-no-host-port",
    description: "No database container publishes a host port.",
    types: [CONTAINER],
    check(r) {
      const ports = list<Port>(r.props.ports);
      if (!isDatabase(r.props) || ports.length === 0) return undefined;
      // The created cluster's admin port is the provider's way in, and stays on loopback.
      if (isPlatformSharedCluster(r) && ports.every((p) => isLoopback(p.ip))) return undefined;
      return (
        `${container(r)} is a database and publishes host port ${ports.map(portText).join(", ")}: ` +
        'remove its "ports"; apps reach it on the site\'s internal network, operators through an SSH tunnel'
      );
    },
  },
  {
    name: "no-public-app-port",
    description: "Only the edge publishes ports beyond loopback.",
    types: [CONTAINER],
    check(r) {
      if (isPlatformEdge(r)) return undefined;
      const open = list<Port>(r.props.ports).filter((p) => !isLoopback(p.ip));
      if (open.length === 0) return undefined;
      const where = (p: Port) => `${portText(p)} on ${p.ip ? p.ip : "all interfaces"}`;
      return (
        `${container(r)} publishes port ${open.map(where).join(", ")}: only the edge listens beyond loopback; ` +
        'remove "ports" (the edge proxies to the container on agi-network) or bind "ip": "127.0.0.1"'
      );
    },
  },
  {
    name: "pinned-image",
    description: "Every image is pinned by a version tag or a digest, never `latest`.",
    types: [REMOTE_IMAGE, CONTAINER],
    check(r) {
      const ref = r.type === REMOTE_IMAGE ? r.props.name : r.props.image;
      // A container usually takes its image's id (sha256:...), which is pinned by definition.
      if (typeof ref !== "string" || ref.startsWith("sha256:")) return undefined;
      const problem = imageProblem(ref);
      const what = r.type === REMOTE_IMAGE ? `image ${r.name}` : container(r);
      return problem ? `${what}: "${ref}" ${problem}` : undefined;
    },
  },
  {
    name: "memory-limit",
    description: "Every container has a memory limit.",
    types: [CONTAINER],
    check(r) {
      const memory = r.props.memory;
      if (typeof memory === "number" && memory > 0) return undefined;
      return `${container(r)} has no memory limit: set "memory" (MiB); the host's budget is counted from it`;
    },
  },
  {
    name: "restart-policy",
    description: "Every container comes back after a crash or a reboot.",
    types: [CONTAINER],
    check(r) {
      const restart = r.props.restart;
      if (typeof restart === "string" && RESTARTING.includes(restart)) return undefined;
      return `${container(r)} has restart policy ${JSON.stringify(restart ?? "no")}: set "restart": "unless-stopped"`;
    },
  },
  {
    name: "healthcheck",
    description: "Every long-running container has a healthcheck.",
    types: [CONTAINER],
    check(r) {
      const tests = list<unknown>((r.props.healthcheck as { tests?: unknown } | undefined)?.tests);
      if (tests.length > 0 && tests[0] !== "NONE") return undefined;
      return `${container(r)} has no healthcheck: add "healthcheck" with a test the image can run, so deploys wait for it and Docker reports it`;
    },
  },
  {
    name: "retain-data-volumes",
    description: "Data volumes are retained when their resource is deleted.",
    types: [VOLUME],
    check(r) {
      if (r.retainOnDelete !== false) return undefined;
      return `volume ${r.name} would be deleted with its resource: give it the option retainOnDelete: true, so removing a site file never deletes data`;
    },
  },
  {
    name: "docker-socket",
    description: "No container mounts the Docker socket except the read-only socket proxy.",
    types: [CONTAINER],
    check(r) {
      const sockets = hostBinds(r.props).filter((b) => isDockerSocket(normalHostPath(b.path)));
      if (sockets.length === 0) return undefined;
      if (isPlatformProxy(r) && sockets.every((b) => b.readOnly)) return undefined;
      return (
        `${container(r)} mounts the Docker socket (or a directory holding it): only the platform's read-only socket proxy may; ` +
        "set app.dockerReadAccess: true in the site file instead, which gives the app the proxy"
      );
    },
  },
  {
    name: "container-isolation",
    description:
      "No container is privileged, shares the host's network, PID, IPC or user namespace, adds capabilities or devices, turns off its security profile, or binds a sensitive host path.",
    types: [CONTAINER],
    check(r) {
      const p = r.props;
      const found: string[] = [];
      if (p.privileged === true) found.push('"privileged": true');
      for (const key of ["networkMode", "pidMode", "ipcMode", "usernsMode", "cgroupnsMode"]) {
        const v = p[key];
        if (typeof v === "string" && /^(host|container:)/.test(v))
          found.push(`"${key}": ${JSON.stringify(v)}`);
      }
      const adds = list<unknown>((p.capabilities as { adds?: unknown } | undefined)?.adds);
      if (adds.length) found.push(`added capabilities ${adds.map(String).join(", ")}`);
      if (list<unknown>(p.devices).length) found.push("host devices");
      for (const o of list<unknown>(p.securityOpts)) {
        if (typeof o === "string" && /unconfined|label[:=]disable/.test(o))
          found.push(`security option ${JSON.stringify(o)}`);
      }
      for (const b of hostBinds(p)) {
        if (isSensitiveHostPath(b.path) && !isDockerSocket(normalHostPath(b.path)))
          found.push(`a bind mount of ${JSON.stringify(b.path)}`);
      }
      if (found.length === 0) return undefined;
      return `${container(r)} has ${found.join(", ")}: a container on the shared host gets none of these; remove them`;
    },
  },
  {
    name: "zone-ssl-strict",
    description: 'Cloudflare zones use SSL mode "strict".',
    types: [ZONE_SETTING],
    check(r) {
      if (r.props.settingId !== "ssl" || r.props.value === "strict") return undefined;
      return `zone setting ${r.name} sets SSL to ${JSON.stringify(r.props.value)}: set it to "strict", so Cloudflare checks the edge's certificate`;
    },
  },
  {
    name: "dns-proxied",
    description: "Cloudflare records are proxied unless the site file says otherwise.",
    types: [DNS_RECORD],
    check(r) {
      if (r.props.proxied === true) return undefined;
      const comment = r.props.comment;
      if (typeof comment === "string" && comment.endsWith(UNPROXIED_MARK)) return undefined;
      return (
        `DNS record ${r.name} (${String(r.props.name)}) is not proxied: set "proxied": true, ` +
        "or dns.proxied: false in the site file, which marks the record as intended"
      );
    },
  },
];

/** Every violation of every rule for one resource. */
export function violations(r: CheckedResource): { rule: string; message: string }[] {
  const out: { rule: string; message: string }[] = [];
  for (const rule of RULES) {
    if (!rule.types.includes(r.type)) continue;
    const message = rule.check(r);
    if (message !== undefined) out.push({ rule: rule.name, message });
  }
  return out;
}
