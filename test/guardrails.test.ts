/**
 * The guard rails stack: the exact protections for each kind of repository (pure spec), the
 * resources the program declares for them under the SDK's mocks (awaited), the stack file of the
 * repository, and the required checks against the jobs the pull request workflows really have.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import {
  guardrailsSettingsSchema,
  guardrailsSpec,
  REQUIRED_CHECKS,
  type GuardrailsSettings,
} from "../guardrails/settings";
import { guardrails } from "../guardrails/program";
import { resolveOutput, startMockEngine } from "../scripts/mock-engine";
import { ROOT } from "./helpers";

const settings = (over: Partial<GuardrailsSettings> = {}): GuardrailsSettings =>
  guardrailsSettingsSchema.parse({
    repository: "acme/infra",
    plan: "team",
    visibility: "public",
    reviewers: { users: [7], teams: [] },
    ...over,
  });

const MAIN = {
  requiredChecks: ["checks", "synth", "plan"],
  approvals: 1,
  enforceAdmins: true,
  allowsForcePushes: false,
  allowsDeletions: false,
};

test("a public repository: reviewers on the preview, every environment main only, PR preview on", () => {
  assert.deepEqual(guardrailsSpec(settings()), {
    environments: [
      { name: "preview", reviewers: { users: [7], teams: [] }, branches: ["main"] },
      { name: "production", branches: ["main"] },
      { name: "drift", branches: ["main"] },
    ],
    main: MAIN,
    variables: { PR_PREVIEW: "on" },
    notes: [],
  });
  const gated = guardrailsSpec(settings({ productionReviewers: true }));
  assert.deepEqual(gated.environments[1], {
    name: "production",
    reviewers: { users: [7], teams: [] },
    branches: ["main"],
  });
});

test("a private repository on Team: no required reviewers, so the PR preview is off and said so", () => {
  const spec = guardrailsSpec(settings({ visibility: "private", productionReviewers: true }));
  assert.deepEqual(spec.environments, [
    { name: "preview", branches: ["main"] },
    { name: "production", branches: ["main"] },
    { name: "drift", branches: ["main"] },
  ]);
  assert.deepEqual(spec.variables, { PR_PREVIEW: "off" });
  assert.match(spec.notes[0], /private repository on GitHub team has no required reviewers/);
  // Enterprise has them on private repositories.
  const ent = guardrailsSpec(settings({ visibility: "private", plan: "enterprise" }));
  assert.deepEqual(ent.variables, { PR_PREVIEW: "on" });
});

test("a repository that cannot protect main is refused, and so are bad settings", () => {
  assert.throws(
    () => guardrailsSpec(settings({ visibility: "private", plan: "free" })),
    /private repository on GitHub free can have neither protected branches nor environments/,
  );
  assert.throws(
    () => guardrailsSpec(settings({ reviewers: { users: [], teams: [] } })),
    /name at least one reviewer/,
  );
  for (const bad of [
    { repository: "acme/infra; rm" },
    { repository: "-acme/infra" },
    { plan: "gold" },
    { reviewers: { users: [1, 2, 3, 4], teams: [5, 6, 7] } },
    { reviewers: { users: ["alice"] } },
    { extra: true },
  ]) {
    assert.equal(
      guardrailsSettingsSchema.safeParse({ ...settings(), ...bad }).success,
      false,
      JSON.stringify(bad),
    );
  }
});

test("the program declares exactly those protections (under mocks)", async () => {
  const engine = await startMockEngine({
    project: "agi-guardrails",
    stack: "github",
    config: { "agi-guardrails:settings": JSON.stringify(settings({ productionReviewers: true })) },
  });
  const out = guardrails();
  assert.deepEqual((await resolveOutput(out.environments)).value, [
    "preview",
    "production",
    "drift",
  ]);
  await engine.settle();
  const custom = engine.resources.filter((r) => r.custom);
  assert.deepEqual(custom.map((r) => `${r.type} ${r.name}`).sort(), [
    "github:index/actionsVariable:ActionsVariable pr-preview",
    "github:index/branchProtection:BranchProtection main",
    "github:index/repositoryEnvironment:RepositoryEnvironment env-drift",
    "github:index/repositoryEnvironment:RepositoryEnvironment env-preview",
    "github:index/repositoryEnvironment:RepositoryEnvironment env-production",
    "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy env-drift-main",
    "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy env-preview-main",
    "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy env-production-main",
    "pulumi:providers:github github",
  ]);
  assert.deepEqual(engine.byName("github").inputs.owner, "acme");
  assert.deepEqual(engine.byName("env-preview").inputs, {
    canAdminsBypass: false,
    deploymentBranchPolicy: { customBranchPolicies: true, protectedBranches: false },
    environment: "preview",
    preventSelfReview: true,
    repository: "infra",
    reviewers: [{ teams: [], users: [7] }],
  });
  assert.deepEqual(engine.byName("env-drift").inputs, {
    canAdminsBypass: false,
    deploymentBranchPolicy: { customBranchPolicies: true, protectedBranches: false },
    environment: "drift",
    repository: "infra",
  });
  assert.deepEqual(engine.byName("env-production-main").inputs, {
    branchPattern: "main",
    environment: "production",
    repository: "infra",
  });
  assert.deepEqual(engine.byName("main").inputs, {
    allowsDeletions: false,
    allowsForcePushes: false,
    enforceAdmins: true,
    pattern: "main",
    repositoryId: "infra",
    requireConversationResolution: true,
    requiredLinearHistory: true,
    requiredPullRequestReviews: [
      { dismissStaleReviews: true, requireLastPushApproval: true, requiredApprovingReviewCount: 1 },
    ],
    requiredStatusChecks: [{ contexts: ["checks", "synth", "plan"], strict: true }],
  });
  assert.deepEqual(engine.byName("pr-preview").inputs, {
    repository: "infra",
    value: "on",
    variableName: "PR_PREVIEW",
  });
});

test("the repository's stack file is valid, and every required check is a pull request job", () => {
  const file = parse(fs.readFileSync(path.join(ROOT, "guardrails", "Pulumi.github.yaml"), "utf8"));
  const parsed = guardrailsSettingsSchema.parse(file.config["agi-guardrails:settings"]);
  assert.ok(guardrailsSpec(parsed).environments.length === 3);
  const dir = path.join(ROOT, ".github", "workflows");
  const prJobs = new Set<string>();
  for (const f of fs.readdirSync(dir)) {
    const w = parse(fs.readFileSync(path.join(dir, f), "utf8"));
    if (!w.on?.pull_request) continue;
    for (const [id, job] of Object.entries(w.jobs as Record<string, { name?: string }>)) {
      prJobs.add(job.name ?? id);
    }
  }
  for (const check of REQUIRED_CHECKS) assert.ok(prJobs.has(check), `${check} is a PR job`);
  // Every environment a workflow uses is declared.
  const used = new Set<string>();
  for (const f of fs.readdirSync(dir)) {
    for (const m of fs.readFileSync(path.join(dir, f), "utf8").matchAll(/environment: (\S+)/g))
      used.add(m[1]);
  }
  assert.deepEqual([...used].sort(), ["drift", "preview", "production"]);
});
