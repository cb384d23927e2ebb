/**
 * Stand-in images, built offline from Debian 12 packages: one root filesystem made with mmdebstrap
 * and `docker import`ed, then one small Dockerfile per image FROM it (no pull). Each image carries the
 * hash of its inputs (package list, Dockerfile, files) as a label and is rebuilt only when that
 * changes, so a warm run builds nothing. Every image is tagged with the exact references the stacks
 * under test declare (DECISIONS 9: those stacks pin tags, so a stand-in can carry them).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { docker, imageExists, must, run } from "./docker";

export const IMAGES_DIR = path.join(__dirname, "images");
export const HASH_LABEL = "agi.engine-suite.hash";
const BASE_REPO = "agi-engine-suite/debian-base";
const SUITE = "bookworm";
/** What the root filesystem is made with, besides the package list: part of its hash. */
const MMDEBSTRAP_ARGS = [
  "--variant=apt",
  // Throwaway test images: no fsync per unpacked file (the install phase is most of a cold build).
  "--dpkgopt=force-unsafe-io",
  "--dpkgopt=path-exclude=/usr/share/doc/*",
  "--dpkgopt=path-exclude=/usr/share/man/*",
  "--dpkgopt=path-exclude=/usr/share/locale/*",
  "--dpkgopt=path-include=/usr/share/locale/locale.alias",
];

/** The kinds of stand-in, by directory under images/. */
export type ImageKind = "postgres" | "caddy" | "haproxy" | "demo-app" | "uploader";
export type ImageTags = Record<ImageKind, string[]>;

export interface BuildReport {
  /** Seconds for the whole call. */
  seconds: number;
  /** Whether the base root filesystem had to be made (a cold build). */
  baseBuilt: boolean;
  baseSeconds: number;
  /** Kinds rebuilt in this call. */
  built: ImageKind[];
}

function sha(parts: (string | Buffer)[]): string {
  const h = crypto.createHash("sha256");
  for (const p of parts) {
    h.update(String(p.length));
    h.update(":");
    h.update(p);
  }
  return h.digest("hex");
}

export function packageList(): string[] {
  return fs
    .readFileSync(path.join(IMAGES_DIR, "packages.txt"), "utf8")
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter(Boolean);
}

/** Hash of the base root filesystem's inputs. */
export function baseHash(): string {
  return sha([SUITE, ...MMDEBSTRAP_ARGS, ...packageList()]);
}

/** Hash of one image's inputs: the base's, then every file of its directory, by name. */
export function imageHash(kind: ImageKind): string {
  const dir = path.join(IMAGES_DIR, kind);
  const files = fs.readdirSync(dir).sort();
  return sha([baseHash(), ...files.flatMap((f) => [f, fs.readFileSync(path.join(dir, f))])]);
}

async function labelOf(ref: string): Promise<string | undefined> {
  const r = await run("docker", [
    "image",
    "inspect",
    "--format",
    `{{ index .Config.Labels "${HASH_LABEL}" }}`,
    ref,
  ]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** Makes the base image if no image has its hash; returns its reference. */
async function ensureBase(log: (m: string) => void): Promise<{ ref: string; built: boolean }> {
  const hash = baseHash();
  const ref = `${BASE_REPO}:${hash.slice(0, 16)}`;
  if (await imageExists(ref)) return { ref, built: false };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "agi-engine-rootfs-"));
  try {
    const tar = path.join(tmp, "rootfs.tar");
    log(`images: making a Debian ${SUITE} root filesystem with ${packageList().join(" ")}`);
    await must(
      "mmdebstrap",
      [...MMDEBSTRAP_ARGS, `--include=${packageList().join(",")}`, SUITE, tar],
      { timeoutMs: 20 * 60_000 },
    );
    await docker(
      [
        "import",
        "--change",
        `LABEL ${HASH_LABEL}=${hash}`,
        "--change",
        'CMD ["/bin/bash"]',
        tar,
        ref,
      ],
      { timeoutMs: 10 * 60_000 },
    );
    return { ref, built: true };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Builds every stand-in whose tags do not all carry its current hash, and tags it with `tags`.
 * Never pulls: the base is local, and the legacy builder uses it as is.
 */
export async function buildImages(
  tags: ImageTags,
  log: (m: string) => void = () => undefined,
): Promise<BuildReport> {
  const t0 = Date.now();
  const kinds = Object.keys(tags) as ImageKind[];
  const stale: ImageKind[] = [];
  for (const kind of kinds) {
    if (tags[kind].length === 0) continue; // no stack under test runs it
    const want = imageHash(kind);
    const labels = await Promise.all(tags[kind].map(labelOf));
    if (labels.some((l) => l !== want)) stale.push(kind);
  }
  let baseBuilt = false;
  let baseSeconds = 0;
  if (stale.length) {
    const tb = Date.now();
    const base = await ensureBase(log);
    baseBuilt = base.built;
    baseSeconds = (Date.now() - tb) / 1000;
    for (const kind of stale) {
      log(`images: building ${kind} as ${tags[kind].join(", ")}`);
      await docker(
        [
          "build",
          "--quiet",
          "--build-arg",
          `BASE=${base.ref}`,
          "--label",
          `${HASH_LABEL}=${imageHash(kind)}`,
          ...tags[kind].flatMap((t) => ["--tag", t]),
          path.join(IMAGES_DIR, kind),
        ],
        { env: { ...process.env, DOCKER_BUILDKIT: "0" }, timeoutMs: 10 * 60_000 },
      );
    }
    // The stand-ins these replaced, now untagged: only dangling images with this suite's label go.
    await docker(["image", "prune", "--force", "--filter", `label=${HASH_LABEL}`]);
  }
  return { seconds: (Date.now() - t0) / 1000, baseBuilt, baseSeconds, built: stale };
}

/** Which stand-in serves a RemoteImage of the program, by the resource's name. */
export function kindOfImageResource(resourceName: string): ImageKind | undefined {
  if (resourceName.endsWith("-edge-image")) return "caddy";
  if (resourceName.endsWith("-db-image") || resourceName.endsWith("-backup-image"))
    return "postgres";
  if (resourceName.endsWith("-docker-proxy-image")) return "haproxy";
  if (resourceName.endsWith("-app-image")) return "demo-app";
  if (resourceName.endsWith("-uploader-image")) return "uploader";
  return undefined;
}

/** The tags every stand-in must carry for the given manifests' RemoteImage resources. */
export function tagsFor(
  resources: readonly { type: string; name: string; inputs: Record<string, unknown> }[],
): ImageTags {
  const tags: ImageTags = { postgres: [], caddy: [], haproxy: [], "demo-app": [], uploader: [] };
  for (const r of resources) {
    if (r.type !== "docker:index/remoteImage:RemoteImage") continue;
    const kind = kindOfImageResource(r.name);
    if (!kind) throw new Error(`images: no stand-in for the image resource ${r.name}`);
    const ref = String(r.inputs.name);
    if (!tags[kind].includes(ref)) tags[kind].push(ref);
  }
  for (const k of Object.keys(tags) as ImageKind[]) tags[k].sort();
  return tags;
}
