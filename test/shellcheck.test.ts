/** Every shell script of the project passes shellcheck. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT } from "./helpers";

const skip =
  !fs.existsSync("/usr/bin/shellcheck") && !process.env.CI ? "shellcheck not installed" : false;

test("shellcheck passes on every script", { skip }, () => {
  const scripts = fs
    .readdirSync(path.join(ROOT, "components"), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".sh"))
    .map((f) => path.join(ROOT, "components", f));
  scripts.push(path.join(ROOT, ".ci", "run"));
  assert.ok(scripts.length >= 5, scripts.join(" "));
  const r = spawnSync("shellcheck", scripts, { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
