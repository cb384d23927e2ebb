/**
 * npm run test:fast: the unit tests that need no installed tool (no Caddy, HAProxy, PostgreSQL,
 * OpenSSH server, shellcheck or shell-script runs), for the deploy gate: a merge reaches `up` without
 * repeating the full suite, which is a required check of its pull request. The full suite is
 * `npm test`. A new test file counts as fast until it is listed here.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** Test files that run a real tool, and the tool. */
export const TOOL_TESTS: Record<string, string> = {
  "backup-names.test.ts": "the backup scripts with PostgreSQL",
  "backup.test.ts": "the backup scripts with PostgreSQL",
  "caddy-origin.test.ts": "Caddy",
  "caddy-redirect.test.ts": "Caddy",
  "caddy.test.ts": "Caddy",
  "postgres.test.ts": "PostgreSQL",
  "restore.test.ts": "the restore scripts",
  "shellcheck.test.ts": "shellcheck",
  "socket-proxy.test.ts": "HAProxy",
  "ssh.test.ts": "an OpenSSH server",
  "timers.test.ts": "systemd-analyze and the timers' install scripts",
};

/** The fast test files under `dir`, sorted. */
export function fastTests(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".test.ts") && !Object.hasOwn(TOOL_TESTS, f))
    .sort()
    .map((f) => path.join(dir, f));
}

if (require.main === module) {
  const files = fastTests(path.join(__dirname, "..", "test"));
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "--test", "--test-reporter=spec", ...files],
    { stdio: "inherit" },
  );
  process.exit(r.status ?? 1);
}
