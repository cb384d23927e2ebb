/**
 * The deploy connection's SSH options against a real OpenSSH server on loopback: the pinned host key
 * lets the connection through, any other key stops it, and the known_hosts mode is strict too.
 * (The Docker provider passes these options to the same `ssh` binary.)
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { sshOptions } from "../core/host";
import { tempDir } from "./helpers";
import { SSHD, keygen, startSshd, type Sshd } from "./sshd";

const skip = !fs.existsSync(SSHD) && !process.env.CI ? "OpenSSH server not installed" : false;
let dir: string;
let port: number;
let server: Sshd;
let hostKey: string;
let otherKey: string;

before(async () => {
  if (skip) return;
  dir = tempDir("ssh");
  otherKey = keygen(path.join(dir, "other"));
  server = await startSshd(dir);
  ({ port, hostKey } = server);
});

after(() => {
  server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function connect(opts: string[]) {
  const user = process.env.USER ?? "root";
  return spawnSync(
    "ssh",
    [
      ...opts,
      "-i",
      path.join(dir, "client"),
      "-p",
      String(port),
      `${user}@127.0.0.1`,
      "echo connected",
    ],
    {
      encoding: "utf8",
      env: { ...process.env, SSH_AUTH_SOCK: "" },
      timeout: 30_000,
    },
  );
}

const base = {
  connection: "ssh" as const,
  user: "deploy",
  address: "127.0.0.1",
  port: 22,
  knownHostsFile: "",
};

test("the pinned host key lets the connection through", { skip }, () => {
  const r = connect(sshOptions({ ...base, hostKey }));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "connected");
});

test("any other host key stops it", { skip }, () => {
  const r = connect(sshOptions({ ...base, hostKey: otherKey }));
  assert.equal(r.status, 255);
  assert.match(r.stderr, /Host key verification failed/);
});

test("known_hosts mode: an unknown host is refused, never added", { skip }, () => {
  const knownHostsFile = path.join(dir, "known_hosts");
  fs.writeFileSync(knownHostsFile, "");
  const r = connect(sshOptions({ ...base, knownHostsFile }));
  assert.equal(r.status, 255);
  assert.match(r.stderr, /Host key verification failed/);
  assert.equal(fs.readFileSync(knownHostsFile, "utf8"), "", "nothing was learned");
  fs.writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostKey}\n`);
  assert.equal(connect(sshOptions({ ...base, knownHostsFile })).status, 0);
});
