/** A real Caddy for tests: local certificates, loopback high ports, its own storage directory. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import { freePort } from "./helpers";

export { freePort };

export const CADDY = process.env.CADDY_BIN ?? "/usr/bin/caddy";

export function caddyAvailable(): boolean {
  return fs.existsSync(CADDY);
}

/** Environment that keeps Caddy's data (its local CA) and config inside `home`. */
export function caddyEnv(home: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: home,
    XDG_DATA_HOME: path.join(home, "data"),
    XDG_CONFIG_HOME: path.join(home, "config"),
  };
}

/** `caddy validate` of a Caddyfile; returns the exit code and Caddy's output. */
export function caddyValidate(
  caddyfile: string,
  home: string,
): { code: number | null; output: string } {
  const r = spawnSync(CADDY, ["validate", "--config", caddyfile, "--adapter", "caddyfile"], {
    cwd: path.dirname(caddyfile),
    env: caddyEnv(home),
    encoding: "utf8",
  });
  return { code: r.status, output: r.stdout + r.stderr };
}

export interface RunningCaddy {
  /** Caddy's local root certificate, to trust in requests. */
  ca: Buffer;
  stop(): Promise<void>;
  log(): string;
}

export async function startCaddy(
  caddyfile: string,
  home: string,
  adminAddress: string,
): Promise<RunningCaddy> {
  const child: ChildProcess = spawn(
    CADDY,
    ["run", "--config", caddyfile, "--adapter", "caddyfile"],
    {
      cwd: path.dirname(caddyfile),
      env: caddyEnv(home),
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let log = "";
  child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const rootCert = path.join(home, "data", "caddy", "pki", "authorities", "local", "root.crt");
  const deadline = Date.now() + 30_000;
  while (!fs.existsSync(rootCert) || !(await adminUp(adminAddress))) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`caddy did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ca: fs.readFileSync(rootCert),
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
    },
  };
}

function adminUp(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`http://${address}/config/`, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.setTimeout(1000, () => req.destroy());
  });
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to the edge on loopback, as a browser asking for `host` would make it. */
export function request(
  scheme: "http" | "https",
  port: number,
  host: string,
  pathname = "/",
  ca?: Buffer,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const options = {
      host: "127.0.0.1",
      port,
      path: pathname,
      headers: { host },
      agent: false as const,
      timeout: 10_000,
      ...(scheme === "https" ? { servername: host, ca } : {}),
    };
    const req = (scheme === "https" ? https : http).request(options, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** An upstream that answers every request with its own name. */
export async function stubUpstream(
  name: string,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`upstream ${name} saw ${req.headers.host ?? ""}`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
