/**
 * npm run validate [-- --sites DIR] [--stack NAME]
 * Checks every site file and the stack settings (one stack, or every Pulumi.<stack>.yaml here).
 * Exit 0 with a one-line summary; otherwise exit 1 and one line per problem: <file>: <field.path>: <message>.
 */
import * as path from "node:path";
import { type Io, parseCommonStrict, processIo, runCommand, readCommandLine } from "./args";
import {
  formatProblem,
  loadSiteEntries,
  readStackFile,
  validateAll,
  type Problem,
} from "../core/validate";
import { digestChecks, secretKeysFor, siteNotes, unpinnedHosts } from "../core/validate";
import type { StackSettings } from "../stacks/settings";
import { stackNames } from "./stack";
import { PROJECT } from "../stacks/settings";

const USAGE = "usage: npm run validate [-- --sites DIR] [--stack NAME]";

/** The command: `argv` without the node and script; returns the exit code. */
export function main(argv: string[], io: Io = processIo()): number {
  const args = readCommandLine(() => parseCommonStrict(argv, USAGE), USAGE, io);
  if (typeof args === "number") return args;
  const root = io.cwd;
  const problems: Problem[] = [];
  const stacks: { name: string; file: string; settings: StackSettings; secureKeys: string[] }[] =
    [];
  const names = args.stack ? [args.stack] : stackNames(root);
  for (const name of names) {
    const file = `Pulumi.${name}.yaml`;
    const read = readStackFile(path.join(root, file), file);
    problems.push(...read.problems);
    if (read.settings)
      stacks.push({ name, file, settings: read.settings, secureKeys: read.secureKeys });
  }
  const loaded = loadSiteEntries(path.resolve(root, args.sites), args.sites);
  problems.push(...loaded.problems);
  const { sites, problems: siteProblems } = validateAll(loaded.entries, stacks);
  problems.push(...siteProblems);

  if (problems.length) {
    for (const p of problems) io.stdout(`${formatProblem(p)}\n`);
    io.stderr(`validate: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n`);
    return 1;
  }
  for (const p of siteNotes(sites)) process.stderr.write(`note: ${formatProblem(p)}\n`);
  for (const s of stacks) {
    for (const p of digestChecks(sites, s.settings, s.file).notes) {
      io.stderr(`note: ${formatProblem(p)}\n`);
    }
    for (const p of unpinnedHosts(s.settings, s.file)) {
      io.stderr(`note: ${formatProblem(p)} (previews work; pulumi up refuses)\n`);
    }
    const missing = secretKeysFor(
      s.settings,
      sites.map((x) => x.site),
    ).filter((k) => !s.secureKeys.includes(`${PROJECT}:${k}`));
    if (missing.length) {
      io.stderr(
        `note: ${s.file} has no value yet for secret${missing.length === 1 ? "" : "s"} ${missing.join(", ")} ` +
          `(pulumi config set --path --secret --stack ${s.name} <key>); synth works without them, pulumi up does not\n`,
      );
    }
  }
  const count = (pred: (x: (typeof sites)[number]) => boolean) => sites.filter(pred).length;
  io.stdout(
    `validate: ${sites.length} site files OK (${count((x) => x.site.kind === "website")} websites, ` +
      `${count((x) => x.site.kind === "service")} services; ${count((x) => x.site.status === "active")} active, ` +
      `${count((x) => x.site.status === "paused")} paused, ${count((x) => x.site.status === "planned")} planned) ` +
      `against stack${stacks.length === 1 ? "" : "s"} ${stacks.map((s) => s.name).join(", ") || "(none)"}\n`,
  );
  return 0;
}

if (require.main === module) runCommand(main);
