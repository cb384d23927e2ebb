/**
 * The guard rails stack: the environments the workflows use (deployment branches, reviewers), the
 * protection of main and the repository variable that switches the pull request preview, from
 * settings.ts. The GitHub token comes from the environment (GITHUB_TOKEN) of the administrator who
 * applies it, never from a workflow.
 */
import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import { guardrailsSettingsSchema, guardrailsSpec } from "./settings";

export function guardrails(): { environments: pulumi.Output<string[]> } {
  const config = new pulumi.Config("agi-guardrails");
  const parsed = guardrailsSettingsSchema.safeParse(config.requireObject("settings"));
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new Error(
      `Pulumi.${pulumi.getStack()}.yaml: agi-guardrails:settings.${first.path.join(".")}: ${first.message}`,
    );
  }
  const spec = guardrailsSpec(parsed.data);
  for (const note of spec.notes) void pulumi.log.warn(note);
  const [owner, name] = parsed.data.repository.split("/");
  const provider = new github.Provider("github", { owner });

  const envs = spec.environments.map((e) => {
    const env = new github.RepositoryEnvironment(
      `env-${e.name}`,
      {
        repository: name,
        environment: e.name,
        canAdminsBypass: false,
        preventSelfReview: e.reviewers ? true : undefined,
        reviewers: e.reviewers ? [e.reviewers] : undefined,
        deploymentBranchPolicy: { protectedBranches: false, customBranchPolicies: true },
      },
      { provider },
    );
    for (const branch of e.branches) {
      new github.RepositoryEnvironmentDeploymentPolicy(
        `env-${e.name}-${branch}`,
        { repository: name, environment: env.environment, branchPattern: branch },
        { provider },
      );
    }
    return env.environment;
  });

  new github.BranchProtection(
    "main",
    {
      repositoryId: name,
      pattern: "main",
      enforceAdmins: spec.main.enforceAdmins,
      allowsForcePushes: spec.main.allowsForcePushes,
      allowsDeletions: spec.main.allowsDeletions,
      requiredLinearHistory: true,
      requireConversationResolution: true,
      requiredStatusChecks: [{ strict: true, contexts: [...spec.main.requiredChecks] }],
      requiredPullRequestReviews: [
        {
          requiredApprovingReviewCount: spec.main.approvals,
          dismissStaleReviews: true,
          requireLastPushApproval: true,
        },
      ],
    },
    { provider },
  );

  new github.ActionsVariable(
    "pr-preview",
    { repository: name, variableName: "PR_PREVIEW", value: spec.variables.PR_PREVIEW },
    { provider },
  );
  return { environments: pulumi.all(envs) };
}
