/**
 * Every shell script of the project, the scripts embedded in them (heredocs written to a `.sh` file),
 * the scripts the program generates, and every `run:` block of the workflows pass shellcheck.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { ROOT } from "./helpers";
import { appRoleInitScript, entrypointScript, syncPasswordsScript } from "../core/postgres";

const skip =
  !fs.existsSync("/usr/bin/shellcheck") && !process.env.CI ? "shellcheck not installed" : false;

test("shellcheck passes on every script", { skip }, () => {
  const scripts = projectScripts();
  scripts.push(path.join(ROOT, ".ci", "run"));
  assert.ok(scripts.length >= 5, scripts.join(" "));
  const r = spawnSync("shellcheck", scripts, { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

/** Project shell scripts: every `.sh` under components/. */
function projectScripts(): string[] {
  return fs
    .readdirSync(path.join(ROOT, "components"), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".sh"))
    .map((f) => path.join(ROOT, "components", f));
}

/**
 * The scripts a shell script embeds: each here-document written to a `.sh` file
 * (`cat >"$dir/phase.sh" <<'PHASE'`), with its body up to the line holding only the delimiter.
 */
export function embeddedScripts(text: string): { name: string; body: string }[] {
  const lines = text.split("\n");
  const found: { name: string; body: string }[] = [];
  lines.forEach((line, i) => {
    const m = /^[^#]*>\s*"?([^"\s]*\.sh)"?\s*<<(-?)\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\3\s*$/.exec(
      line,
    );
    if (!m) return;
    const [, target, dash, , word] = m;
    const end = lines.findIndex((l, j) => j > i && (dash ? l.replace(/^\t+/, "") : l) === word);
    assert.ok(end > i, `line ${i + 1}: the here-document ${word} has no end`);
    found.push({ name: path.basename(target), body: lines.slice(i + 1, end).join("\n") + "\n" });
  });
  return found;
}

test("the here-document reader finds an embedded script, and only up to its delimiter", () => {
  const text = [
    "#!/bin/sh",
    "cat >&9 <<'SQL'",
    "SELECT 1;",
    "SQL",
    `cat >"$run/phase.sh" <<'PHASE'`,
    'echo "$1"',
    "PHASE",
    "echo after",
    "",
  ].join("\n");
  assert.deepEqual(embeddedScripts(text), [{ name: "phase.sh", body: 'echo "$1"\n' }]);
});

test(
  "shellcheck passes on the scripts embedded in scripts and on the generated ones",
  { skip },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agi-embedded-"));
    const files: string[] = [];
    const add = (name: string, body: string) => {
      const file = path.join(dir, name);
      // Embedded and `sh -c` scripts run under sh: say so where they do not.
      fs.writeFileSync(file, body.startsWith("#!") ? body : `#!/bin/sh\n${body}`);
      files.push(file);
    };
    for (const script of projectScripts()) {
      for (const e of embeddedScripts(fs.readFileSync(script, "utf8"))) {
        add(`${path.basename(script)}--${e.name}`, e.body);
      }
    }
    // host-restore.sh's detached phase is one of them: the reader cannot miss it.
    assert.ok(
      files.some((f) => f.endsWith("host-restore.sh--phase.sh")),
      `embedded scripts found: ${files.join(" ")}`,
    );
    add("appRoleInitScript.sh", appRoleInitScript());
    add("entrypointScript.sh", entrypointScript());
    add("syncPasswordsScript.sh", syncPasswordsScript());
    const r = spawnSync("shellcheck", files, { encoding: "utf8" });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  },
);

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
