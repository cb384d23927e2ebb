/**
 * The guard rails as data: the stack file's settings (strictly checked) and, from them, the exact
 * protections the repository gets. Pure: the program (program.ts) only turns this into resources,
 * and tests compare it whole.
 */
import { z } from "zod";

/** The status checks main requires: the job names of the pull request workflows. */
export const REQUIRED_CHECKS = ["checks", "synth", "plan"] as const;

const githubIds = z.array(z.number().int().positive()).max(6).default([]);

export const guardrailsSettingsSchema = z
  .object({
    /** owner/name of the repository. */
    repository: z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/),
    /** The GitHub plan of the repository's owner. */
    plan: z.enum(["free", "pro", "team", "enterprise"]),
    visibility: z.enum(["public", "private", "internal"]),
    /** Who approves previews of pull requests (and deploys, with productionReviewers). */
    reviewers: z
      .object({ users: githubIds, teams: githubIds })
      .strict()
      .refine((r) => r.users.length + r.teams.length <= 6, "at most six reviewers in all"),
    /** Whether each deploy to prod also waits for a reviewer. */
    productionReviewers: z.boolean().default(false),
  })
  .strict();

export type GuardrailsSettings = z.infer<typeof guardrailsSettingsSchema>;

/** What GitHub offers a repository of this plan and visibility (GitHub's plan documentation). */
export interface Capabilities {
  /** Environments with their secrets and deployment-branch rules. */
  environments: boolean;
  /** Required reviewers on an environment. */
  requiredReviewers: boolean;
  /** Protected branches. */
  branchProtection: boolean;
}

export function capabilities(
  plan: GuardrailsSettings["plan"],
  visibility: GuardrailsSettings["visibility"],
): Capabilities {
  if (visibility === "public") {
    return { environments: true, requiredReviewers: true, branchProtection: true };
  }
  const paid = plan !== "free";
  return {
    environments: paid,
    requiredReviewers: plan === "enterprise",
    branchProtection: paid,
  };
}

export interface EnvironmentSpec {
  name: "preview" | "production" | "drift";
  reviewers?: { users: number[]; teams: number[] };
  /** Only runs from these branches may use the environment. */
  branches: string[];
}

export interface GuardrailsSpec {
  environments: EnvironmentSpec[];
  main: {
    requiredChecks: readonly string[];
    approvals: number;
    enforceAdmins: boolean;
    allowsForcePushes: false;
    allowsDeletions: false;
  };
  /** Repository variables the workflows read. */
  variables: { PR_PREVIEW: "on" | "off" };
  /** What this plan cannot have, for the operator (printed by the program). */
  notes: string[];
}

/**
 * The protections, from the settings. Every environment is usable only from main (the preview runs
 * on `pull_request_target`, in main's context). The preview of pull requests is on only where it
 * can wait for a reviewer; a repository that cannot protect main at all is refused.
 */
export function guardrailsSpec(s: GuardrailsSettings): GuardrailsSpec {
  const can = capabilities(s.plan, s.visibility);
  const where = `a ${s.visibility} repository on GitHub ${s.plan}`;
  if (!can.branchProtection || !can.environments) {
    throw new Error(
      `guardrails: ${where} can have neither protected branches nor environments; make it public or use a paid plan`,
    );
  }
  const reviewers = { users: [...s.reviewers.users], teams: [...s.reviewers.teams] };
  if (can.requiredReviewers && reviewers.users.length + reviewers.teams.length === 0) {
    throw new Error("guardrails: settings.reviewers: name at least one reviewer");
  }
  const notes: string[] = [];
  if (!can.requiredReviewers) {
    notes.push(
      `${where} has no required reviewers on environments: the credentialed preview of pull requests is off (PR_PREVIEW=off); pull requests get the offline plan only`,
    );
  }
  const gated = can.requiredReviewers ? { reviewers } : {};
  return {
    environments: [
      { name: "preview", ...gated, branches: ["main"] },
      {
        name: "production",
        ...(s.productionReviewers && can.requiredReviewers ? { reviewers } : {}),
        branches: ["main"],
      },
      { name: "drift", branches: ["main"] },
    ],
    main: {
      requiredChecks: REQUIRED_CHECKS,
      approvals: 1,
      enforceAdmins: true,
      allowsForcePushes: false,
      allowsDeletions: false,
    },
    variables: { PR_PREVIEW: can.requiredReviewers ? "on" : "off" },
    notes,
  };
}
