/**
 * The offline plan: the diff of two synth manifests as data (exact results, no mocks), the Markdown
 * a pull request gets, the command's errors in this process, and one end-to-end run of `npm run
 * plan -- --base HEAD` in a scratch git repository holding this working tree with one site changed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { planDiff, renderPlan, losesData, type PlanResource } from "../core/plan";
import { main as planMain } from "../scripts/plan";
import { ROOT, runInProcess, tempDir } from "./helpers";

const CONTAINER = "docker:index/container:Container";
const VOLUME = "docker:index/volume:Volume";
const DATABASE = "postgresql:index/database:Database";
const COMMAND = "command:remote:Command";

function res(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  options: PlanResource["options"] = {},
): PlanResource {
  return { type, name, urn: `urn:pulumi:prod::p::${type}::${name}`, custom: true, inputs, options };
}
const manifest = (...resources: PlanResource[]) => ({ stack: "prod", resources });

test("a container's environment change replaces it and names the variable; memory alone is an update", () => {
  const base = manifest(
    res(CONTAINER, "a-app", { envs: ["A=1", "B=2"], memory: 256, image: "x" }),
    res(CONTAINER, "b-app", { envs: ["A=1"], memory: 256 }),
  );
  const head = manifest(
    res(CONTAINER, "a-app", { envs: ["B=2", "A=2"], memory: 256, image: "x" }),
    res(CONTAINER, "b-app", { envs: ["A=1"], memory: 512 }),
  );
  const plan = planDiff(base, head);
  assert.deepEqual(
    plan.changes.map((c) => [c.kind, c.name, c.replaceBecause, c.fields]),
    [
      [
        "replace",
        "a-app",
        ["envs"],
        [
          { path: "envs", before: '"A=1"', after: "(removed)" },
          { path: "envs", before: "(added)", after: '"A=2"' },
        ],
      ],
      ["update", "b-app", [], [{ path: "memory", before: "256", after: "512" }]],
    ],
  );
});

test("deleting a volume or database loses data unless it is retained; a retained one is only left behind", () => {
  const base = manifest(
    res(VOLUME, "a-data", { name: "a-data" }),
    res(VOLUME, "b-data", { name: "b-data" }, { retainOnDelete: true }),
    res(DATABASE, "c-db", { name: "c" }),
    res(DATABASE, "d-db", { name: "d" }, { retainOnDelete: true }),
  );
  const plan = planDiff(base, manifest());
  assert.deepEqual(
    plan.changes.map((c) => [c.kind, c.name, c.data]),
    [
      ["delete", "a-data", "LOSES DATA: the volume is deleted"],
      ["delete", "b-data", undefined],
      ["delete", "c-db", "LOSES DATA: the database is dropped"],
      ["delete", "d-db", undefined],
    ],
  );
  assert.equal(losesData(plan), true);
  assert.equal(losesData(planDiff(base, manifest(...base.resources.slice(0, 1)))), true);
  assert.equal(losesData(planDiff(manifest(base.resources[1]), manifest())), false);
});

test("a retained volume that is replaced says the new one starts empty", () => {
  const plan = planDiff(
    manifest(res(VOLUME, "v", { name: "v1" }, { retainOnDelete: true })),
    manifest(res(VOLUME, "v", { name: "v2" }, { retainOnDelete: true })),
  );
  assert.equal(plan.changes[0].kind, "replace");
  assert.match(plan.changes[0].data ?? "", /new, empty volume .* stays on the host/);
});

test("a command runs its update on a changed script and is replaced only by its triggers", () => {
  const plan = planDiff(
    manifest(
      res(COMMAND, "r", { create: "a" }),
      res(COMMAND, "g", { create: "x", triggers: ["1"] }),
    ),
    manifest(
      res(COMMAND, "r", { create: "b" }),
      res(COMMAND, "g", { create: "x", triggers: ["2"] }),
    ),
  );
  assert.deepEqual(
    plan.changes.map((c) => [c.kind, c.name, c.replaceBecause]),
    [
      ["replace", "g", ["triggers"]],
      ["update", "r", []],
    ],
  );
});

test("ignoreChanges hides an input and replaceOnChanges forces a replacement", () => {
  const plan = planDiff(
    manifest(
      res(
        CONTAINER,
        "edge",
        { networksAdvanced: [{ name: "a" }] },
        { ignoreChanges: ["networksAdvanced"] },
      ),
      res(COMMAND, "c", { create: "a" }, { replaceOnChanges: ["create"] }),
    ),
    manifest(
      res(
        CONTAINER,
        "edge",
        { networksAdvanced: [{ name: "b" }] },
        { ignoreChanges: ["networksAdvanced"] },
      ),
      res(COMMAND, "c", { create: "b" }, { replaceOnChanges: ["create"] }),
    ),
  );
  assert.deepEqual(
    plan.changes.map((c) => [c.kind, c.name]),
    [["replace", "c"]],
  );
});

test("the Markdown: counts, data loss first, escaped cells, and a fence no fragment can close", () => {
  const base = manifest(res(VOLUME, "gone", {}), res(CONTAINER, "x", { labels: ["a|b"] }));
  const head = manifest(res(CONTAINER, "x", { labels: ["a|c"] }));
  const plan = planDiff(
    base,
    head,
    { "sites.d/x.caddy": "a\n" },
    { "sites.d/x.caddy": "a\n````\nb\n" },
  );
  const md = renderPlan(plan, "Offline plan", ["rule: bad <script>"]);
  assert.match(md, /0 to add, 0 to change, 1 to replace, 1 to delete\./);
  assert.ok(md.indexOf("**Data loss:**") < md.indexOf("| | resource |"), "data loss comes first");
  assert.match(md, /labels: \(added\) → "a\\\|c"/);
  assert.match(md, /`````diff\n@@ -1,1 \+1,3 @@\n a\n\+````\n\+b\n`````/);
  assert.match(md, /\*\*Policy: 1 violation\(s\)\*\*\n\n- rule: bad &lt;script>/);
  assert.match(
    renderPlan(planDiff(head, head), "t", []),
    /No change to the desired state[\s\S]*no violation/,
  );
});

test("plan: a bad command line is refused with the usage (exit 2)", async () => {
  for (const argv of [
    ["--stack", "prod"],
    ["--stack", "prod", "--base", "HEAD", "--base-dir", "x"],
    ["--stack", "prod", "--base", "--upload-pack=touch /tmp/x"],
    ["--stack", "../x", "--base", "HEAD"],
  ]) {
    const r = await runInProcess(planMain, argv);
    assert.equal(r.code, 2, argv.join(" "));
    assert.match(r.stderr, /usage: npm run plan/);
  }
});

test("plan: an unknown revision or a missing synth output is a clear error (exit 1)", async () => {
  const r = await runInProcess(planMain, ["--stack", "prod", "--base", "no-such-ref-0"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--base no-such-ref-0: no such commit/);
  const dir = tempDir("plan-empty");
  const r2 = await runInProcess(planMain, [
    "--stack",
    "prod",
    "--base-dir",
    dir,
    "--head-dir",
    dir,
  ]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /cannot read .*manifest\.json/);
});

test("plan (end to end): a site made active against HEAD, in a scratch repository", () => {
  const repo = tempDir("plan-repo");
  const files = execFileSync(
    "git",
    ["-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    {
      encoding: "utf8",
    },
  )
    .split("\0")
    .filter((f) => f && fs.existsSync(path.join(ROOT, f)));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(repo, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(repo, f));
  }
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", ...args]);
  git("init", "-q");
  git("add", "-A");
  git("commit", "-q", "-m", "base");
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(repo, "node_modules"));
  const site = path.join(repo, "sites", "vaina.ts");
  fs.writeFileSync(
    site,
    fs.readFileSync(site, "utf8").replace('status: "planned"', 'status: "active"'),
  );

  const out = path.join(repo, "plan.md");
  const r = spawnSync(
    path.join(ROOT, "node_modules", ".bin", "tsx"),
    ["scripts/plan.ts", "--stack", "prod", "--base", "HEAD", "--out", out],
    { cwd: repo, encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readFileSync(out, "utf8"), r.stdout);
  assert.match(r.stdout, /Stack `prod`: \d+ to add, 0 to change, 0 to replace, 0 to delete\./);
  assert.match(r.stdout, /\| add \| `vaina-db-data` \| docker:index\/volume:Volume \|/);
  assert.match(r.stdout, /Caddy: sites\.d\/vaina\.caddy/);
  assert.match(r.stdout, /\*\*Policy:\*\* no violation\./);
  assert.doesNotMatch(r.stdout, /synth-placeholder-secret|LOSES DATA/);
});
