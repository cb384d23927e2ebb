/**
 * A throwaway OpenSSH server on loopback for tests: its own host key, one authorised client key,
 * no passwords. Connections use the deploy connection's own SSH options.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { freePort } from "./helpers";

export const SSHD = "/usr/sbin/sshd";

/** Generates an ed25519 key pair at `file`; returns the public key as "type base64". */
export function keygen(file: string): string {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
  return fs.readFileSync(`${file}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
}

export interface Sshd {
  port: number;
  /** The server's public host key, "type base64". */
  hostKey: string;
  /** The authorised client's private key file. */
  clientKey: string;
  stop(): void;
}

/**
 * Starts sshd in `dir` (which holds its keys and config). `extra` lines go first into sshd_config,
 * so they override the defaults here (sshd takes the first value of an option).
 */
export async function startSshd(dir: string, extra: string[] = []): Promise<Sshd> {
  const hostKey = keygen(path.join(dir, "host"));
  const clientKey = path.join(dir, "client");
  fs.writeFileSync(path.join(dir, "authorized_keys"), `${keygen(clientKey)}\n`, { mode: 0o644 });
  fs.mkdirSync("/run/sshd", { recursive: true });
  const port = await freePort();
  const config = [
    ...extra,
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
  // Its log goes to sshd.log in `dir`, for a failing test to show.
  const logFd = fs.openSync(path.join(dir, "sshd.log"), "a");
  const sshd: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", path.join(dir, "sshd_config")], {
    stdio: ["ignore", "ignore", logFd],
  });
  fs.closeSync(logFd);
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
  return { port, hostKey, clientKey, stop: () => sshd.kill() };
}
