/**
 * The edge against a real Caddy (Debian's caddy 2.6.2, the version the platform pins):
 *  - every fragment `synth` writes for prod and local passes `caddy validate` inside the main Caddyfile;
 *  - a live Caddy with local certificates on loopback high ports serves every seed site from its own
 *    upstream (stub servers stand in for the containers; only the upstream address differs from what
 *    synth renders), redirects HTTP to HTTPS and aliases to the primary, sends HSTS, and shows the
 *    maintenance page of a paused site;
 *  - edge-route.sh against that live Caddy: a good change is served; a syntax error and a port clash
 *    (which validates, then fails to reload) are refused with exit 1 and the previous state restored,
 *    while a request loop against every other site sees no failure; a delete removes the route.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { renderMainCaddyfile, renderSiteFragment, hasRoute } from "../core/caddy";
import { sha256 } from "../core/host";
import type { Site } from "../core/site";
import { loadSiteEntries, readStackFile, validateAll } from "../core/validate";
import { StackSettingsSchema, type StackSettings } from "../stacks/settings";
import {
  caddyAvailable,
  caddyValidate,
  freePort,
  request,
  startCaddy,
  stubUpstream,
  type RunningCaddy,
} from "./caddy-server";
import { ROOT, freePorts, runInProcess, tempDir } from "./helpers";
import { main as synthMain } from "../scripts/synth";

const skip = !caddyAvailable() && !process.env.CI ? "caddy not installed" : false;
const SCRIPT = path.join(ROOT, "components", "edge-route.sh");

/** synth's main, in process (the command's end-to-end run is in cli.test.ts). */
async function synthTo(stack: string): Promise<string> {
  const out = tempDir(`synth-${stack}`);
  const r = await runInProcess(synthMain, ["--stack", stack, "--out", out]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return path.join(out, "caddy");
}

for (const stack of ["prod", "local"]) {
  test(
    `every fragment synth writes for ${stack} passes caddy validate in the main Caddyfile`,
    { skip },
    async () => {
      const dir = await synthTo(stack);
      const fragments = fs.readdirSync(path.join(dir, "sites.d")).sort();
      assert.equal(fragments.length, 9, "nine routed seed sites");
      const home = tempDir("caddy-home");
      // The whole set, as the edge loads it...
      const all = caddyValidate(path.join(dir, "Caddyfile"), home);
      assert.equal(all.code, 0, all.output);
      // ...and each fragment alone, so a failure names its site.
      for (const f of fragments) {
        const one = tempDir("caddy-one");
        fs.mkdirSync(path.join(one, "sites.d"));
        fs.copyFileSync(path.join(dir, "Caddyfile"), path.join(one, "Caddyfile"));
        fs.copyFileSync(path.join(dir, "sites.d", f), path.join(one, "sites.d", f));
        const r = caddyValidate(path.join(one, "Caddyfile"), home);
        assert.equal(r.code, 0, `${f}: ${r.output}`);
      }
      // A broken fragment does not pass: the check can fail.
      fs.writeFileSync(
        path.join(dir, "sites.d", "broken.caddy"),
        "broken.example.com {\n\treverse_proxy {\n",
      );
      assert.notEqual(caddyValidate(path.join(dir, "Caddyfile"), home).code, 0);
    },
  );
}

// ---- the live edge ---------------------------------------------------------------------------

let caddy: RunningCaddy;
let edgeDir: string;
let settings: StackSettings;
let sites: Site[];
let httpPort: number;
let httpsPort: number;
let adminAddress: string;
const stubs = new Map<string, { port: number; close(): Promise<void> }>();

const routed = () => sites.filter(hasRoute);
const fragmentPath = (site: string) => path.join(edgeDir, "sites.d", `${site}.caddy`);
const render = (site: Site, upstreamOf = site.name) =>
  renderSiteFragment(site, {
    logDir: path.join(edgeDir, "logs"),
    upstream: `127.0.0.1:${stubs.get(upstreamOf)!.port}`,
  });

before(async () => {
  if (skip) return;
  const read = readStackFile(path.join(ROOT, "Pulumi.local.yaml"));
  assert.deepEqual(read.problems, []);
  const loaded = loadSiteEntries(path.join(ROOT, "sites"), "sites");
  const checked = validateAll(loaded.entries, [
    { file: "Pulumi.local.yaml", settings: read.settings! },
  ]);
  assert.deepEqual(checked.problems, []);
  sites = checked.sites.map((s) => s.site);
  // The local stack's edge, on ports free on this machine.
  // Stubs first: a port the OS hands out for them could otherwise be one just picked for Caddy.
  for (const s of [...routed().map((x) => x.name), "spare"]) stubs.set(s, await stubUpstream(s));
  let adminPort: number;
  [httpPort, httpsPort, adminPort] = await freePorts(3);
  adminAddress = `localhost:${adminPort}`;
  settings = StackSettingsSchema.parse({
    ...read.settings!,
    edge: { ...read.settings!.edge, httpPort, httpsPort, adminAddress },
  });
  edgeDir = tempDir("edge");
  fs.mkdirSync(path.join(edgeDir, "sites.d"));
  fs.writeFileSync(path.join(edgeDir, "Caddyfile"), renderMainCaddyfile(settings));
  for (const s of routed()) fs.writeFileSync(fragmentPath(s.name), render(s));
  caddy = await startCaddy(path.join(edgeDir, "Caddyfile"), tempDir("caddy-home"), adminAddress);
});

after(async () => {
  await caddy?.stop();
  for (const s of stubs.values()) await s.close();
});

test(
  "every seed site: HTTPS from its own upstream, HSTS, HTTP -> HTTPS, alias -> primary",
  { skip },
  async () => {
    standardEdge();
    assert.equal(routed().length, 9);
    for (const site of routed()) {
      const [primary, ...aliases] = site.domains;
      const ok = await request("https", httpsPort, primary, "/", caddy.ca);
      assert.equal(ok.status, 200, `${site.name}: ${ok.body}`);
      assert.equal(ok.body, `upstream ${site.name} saw ${primary}`);
      assert.equal(ok.headers["strict-transport-security"], "max-age=31536000", site.name);
      assert.equal(ok.headers["x-content-type-options"], "nosniff");
      assert.equal(ok.headers.server, undefined, "the Server header is removed");
      const plain = await request("http", httpPort, primary, "/some/path?q=1");
      assert.equal(plain.status, 308, site.name);
      // Caddy 2.6 redirects to the default HTTPS port; off 443 (the local stack) a browser must add it.
      assert.equal(plain.headers.location, `https://${primary}/some/path?q=1`);
      for (const alias of aliases) {
        const moved = await request("https", httpsPort, alias, "/x?y=2", caddy.ca);
        assert.equal(moved.status, 301, `${alias}: ${moved.body}`);
        assert.equal(moved.headers.location, `https://${primary}/x?y=2`);
      }
    }
    // Each site writes its own access log.
    const logs = fs.readdirSync(path.join(edgeDir, "logs")).sort();
    assert.ok(
      logs.includes("stepperslife.access.log") && logs.includes("n8n.access.log"),
      String(logs),
    );
  },
);

test("a paused site shows the maintenance page with 503", { skip }, async () => {
  standardEdge();
  const site = sites.find((s) => s.name === "stepperslife")!;
  const paused = { ...site, status: "paused" } as Site;
  const r = run("apply", "stepperslife", render(paused));
  assert.equal(r.status, 0, r.stderr);
  const answer = await request("https", httpsPort, "stepperslife.com", "/", caddy.ca);
  assert.equal(answer.status, 503);
  assert.equal(answer.headers["content-type"], "text/html; charset=utf-8");
  assert.match(answer.body, /stepperslife\.com is down for maintenance/);
  assert.equal(run("apply", "stepperslife", render(site)).status, 0);
  assert.equal((await request("https", httpsPort, "stepperslife.com", "/", caddy.ca)).status, 200);
});

/** The route script's arguments for this edge; `remove` names the fragment it may remove. */
function routeArgs(action: "apply" | "remove", site: string, fragment: string): string[] {
  const guard = action === "remove" ? [sha256(fragment)] : [];
  const dirs = [path.join(edgeDir, "sites.d"), path.join(edgeDir, "Caddyfile")];
  return [SCRIPT, action, site, ...dirs, adminAddress, ...guard];
}

/** Runs the route script here (Caddy runs here: no EXEC prefix, the same paths for both). */
function run(action: "apply" | "remove", site: string, fragment = "", exec: string[] = []) {
  return spawnSync("sh", [...routeArgs(action, site, fragment), ...exec], {
    input: action === "apply" ? fragment : "",
    encoding: "utf8",
    timeout: 60_000,
  });
}

/** The route script as `run` runs it, without blocking this process (the request loop goes on). */
function runAsync(action: "apply" | "remove", site: string, fragment = "") {
  const args = routeArgs(action, site, fragment);
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn("sh", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(action === "apply" ? fragment : "");
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** Polls `ready` every 20 ms until it holds; fails after 30 s, naming `what`. */
async function waitFor(what: string, ready: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!ready()) {
    assert.ok(Date.now() < deadline, `waited 30 s for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Requests every site but `except` in a loop until stopped; counts answers that are not 200.
 * `rounds(n)` waits until n more full rounds over the other sites have completed.
 */
function requestLoop(except: string) {
  let running = true;
  let requests = 0;
  let completed = 0;
  const failures: string[] = [];
  const targets = routed().filter((s) => s.name !== except);
  const done = (async () => {
    while (running) {
      for (const s of targets) {
        try {
          const r = await request("https", httpsPort, s.domains[0], "/", caddy.ca);
          if (r.status !== 200) failures.push(`${s.name}: ${r.status}`);
        } catch (err) {
          failures.push(`${s.name}: ${(err as Error).message}`);
        }
        requests++;
      }
      completed++;
    }
  })();
  return {
    async rounds(n: number) {
      // A round that is under way now may have begun before: wait for n whole ones after it.
      const target = completed + n + 1;
      await waitFor(`${n} rounds of requests`, () => completed >= target);
    },
    async stop() {
      running = false;
      await done;
      return { requests, failures };
    },
  };
}

/**
 * Puts the live edge in its starting state, whatever an earlier test left: every routed site's own
 * fragment (to its own upstream), nothing else. Each live test starts with this.
 */
function standardEdge(): void {
  const wanted = new Map(routed().map((s) => [`${s.name}.caddy`, render(s)]));
  for (const f of fs.readdirSync(path.join(edgeDir, "sites.d"))) {
    if (f.startsWith(".") || wanted.has(f)) continue;
    const r = run(
      "remove",
      f.replace(/\.caddy$/, ""),
      fs.readFileSync(fragmentPath(f.replace(/\.caddy$/, "")), "utf8"),
    );
    assert.equal(r.status, 0, r.stderr);
  }
  for (const [f, text] of wanted) {
    const file = path.join(edgeDir, "sites.d", f);
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) continue;
    const r = run("apply", f.replace(/\.caddy$/, ""), text);
    assert.equal(r.status, 0, r.stderr);
  }
}

test("apply: a good change is served; re-applying it is a no-op", { skip }, async () => {
  standardEdge();
  const n8n = sites.find((s) => s.name === "n8n")!;
  const loop = requestLoop("n8n");
  await loop.rounds(1);
  const r = await runAsync("apply", "n8n", render(n8n, "spare"));
  await loop.rounds(1);
  const counted = await loop.stop();
  console.log(
    `good change: ${counted.requests} requests to the other sites, ${counted.failures.length} failed`,
  );
  assert.deepEqual(counted.failures, []);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "edge-route: n8n: applied");
  const answer = await request("https", httpsPort, "n8n.agistaffers.com", "/", caddy.ca);
  assert.equal(answer.body, "upstream spare saw n8n.agistaffers.com");
  const again = run("apply", "n8n", render(n8n, "spare"));
  assert.equal(again.status, 0);
  assert.equal(again.stdout.trim(), "edge-route: n8n: unchanged");
});

test(
  "apply: a syntax error is refused, the previous fragment restored, other sites unaffected",
  { skip },
  async () => {
    standardEdge();
    // The previous route: n8n served from the spare upstream (not its own), so it is recognisable.
    const n8n = sites.find((s) => s.name === "n8n")!;
    const moved = run("apply", "n8n", render(n8n, "spare"));
    assert.equal(moved.status, 0, moved.stderr);
    const before = fs.readFileSync(fragmentPath("n8n"), "utf8");
    const loop = requestLoop("n8n");
    await loop.rounds(1);
    const r = await runAsync("apply", "n8n", "n8n.agistaffers.com {\n\treverse_proxy {\n");
    await loop.rounds(1);
    const { requests, failures } = await loop.stop();
    console.log(
      `syntax error attempt: ${requests} requests to the other sites, ${failures.length} failed`,
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^edge-route: n8n: the configuration does not adapt: .*Error/s);
    assert.match(r.stderr, /nothing was reloaded/);
    assert.equal(
      fs.readFileSync(fragmentPath("n8n"), "utf8"),
      before,
      "previous fragment restored",
    );
    assert.deepEqual(failures, []);
    assert.ok(requests > 0);
    const answer = await request("https", httpsPort, "n8n.agistaffers.com", "/", caddy.ca);
    assert.equal(
      answer.body,
      "upstream spare saw n8n.agistaffers.com",
      "still serving the previous route",
    );
    assert.deepEqual(leftovers(), []);
  },
);

test(
  "apply: a port clash validates but fails to reload; refused, removed, no failed request",
  { skip },
  async () => {
    standardEdge();
    // Something else holds a port; a new site asks Caddy to listen on it.
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const busy = (blocker.address() as net.AddressInfo).port;
    const fragment = `http://clash.localhost:${busy} {\n\tbind 127.0.0.1\n\trespond "clash"\n}\n`;
    const probe = tempDir("clash");
    fs.mkdirSync(path.join(probe, "sites.d"));
    fs.copyFileSync(path.join(edgeDir, "Caddyfile"), path.join(probe, "Caddyfile"));
    fs.writeFileSync(path.join(probe, "sites.d", "clash.caddy"), fragment);
    assert.equal(
      caddyValidate(path.join(probe, "Caddyfile"), tempDir("caddy-home")).code,
      0,
      "caddy validate accepts it",
    );

    const loop = requestLoop("clash");
    await loop.rounds(1);
    const r = await runAsync("apply", "clash", fragment);
    await loop.rounds(1);
    const { requests, failures } = await loop.stop();
    blocker.close();
    console.log(
      `port clash attempt: ${requests} requests to the other sites, ${failures.length} failed`,
    );
    assert.equal(r.status, 1, r.stdout);
    assert.match(
      r.stderr,
      new RegExp(
        `^edge-route: clash: cannot listen on 127\\.0\\.0\\.1:${busy}: .*address already in use`,
        "s",
      ),
    );
    assert.match(r.stderr, /nothing was reloaded/);
    assert.equal(fs.existsSync(fragmentPath("clash")), false, "the new fragment is gone");
    assert.deepEqual(failures, []);
    assert.ok(requests > 0);
    assert.deepEqual(leftovers(), []);
  },
);

test(
  "apply: a new free listener passes the probe, also with busybox's timeout (Caddy exits 0)",
  { skip },
  async () => {
    standardEdge();
    // busybox's timeout (the edge image is Alpine) sends SIGTERM and returns Caddy's own exit: 0.
    // The stand-in sends it once Caddy's probe server runs (its listeners are bound) or Caddy has
    // quit, polling Caddy's log (bounded at 30 s), instead of waiting out the 2 s.
    const busybox = path.join(tempDir("busybox"), "exec");
    fs.writeFileSync(
      busybox,
      [
        "#!/bin/sh",
        'if [ "$1" = timeout ]; then',
        "  shift 2",
        "  out=$(mktemp)",
        '  "$@" >"$out" 2>&1 &',
        "  pid=$!",
        "  i=0",
        `  while kill -0 "$pid" 2>/dev/null && ! grep -q '"server running"' "$out" && [ "$i" -lt 600 ]; do`,
        "    sleep 0.05",
        "    i=$((i + 1))",
        "  done",
        '  kill -TERM "$pid" 2>/dev/null',
        '  wait "$pid"',
        "  status=$?",
        '  cat "$out"',
        '  rm -f "$out"',
        '  exit "$status"',
        "fi",
        'exec "$@"',
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    const port = await freePort();
    const fragment = `http://extra.localhost:${port} {\n\tbind 127.0.0.1\n\trespond "extra"\n}\n`;
    const r = run("apply", "extra", fragment, [busybox]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await request("http", port, "extra.localhost")).body, "extra");
    assert.equal(run("remove", "extra", fragment).status, 0);
    assert.deepEqual(leftovers(), []);
  },
);

test(
  "apply: a fragment Caddy adapts but refuses to load is rolled back and reloaded",
  { skip },
  async () => {
    standardEdge();
    const before = fs.readFileSync(fragmentPath("portainer"), "utf8");
    const fragment =
      "portainer.agistaffers.com {\n\ttls /nonexistent/cert.pem /nonexistent/key.pem\n\trespond ok\n}\n";
    const r = run("apply", "portainer", fragment);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^edge-route: portainer: reload refused the new fragment: .*nonexistent/s,
    );
    assert.match(r.stderr, /the previous configuration is back in force/);
    assert.equal(fs.readFileSync(fragmentPath("portainer"), "utf8"), before);
    const answer = await request("https", httpsPort, "portainer.agistaffers.com", "/", caddy.ca);
    assert.equal(answer.body, "upstream portainer saw portainer.agistaffers.com");
    assert.deepEqual(leftovers(), []);
  },
);

test(
  "remove: only the fragment this resource applied; then the route goes away",
  { skip },
  async () => {
    standardEdge();
    assert.equal(
      (await request("https", httpsPort, "searxng.agistaffers.com", "/", caddy.ca)).status,
      200,
    );
    const applied = fs.readFileSync(fragmentPath("searxng"), "utf8");
    // A predecessor (the site changed kind or host) holds an older text: it leaves the newer one alone.
    const stale = run("remove", "searxng", `${applied}# older\n`);
    assert.equal(stale.status, 0, stale.stderr);
    assert.equal(
      stale.stdout.trim(),
      "edge-route: searxng: the fragment on the edge is newer than this resource's; left in place",
    );
    assert.equal(fs.readFileSync(fragmentPath("searxng"), "utf8"), applied);
    const r = run("remove", "searxng", applied);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "edge-route: searxng: removed");
    assert.equal(fs.existsSync(fragmentPath("searxng")), false);
    // No site answers for the name any more: no certificate, so the TLS handshake fails.
    await assert.rejects(request("https", httpsPort, "searxng.agistaffers.com", "/", caddy.ca));
    assert.equal(
      run("remove", "searxng", applied).stdout.trim(),
      "edge-route: searxng: already absent",
    );
    // The others still answer.
    assert.equal(
      (await request("https", httpsPort, "flowise.agistaffers.com", "/", caddy.ca)).status,
      200,
    );
  },
);

test("a run interrupted after the swap puts the previous fragment back", { skip }, async () => {
  standardEdge();
  const before = fs.readFileSync(fragmentPath("langfuse"), "utf8");
  const langfuse = sites.find((s) => s.name === "langfuse")!;
  // Where Caddy runs, the reload is slow: it says it has begun (a marker file), then holds until
  // released (a FIFO), and the run is stopped while it waits.
  const slowDir = tempDir("slow");
  const slow = path.join(slowDir, "slow-exec");
  const marker = path.join(slowDir, "reloading");
  const gate = path.join(slowDir, "gate");
  assert.equal(spawnSync("mkfifo", [gate]).status, 0);
  fs.writeFileSync(
    slow,
    `#!/bin/sh\ncase "$2" in reload) [ -e '${marker}' ] || { : >'${marker}'; read -r _ <'${gate}'; } ;; esac\nexec "$@"\n`,
    { mode: 0o755 },
  );
  const args = [
    SCRIPT,
    "apply",
    "langfuse",
    path.join(edgeDir, "sites.d"),
    path.join(edgeDir, "Caddyfile"),
    adminAddress,
    slow,
  ];
  const child = spawn("sh", args, { stdio: ["pipe", "pipe", "pipe"] });
  const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  child.stdin.end(render(langfuse, "spare"));
  await waitFor("the reload to begin", () => fs.existsSync(marker));
  assert.notEqual(
    fs.readFileSync(fragmentPath("langfuse"), "utf8"),
    before,
    "the new fragment was in place",
  );
  child.kill("SIGTERM");
  // Release the held reload; the rollback's own reload is not held (the marker exists).
  fs.writeFileSync(gate, "go\n");
  const code = await exited;
  assert.notEqual(code, 0);
  assert.equal(fs.readFileSync(fragmentPath("langfuse"), "utf8"), before, "previous fragment back");
  assert.deepEqual(leftovers(), []);
  const answer = await request("https", httpsPort, "langfuse.agistaffers.com", "/", caddy.ca);
  assert.equal(answer.body, "upstream langfuse saw langfuse.agistaffers.com");
});

test(
  "a run that died half-way is rolled back by the next one, which then reloads",
  { skip },
  () => {
    standardEdge();
    const langfuse = sites.find((s) => s.name === "langfuse")!;
    const current = fs.readFileSync(fragmentPath("langfuse"), "utf8");
    const next = render(langfuse, "spare");
    // What a killed run leaves: its backup beside the new text, never reloaded.
    fs.writeFileSync(path.join(edgeDir, "sites.d", ".langfuse.caddy.prev"), current);
    fs.writeFileSync(fragmentPath("langfuse"), next);
    const r = run("apply", "langfuse", next);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "edge-route: langfuse: applied", "not taken for unchanged");
    assert.deepEqual(leftovers(), []);
    assert.equal(run("apply", "langfuse", current).status, 0);
  },
);

test("the route script refuses bad arguments and empty fragments", { skip }, () => {
  assert.equal(run("apply", "../etc", "x").status, 2);
  const empty = run("apply", "n8n", "");
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /empty fragment refused/);
  assert.equal(
    spawnSync("sh", [SCRIPT, "frob", "n8n", edgeDir, "Caddyfile", "localhost:1"]).status,
    2,
  );
  assert.equal(spawnSync("sh", [SCRIPT, "apply", "n8n", edgeDir]).status, 2);
});

/** Temporary and backup files the script must not leave behind. */
function leftovers(): string[] {
  return fs
    .readdirSync(path.join(edgeDir, "sites.d"))
    .filter((f) => f.startsWith(".") && f !== ".lock");
}
