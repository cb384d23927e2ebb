/**
 * The deploy connection's SSH options against a real OpenSSH server on loopback: the pinned host key
 * lets the connection through, any other key stops it, and the known_hosts mode is strict too.
 * (The Docker provider passes these options to the same `ssh` binary.)
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { sshOptions } from "../components/platform";
import { tempDir } from "./helpers";

const SSHD = "/usr/sbin/sshd";
const skip = !fs.existsSync(SSHD) && !process.env.CI ? "OpenSSH server not installed" : false;
let dir: string;
let port: number;
let sshd: ChildProcess;
let hostKey: string;
let otherKey: string;

function keygen(file: string): string {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
  return fs.readFileSync(`${file}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
}

before(async () => {
  if (skip) return;
  dir = tempDir("ssh");
  hostKey = keygen(path.join(dir, "host"));
  otherKey = keygen(path.join(dir, "other"));
  const client = keygen(path.join(dir, "client"));
  fs.writeFileSync(path.join(dir, "authorized_keys"), `${client}\n`, { mode: 0o600 });
  fs.mkdirSync("/run/sshd", { recursive: true });
  port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const config = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${path.join(dir, "host")}`,
    `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
    `PidFile ${path.join(dir, "sshd.pid")}`,
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    "StrictModes no",
    "UsePAM no",
  ].join("\n");
  fs.writeFileSync(path.join(dir, "sshd_config"), `${config}\n`);
  sshd = spawn(SSHD, ["-D", "-e", "-f", path.join(dir, "sshd_config")], { stdio: "ignore" });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, "127.0.0.1", () => {
        c.end();
        resolve(true);
      });
      c.on("error", () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error("sshd did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(() => {
  sshd?.kill();
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
