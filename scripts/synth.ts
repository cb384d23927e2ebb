/**
 * npm run synth -- --stack NAME [--sites DIR] [--out DIR]
 * Runs the real program (the function index.ts runs) under the SDK's mocks, offline and without
 * credentials, and writes the desired state to --out (default build/<stack>/):
 *   manifest.json   every resource: type, name, parent, inputs (secrets as "[secret]"), options
 *   caddy/          the main Caddyfile and every site fragment, as written on the host
 *   inventory.json  the value of the `inventory` stack output
 * and prints the inventory as a table.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type Io, parseCommonStrict, processIo, runCommand, readCommandLine } from "./args";
import {
  MOCK_PASSWORD_PREFIX,
  resolveOutput,
  startMockEngine,
  type MockEngine,
  type RecordedResource,
} from "./mock-engine";
import { inventoryTable, type Inventory } from "../core/inventory";
import { runProgram, type ProgramOutputs } from "../components/program";
import {
  formatProblem,
  loadSiteEntries,
  readStackFile,
  secretKeysFor,
  validateAll,
} from "../core/validate";
import { PROJECT, SITE_SECRETS_KEY } from "../stacks/settings";

const USAGE = "usage: npm run synth -- --stack NAME [--sites DIR] [--out DIR]";
/** Stands in for every secret config value; synth must never print it. */
const PLACEHOLDER_PREFIX = "synth-placeholder-secret-";

export interface SynthResult {
  manifest: { stack: string; resources: ManifestEntry[] };
  inventory: Inventory;
  caddy: Record<string, string>;
}

/** A resource as the manifest shows it: everything recorded but secret paths and clear values. */
export type ManifestEntry = Omit<RecordedResource, "secretPaths" | "clearInputs">;

export class SynthError extends Error {}

/** Stands in for a secret config value under mocks: recognisable, so a leak can be caught. */
export function placeholderFor(key: string): string {
  return `${PLACEHOLDER_PREFIX}${key}`;
}

/**
 * Puts a placeholder in `config` for every secret path: flat platform keys as they are, the sites'
 * `secrets.<site>.<key>` inside one `secrets` object. Returns the full config keys that are secret.
 */
function placeholderConfig(paths: string[], config: Record<string, string>): string[] {
  const keys = new Set<string>();
  const siteSecrets: Record<string, Record<string, string>> = {};
  for (const p of paths) {
    const [head, site, key] = p.split(".");
    if (head === SITE_SECRETS_KEY && key !== undefined) {
      (siteSecrets[site] ??= {})[key] = placeholderFor(`${PROJECT}:${p}`);
      keys.add(`${PROJECT}:${SITE_SECRETS_KEY}`);
    } else {
      config[`${PROJECT}:${p}`] = placeholderFor(`${PROJECT}:${p}`);
      keys.add(`${PROJECT}:${p}`);
    }
  }
  if (Object.keys(siteSecrets).length)
    config[`${PROJECT}:${SITE_SECRETS_KEY}`] = JSON.stringify(siteSecrets);
  return [...keys].sort();
}

export interface MockRun {
  engine: MockEngine;
  program: ProgramOutputs;
  /** Full config keys given placeholder secret values. */
  secretKeys: string[];
}

/**
 * Validates the stack file and sites, then sets up the SDK's mocks with the stack's config and a
 * placeholder for every secret the program reads. Runs in sequence only: the SDK's runtime is global.
 */
export async function prepareMocks(
  root: string,
  stack: string,
  sitesDir: string,
  sitesShownAs: string,
  preview = true,
  /** Values for some platform secret keys instead of placeholders (the engine suite's test remote). */
  secretValues: Record<string, string> = {},
): Promise<Omit<MockRun, "program">> {
  const stackFile = `Pulumi.${stack}.yaml`;
  const read = readStackFile(path.join(root, stackFile), stackFile);
  const loaded = loadSiteEntries(sitesDir, sitesShownAs);
  const problems = [...read.problems, ...loaded.problems];
  const checked = read.settings
    ? validateAll(loaded.entries, [{ file: stackFile, settings: read.settings }])
    : undefined;
  if (checked) problems.push(...checked.problems);
  if (problems.length || !read.settings || !checked) {
    throw new SynthError(problems.map(formatProblem).join("\n"));
  }
  const config: Record<string, string> = {};
  config[`${PROJECT}:settings`] = JSON.stringify(read.settings);
  const sites = checked.sites.map((s) => s.site);
  const secretKeys = placeholderConfig(secretKeysFor(read.settings, sites), config);
  for (const [key, value] of Object.entries(secretValues)) {
    if (!secretKeys.includes(`${PROJECT}:${key}`))
      throw new SynthError(`${key} is not a secret key of the stack`);
    config[`${PROJECT}:${key}`] = value;
  }

  const engine = await startMockEngine({
    project: PROJECT,
    stack,
    config,
    secretKeys,
    preview,
  });
  return { engine, secretKeys };
}

/**
 * Validates, sets up mocks and config, then runs the program (as index.ts does). By default as a
 * preview, as on a pull request: the desired state, before anything is applied.
 */
export async function runUnderMocks(
  root: string,
  stack: string,
  sitesDir: string,
  sitesShownAs: string,
  preview = true,
  secretValues: Record<string, string> = {},
): Promise<MockRun> {
  const { engine, secretKeys } = await prepareMocks(
    root,
    stack,
    sitesDir,
    sitesShownAs,
    preview,
    secretValues,
  );
  const program = runProgram({ sitesDir, sitesShownAs });
  return { engine, program, secretKeys };
}

/** Synthesises one stack: the desired state, with no secret value in it. */
export async function synth(
  root: string,
  stack: string,
  sitesDir: string,
  sitesShownAs: string,
): Promise<SynthResult> {
  const { engine, program } = await runUnderMocks(root, stack, sitesDir, sitesShownAs);
  const inventory = (await resolveOutput(program.inventory)).value;
  const caddy = (await resolveOutput(program.caddy)).value;
  await engine.settle();

  const resources = [...engine.resources]
    .sort((a, b) => a.urn.localeCompare(b.urn))
    .map(({ type, name, urn, parent, custom, inputs, options }) => ({
      type,
      name,
      urn,
      parent,
      custom,
      inputs,
      options,
    }));
  const result: SynthResult = { manifest: { stack, resources }, inventory, caddy };

  // Last line of defence: no secret value may reach a file or the terminal.
  const text = JSON.stringify(result);
  if (text.includes(PLACEHOLDER_PREFIX) || text.includes(MOCK_PASSWORD_PREFIX)) {
    throw new SynthError(
      "synth: a secret value reached the output; refusing to write it (this is a bug)",
    );
  }
  return result;
}

/** Writes the result under `out`, replacing what an earlier synth wrote there. */
/** The file that marks a directory as synth's own output, which it may replace. */
export const OUT_MARK = ".agi-synth-output";

/**
 * Makes `out` synth's own: a directory it creates, an existing empty one (marked now), or one it
 * marked before. Anything else (a file, a link, a directory with other files) is refused untouched.
 */
export function claimOutDir(out: string): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(out);
  } catch {
    stat = undefined;
  }
  if (stat === undefined) {
    fs.mkdirSync(out, { recursive: true });
  } else if (!stat.isDirectory()) {
    throw new SynthError(`synth: --out ${out} is not a directory; nothing written`);
  } else if (!fs.existsSync(path.join(out, OUT_MARK)) && fs.readdirSync(out).length > 0) {
    throw new SynthError(
      `synth: --out ${out} holds files synth did not write; give a new or empty directory, or remove it if it is an older synth output (nothing written)`,
    );
  }
  fs.writeFileSync(
    path.join(out, OUT_MARK),
    "written by npm run synth; it may replace this directory's files\n",
  );
}

export function writeSynth(out: string, result: SynthResult): string[] {
  claimOutDir(out);
  fs.rmSync(path.join(out, "caddy"), { recursive: true, force: true });
  const written: string[] = [];
  const write = (rel: string, text: string) => {
    const file = path.join(out, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // A link left in the directory is replaced, never followed.
    fs.rmSync(file, { force: true });
    fs.writeFileSync(file, text, { flag: "wx" });
    written.push(rel);
  };
  write("manifest.json", `${JSON.stringify(result.manifest, null, 2)}\n`);
  write("inventory.json", `${JSON.stringify(result.inventory, null, 2)}\n`);
  for (const [rel, text] of Object.entries(result.caddy)) write(path.join("caddy", rel), text);
  return written;
}

/** The command: `argv` without the node and script; resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const args = readCommandLine(() => parseCommonStrict(argv, USAGE, true), USAGE, io);
  if (typeof args === "number") return args;
  const root = io.cwd;
  const stack = args.stack ?? "local";
  const out = path.resolve(root, args.out ?? path.join("build", stack));
  try {
    const result = await synth(root, stack, path.resolve(root, args.sites), args.sites);
    const written = writeSynth(out, result);
    const rel = path.relative(root, out);
    const shown = rel === "" ? "." : rel.startsWith("..") ? out : rel;
    io.stdout(inventoryTable(result.inventory));
    io.stdout(
      `\nsynth: stack ${stack}: ${result.manifest.resources.length} resources, ` +
        `${Object.keys(result.caddy).length} Caddy files; wrote ${written.length} files to ${shown}/\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof SynthError) {
      io.stdout(`${err.message}\n`);
      io.stderr("synth: nothing written\n");
      return 1;
    }
    const first = String((err as Error)?.message ?? err).split("\n")[0];
    io.stderr(`synth: ${first}\n`);
    return 1;
  }
}

if (require.main === module) runCommand(main, { fast: true });
