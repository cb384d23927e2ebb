/**
 * The read-only Docker API proxy's configuration in a real HAProxy (Debian's 2.6, the version the
 * platform pins), in front of a stand-in Docker API on a unix socket that records what reaches it.
 * The proxy belongs to site "alpha": it answers about alpha's own containers only, lists through
 * alpha's label filter whatever the client asks, and refuses the rest before Docker sees it, however
 * the request is spelled (encodings, dot segments, doubled slashes, version prefixes, case, query
 * tricks, HTTP/1.0, absolute-form URIs, pipelining). What it cannot show: how a real Docker daemon
 * answers the filter (the engine suite's proxy test does).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { ownContainerPattern, siteLabelFilter, socketProxyConfig } from "../core/socket-proxy";
import { APP_CONTAINER_PATTERN } from "../core/names";
import { freePort } from "./caddy-server";
import { tempDir } from "./helpers";

const HAPROXY = "/usr/sbin/haproxy";
const skip = !fs.existsSync(HAPROXY) && !process.env.CI ? "haproxy not installed" : false;
const APP = "alpha-app-0a1b2c3d";
const FILTER = `filters=${siteLabelFilter("alpha")}`;
let api: http.Server;
let proxy: ChildProcess;
let port: number;
/** Every request line that reached the stand-in Docker API. */
const seen: string[] = [];

before(async () => {
  if (skip) return;
  const dir = tempDir("sockproxy");
  const socket = path.join(dir, "docker.sock");
  api = http.createServer((req, res) => {
    seen.push(`${req.method ?? ""} ${req.url ?? ""}`);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ docker: true }));
  });
  await new Promise<void>((r) => api.listen(socket, r));
  port = await freePort();
  const cfg = path.join(dir, "haproxy.cfg");
  fs.writeFileSync(cfg, socketProxyConfig({ site: "alpha", socket, port }));
  const check = await run(HAPROXY, ["-c", "-f", cfg]);
  assert.equal(check.code, 0, check.output);
  proxy = spawn(HAPROXY, ["-db", "-f", cfg], { stdio: "ignore" });
  const deadline = Date.now() + 10_000;
  while ((await get("GET", "/_ping").catch(() => 0)) !== 200) {
    assert.ok(Date.now() < deadline, "haproxy did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  proxy?.kill();
  await new Promise<void>((r) => (api ? api.close(() => r()) : r()));
});

function run(cmd: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args);
    let output = "";
    c.stdout.on("data", (d: Buffer) => (output += d.toString()));
    c.stderr.on("data", (d: Buffer) => (output += d.toString()));
    c.on("exit", (code) => resolve({ code, output }));
  });
}

function get(method: string, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method, path: url, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Sends raw bytes and returns the status codes of every response read until the proxy closes. */
function raw(bytes: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    // No half-close: the proxy reads every pipelined request; the last asks to close (or is HTTP/1.0).
    const s = net.connect(port, "127.0.0.1", () => s.write(bytes));
    s.setTimeout(10_000, () => s.destroy(new Error("the proxy did not close within 10 s")));
    let out = "";
    s.on("data", (d: Buffer) => (out += d.toString("latin1")));
    s.on("error", reject);
    s.on("close", () =>
      resolve([...out.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1]))),
    );
  });
}

test("the app's container pattern is the names module's", () => {
  const re = new RegExp(`^${ownContainerPattern("alpha")}$`);
  for (const name of [APP, "alpha-app-ffffffff", "alpha-app-00000000"]) {
    assert.ok(APP_CONTAINER_PATTERN.test(name), name);
    assert.ok(re.test(name), name);
  }
  for (const name of ["alpha-app-0a1b2c3", "alpha-app-0A1B2C3D", "beta-app-0a1b2c3d"]) {
    assert.ok(!re.test(name), name);
  }
  assert.throws(() => ownContainerPattern("a|b"), /unsafe site name/);
  assert.throws(
    () => socketProxyConfig({ site: "x.*", socket: "/s", port: 1 }),
    /unsafe site name/,
  );
});

test(
  "the site's own containers: inspect, stats, logs and top pass unchanged",
  { skip },
  async () => {
    const urls = [];
    for (const name of [APP, "alpha-db"]) {
      for (const what of ["json", "stats?stream=false", "logs?stdout=1&tail=100", "top"]) {
        urls.push(`/containers/${name}/${what}`, `/v1.41/containers/${name}/${what}`);
      }
    }
    for (const url of [...urls, "/_ping", "/version", "/v1.43/version"]) {
      const before = seen.length;
      assert.equal(await get("GET", url), 200, url);
      assert.deepEqual(seen.slice(before), [`GET ${url}`], `${url} reached Docker unchanged`);
    }
  },
);

test("lists and events reach Docker with the site's label filter only", { skip }, async () => {
  const other = encodeURIComponent(JSON.stringify({ label: ["agi.site=beta"] }));
  for (const [url, expected] of [
    ["/containers/json", `/containers/json?${FILTER}`],
    ["/v1.41/containers/json?all=1", `/v1.41/containers/json?${FILTER}&all=1`],
    ["/containers/json?all=true&size=1", `/containers/json?${FILTER}&all=1`],
    [`/containers/json?filters=${other}`, `/containers/json?${FILTER}`],
    [`/containers/json?all=1&filters=${other}&filters=x`, `/containers/json?${FILTER}&all=1`],
    // A second value smuggled into "all" never becomes a parameter of its own.
    [`/containers/json?all=1%26filters%3D${other}`, `/containers/json?${FILTER}`],
    ["/containers/json?all=1&all=0", `/containers/json?${FILTER}&all=1`],
    ["/events", `/events?${FILTER}`],
    [
      "/events?since=1700000000&until=1700000600",
      `/events?${FILTER}&since=1700000000&until=1700000600`,
    ],
    [`/v1.41/events?filters=${other}&since=1`, `/v1.41/events?${FILTER}&since=1`],
    ["/events?since=1%26filters%3Dx&until=-1", `/events?${FILTER}`],
    ["/events?type=container", `/events?${FILTER}`],
  ] as const) {
    const before = seen.length;
    assert.equal(await get("GET", url), 200, url);
    assert.deepEqual(seen.slice(before), [`GET ${expected}`], url);
  }
  // The filter is the label every container of the site carries, in Docker's JSON form.
  assert.equal(decodeURIComponent(FILTER.slice("filters=".length)), '{"label":["agi.site=alpha"]}');
});

test(
  "other tenants, IDs, host-wide lists and writes are refused however spelled",
  { skip },
  async () => {
    const before = seen.length;
    const refused: [string, string][] = [
      // Other sites' containers, and IDs (even of the site's own containers).
      ["GET", "/containers/beta-app-0a1b2c3d/json"],
      ["GET", "/containers/beta-db/logs"],
      ["GET", "/containers/beta-db/stats"],
      ["GET", "/containers/beta-db/top"],
      ["GET", "/containers/agi-edge/json"],
      ["GET", "/containers/alpha-docker/json"],
      ["GET", "/containers/alpha-backup/logs"],
      ["GET", `/containers/${"a".repeat(64)}/json`],
      ["GET", "/containers/0a1b2c3d4e5f/logs"],
      ["GET", "/containers/alpha-app-0a1b2c3/json"],
      ["GET", "/containers/alpha-app-0a1b2c3d0/json"],
      ["GET", "/containers/alpha-dbx/json"],
      ["GET", "/containers/xalpha-db/json"],
      ["GET", "/containers/alpha-app-0A1B2C3D/json"],
      // Traversal, encodings, doubled slashes, case, suffixes.
      ["GET", "/containers/alpha-db/../beta-db/json"],
      ["GET", "/containers/alpha-db/..%2fbeta-db/json"],
      ["GET", "/containers/alpha-db/%2e%2e/beta-db/json"],
      ["GET", "/containers/%61lpha-db/json"],
      ["GET", "/containers/beta-db%2fjson"],
      ["GET", "/containers/json/../beta-db/json"],
      ["GET", "/containers/./alpha-db/json"],
      ["GET", "//containers/alpha-db/json"],
      ["GET", "/containers//alpha-db/json"],
      ["GET", "/v1.41//containers/json"],
      ["GET", "/v1.41/v1.41/containers/json"],
      ["GET", "/V1.41/containers/json"],
      ["GET", "/CONTAINERS/json"],
      ["GET", "/containers/ALPHA-DB/json"],
      ["GET", "/containers/alpha-db/json/"],
      ["GET", "/containers/alpha-db/json;x"],
      ["GET", "/containers/json/"],
      ["GET", "/events/"],
      ["GET", "/vx/containers/json"],
      // What the site's own containers must not give either.
      ["GET", "/containers/alpha-db/archive?path=/run/agi"],
      ["GET", "/containers/alpha-db/export"],
      ["GET", "/containers/alpha-db/changes"],
      ["GET", "/containers/alpha-db/attach/ws"],
      ["GET", `/containers/${APP}/top?ps_args=aux`],
      ["HEAD", "/containers/alpha-db/json"],
      ["HEAD", "/containers/json"],
      ["POST", "/containers/alpha-db/stop"],
      ["POST", `/containers/${APP}/exec`],
      ["POST", "/v1.41/containers/create"],
      ["DELETE", "/containers/alpha-db"],
      ["PUT", "/containers/alpha-db/archive?path=/"],
      ["OPTIONS", "/containers/json"],
      // Host-wide lists show other tenants.
      ["GET", "/info"],
      ["GET", "/system/df"],
      ["GET", "/images/json"],
      ["GET", "/networks"],
      ["GET", "/volumes"],
      ["GET", "/secrets"],
      ["GET", "/images/abc/json"],
      ["GET", "/networks/beta-internal"],
    ];
    for (const [method, url] of refused) {
      assert.equal(await get(method, url), 403, `${method} ${url}`);
    }
    assert.deepEqual(seen.slice(before), [], "something refused reached the Docker API");
  },
);

test(
  "HTTP/1.0, absolute-form URIs and pipelined requests get the same answers",
  { skip },
  async () => {
    let before = seen.length;
    assert.deepEqual(await raw("GET /containers/beta-db/json HTTP/1.0\r\n\r\n"), [403]);
    assert.deepEqual(await raw("GET /containers/json HTTP/1.0\r\n\r\n"), [200]);
    assert.deepEqual(seen.slice(before), [`GET /containers/json?${FILTER}`]);

    before = seen.length;
    const absolute = (p: string) =>
      `GET http://docker${p} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n`;
    assert.deepEqual(await raw(absolute("/containers/beta-db/json")), [403]);
    assert.deepEqual(await raw(absolute("/containers/alpha-db/../beta-db/json")), [403]);
    assert.deepEqual(await raw(absolute("//containers/alpha-db/json")), [403]);
    assert.deepEqual(await raw(absolute("/containers/json?filters=x")), [200]);
    assert.equal(seen.length, before + 1);
    // Whatever form the request line had, the query Docker gets is the site's filter.
    assert.ok(seen[before].endsWith(`/containers/json?${FILTER}`), seen[before]);
    // A malformed URI is HAProxy's own 400.
    const malformed = await raw("GET http:/containers/beta-db/json HTTP/1.1\r\nHost: d\r\n\r\n");
    assert.ok(malformed.length === 1 && [400, 403].includes(malformed[0]), String(malformed));
    assert.equal(seen.length, before + 1);

    before = seen.length;
    const pipelined =
      "GET /containers/alpha-db/json HTTP/1.1\r\nHost: d\r\n\r\n" +
      "GET /containers/beta-db/json HTTP/1.1\r\nHost: d\r\n\r\n" +
      "GET /containers/json HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n";
    const statuses = await raw(pipelined);
    // Each request is judged on its own.
    assert.deepEqual(statuses, [200, 403, 200]);
    assert.deepEqual(seen.slice(before), [
      "GET /containers/alpha-db/json",
      `GET /containers/json?${FILTER}`,
    ]);
  },
);
