/**
 * npm run policy -- --stack NAME [--sites DIR] [--manifest FILE]
 * Runs every policy of the pack (policy/rules.ts) over the desired state, offline: the stack's synth
 * manifest (synthesised here), or a manifest file written by `npm run synth`. Exit 0 when nothing
 * violates a policy; else exit 1 with one line per violation: `<policy>: <message>`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { RULES, violations, type CheckedResource } from "../policy/rules";
import { type Io, parseStrict, processIo, runCommand, readCommandLine } from "./args";
import { synth, SynthError, type ManifestEntry } from "./synth";

const USAGE = "usage: npm run policy -- --stack NAME [--sites DIR] [--manifest FILE]";

/** A manifest entry as the rules see it; only custom resources are checked. */
export function checkedResources(resources: ManifestEntry[]): CheckedResource[] {
  return resources
    .filter((r) => r.custom)
    .map((r) => ({
      type: r.type,
      name: r.name,
      urn: r.urn,
      props: r.inputs,
      retainOnDelete: (r.options as { retainOnDelete?: boolean }).retainOnDelete === true,
    }));
}

/** Every violation in a manifest, as printed lines. */
export function manifestViolations(resources: ManifestEntry[]): string[] {
  return checkedResources(resources).flatMap((r) =>
    violations(r).map((v) => `${v.rule}: ${v.message}`),
  );
}

function readManifest(file: string): { stack: string; resources: ManifestEntry[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new SynthError(`policy: cannot read ${file}: ${(err as Error).message.split("\n")[0]}`);
  }
  const m = parsed as { stack?: unknown; resources?: unknown };
  if (typeof m?.stack !== "string" || !Array.isArray(m.resources)) {
    throw new SynthError(
      `policy: ${file} is not a synth manifest (expected { "stack": ..., "resources": [...] })`,
    );
  }
  return m as { stack: string; resources: ManifestEntry[] };
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
          sites: { type: "string", default: "sites" },
          manifest: { type: "string" },
          help: { type: "boolean", short: "h", default: false },
        },
        (v) => {
          if (!v.help && !v.stack && !v.manifest)
            throw new Error("--stack (or --manifest) is required");
        },
      ),
    USAGE,
    io,
  );
  if (typeof values === "number") return values;
  const root = io.cwd;
  try {
    const manifest = values.manifest
      ? readManifest(path.resolve(root, values.manifest))
      : (await synth(root, values.stack as string, path.resolve(root, values.sites), values.sites))
          .manifest;
    const found = manifestViolations(manifest.resources);
    for (const line of found) io.stdout(`${line}\n`);
    const checked = checkedResources(manifest.resources).length;
    io.stderr(
      `policy: stack ${manifest.stack}: ${checked} resources, ${RULES.length} policies, ` +
        `${found.length} violation${found.length === 1 ? "" : "s"}\n`,
    );
    return found.length ? 1 : 0;
  } catch (err) {
    const first = String((err as Error)?.message ?? err).split("\n")[0];
    io.stderr(`${first.startsWith("policy:") ? "" : "policy: "}${first}\n`);
    return 1;
  }
}

if (require.main === module) runCommand(main, { fast: true });
