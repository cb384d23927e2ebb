/** Every shell script of the project, and every `run:` block of the workflows, passes shellcheck. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
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

test(
  "shellcheck passes on every `run:` block of the workflows and the prepare action",
  { skip },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agi-run-blocks-"));
    const sources = [
      ...fs
        .readdirSync(path.join(ROOT, ".github", "workflows"))
        .map((f) => path.join(ROOT, ".github", "workflows", f)),
      path.join(ROOT, ".github", "actions", "prepare", "action.yml"),
    ];
    const blocks: string[] = [];
    for (const file of sources) {
      const doc = parse(fs.readFileSync(file, "utf8")) as {
        jobs?: Record<string, { steps?: { run?: string }[] }>;
        runs?: { steps?: { run?: string }[] };
      };
      const steps = [
        ...Object.values(doc.jobs ?? {}).flatMap((j) => j.steps ?? []),
        ...(doc.runs?.steps ?? []),
      ];
      steps.forEach((s, i) => {
        if (!s.run) return;
        assert.doesNotMatch(s.run, /\$\{\{/, `${file}: pass expressions through env, not into run`);
        const out = path.join(
          dir,
          `${path.basename(path.dirname(file))}-${path.basename(file)}-${i}.sh`,
        );
        // GitHub runs bash with -e and pipefail.
        fs.writeFileSync(out, `#!/usr/bin/env bash\nset -eo pipefail\n${s.run}`);
        blocks.push(out);
      });
    }
    assert.ok(blocks.length >= 6, blocks.join(" "));
    const r = spawnSync("shellcheck", blocks, { encoding: "utf8" });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  },
);
