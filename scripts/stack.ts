/** The stack settings a command works on, read from Pulumi.<stack>.yaml, or a clear refusal. */
import * as fs from "node:fs";
import * as path from "node:path";
import { formatProblem, readStackFile } from "../core/validate";
import { STACK_NAME_PATTERN, type StackSettings } from "../stacks/settings";

/** A refusal: the command prints `<command>: <message>` and exits 1. */
export class Refusal extends Error {}

/** Stack names that have a Pulumi.<stack>.yaml in `dir`. */
export function stackNames(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined && STACK_NAME_PATTERN.test(s))
    .sort();
}

/** The settings of stack `name` in project `root`; refuses an unknown stack or invalid settings. */
export function readStack(root: string, name: string): { file: string; settings: StackSettings } {
  const file = `Pulumi.${name}.yaml`;
  if (!STACK_NAME_PATTERN.test(name) || !fs.existsSync(path.join(root, file))) {
    throw new Refusal(
      `no stack ${JSON.stringify(name)}: there is no ${file} here ` +
        `(stacks: ${stackNames(root).join(", ") || "none"})`,
    );
  }
  const read = readStackFile(path.join(root, file), file);
  if (!read.settings) throw new Refusal(read.problems.map(formatProblem).join("\n"));
  return { file, settings: read.settings };
}
