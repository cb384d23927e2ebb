/**
 * The README's field table documents every field of the site schema: a field added to the schema
 * without a row (or, for the small `dns` and `upstream` objects, a mention in its parent's row) fails.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ServiceSchema, WebsiteSchema } from "../core/site";
import { ROOT } from "./helpers";

interface Node {
  _zod?: {
    def?: {
      type?: string;
      innerType?: Node;
      in?: Node;
      shape?: Record<string, Node>;
      options?: Node[];
    };
  };
}

/** The schema under defaults, optionals and pipes. */
function unwrap(s: Node | undefined): Node | undefined {
  let n = s;
  for (;;) {
    const def = n?._zod?.def;
    if (def?.type === "default" || def?.type === "optional" || def?.type === "prefault")
      n = def.innerType;
    else if (def?.type === "pipe") n = def.in;
    else return n;
  }
}

/** Field paths two levels deep, with whether each is an object of its own. */
function fields(s: Node, prefix: string, depth: number, out: Map<string, boolean>): void {
  const def = unwrap(s)?._zod?.def;
  if (def?.type === "union") for (const o of def.options ?? []) fields(o, prefix, depth, out);
  if (def?.type !== "object" || depth === 0) return;
  for (const [key, child] of Object.entries(def.shape ?? {})) {
    const at = prefix ? `${prefix}.${key}` : key;
    const kind = unwrap(child)?._zod?.def?.type;
    out.set(at, out.get(at) === true || kind === "object" || kind === "union");
    fields(child, at, depth - 1, out);
  }
}

test("every field of the site schema is in the README's field table", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("Every field and its default:");
  assert.ok(start > 0, "the README has the field table");
  const rows = readme
    .slice(start)
    .split("\n")
    .slice(2)
    .filter((l, i, all) => l.startsWith("|") && all.slice(0, i).every((x) => x.startsWith("|")))
    .map((l) => {
      const cells = l.split("|").map((c) => c.trim());
      return { names: [...cells[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]), text: l };
    });
  assert.ok(rows.length > 20, `found ${rows.length} rows`);
  const all = new Map<string, boolean>();
  fields(WebsiteSchema as unknown as Node, "", 2, all);
  fields(ServiceSchema, "", 2, all);
  const documented = (field: string): boolean => {
    if (rows.some((r) => r.names.includes(field))) return true;
    // An object is documented by rows of its fields.
    if (all.get(field) && rows.some((r) => r.names.some((n) => n.startsWith(`${field}.`))))
      return true;
    // A small object's fields may be named in its parent's row.
    const parent = field.split(".").slice(0, -1).join(".");
    const key = field.split(".").at(-1)!;
    return (
      parent !== "" &&
      rows.some((r) => r.names.includes(parent) && new RegExp(`\\b${key}\\b`).test(r.text))
    );
  };
  const missing = [...all.keys()].filter((f) => !documented(f)).sort();
  assert.deepEqual(missing, []);
  // The check itself sees a field the table lacks.
  assert.ok(all.has("app.stopGracePeriod") && all.has("upstream.port") && !documented("app.nope"));
});
