/**
 * The read-only Docker API proxy's configuration in a real HAProxy (Debian's 2.6, the version the
 * platform pins), in front of a stand-in Docker API on a unix socket: what a dashboard needs passes;
 * writes, container inspection (environment), archives and exports are refused.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { socketProxyConfig } from "../core/socket-proxy";
import { freePort } from "./caddy-server";
import { tempDir } from "./helpers";

const HAPROXY = "/usr/sbin/haproxy";
const skip = !fs.existsSync(HAPROXY) && !process.env.CI ? "haproxy not installed" : false;
let api: http.Server;
let proxy: ChildProcess;
let port: number;
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
  fs.writeFileSync(cfg, socketProxyConfig({ socket, port }));
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

test("what a dashboard reads passes through", { skip }, async () => {
  for (const url of [
    "/_ping",
    "/v1.41/version",
    "/info",
    "/v1.41/containers/json?all=1",
    "/containers/abc123/stats?stream=false",
    "/v1.43/containers/stepperslife-app-1a2b3c4/logs?stdout=1&tail=100",
    "/images/json",
    "/networks",
    "/volumes",
    "/events?since=1",
  ]) {
    assert.equal(await get("GET", url), 200, url);
  }
  assert.ok(
    seen.includes("GET /v1.41/containers/json?all=1"),
    "the request reached the Docker API unchanged",
  );
});

test(
  "writes, inspection, archives, exports and exec are refused before Docker sees them",
  { skip },
  async () => {
    const before = seen.length;
    for (const [method, url] of [
      ["GET", "/containers/abc123/json"],
      ["GET", "/v1.41/containers/abc123/json"],
      ["GET", "/containers/abc123/archive?path=/run/agi"],
      ["HEAD", "/containers/abc123/archive?path=/run/agi"],
      ["GET", "/containers/abc123/export"],
      ["GET", "/containers/json/../abc123/json"],
      ["GET", "/images/abc/json"],
      ["GET", "/secrets"],
      ["POST", "/containers/abc123/stop"],
      ["POST", "/v1.41/containers/create"],
      ["POST", "/containers/abc123/exec"],
      ["DELETE", "/containers/abc123"],
      ["PUT", "/containers/abc123/archive?path=/"],
    ] as const) {
      assert.equal(await get(method, url), 403, `${method} ${url}`);
    }
    assert.equal(seen.length, before, "nothing refused reached the Docker API");
  },
);
