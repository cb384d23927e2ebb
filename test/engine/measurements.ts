/**
 * build/engine/measurements.json: what the engine suite's files measured in this build, one key per
 * measurement. The first file of a run starts it afresh; the others add to it. No test asserts a time.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const FILE = path.resolve(__dirname, "../../build/engine/measurements.json");

export function recordMeasurements(values: object, options: { fresh?: boolean } = {}): void {
  fs.mkdirSync(path.dirname(FILE), { recursive: true });
  let all: Record<string, unknown> = {};
  if (!options.fresh) {
    try {
      all = JSON.parse(fs.readFileSync(FILE, "utf8")) as Record<string, unknown>;
    } catch {
      all = {};
    }
  }
  fs.writeFileSync(FILE, `${JSON.stringify({ ...all, ...values }, null, 2)}\n`);
}
