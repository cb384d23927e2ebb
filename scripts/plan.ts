/**
 * npm run plan -- --stack NAME (--base REF | --base-dir DIR) [--head-dir DIR] [--sites DIR] [--out FILE]
 * The offline plan: the desired state of the working tree (or of a synth output in --head-dir)
 * against that of the commit REF (synthesised from `git archive` of it in a temporary directory) or
 * of a synth output in --base-dir. Resources added, changed with the fields that change, replaced,
 * deleted, and the deletions that lose data; the Caddy files that change; the policy verdict of
 * this checkout's policy pack over the new state. No credentials, nothing applied. Markdown on
 * standard output, and in --out when given. Exit 0 with a plan, 1 when a side cannot be
 * synthesised, 2 on a bad command line.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Io, parseStrict, processIo, runCommand, readCommandLine } from "./args";
import { manifestViolations } from "./policy";
import { synth, SynthError, type ManifestEntry } from "./synth";
import { planDiff, renderPlan, type PlanManifest } from "../core/plan";

const USAGE =
  "usage: npm run plan -- --stack NAME (--base REF | --base-dir DIR) [--head-dir DIR] [--sites DIR] [--out FILE]";

/** A git revision as given on a command line: branch, tag, SHA, `HEAD~1`, `origin/main`. */
const REF_PATTERN = /^(?!-)[A-Za-z0-9._/~^@-]{1,200}$/;

export class PlanError extends Error {}

interface Side {
  manifest: PlanManifest;
  caddy: Record<string, string>;
}

/** A synth output directory read as data: manifest.json and every file under caddy/. */
export function readSynthDir(dir: string): Side {
  const file = path.join(dir, "manifest.json");
  let manifest: PlanManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(file, "utf8")) as PlanManifest;
  } catch (err) {
    throw new PlanError(`plan: cannot read ${file}: ${(err as Error).message.split("\n")[0]}`);
  }
  if (typeof manifest?.stack !== "string" || !Array.isArray(manifest.resources)) {
    throw new PlanError(`plan: ${file} is not a synth manifest`);
  }
  const caddy: Record<string, string> = {};
  const caddyDir = path.join(dir, "caddy");
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(caddyDir, rel), { withFileTypes: true })) {
      const sub = path.join(rel, entry.name);
      if (entry.isDirectory()) walk(sub);
      else if (entry.isFile()) caddy[sub] = fs.readFileSync(path.join(caddyDir, sub), "utf8");
    }
  };
  if (fs.existsSync(caddyDir)) walk("");
  return { manifest, caddy };
}

/**
 * The desired state of commit `ref`: its tree exported with `git archive` into a temporary
 * directory (the working tree is not touched), synthesised there by that commit's own synth with
 * this checkout's dependencies. The directory is removed afterwards.
 */
export function synthAtRef(root: string, ref: string, stack: string, sites: string): Side {
  let sha: string;
  try {
    sha = execFileSync("git", ["-C", root, "rev-parse", "--verify", "--quiet", `${ref}^{commit}`], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    throw new PlanError(`plan: --base ${ref}: no such commit in ${root}`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "agi-plan-"));
  try {
    const tree = path.join(tmp, "tree");
    fs.mkdirSync(tree);
    const archive = spawnSync("git", ["-C", root, "archive", "--format=tar", sha], {
      maxBuffer: 512 * 1024 * 1024,
    });
    if (archive.status !== 0) throw new PlanError(`plan: git archive ${sha} failed`);
    const untar = spawnSync("tar", ["-x", "-C", tree], { input: archive.stdout });
    if (untar.status !== 0) throw new PlanError(`plan: cannot unpack ${sha}`);
    // This checkout's dependencies (a committed node_modules link is replaced, never followed).
    fs.rmSync(path.join(tree, "node_modules"), { recursive: true, force: true });
    fs.symlinkSync(path.join(root, "node_modules"), path.join(tree, "node_modules"));
    const out = path.join(tmp, "out");
    const run = spawnSync(
      process.execPath,
      ["--import", "tsx", "scripts/synth.ts", "--stack", stack, "--sites", sites, "--out", out],
      { cwd: tree, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } },
    );
    if (run.status !== 0) {
      const said = `${run.stdout ?? ""}${run.stderr ?? ""}`.trim().split("\n").slice(-8).join("\n");
      throw new PlanError(`plan: the synth of ${ref} (${sha.slice(0, 12)}) failed:\n${said}`);
    }
    return readSynthDir(out);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The command: `argv` without the node and script; resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const values = readCommandLine(
    () =>
      parseStrict(
        argv,
        USAGE,
        {
          stack: { type: "string" },
          base: { type: "string" },
          "base-dir": { type: "string" },
          "head-dir": { type: "string" },
          sites: { type: "string", default: "sites" },
          out: { type: "string" },
          help: { type: "boolean", short: "h", default: false },
        },
        (v) => {
          if (v.help) return;
          if (v.stack === undefined) throw new Error("--stack is required");
          if ((v.base === undefined) === (v["base-dir"] === undefined)) {
            throw new Error("give exactly one of --base REF and --base-dir DIR");
          }
          if (v.base !== undefined && !REF_PATTERN.test(v.base)) {
            throw new Error(`--base: ${JSON.stringify(v.base)} is not a git revision`);
          }
        },
      ),
    USAGE,
    io,
  );
  if (typeof values === "number") return values;
  const root = io.cwd;
  const stack = values.stack!;
  try {
    io.stderr(`plan: desired state of ${values.base ?? values["base-dir"]} ...\n`);
    const base = values.base
      ? synthAtRef(root, values.base, stack, values.sites)
      : readSynthDir(path.resolve(root, values["base-dir"]!));
    io.stderr("plan: desired state of the change ...\n");
    const head = values["head-dir"]
      ? readSynthDir(path.resolve(root, values["head-dir"]))
      : await (async () => {
          const r = await synth(root, stack, path.resolve(root, values.sites), values.sites);
          return { manifest: r.manifest as PlanManifest, caddy: r.caddy };
        })();
    if (head.manifest.stack !== stack || base.manifest.stack !== stack) {
      throw new PlanError(
        `plan: the manifests are of stacks ${base.manifest.stack} and ${head.manifest.stack}, not ${stack}`,
      );
    }
    const plan = planDiff(base.manifest, head.manifest, base.caddy, head.caddy);
    const policy = manifestViolations(head.manifest.resources as ManifestEntry[]);
    const text = renderPlan(plan, `Offline plan of stack ${stack}`, policy);
    if (values.out) fs.writeFileSync(path.resolve(root, values.out), text);
    io.stdout(text);
    return 0;
  } catch (err) {
    if (err instanceof PlanError || err instanceof SynthError) {
      io.stderr(`${err.message}\n`);
      return 1;
    }
    io.stderr(`plan: ${String((err as Error)?.message ?? err).split("\n")[0]}\n`);
    return 1;
  }
}

if (require.main === module) runCommand(main, { fast: true });
