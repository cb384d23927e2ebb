/**
 * npm run tunnel -- --stack NAME
 * Opens, for every SSH host of the stack that has a shared PostgreSQL cluster, the tunnel the
 * PostgreSQL provider uses: sharedDatabase.adminAddress:adminPort on this machine to the cluster's
 * container on the host. Same SSH options as the deploy connection (batch mode, strict host-key
 * checking against the pinned key or known_hosts). The tunnels keep running in the background
 * (the workflows open them before Pulumi runs; the runner ends them with the job); each line says
 * where it goes and its pid. Exit 1, with ssh's message, when a tunnel does not come up.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { sshOptions } from "../core/host";
import { commandLine } from "../core/host";
import { parseOrUsage } from "./args";
import { Refusal, readStack } from "./stack";
import type { HostSettings } from "../stacks/settings";

const USAGE = "usage: npm run tunnel -- --stack NAME";
const READY_WITHIN_MS = 20_000;

type SshDocker = Extract<HostSettings["docker"], { connection: "ssh" }>;

function sshBase(d: SshDocker): string[] {
  return [...sshOptions(d), "-p", String(d.port)];
}

/** The container's address on the host (its first network's), asked over SSH. */
export function containerAddress(d: SshDocker, container: string): string {
  const r = spawnSync(
    "ssh",
    [
      ...sshBase(d),
      `${d.user}@${d.address}`,
      `docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' ${commandLine([container])}`,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  const address = r.stdout?.trim().split(/\s+/)[0];
  if (r.status !== 0 || !address) {
    const why = (r.stderr || r.error?.message || "no address").trim().split("\n").pop();
    throw new Refusal(`cannot find ${container}'s address on ${d.address}: ${why}`);
  }
  return address;
}

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, host, () => {
      c.end();
      resolve(true);
    });
    c.on("error", () => resolve(false));
  });
}

/** Starts one tunnel in the background; resolves to its pid once the local end accepts. */
export async function openTunnel(
  d: SshDocker,
  local: { address: string; port: number },
  remote: { address: string; port: number },
): Promise<number> {
  if (await connects(local.address, local.port)) {
    throw new Refusal(`${local.address}:${local.port} is already in use here; close what holds it`);
  }
  // A fresh private directory: never a predictable path someone else could have prepared.
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "agi-tunnel-")), "ssh.log");
  const fd = fs.openSync(log, "wx", 0o600);
  const child = spawn(
    "ssh",
    [
      ...sshBase(d),
      "-N",
      "-o",
      "ExitOnForwardFailure=yes",
      "-o",
      "ServerAliveInterval=30",
      "-L",
      `${local.address}:${local.port}:${remote.address}:${remote.port}`,
      `${d.user}@${d.address}`,
    ],
    { detached: true, stdio: ["ignore", "ignore", fd] },
  );
  fs.closeSync(fd);
  let exited = false;
  child.on("exit", () => (exited = true));
  const deadline = Date.now() + READY_WITHIN_MS;
  while (!(await connects(local.address, local.port))) {
    if (exited || Date.now() > deadline) {
      child.kill();
      const why = fs.readFileSync(log, "utf8").trim().split("\n").pop() || "no answer";
      throw new Refusal(`the tunnel to ${d.address} did not come up: ${why}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.unref();
  return child.pid as number;
}

async function main(): Promise<void> {
  const pids: number[] = [];
  const { stack } = parseOrUsage(
    process.argv.slice(2),
    USAGE,
    { stack: { type: "string" } },
    (v) => {
      if (!v.stack) throw new Error("--stack is required");
    },
  ) as { stack: string };
  try {
    const { settings } = readStack(process.cwd(), stack);
    let opened = 0;
    // All or none: when one host fails, the tunnels already opened are closed again.
    process.once("exit", (code) => {
      if (code === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid);
        } catch {
          // already gone
        }
      }
    });
    for (const host of settings.hosts) {
      const db = host.sharedDatabase;
      if (!db) continue;
      if (host.docker.connection !== "ssh") {
        process.stdout.write(
          `tunnel: ${host.name}: local engine, the cluster is reached directly\n`,
        );
        continue;
      }
      const address = containerAddress(host.docker, db.container);
      const pid = await openTunnel(
        host.docker,
        { address: db.adminAddress, port: db.adminPort },
        { address, port: db.port },
      );
      opened += 1;
      pids.push(pid);
      process.stdout.write(
        `tunnel: ${db.adminAddress}:${db.adminPort} -> ${host.name} ${db.container} ` +
          `(${address}:${db.port}), pid ${pid}\n`,
      );
    }
    if (opened === 0) process.stdout.write(`tunnel: stack ${stack} needs no tunnel\n`);
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    process.stderr.write(`tunnel: ${err.message}\n`);
    process.exit(1);
  }
}

if (require.main === module) void main();
