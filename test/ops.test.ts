/**
 * The host's operations scripts (components/ops/ops-tick.sh, prune-images.sh) against a stand-in
 * `docker` on PATH that answers from files and logs every call; the units that run them
 * (core/ops.ts). The real engine runs both in test/engine/ops.test.ts.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { HEAL_FAILING_STREAK, HEAL_MAX_RESTARTS_PER_HOUR, opsHost, opsUnits } from "../core/ops";
import { ROOT, tempDir } from "./helpers";

const TICK = path.join(ROOT, "components", "ops", "ops-tick.sh");
const PRUNE = path.join(ROOT, "components", "ops", "prune-images.sh");
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * A stand-in docker: each call's words are looked up in answers.json (the first key that the call
 * starts with); its value is printed. Every call is logged to calls.txt.
 */
function fakeDocker(answers: Record<string, string>): {
  dir: string;
  state: string;
  calls: () => string[];
} {
  const dir = tempDir("ops");
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, "answers.json"), JSON.stringify(answers));
  const docker = `#!/usr/bin/env node
const fs = require("fs");
const dir = ${JSON.stringify(dir)};
const call = process.argv.slice(2).join(" ");
fs.appendFileSync(dir + "/calls.txt", call + "\\n");
const answers = JSON.parse(fs.readFileSync(dir + "/answers.json", "utf8"));
const key = Object.keys(answers).find((k) => call.startsWith(k));
if (key === undefined) process.exit(0);
if (answers[key] === "!fail") process.exit(1);
process.stdout.write(answers[key]);
`;
  fs.writeFileSync(path.join(dir, "docker"), docker, { mode: 0o755 });
  const state = path.join(dir, "state");
  return {
    dir,
    state,
    calls: () => {
      const f = path.join(dir, "calls.txt");
      return fs.existsSync(f) ? fs.readFileSync(f, "utf8").trim().split("\n") : [];
    },
  };
}

function runIn(dir: string, script: string, ...args: string[]) {
  return spawnSync("sh", [script, ...args], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    timeout: 20_000,
  });
}

const UNHEALTHY =
  "docker ps -q --filter label=agi.managed-by=agi-platform --filter label=agi.role=app --filter health=unhealthy".slice(
    7,
  );
const MANAGED = "ps -q --filter label=agi.managed-by=agi-platform";

test("ops tick: a memory sample per running container, in bytes, the last 65 minutes kept", () => {
  const d = fakeDocker({
    [UNHEALTHY]: "",
    [MANAGED]: "aaa\nbbb\n",
    "stats --no-stream":
      "shop-app-0123abcd 46.02MiB / 256MiB\nshop-db 1.5GiB / 2GiB\nodd 900KiB / 1GiB\n",
  });
  fs.mkdirSync(d.state, { recursive: true });
  const old = Math.floor(Date.now() / 1000) - 4000;
  fs.writeFileSync(path.join(d.state, "memory.log"), `${old} shop-db 1\n`);
  const r = runIn(d.dir, TICK, d.state, "6", "3");
  assert.equal(r.status, 0, r.stderr);
  const lines = fs.readFileSync(path.join(d.state, "memory.log"), "utf8").trim().split("\n");
  assert.deepEqual(
    lines.map((l) => l.split(" ").slice(1).join(" ")),
    [
      `shop-app-0123abcd ${Math.round(46.02 * 1048576)}`,
      `shop-db ${1.5 * 1073741824}`,
      `odd ${900 * 1024}`,
    ],
    "the sample of more than 65 minutes ago is gone",
  );
  assert.ok(d.calls().includes("stats --no-stream --format {{.Name}} {{.MemUsage}} aaa bbb"));
});

test("ops tick: an app unhealthy long enough is restarted, at most N times an hour, then reported once", () => {
  const d = fakeDocker({
    [UNHEALTHY]: "c1\n",
    [MANAGED]: "",
    "inspect --format {{.Name}} {{.State.Health.FailingStreak}}": "/shop-app-0123abcd 7 shop\n",
    "inspect --format {{with index .NetworkSettings.Networks": "shop-app-0123abcd shop \n",
  });
  for (let i = 0; i < 5; i++) {
    const r = runIn(
      d.dir,
      TICK,
      d.state,
      String(HEAL_FAILING_STREAK),
      String(HEAL_MAX_RESTARTS_PER_HOUR),
    );
    assert.equal(r.status, 0, r.stderr);
    if (i === 3) assert.match(r.stderr, /still unhealthy after 3 restarts this hour; left alone/);
  }
  const restarts = d.calls().filter((c) => c.startsWith("restart"));
  assert.deepEqual(restarts, Array(3).fill("restart --time 10 shop-app-0123abcd"));
  const log = fs.readFileSync(path.join(d.state, "heal.log"), "utf8").trim().split("\n");
  assert.deepEqual(
    log.map((l) => l.split(" ").slice(1).join(" ")),
    [
      "shop-app-0123abcd restarted 7",
      "shop-app-0123abcd restarted 7",
      "shop-app-0123abcd restarted 7",
      "shop-app-0123abcd limit 7",
    ],
  );
});

test("ops tick: a short failing streak, or a restart that fails, records nothing", () => {
  const short = fakeDocker({
    [UNHEALTHY]: "c1\n",
    [MANAGED]: "",
    "inspect --format {{.Name}}": "/shop-app-0123abcd 5 shop\n",
    "inspect --format {{with": "shop \n",
  });
  assert.equal(runIn(short.dir, TICK, short.state, "6", "3").status, 0);
  assert.ok(!short.calls().some((c) => c.startsWith("restart")));
  assert.equal(fs.readFileSync(path.join(short.state, "heal.log"), "utf8"), "");
  const broken = fakeDocker({
    [UNHEALTHY]: "c1\n",
    [MANAGED]: "",
    "inspect --format {{.Name}}": "/shop-app-0123abcd 9 shop\n",
    "inspect --format {{with": "shop \n",
    restart: "!fail",
  });
  const r = runIn(broken.dir, TICK, broken.state, "6", "3");
  assert.equal(r.status, 0);
  assert.match(r.stderr, /could not restart shop-app-0123abcd/);
  assert.equal(fs.readFileSync(path.join(broken.state, "heal.log"), "utf8"), "");
});

test("ops tick: a version that does not serve (its gate still waits on it) is never restarted", () => {
  for (const held of ["shop-app-0123abcd \n", "shopx \n", ""]) {
    const d = fakeDocker({
      [UNHEALTHY]: "c1\n",
      [MANAGED]: "",
      "inspect --format {{.Name}}": "/shop-app-0123abcd 40 shop\n",
      "inspect --format {{with": held,
    });
    assert.equal(runIn(d.dir, TICK, d.state, "6", "3").status, 0);
    assert.ok(!d.calls().some((c) => c.startsWith("restart")), held);
  }
  // A site label that is not a plain name is not used at all.
  const odd = fakeDocker({
    [UNHEALTHY]: "c1\n",
    [MANAGED]: "",
    "inspect --format {{.Name}}": "/shop-app-0123abcd 40 sh$op\n",
  });
  assert.equal(runIn(odd.dir, TICK, odd.state, "6", "3").status, 0);
  assert.ok(!odd.calls().some((c) => c.startsWith("restart") || c.includes("Networks")));
});

test("ops tick: bad arguments exit 2 before any docker call", () => {
  const d = fakeDocker({});
  for (const args of [
    ["relative/state", "6", "3"],
    ["/tmp/x;y", "6", "3"],
    ["/tmp/x", "6s", "3"],
    ["/tmp/x", "6"],
  ]) {
    assert.equal(runIn(d.dir, TICK, ...args).status, 2, args.join(" "));
  }
  assert.deepEqual(d.calls(), []);
});

test("prune: keeps what containers use and the rollback tags, removes the rest by reference", () => {
  const d = fakeDocker({
    "ps -aq": "c1\nc2\n",
    "inspect --format {{.Image}} c1 c2": "sha256:current\nsha256:service\n",
    "image ls --no-trunc --format {{.Repository}} {{.ID}}":
      "ghcr.io/x/shop sha256:current\nagi-previous/shop sha256:previous\nghcr.io/x/shop sha256:previous\nghcr.io/x/shop sha256:older\n<none> sha256:dangling\n",
    "image ls --no-trunc --format {{.ID}} {{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}": [
      "sha256:current ghcr.io/x/shop:3 ghcr.io/x/shop@sha256:d3",
      "sha256:previous agi-previous/shop:latest agi-previous/shop@<none>",
      "sha256:previous ghcr.io/x/shop:2 ghcr.io/x/shop@sha256:d2",
      "sha256:older ghcr.io/x/shop:1 ghcr.io/x/shop@sha256:d1",
      "sha256:pinned ghcr.io/x/tool:<none> ghcr.io/x/tool@sha256:d9",
      "sha256:dangling <none>:<none> <none>@<none>",
      "sha256:fresh ghcr.io/x/shop:4 ghcr.io/x/shop@sha256:d4",
      "sha256:service n8n:1 n8n@sha256:d5",
      "",
    ].join("\n"),
    "image inspect --format {{.Metadata.LastTagTime}} sha256:fresh": `${new Date(
      Date.now() - 3600_000,
    )
      .toISOString()
      .replace("T", " ")
      .replace(/\.\d+Z$/, "")}.5 +0000 UTC\n`,
    "image inspect --format {{.Metadata.LastTagTime}} sha256:older":
      "2026-01-01 10:00:00.1 +0000 UTC\n",
    "image inspect --format {{.Metadata.LastTagTime}}": "0001-01-01 00:00:00 +0000 UTC\n",
    "image inspect --format {{.Id}} ghcr.io/x/tool@sha256:d9": "sha256:pinned\n",
  });
  const r = runIn(d.dir, PRUNE);
  assert.equal(r.status, 0, r.stderr);
  // Untagged: by ID; pinned by digest: by repository@digest; tagged: by tag. The one tagged an hour
  // ago stays (a deploy may not have started its container yet).
  assert.deepEqual(
    d.calls().filter((c) => c.startsWith("rmi")),
    ["rmi sha256:dangling", "rmi ghcr.io/x/shop:1", "rmi ghcr.io/x/tool@sha256:d9"],
  );
  assert.match(r.stdout, /prune: 3 image reference\(s\) removed, 5 kept/);
  // An image a job runs now and then (the off-site uploader) is kept when named with --keep.
  const calls = d.calls().length;
  const kept = runIn(d.dir, PRUNE, "--keep", "ghcr.io/x/tool@sha256:d9");
  assert.equal(kept.status, 0, kept.stderr);
  assert.deepEqual(
    d
      .calls()
      .slice(calls)
      .filter((c) => c.startsWith("rmi")),
    ["rmi sha256:dangling", "rmi ghcr.io/x/shop:1"],
  );
  // A reference filter reaches docker as one word; anything else is refused before any call.
  assert.equal(runIn(d.dir, PRUNE, "agi-x/*").status, 0);
  assert.ok(
    d.calls().some((c) => c.includes("image ls --no-trunc --filter=reference=agi-x/* --format")),
  );
  const before = d.calls().length;
  for (const bad of ["-x", "a b", "a;b", ""]) assert.equal(runIn(d.dir, PRUNE, bad).status, 2, bad);
  assert.equal(runIn(d.dir, PRUNE, "--keep", "a;b").status, 2);
  assert.equal(runIn(d.dir, PRUNE, "--keep").status, 2);
  assert.equal(runIn(d.dir, PRUNE, "a", "b").status, 2);
  assert.equal(d.calls().length, before);
});

test("the ops units: every minute with the heal bounds, and the daily prune", () => {
  const ops = opsHost({ root: "/srv/agi" } as Parameters<typeof opsHost>[0]);
  const { tick, prune } = opsUnits(ops);
  assert.equal(tick.name, "agi-ops");
  assert.match(
    tick.service,
    /^ExecStart=\/bin\/sh \/srv\/agi\/bin\/ops\/ops-tick\.sh \/srv\/agi\/state 6 3$/m,
  );
  assert.match(tick.timer, /^OnCalendar=\*-\*-\* \*:\*:00 UTC$/m);
  assert.match(prune.service, /^ExecStart=\/bin\/sh \/srv\/agi\/bin\/ops\/prune-images\.sh$/m);
  assert.match(prune.timer, /^OnCalendar=\*-\*-\* 06:30:00 UTC$/m);
});
