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
import { type Io, parseStrict, processIo, readCommandLine, runCommand } from "./args";
import { Refusal, readStack } from "./stack";
import type { HostSettings } from "../stacks/settings";

const USAGE = "usage: npm run tunnel -- --stack NAME";
const READY_WITHIN_MS = 20_000;

type SshDocker = Extract<HostSettings["docker"], { connection: "ssh" }>;

function sshBase(d: SshDocker): string[] {
  return [...sshOptions(d), "-p", String(d.port)];
}

/** The container's address on the host (its first network's), asked over SSH. */
export function containerAddress(
  d: SshDocker,
  container: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const r = spawnSync(
    "ssh",
    [
      ...sshBase(d),
      `${d.user}@${d.address}`,
      `docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' ${commandLine([container])}`,
    ],
    { encoding: "utf8", timeout: 60_000, env },
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
  env: NodeJS.ProcessEnv = process.env,
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
    { detached: true, stdio: ["ignore", "ignore", fd], env },
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

/** The command: `argv` without the node and script; resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const pids: number[] = [];
  const args = readCommandLine(
    () =>
      parseStrict(argv, USAGE, { stack: { type: "string" } }, (v) => {
        if (!v.stack) throw new Error("--stack is required");
      }),
    USAGE,
    io,
  );
  if (typeof args === "number") return args;
  const stack = args.stack!;
  try {
    const { settings } = readStack(io.cwd, stack);
    let opened = 0;
    for (const host of settings.hosts) {
      const db = host.sharedDatabase;
      if (!db) continue;
      if (host.docker.connection !== "ssh") {
        io.stdout(`tunnel: ${host.name}: local engine, the cluster is reached directly\n`);
        continue;
      }
      const address = containerAddress(host.docker, db.container, io.env);
      const pid = await openTunnel(
        host.docker,
        { address: db.adminAddress, port: db.adminPort },
        { address, port: db.port },
        io.env,
      );
      opened += 1;
      pids.push(pid);
      io.stdout(
        `tunnel: ${db.adminAddress}:${db.adminPort} -> ${host.name} ${db.container} ` +
          `(${address}:${db.port}), pid ${pid}\n`,
      );
    }
    if (opened === 0) io.stdout(`tunnel: stack ${stack} needs no tunnel\n`);
    return 0;
  } catch (err) {
    // All or none: when one host fails, the tunnels already opened are closed again.
    for (const pid of pids) {
      try {
        process.kill(pid);
      } catch {
        // already gone
      }
    }
    if (!(err instanceof Refusal)) throw err;
    io.stderr(`tunnel: ${err.message}\n`);
    return 1;
  }
}

if (require.main === module) runCommand(main);
