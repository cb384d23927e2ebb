/** Command-line parsing shared by the scripts: clear errors, never a stack trace. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { STACK_NAME_PATTERN } from "../stacks/settings";

export interface CommonArgs {
  stack?: string;
  sites: string;
  out?: string;
  help: boolean;
}

/** Where a command writes and works: the process's own streams and directory, or a test's. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Whether a person can answer questions (standard input is a terminal). */
  interactive: boolean;
  /** Whether child processes write straight to this process's streams (else through the above). */
  inheritStdio: boolean;
}

/** The process's own streams, directory and environment (what a command run from a shell gets). */
export function processIo(): Io {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    cwd: process.cwd(),
    env: process.env,
    // Looked at only when asked: process.stdin is created on first use.
    get interactive() {
      return process.stdin.isTTY === true;
    },
    inheritStdio: true,
  };
}

/** A bad command line: its message is the problem, then the usage (what the command prints). */
export class UsageError extends Error {}

/**
 * Parses `argv` strictly with `options` (no positionals), checks a given --stack is a stack name and
 * runs `check` on the values; on any problem throws a UsageError saying it, with the usage.
 */
export function parseStrict<O extends NonNullable<ParseArgsConfig["options"]>>(
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
    if (typeof stack === "string" && !STACK_NAME_PATTERN.test(stack)) {
      throw new Error(`--stack: ${JSON.stringify(stack)} is not a stack name`);
    }
    check(values);
    return values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${usage}`);
  }
}

/**
 * A command line as every command treats it: `parse` throwing a UsageError prints it (with the usage)
 * and the command exits 2; `--help` prints the usage and it exits 0. Returns the parsed values, or the
 * exit code when the command is already done.
 */
export function readCommandLine<T extends object>(
  parse: () => T,
  usage: string,
  io: Pick<Io, "stdout" | "stderr">,
): T | number {
  let values: T;
  try {
    values = parse();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr(`${err.message}\n`);
    return 2;
  }
  if ((values as { help?: unknown }).help === true) {
    io.stdout(`${usage}\n`);
    return 0;
  }
  return values;
}

/** The common options: --stack, --sites, --out (where `withOut`) and --help. */
function commonOptions(withOut: boolean) {
  return [
    {
      stack: { type: "string" },
      sites: { type: "string", default: "sites" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    (values: { out?: string }) => {
      if (values.out !== undefined && !withOut) throw new Error("unknown option '--out'");
    },
  ] as const;
}

/** Parses --stack, --sites and (where `withOut`) --out; throws a UsageError (with the usage) on anything else. */
export function parseCommonStrict(argv: string[], usage: string, withOut = false): CommonArgs {
  const [options, check] = commonOptions(withOut);
  return parseStrict(argv, usage, options, check);
}

/**
 * Runs a command's `main` as the process: its exit code becomes the process's. `fast` drops stack
 * capture for commands that run the program under mocks (the SDK records a stack per resource and
 * promise for the engine's source positions, which a mock engine never reads; messages here never
 * show stack traces).
 */
export function runCommand(
  main: (argv: string[]) => number | Promise<number>,
  options: { fast?: boolean } = {},
): void {
  if (options.fast) {
    process.setSourceMapsEnabled(false);
    Error.stackTraceLimit = 0;
  }
  void Promise.resolve(main(process.argv.slice(2))).then((code) => {
    if (code !== 0) process.exit(code);
  });
}
