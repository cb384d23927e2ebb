/**
 * `npm run validate` and `npm run synth` as a user runs them: exit codes, output lines, files. Each
 * command runs once end to end (its real entry point, through tsx); the other cases call the same
 * `main` in this process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { main as validateMain } from "../scripts/validate";
import { main as synthMain } from "../scripts/synth";
import { main as tunnelMain } from "../scripts/tunnel";
import { ROOT, runInProcess, settings, tempDir, website, writeProject } from "./helpers";

const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

/** The command through its real entry point, in a process of its own. */
function spawnCli(script: "validate" | "synth", args: string[], cwd = ROOT) {
  const r = spawnSync(TSX, [path.join(ROOT, "scripts", `${script}.ts`), ...args], {
    cwd,
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The command's `main` in this process. */
function cli(script: "validate" | "synth", args: string[], cwd = ROOT) {
  return runInProcess(script === "validate" ? validateMain : synthMain, args, { cwd });
}

function noStackTrace(text: string) {
  assert.doesNotMatch(text, /\n\s+at .+:\d+:\d+/, "no stack trace");
}

test("validate (end to end): the repository's sites and stacks pass with a one-line summary", () => {
  const r = spawnCli("validate", []);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(
    r.stdout,
    "validate: 15 site files OK (6 websites, 9 services; 11 active, 0 paused, 4 planned) against stacks local, prod\n",
  );
});

test("validate in process: the same summary as end to end", async () => {
  const r = await cli("validate", []);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(
    r.stdout,
    "validate: 15 site files OK (6 websites, 9 services; 11 active, 0 paused, 4 planned) against stacks local, prod\n",
  );
});

test("validate: every problem of every file, one line each, exit 1", async () => {
  const { root } = writeProject("test", settings(), [
    website("shop", {
      app: { image: "ghcr.io/acme/shop", port: 3000, env: { API_TOKEN: "tok_live_123456" } },
    }),
    website("blog", { domains: ["blog.example.org"] }),
  ]);
  const r = await cli("validate", [], root);
  assert.equal(r.code, 1);
  assert.equal(
    r.stdout,
    [
      'sites/blog.ts: domains.0: "blog.example.org" is not in the zone "example.com" (dns.zone); use a domain under it or another site file',
      'sites/shop.ts: app.image: has no tag; pin a version tag (name:1.4.2) or a digest (name@sha256:...), got "ghcr.io/acme/shop"',
      "sites/shop.ts: app.env.API_TOKEN: looks like a secret; move it to app.secretEnv as an env name -> the name of one of the site's secrets",
      "",
    ].join("\n"),
  );
  assert.equal(r.stderr, "validate: 3 problems\n");
  assert.doesNotMatch(r.stdout + r.stderr, /tok_live_123456/);
  noStackTrace(r.stdout + r.stderr);
});

test("validate: a file that is not data, and cross-file problems naming both files", async () => {
  const { root, sitesDir } = writeProject("test", settings(), [
    website("shop"),
    website("blog", { domains: ["www.shop.example.com"] }),
  ]);
  fs.writeFileSync(path.join(sitesDir, "broken.ts"), "export default {\n");
  const r = await cli("validate", ["--stack", "test"], root);
  assert.equal(r.code, 1);
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(lines[0], "sites/broken.ts: (file): line 2: syntax error: '}' expected.");
  assert.equal(
    lines[1],
    'sites/shop.ts: domains.1: the domain "www.shop.example.com" is already used by sites/blog.ts (domains.0)',
  );
  assert.equal(lines.length, 2);
  noStackTrace(r.stdout + r.stderr);
});

test("validate: unknown stack, unknown option, missing sites directory", async () => {
  const a = await cli("validate", ["--stack", "nope"]);
  assert.equal(a.code, 1);
  assert.equal(a.stdout, "Pulumi.nope.yaml: (file): no such stack file\n");
  const b = await cli("validate", ["--frobnicate"]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /Unknown option '--frobnicate'[\s\S]*usage: npm run validate/);
  assert.equal(
    b.stderr,
    "Unknown option '--frobnicate'\nusage: npm run validate [-- --sites DIR] [--stack NAME]\n",
  );
  assert.equal(b.stdout, "");
  const bad = await cli("validate", ["--stack", "../prod"]);
  assert.equal(bad.code, 2);
  assert.equal(
    bad.stderr,
    '--stack: "../prod" is not a stack name\nusage: npm run validate [-- --sites DIR] [--stack NAME]\n',
  );
  const out = await cli("validate", ["--out", "x"]);
  assert.equal(out.code, 2);
  assert.equal(
    out.stderr,
    "unknown option '--out'\nusage: npm run validate [-- --sites DIR] [--stack NAME]\n",
  );
  const help = await cli("validate", ["--help"]);
  assert.deepEqual(help, {
    code: 0,
    stdout: "usage: npm run validate [-- --sites DIR] [--stack NAME]\n",
    stderr: "",
  });
  const c = await cli("validate", ["--sites", "no-such-dir", "--stack", "local"]);
  assert.equal(c.code, 1);
  assert.equal(c.stdout, "no-such-dir: (file): cannot read site files: no such directory\n");
});

test("synth --stack prod (end to end): writes manifest, Caddy files and inventory, prints the table", () => {
  const out = tempDir("synth");
  const r = spawnCli("synth", ["--stack", "prod", "--out", out]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const files = fs.readdirSync(out, { recursive: true }).map(String).sort();
  assert.deepEqual(files, [
    ".agi-synth-output",
    "caddy",
    "caddy/Caddyfile",
    "caddy/sites.d",
    ...[
      "admin-dashboard",
      "flowise",
      "langfuse",
      "n8n",
      "neo4j",
      "open-webui",
      "portainer",
      "searxng",
      "stepperslife",
    ].map((s) => `caddy/sites.d/${s}.caddy`),
    "inventory.json",
    "manifest.json",
  ]);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, "manifest.json"), "utf8"));
  assert.equal(manifest.stack, "prod");
  // 69 before the backup timers and the health gate: -2 backup containers and their images, +2
  // timers, +2 password files (both active sites are shared-mode), +6 installed backup scripts; the
  // gate script on the host and a gate per active website (+3); an edge network and the edge's
  // attachment to it per active website (+4); a drill timer per site with backups (+2), the host's
  // two ops scripts and two ops timers (+4); the off-site script among the backup scripts (+1; prod
  // declares no off-site storage, so no uploader image or settings file).
  assert.equal(manifest.resources.length, 89);
  const app = manifest.resources.find((x: { name: string }) => x.name === "stepperslife-app");
  assert.equal(app.parent, "urn:pulumi:prod::agi-platform::agi:web:Website::stepperslife");
  assert.ok(app.inputs.envs.includes("[secret]"));
  // The versioned name is a hash: shown, never secret, though the env it covers holds secrets.
  assert.match(app.inputs.name, /^stepperslife-app-[0-9a-f]{8}$/);
  const inventory = JSON.parse(fs.readFileSync(path.join(out, "inventory.json"), "utf8"));
  assert.deepEqual(Object.keys(inventory), ["stack", "sites", "hosts"]);
  assert.match(r.stdout, /^SITE +KIND +STATUS +HOST +URL/);
  assert.match(
    r.stdout,
    /\nstepperslife +website +active +vps1 +https:\/\/stepperslife\.com +stepperslife:3000 /,
  );
  assert.match(r.stdout, /synth: stack prod: 89 resources, 10 Caddy files; wrote 12 files to /);
  assert.ok(
    r.stdout.includes(`wrote 12 files to ${out}/`),
    "an out directory elsewhere is shown in full",
  );
  // Secrets: placeholders and generated values never reach files or the terminal.
  const all =
    r.stdout +
    r.stderr +
    files
      .filter((f) => fs.statSync(path.join(out, f)).isFile())
      .map((f) => fs.readFileSync(path.join(out, f), "utf8"))
      .join("");
  assert.doesNotMatch(all, /synth-placeholder-secret-|mock-password-/);
});

test("synth: default stack is local and default out is build/<stack>", async () => {
  const { root } = writeProject("local", settings(), [website("shop")]);
  const r = await cli("synth", [], root);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(fs.existsSync(path.join(root, "build", "local", "caddy", "sites.d", "shop.caddy")));
  assert.match(r.stdout, /wrote 4 files to build\/local\//);
});

test("synth: bad input writes nothing and exits 1 with the problems", async () => {
  const { root } = writeProject("test", settings(), [website("shop", { status: "live" })]);
  const out = path.join(root, "out");
  const r = await cli("synth", ["--stack", "test", "--out", out], root);
  assert.equal(r.code, 1);
  assert.equal(
    r.stdout,
    'sites/shop.ts: status: must be "active", "paused" or "planned", got "live"\n',
  );
  assert.equal(r.stderr, "synth: nothing written\n");
  assert.equal(fs.existsSync(out), false);
  noStackTrace(r.stdout + r.stderr);
});

test("synth: an unknown option, a bad stack name, a stray argument: usage, exit 2", async () => {
  const usage = "usage: npm run synth -- --stack NAME [--sites DIR] [--out DIR]\n";
  const cases: [string[], string][] = [
    [["--frobnicate"], "Unknown option '--frobnicate'\n"],
    [["--stack", "a b"], '--stack: "a b" is not a stack name\n'],
    [["--stack"], "Option '--stack <value>' argument missing\n"],
  ];
  for (const [args, message] of cases) {
    const r = await cli("synth", args);
    assert.deepEqual(r, { code: 2, stdout: "", stderr: `${message}${usage}` }, args.join(" "));
  }
  const stray = await cli("synth", ["prod"]);
  assert.equal(stray.code, 2);
  assert.match(stray.stderr, /^Unexpected argument 'prod'.*\nusage: npm run synth -- /s);
  const help = await cli("synth", ["-h"]);
  assert.deepEqual(help, { code: 0, stdout: usage, stderr: "" });
});

test("tunnel: usage errors exit 2; an unknown stack is refused; a local engine needs no tunnel", async () => {
  const usage = "usage: npm run tunnel -- --stack NAME\n";
  const cases: [string[], string][] = [
    [[], "--stack is required\n"],
    [["--stack"], "Option '--stack <value>' argument missing\n"],
    [["--stack", "a/b"], '--stack: "a/b" is not a stack name\n'],
    [["--frobnicate"], "Unknown option '--frobnicate'\n"],
  ];
  for (const [args, message] of cases) {
    const r = await runInProcess(tunnelMain, args);
    assert.deepEqual(r, { code: 2, stdout: "", stderr: `${message}${usage}` }, args.join(" "));
  }
  assert.deepEqual(await runInProcess(tunnelMain, ["--stack", "nope"]), {
    code: 1,
    stdout: "",
    stderr: 'tunnel: no stack "nope": there is no Pulumi.nope.yaml here (stacks: local, prod)\n',
  });
  assert.deepEqual(await runInProcess(tunnelMain, ["--stack", "local"]), {
    code: 0,
    stdout:
      "tunnel: local: local engine, the cluster is reached directly\ntunnel: stack local needs no tunnel\n",
    stderr: "",
  });
});
