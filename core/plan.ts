/**
 * The offline plan: the desired state of one commit against another's, as `npm run synth` writes
 * them, read as data. Which resources are added, changed (and the fields that change), replaced,
 * deleted, and which deletions or replacements lose data. It runs no code of either commit and needs
 * no credentials, so every pull request can get it. Secret values are "[secret]" in both manifests:
 * a change of a secret alone is not visible here.
 */
import { structuredPatch } from "diff";

/** A resource as a synth manifest records it. */
export interface PlanResource {
  type: string;
  name: string;
  urn: string;
  parent?: string;
  custom: boolean;
  inputs: Record<string, unknown>;
  options: {
    retainOnDelete?: boolean;
    deleteBeforeReplace?: boolean;
    replaceOnChanges?: string[];
    ignoreChanges?: string[];
    protect?: boolean;
  };
}

export interface PlanManifest {
  stack: string;
  resources: PlanResource[];
}

/** One input that differs: its dotted path and both values as short text. */
export interface FieldChange {
  path: string;
  before: string;
  after: string;
}

export type ChangeKind = "add" | "update" | "replace" | "delete";

export interface PlannedChange {
  kind: ChangeKind;
  type: string;
  name: string;
  urn: string;
  /** For update and replace: the inputs that change. */
  fields: FieldChange[];
  /** For replace: the inputs that force it. */
  replaceBecause: string[];
  /** What happens to data, when something does (a dropped database, a volume started anew). */
  data?: string;
}

export interface Plan {
  stack: string;
  changes: PlannedChange[];
  /** Caddy files (main Caddyfile and fragments) whose text changes, with a line diff each. */
  caddy: { file: string; diff: string[] }[];
}

const CONTAINER = "docker:index/container:Container";
const VOLUME = "docker:index/volume:Volume";
const NETWORK = "docker:index/network:Network";
const IMAGE = "docker:index/remoteImage:RemoteImage";
const PG_DATABASE = "postgresql:index/database:Database";
const PG_ROLE = "postgresql:index/role:Role";
const PG_GRANT = "postgresql:index/grant:Grant";
const RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword";
const DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord";

/**
 * How each provider updates its resources, from the providers' own schemas: either the inputs it
 * can change in place (anything else replaces), or the inputs that force a replacement (anything
 * else is an update). The docker provider updates a container in place only through `docker
 * update` (restart policy, CPU shares and set, memory and swap) and the settings that live only in
 * state; every other input recreates it.
 */
const REPLACEMENT: Record<string, { inPlace: string[] } | { forceNew: string[] | "all" }> = {
  [CONTAINER]: {
    inPlace: [
      "restart",
      "maxRetryCount",
      "cpuShares",
      "cpuSet",
      "memory",
      "memorySwap",
      "destroyGraceSeconds",
      "mustRun",
      "wait",
      "waitTimeout",
      "containerReadRefreshTimeoutMilliseconds",
    ],
  },
  [VOLUME]: { forceNew: "all" },
  [NETWORK]: { forceNew: "all" },
  [IMAGE]: { inPlace: ["keepLocally", "forceRemove"] },
  [PG_DATABASE]: { forceNew: ["template", "encoding", "lcCollate", "lcCtype"] },
  [PG_ROLE]: { forceNew: [] },
  [PG_GRANT]: { forceNew: "all" },
  [RANDOM_PASSWORD]: { forceNew: "all" },
  [DNS_RECORD]: { forceNew: ["zoneId"] },
  // The command provider runs `update` (or `create` again) on a change; only `triggers` replaces.
  "command:local:Command": { forceNew: ["triggers"] },
  "command:remote:Command": { forceNew: ["triggers"] },
};

/** What a deletion (or the old half of a replacement) does to data, if anything. */
function dataEffect(r: PlanResource, kind: "delete" | "replace"): string | undefined {
  const kept = r.options.retainOnDelete === true;
  switch (r.type) {
    case VOLUME:
      if (kind === "replace") {
        return kept
          ? "a new, empty volume replaces it; the old one stays on the host (retained) but is no longer mounted"
          : "LOSES DATA: the volume is deleted and a new, empty one created";
      }
      return kept ? undefined : "LOSES DATA: the volume is deleted";
    case PG_DATABASE:
      if (kind === "replace") {
        return kept
          ? "a new, empty database replaces it; the old one stays in the cluster (retained)"
          : "LOSES DATA: the database is dropped and created empty";
      }
      return kept ? undefined : "LOSES DATA: the database is dropped";
    case RANDOM_PASSWORD:
      return kind === "replace" ? "a new generated secret: whatever uses it changes" : undefined;
    default:
      return undefined;
  }
}

/** Text of a value for a one-line report. */
function show(v: unknown): string {
  if (v === undefined) return "(none)";
  if (typeof v === "string") {
    if (v.includes("\n")) return `(text, ${v.split("\n").length} lines)`;
    return v.length > 80 ? JSON.stringify(`${v.slice(0, 77)}...`) : JSON.stringify(v);
  }
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isScalar = (v: unknown) => v === null || (typeof v !== "object" && v !== undefined);

/**
 * The inputs that differ, as dotted paths. Arrays of scalars (environment lists, commands) are
 * compared as lists: the elements added and removed, so a reordered list is no change to report
 * twice and a changed variable shows as itself.
 */
export function fieldChanges(before: unknown, after: unknown, at = ""): FieldChange[] {
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => fieldChanges(before[k], after[k], at ? `${at}.${k}` : k));
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    if (before.every(isScalar) && after.every(isScalar)) {
      const b = before.map((x) => JSON.stringify(x));
      const a = after.map((x) => JSON.stringify(x));
      const removed = b.filter((x) => !a.includes(x));
      const added = a.filter((x) => !b.includes(x));
      if (!removed.length && !added.length) {
        return [{ path: at, before: "(same elements)", after: "(reordered)" }];
      }
      return [
        ...removed.map((x) => ({ path: at, before: show(JSON.parse(x)), after: "(removed)" })),
        ...added.map((x) => ({ path: at, before: "(added)", after: show(JSON.parse(x)) })),
      ];
    }
    if (before.length === after.length) {
      return before.flatMap((x, i) => fieldChanges(x, after[i], `${at}[${i}]`));
    }
  }
  return [{ path: at, before: show(before), after: show(after) }];
}

/** The top-level inputs (and options) that force a replacement, given what changed. */
function replacementCauses(before: PlanResource, after: PlanResource, changed: string[]): string[] {
  const tops = [...new Set(changed.map((p) => p.split(/[.[]/)[0]))];
  const rule = REPLACEMENT[after.type];
  const causes = new Set<string>();
  const forced = after.options.replaceOnChanges ?? [];
  for (const top of tops) {
    if (forced.includes(top) || forced.includes("*")) causes.add(top);
    if (!rule) continue;
    if (
      "inPlace" in rule
        ? !rule.inPlace.includes(top)
        : rule.forceNew === "all" || rule.forceNew.includes(top)
    ) {
      causes.add(top);
    }
  }
  if (before.type !== after.type) causes.add("type");
  return [...causes].sort();
}

/** Removes inputs a resource asks the engine to ignore (`ignoreChanges`) from both sides. */
function withoutIgnored(r: PlanResource): Record<string, unknown> {
  const ignored = new Set(r.options.ignoreChanges ?? []);
  return Object.fromEntries(Object.entries(r.inputs).filter(([k]) => !ignored.has(k)));
}

/** A line diff of two texts as unified-diff hunks (`@@` headers, `+`/`-`/` ` lines); absent is empty. */
export function lineDiff(
  before: string | undefined,
  after: string | undefined,
  context = 2,
): string[] {
  const patch = structuredPatch("base", "head", before ?? "", after ?? "", "", "", { context });
  return patch.hunks.flatMap((h) => [
    `@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`,
    ...h.lines,
  ]);
}

const ORDER: Record<ChangeKind, number> = { delete: 0, replace: 1, update: 2, add: 3 };

/** The plan from `base` to `head`: only custom resources (components carry no state of their own). */
export function planDiff(
  base: PlanManifest,
  head: PlanManifest,
  baseCaddy: Record<string, string> = {},
  headCaddy: Record<string, string> = {},
): Plan {
  const before = new Map(base.resources.filter((r) => r.custom).map((r) => [r.urn, r]));
  const after = new Map(head.resources.filter((r) => r.custom).map((r) => [r.urn, r]));
  const changes: PlannedChange[] = [];
  for (const [urn, r] of after) {
    const old = before.get(urn);
    if (!old) {
      changes.push({
        kind: "add",
        type: r.type,
        name: r.name,
        urn,
        fields: [],
        replaceBecause: [],
      });
      continue;
    }
    const fields = fieldChanges(withoutIgnored(old), withoutIgnored(r));
    if (!fields.length) continue;
    const causes = replacementCauses(
      old,
      r,
      fields.map((f) => f.path),
    );
    const kind: ChangeKind = causes.length ? "replace" : "update";
    changes.push({
      kind,
      type: r.type,
      name: r.name,
      urn,
      fields,
      replaceBecause: causes,
      data: kind === "replace" ? dataEffect(old, "replace") : undefined,
    });
  }
  for (const [urn, r] of before) {
    if (after.has(urn)) continue;
    changes.push({
      kind: "delete",
      type: r.type,
      name: r.name,
      urn,
      fields: [],
      replaceBecause: [],
      data: dataEffect(r, "delete"),
    });
  }
  changes.sort((x, y) => ORDER[x.kind] - ORDER[y.kind] || x.urn.localeCompare(y.urn));
  const files = [...new Set([...Object.keys(baseCaddy), ...Object.keys(headCaddy)])].sort();
  const caddy = files
    .filter((f) => baseCaddy[f] !== headCaddy[f])
    .map((f) => ({ file: f, diff: lineDiff(baseCaddy[f], headCaddy[f]) }));
  return { stack: head.stack, changes, caddy };
}

/** Whether any change loses data (a deletion or replacement that drops a volume or a database). */
export function losesData(plan: Plan): boolean {
  return plan.changes.some((c) => c.data?.startsWith("LOSES DATA"));
}

const VERB: Record<ChangeKind, string> = {
  add: "add",
  update: "change",
  replace: "replace",
  delete: "delete",
};

/** The plan as Markdown, for a pull request comment and for people at a terminal. */
export function renderPlan(plan: Plan, title: string, policy?: string[]): string {
  const count = (k: ChangeKind) => plan.changes.filter((c) => c.kind === k).length;
  const lines: string[] = [`### ${title}`, ""];
  if (!plan.changes.length && !plan.caddy.length) {
    lines.push(`No change to the desired state of stack \`${plan.stack}\`.`);
  } else {
    lines.push(
      `Stack \`${plan.stack}\`: ${count("add")} to add, ${count("update")} to change, ` +
        `${count("replace")} to replace, ${count("delete")} to delete.`,
    );
  }
  const lossy = plan.changes.filter((c) => c.data?.startsWith("LOSES DATA"));
  if (lossy.length) {
    lines.push("", "**Data loss:**");
    for (const c of lossy) lines.push(`- ${VERB[c.kind]} \`${c.name}\` (${c.type}): ${c.data}`);
  }
  if (plan.changes.length) {
    lines.push("", "| | resource | type | what |", "|---|---|---|---|");
    for (const c of plan.changes) {
      const what: string[] = [];
      if (c.kind === "replace") what.push(`because of ${c.replaceBecause.join(", ")}`);
      if (c.kind === "update" || c.kind === "replace") {
        what.push(...c.fields.map((f) => `${f.path}: ${f.before} → ${f.after}`));
      }
      if (c.data) what.push(c.data);
      lines.push(
        `| ${VERB[c.kind]} | \`${c.name}\` | ${c.type} | ${what.map(cell).join("<br>")} |`,
      );
    }
  }
  for (const f of plan.caddy) {
    const fence = fenceFor(f.diff);
    lines.push(
      "",
      `<details><summary>Caddy: ${cell(f.file)}</summary>`,
      "",
      `${fence}diff`,
      ...f.diff,
      fence,
      "</details>",
    );
  }
  lines.push(
    "",
    "_Secret values are not compared: a change of a secret alone does not show here._",
  );
  if (policy) {
    lines.push(
      "",
      policy.length
        ? `**Policy: ${policy.length} violation(s)**\n\n${policy.map((v) => `- ${cell(v)}`).join("\n")}`
        : "**Policy:** no violation.",
    );
  }
  return `${lines.join("\n")}\n`;
}

/** A code fence longer than any run of backticks in `lines`, so no line can close it early. */
function fenceFor(lines: string[]): string {
  const longest = Math.max(
    2,
    ...lines.map((l) => Math.max(0, ...(l.match(/`+/g) ?? []).map((r) => r.length))),
  );
  return "`".repeat(longest + 1);
}

/** Text made safe for one Markdown table cell. */
function cell(s: string): string {
  return s
    .replace(/\|/g, "\\|")
    .replace(/[\r\n]+/g, " ")
    .replace(/</g, "&lt;");
}
