/**
 * The app gate script (components/app-gate.sh) against a stand-in `docker` on PATH that answers
 * `inspect` from a script of states and logs every other call: what it waits for, what it removes,
 * what it says. The real engine runs it in the engine suite (test/engine).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT, tempDir } from "./helpers";

const SCRIPT = path.join(ROOT, "components", "app-gate.sh");
const NAME = "shop-app-0123abcd";

/**
 * A fake docker: `inspect` prints the next line of states.txt ("missing" fails like a missing
 * container; the last line repeats); health logs come from probes.txt; other calls are logged.
 */
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function fakeDocker(
  states: string[],
  probes = "",
  aliases?: string,
): { dir: string; calls: () => string[] } {
  const dir = tempDir("app-gate");
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, "states.txt"), `${states.join("\n")}\n`);
  fs.writeFileSync(path.join(dir, "probes.txt"), probes);
  if (aliases !== undefined) fs.writeFileSync(path.join(dir, `aliases-${NAME}.txt`), aliases);
  fs.writeFileSync(path.join(dir, "n"), "0");
  const docker = `#!/bin/sh
dir=${dir}
if [ "$1 $2" = "container inspect" ]; then
  case "$4" in
  *Health.Log*) cat "$dir/probes.txt"; exit 0 ;;
  *Networks*) echo "inspect aliases $5" >> "$dir/calls.txt"; cat "$dir/aliases-$5.txt" 2>/dev/null; exit 0 ;;
  *.Image*) echo "sha256:image-of-$5"; exit 0 ;;
  *.Id*) line=$(sed -n 1p "$dir/states.txt") ;;
  *)
    n=$(cat "$dir/n"); n=$((n + 1)); echo "$n" > "$dir/n"
    total=$(wc -l < "$dir/states.txt")
    [ "$n" -le "$total" ] || n=$total
    line=$(sed -n "\${n}p" "$dir/states.txt") ;;
  esac
  if [ "$line" = missing ]; then echo "Error: No such container: $5" >&2; exit 1; fi
  if [ "$line" = down ]; then echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1; fi
  case "$4" in *.Id*) echo id ;; *) echo "$line" ;; esac
  exit 0
fi
echo "$*" >> "$dir/calls.txt"
if [ "$1" = ps ]; then cat "$dir/ps.txt" 2>/dev/null; exit 0; fi
if [ "$1 $2" = "network connect" ] && [ -e "$dir/connect-fails" ]; then exit 1; fi
`;
  fs.writeFileSync(path.join(dir, "docker"), docker, { mode: 0o755 });
  return {
    dir,
    calls: () => {
      const f = path.join(dir, "calls.txt");
      return fs.existsSync(f) ? fs.readFileSync(f, "utf8").trim().split("\n") : [];
    },
  };
}

function gate(dir: string, ...args: string[]) {
  return spawnSync("sh", [SCRIPT, ...args], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    timeout: 20_000,
  });
}

test("wait: once healthy (through a transient unhealthy), the version takes the site's name on its edge network", () => {
  const d = fakeDocker(["running starting 0 0", "running unhealthy 0 0", "running healthy 0 0"]);
  const r = gate(d.dir, "wait", "shop", NAME, "30");
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /app-gate: shop: shop-app-0123abcd is healthy after \d+s and serves as shop/,
  );
  assert.deepEqual(d.calls(), [
    "ps --filter label=agi.site=shop --filter label=agi.role=app --format {{.Names}}",
    `inspect aliases ${NAME}`,
    `network disconnect shop-edge ${NAME}`,
    `network connect --alias shop shop-edge ${NAME}`,
  ]);
});

test("wait: the version that served is tagged for a rollback before the switch, then stopped with its grace", () => {
  const OLD = "shop-app-aaaaaaaa";
  const STALE = "shop-app-bbbbbbbb";
  const d = fakeDocker(["running healthy 0 0"]);
  fs.writeFileSync(path.join(d.dir, "ps.txt"), `${NAME}\n${OLD}\n${STALE}\n`);
  fs.writeFileSync(path.join(d.dir, `aliases-${OLD}.txt`), "aaaaaaaa shop ");
  fs.writeFileSync(path.join(d.dir, `aliases-${STALE}.txt`), "bbbbbbbb ");
  const r = gate(d.dir, "wait", "shop", NAME, "30", "12");
  assert.equal(r.status, 0, r.stderr);
  const calls = d.calls();
  // Only the alias holder's image is the rollback image; the tag comes before the switch.
  const tag = calls.indexOf(`image tag sha256:image-of-${OLD} agi-previous/shop:latest`);
  assert.ok(tag >= 0, calls.join("\n"));
  assert.ok(!calls.some((c) => c.includes(`image-of-${STALE}`)));
  const connect = calls.indexOf(`network connect --alias shop shop-edge ${NAME}`);
  assert.ok(tag < connect);
  // Then every other running version stops, with the site's grace, after the switch.
  for (const old of [OLD, STALE]) {
    const stop = calls.indexOf(`stop --time 12 ${old}`);
    assert.ok(stop > connect, `${old}: ${calls.join("\n")}`);
  }
  assert.ok(!calls.some((c) => c.includes(`stop --time 12 ${NAME}`)));
  assert.match(r.stdout, /stopped the previous version \(shop-app-aaaaaaaa shop-app-bbbbbbbb\)/);
});

test("wait: a version that already holds the alias (an interrupted run) is left as it is", () => {
  const d = fakeDocker(["running healthy 0 0"], "", "0123abcd0123 shop ");
  const r = gate(d.dir, "wait", "shop", NAME, "30");
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(d.calls(), [
    "ps --filter label=agi.site=shop --filter label=agi.role=app --format {{.Names}}",
    `inspect aliases ${NAME}`,
  ]);
  // A look-alike is not the alias: "shopx" or "x-shop" do not count.
  const near = fakeDocker(["running healthy 0 0"], "", "shopx x-shop ");
  assert.equal(gate(near.dir, "wait", "shop", NAME, "30").status, 0);
  assert.deepEqual(near.calls().slice(2, 4), [
    `network disconnect shop-edge ${NAME}`,
    `network connect --alias shop shop-edge ${NAME}`,
  ]);
});

test("wait: a healthy version that cannot join its edge network is removed, and the update fails", () => {
  const d = fakeDocker(["running healthy 0 0"]);
  fs.writeFileSync(path.join(d.dir, "connect-fails"), "");
  const r = gate(d.dir, "wait", "shop", NAME, "30");
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /shop-app-0123abcd could not join its edge network shop-edge; it was removed/,
  );
  assert.equal(d.calls().at(-1), `rm --force --volumes ${NAME}`);
});

test("wait: a container that exits is removed, with the site, the container and its last probes", () => {
  const probes = "exit 1: warming up\u0000exit 1: database not reached: x\u0000";
  const d = fakeDocker(["running starting 0 0", "exited none 3 0"], probes);
  const r = gate(d.dir, "wait", "shop", NAME, "30");
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /^app-gate: site shop: the new app version shop-app-0123abcd exited with code 3 before it was healthy; it was removed, and the edge was not switched to it/,
  );
  assert.match(
    r.stderr,
    /last healthcheck outputs:\n {2}exit 1: warming up\n {2}exit 1: database not reached: x\n/,
  );
  assert.deepEqual(d.calls(), [`rm --force --volumes ${NAME}`]);
});

test("wait: a container never healthy by the deadline is removed and the update fails", () => {
  const d = fakeDocker(["running unhealthy 0 0"]);
  const r = gate(d.dir, "wait", "shop", NAME, "2");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /was not healthy within 2s \(it is running, unhealthy\)/);
  assert.deepEqual(d.calls(), [`rm --force --volumes ${NAME}`]);
});

test("wait: a missing container fails with what to do; a restarting one is removed", () => {
  const missing = fakeDocker(["missing"]);
  const r = gate(missing.dir, "wait", "shop", NAME, "5");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /does not exist; .* --refresh/);
  const restarting = fakeDocker(["restarting none 1 2"]);
  const r2 = gate(restarting.dir, "wait", "shop", NAME, "5");
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /exited with code 1 and is restarting/);
  assert.deepEqual(restarting.calls(), [`rm --force --volumes ${NAME}`]);
});

test("remove: stops with the grace period, then removes; a missing container is fine", () => {
  const d = fakeDocker(["running healthy 0 0"]);
  const r = gate(d.dir, "remove", "shop", NAME, "30");
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(d.calls(), [`stop --time 30 ${NAME}`, `rm --volumes ${NAME}`]);
  const gone = fakeDocker(["missing"]);
  const r2 = gate(gone.dir, "remove", "shop", NAME, "30");
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stdout, /already gone/);
  assert.deepEqual(gone.calls(), []);
  // A daemon that does not answer is not "gone": the gate fails, so Pulumi keeps the old gate.
  const down = fakeDocker(["down"]);
  const r3 = gate(down.dir, "remove", "shop", NAME, "30");
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /cannot inspect shop-app-0123abcd, so it is not removed: Cannot connect/);
  assert.deepEqual(down.calls(), []);
});

test("refuses bad arguments before it calls docker", () => {
  const d = fakeDocker(["running healthy 0 0"]);
  for (const args of [
    ["wait", "shop", "other-app-0123abcd", "30"],
    ["wait", "shop", "shop-app-0123ABCD", "30"],
    ["wait", "shop", "shop-app-0123abcd;rm", "30"],
    ["wait", "shop", "shop", "30"],
    ["wait", "Shop", "Shop-app-0123abcd", "30"],
    ["wait", "shop", NAME, "30s"],
    ["start", "shop", NAME, "30"],
    ["wait", "shop", NAME],
    ["wait", "shop", NAME, "30", "12s"],
    ["remove", "shop", NAME, "30", "12"],
  ]) {
    const r = gate(d.dir, ...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
  }
  assert.deepEqual(d.calls(), []);
});
