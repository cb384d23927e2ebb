/**
 * npm run rollback -- --site NAME [--to IMAGE] [--branch NAME]
 * Prepares the change that puts a site back on its previous image, as every change goes: a commit on
 * a new branch, ready for a pull request (the offline plan, the checks, a maintainer, then `pulumi
 * up`). The previous image is the last `app.image` in the site file's git history that differs from
 * the current one (or --to). Nothing is pushed and no host is touched; the old image is still on the
 * host (images are kept locally, and pruning keeps each app's previous one), so the deploy pulls
 * nothing. Exit 0 with the branch made, 1 when there is nothing to roll back to or the tree is not
 * clean, 2 on a bad command line. The branch is made without touching the work tree or HEAD.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Io, parseStrict, processIo, runCommand, readCommandLine } from "./args";
import { readSiteFile } from "../core/site-file";
import { imageProblem, SITE_NAME_PATTERN } from "../core/site";

const USAGE = "usage: npm run rollback -- --site NAME [--to IMAGE] [--branch NAME]";
const BRANCH_PATTERN = /^[a-z0-9][a-z0-9._/-]{0,99}$/;

export class RollbackError extends Error {}

/** The `app.image` of a site file's text, read as data; undefined when it has none. */
export function imageOf(text: string, file: string): string | undefined {
  const { value } = readSiteFile(text, file);
  const app = (value as { app?: { image?: unknown } } | undefined)?.app;
  return typeof app?.image === "string" ? app.image : undefined;
}

/** The images the site file named, newest first, one entry per commit that touched it. */
export function imageHistory(root: string, file: string): { commit: string; image?: string }[] {
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", root, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  const commits = git("log", "--format=%H", "--", file).split("\n").filter(Boolean);
  return commits.map((commit) => {
    let text: string;
    try {
      text = git("show", `${commit}:${file}`);
    } catch {
      return { commit }; // the commit that deleted it
    }
    return { commit, image: imageOf(text, file) };
  });
}

/** The site file's text with its one image literal replaced; refuses anything but exactly one. */
export function withImage(text: string, from: string, to: string): string {
  const literal = (s: string) =>
    new RegExp(`(["'\`])${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\1`, "g");
  const found = text.match(literal(from)) ?? [];
  if (found.length !== 1) {
    throw new RollbackError(
      `the site file names ${JSON.stringify(from)} ${found.length} times; edit app.image by hand`,
    );
  }
  return text.replace(literal(from), (m) => `${m[0]}${to}${m[0]}`);
}

/** The command: `argv` without the node and script; resolves to the exit code. */
export function main(argv: string[], io: Io = processIo()): number {
  const values = readCommandLine(
    () =>
      parseStrict(
        argv,
        USAGE,
        {
          site: { type: "string" },
          to: { type: "string" },
          branch: { type: "string" },
          help: { type: "boolean", short: "h", default: false },
        },
        (v) => {
          if (v.help) return;
          if (v.site === undefined || !SITE_NAME_PATTERN.test(v.site))
            throw new Error("--site must name a site (its file is sites/<name>.ts)");
          if (v.to !== undefined && imageProblem(v.to))
            throw new Error(`--to: ${JSON.stringify(v.to)} ${imageProblem(v.to)}`);
          if (v.branch !== undefined && !BRANCH_PATTERN.test(v.branch))
            throw new Error(`--branch: ${JSON.stringify(v.branch)} is not a branch name`);
        },
      ),
    USAGE,
    io,
  );
  if (typeof values === "number") return values;
  const root = io.cwd;
  const site = values.site!;
  const file = path.join("sites", `${site}.ts`);
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", root, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  try {
    if (!fs.existsSync(path.join(root, file))) throw new RollbackError(`${file} does not exist`);
    if (git("status", "--porcelain", "--", file)) {
      throw new RollbackError(`${file} has uncommitted changes; commit or stash them first`);
    }
    const text = fs.readFileSync(path.join(root, file), "utf8");
    const current = imageOf(text, file);
    if (!current) throw new RollbackError(`${file}: app.image: the site runs no app image`);
    const history = imageHistory(root, file);
    const previous = values.to ?? history.find((h) => h.image && h.image !== current)?.image;
    if (!previous) {
      throw new RollbackError(`${file}: no earlier app.image in its history than ${current}`);
    }
    if (previous === current) throw new RollbackError(`${file} already runs ${current}`);
    const changed = withImage(text, current, previous);
    const branch =
      values.branch ??
      `rollback/${site}-${new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "")}`;
    // The commit is made beside the work tree (a temporary index), so neither the checkout nor HEAD moves.
    const index = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "agi-rollback-")), "index");
    try {
      const run = (args: string[], input?: string) =>
        execFileSync("git", ["-C", root, ...args], {
          encoding: "utf8",
          input,
          env: { ...process.env, GIT_INDEX_FILE: index },
          stdio: ["pipe", "pipe", "pipe"],
        }).trim();
      const blob = run(["hash-object", "-w", "--stdin"], changed);
      run(["read-tree", "HEAD"]);
      run(["update-index", "--cacheinfo", `100644,${blob},${file.split(path.sep).join("/")}`]);
      const tree = run(["write-tree"]);
      const commit = run([
        "commit-tree",
        tree,
        "-p",
        "HEAD",
        "-m",
        `Roll back ${site} to ${previous}`,
        "-m",
        `It ran ${current}. Prepared by npm run rollback; the image is still on the host, so the deploy pulls nothing.`,
      ]);
      git("branch", branch, commit);
    } finally {
      fs.rmSync(path.dirname(index), { recursive: true, force: true });
    }
    io.stdout(
      `rollback: ${site}: ${current} -> ${previous}, committed on branch ${branch}\n` +
        `next: git push -u origin ${branch}, then open a pull request (its offline plan shows the app's replacement)\n`,
    );
    return 0;
  } catch (err) {
    const message =
      err instanceof RollbackError
        ? err.message
        : String((err as { stderr?: string }).stderr || (err as Error).message)
            .trim()
            .split("\n")[0];
    io.stderr(`rollback: ${message}\n`);
    return 1;
  }
}

if (require.main === module) runCommand(main);
