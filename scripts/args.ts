/** Command-line parsing shared by the scripts: clear errors, never a stack trace. */
import { parseArgs } from "node:util";

export interface CommonArgs {
  stack?: string;
  sites: string;
  out?: string;
  help: boolean;
}

/** Parses --stack, --sites and (where `withOut`) --out; exits 2 with the usage on anything else. */
export function parseCommon(argv: string[], usage: string, withOut = false): CommonArgs {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        stack: { type: "string" },
        sites: { type: "string", default: "sites" },
        out: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      allowPositionals: false,
      strict: true,
    });
    if (values.out !== undefined && !withOut) throw new Error("unknown option '--out'");
    if (values.stack !== undefined && !/^[A-Za-z0-9_.-]+$/.test(values.stack)) {
      throw new Error(`--stack: ${JSON.stringify(values.stack)} is not a stack name`);
    }
    return values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage}\n`);
    process.exit(2);
  }
}
