/** Command-line parsing shared by the scripts: clear errors, never a stack trace. */
import { parseArgs, type ParseArgsConfig } from "node:util";

export interface CommonArgs {
  stack?: string;
  sites: string;
  out?: string;
  help: boolean;
}

const STACK_NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses `argv` strictly with `options` (no positionals), checks a given --stack is a stack name and
 * runs `check` on the values; on any problem prints it with the usage and exits 2.
 */
export function parseOrUsage<O extends NonNullable<ParseArgsConfig["options"]>>(
  argv: string[],
  usage: string,
  options: O,
  check: (
    values: ReturnType<typeof parseArgs<{ options: O; strict: true }>>["values"],
  ) => void = () => {},
) {
  try {
    const { values } = parseArgs({ args: argv, options, allowPositionals: false, strict: true });
    const stack = (values as { stack?: unknown }).stack;
    if (typeof stack === "string" && !STACK_NAME.test(stack)) {
      throw new Error(`--stack: ${JSON.stringify(stack)} is not a stack name`);
    }
    check(values);
    return values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage}\n`);
    process.exit(2);
  }
}

/** Parses --stack, --sites and (where `withOut`) --out; exits 2 with the usage on anything else. */
export function parseCommon(argv: string[], usage: string, withOut = false): CommonArgs {
  return parseOrUsage(
    argv,
    usage,
    {
      stack: { type: "string" },
      sites: { type: "string", default: "sites" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    (values) => {
      if (values.out !== undefined && !withOut) throw new Error("unknown option '--out'");
    },
  );
}
