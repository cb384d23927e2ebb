/**
 * Site files are read as data: nothing in them runs. Each refused case is code an attacker put in a
 * pull request; each accepted case is a form the README allows. Exact values and messages.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { readSiteFile, MAX_SITE_FILE_BYTES } from "../core/site-file";
import { loadSiteEntries } from "../core/validate";
import { ROOT, tempDir } from "./helpers";

const IMPORT = 'import { defineSite } from "../core/site";\n';

function refused(text: string): string[] {
  const r = readSiteFile(text, "x.ts");
  assert.equal(r.value, undefined, "no value for a refused file");
  return r.problems.map((p) => `${p.path || "(file)"}: ${p.message}`);
}

test("every site file of the repository reads as the same data that running it gives", async () => {
  const dir = path.join(ROOT, "sites");
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith(".ts"))) {
    const read = readSiteFile(fs.readFileSync(path.join(dir, name), "utf8"), name);
    assert.deepEqual(read.problems, [], name);
    // The repository's own files are trusted: importing them here is the reference to compare with.
    const mod = (await import(path.join(dir, name))) as { default: unknown };
    assert.deepEqual(read.value, mod.default, name);
  }
});

test("the allowed forms: defineSite or a plain object, as const, satisfies, every literal kind", () => {
  const body = `{
    name: "shop", 'kind': "website", n: -1.5, big: 1_000, hex: 0x10, t: true, f: false, z: null,
    tpl: \`plain\`, list: ["a", 2, [3]], nested: { "with space": "v", 7: "seven" },
  }`;
  const expected = {
    name: "shop",
    kind: "website",
    n: -1.5,
    big: 1000,
    hex: 16,
    t: true,
    f: false,
    z: null,
    tpl: "plain",
    list: ["a", 2, [3]],
    nested: { "with space": "v", "7": "seven" },
  };
  for (const text of [
    `${IMPORT}export default defineSite(${body});\n`,
    `${IMPORT}// comment\nexport default defineSite(${body} as const);`,
    `export default ${body};`,
    `export default (${body} as const) satisfies Record<string, unknown>;`,
    `${IMPORT};export default defineSite((${body}));`,
  ]) {
    const r = readSiteFile(text, "x.ts");
    assert.deepEqual(r.problems, [], text);
    assert.deepEqual(r.value, expected);
  }
});

test("code is refused with its line and what it is, and never runs", () => {
  const marker = path.join(tempDir("site-file"), "ran");
  const cases: [string, string][] = [
    [
      `import * as fs from "node:fs";\nexport default {};`,
      '(file): line 1: the only import allowed is `import { defineSite } from "<relative path>/site"`',
    ],
    [
      `${IMPORT}import { defineSite as d } from "../core/site";\nexport default {};`,
      "(file): line 2: a second import is not allowed; a site file holds one `import { defineSite }` and one `export default` of literal values",
    ],
    [
      `import { defineSite } from "node:child_process";\nexport default {};`,
      '(file): line 1: the only import allowed is `import { defineSite } from "<relative path>/site"`',
    ],
    [
      `import { defineSite, RESERVED } from "../core/site";\nexport default {};`,
      '(file): line 1: the only import allowed is `import { defineSite } from "<relative path>/site"`',
    ],
    [
      `${IMPORT}require("fs").writeFileSync(${JSON.stringify(marker)}, "x");\nexport default {};`,
      "(file): line 2: a statement is not allowed; a site file holds one `import { defineSite }` and one `export default` of literal values",
    ],
    [
      `${IMPORT}while (true) {}\nexport default {};`,
      "(file): line 2: while statement is not allowed; a site file holds one `import { defineSite }` and one `export default` of literal values",
    ],
    [
      `const name = "shop";\nexport default { name };`,
      "(file): line 1: a variable declaration is not allowed; a site file holds one `import { defineSite }` and one `export default` of literal values",
    ],
    [
      `export default {\n  name: "shop",\n  app: { env: { HOME: process.env.HOME } },\n};`,
      "app.env.HOME: line 3: the reference process.env.HOME is not allowed; only literal values are",
    ],
    [
      `export default { domains: [\`\${"a"}.example.com\`] };`,
      "domains.0: line 1: a template with ${} is not allowed; only literal values are",
    ],
    [
      `export default { get name() { return "x"; } };`,
      "(file): line 1: a function is not allowed; write key: value with a literal value",
    ],
    [
      `export default { ...{ name: "x" } };`,
      "(file): line 1: a spread (...) is not allowed; write key: value with a literal value",
    ],
    [
      `export default { ["na" + "me"]: "x" };`,
      "(file): line 1: a computed key is not allowed; write a plain name or a string",
    ],
    [
      `export default { __proto__: { polluted: true } };`,
      '(file): line 1: the key "__proto__" is not allowed',
    ],
    [`export default { name: "a", name: "b" };`, "name: line 1: is written twice; keep one"],
    [
      `export default { cpus: Number("0.5") };`,
      "cpus: line 1: a function call is not allowed; only literal values are",
    ],
    [
      `export default { x: 1 as any };`,
      "x: line 1: only `as const` is allowed as a type assertion",
    ],
    [
      `${IMPORT}export default defineSite({}, {});`,
      "(file): line 2: defineSite takes exactly one object literal",
    ],
    [
      `export default defineSite({});`,
      "(file): line 1: only defineSite(...), imported from the site module, may be called",
    ],
    [
      `export default "site";`,
      "(file): line 1: the default export must be defineSite({...}) or an object literal",
    ],
    [
      `export const site = {};`,
      "(file): line 1: a variable declaration is not allowed; a site file holds one `import { defineSite }` and one `export default` of literal values",
    ],
    [
      `${IMPORT}`,
      "(file): line 1: has no default export; write `export default defineSite({...})`",
    ],
    [`export default {\n`, "(file): line 2: syntax error: '}' expected."],
    [
      `export default { list: [1, , 2] };`,
      "list.1: line 1: an empty array slot is not allowed in an array",
    ],
    [`export default { n: 1e999 };`, "n: line 1: 1e999 is not a finite number"],
    [
      `export default { n: 10n };`,
      "n: line 1: big int literal is not allowed; only literal values are",
    ],
  ];
  for (const [text, problem] of cases) assert.deepEqual(refused(text), [problem], text);
  assert.equal(fs.existsSync(marker), false, "the refused code did not run");
});

test("deep nesting and large files are refused before they cost anything", () => {
  const deep = `export default ${"{a:".repeat(40)}1${"}".repeat(40)};`;
  assert.match(refused(deep)[0], /^a(\.a)+: line 1: nesting deeper than 16 levels$/);
  const big = `export default { description: "${"x".repeat(MAX_SITE_FILE_BYTES)}" };`;
  assert.deepEqual(refused(big), [
    "(file): is larger than 64 KiB; a site file holds one `import { defineSite }` and one `export default` of literal values",
  ]);
});

test("the loader reads a directory as data: problems name the file; an empty directory is refused", () => {
  const dir = tempDir("sites");
  fs.writeFileSync(path.join(dir, "bad.ts"), `export default { name: globalThis.x };\n`);
  fs.writeFileSync(path.join(dir, "good.ts"), `export default { name: "good" };\n`);
  const r = loadSiteEntries(dir, "sites");
  assert.deepEqual(r.problems, [
    {
      file: "sites/bad.ts",
      path: "name",
      message: "line 1: the reference globalThis.x is not allowed; only literal values are",
    },
  ]);
  assert.deepEqual(r.entries, [{ file: "sites/good.ts", value: { name: "good" } }]);
  const empty = tempDir("no-sites");
  assert.deepEqual(loadSiteEntries(empty, "sites").problems, [
    {
      file: "sites",
      path: "",
      message: "holds no site file (*.ts); check the directory, or add sites/<name>.ts",
    },
  ]);
});
