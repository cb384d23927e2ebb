/**
 * A throwaway PostgreSQL 15 server for tests: initdb in a temporary directory as the `postgres`
 * user (initdb refuses root), listening on a loopback port and a private socket directory.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "./helpers";

export const PG_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";

/** One query over TCP on loopback, with a password (as an app or a provider connects). */
export function psqlOverTcp(
  port: number,
  user: string,
  password: string,
  db: string,
  query: string,
): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(
    "psql",
    ["-X", "-A", "-t", "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", db, "-c", query],
    { env: { ...process.env, PGPASSWORD: password }, encoding: "utf8" },
  );
}

/** Whether the server binaries are here; in CI they must be (.ci/run installs them). */
export function postgresAvailable(): boolean {
  return fs.existsSync(path.join(PG_BIN, "postgres"));
}

export interface PgServer {
  port: number;
  socketDir: string;
  /** Env for psql and friends: host, port, superuser. */
  env: NodeJS.ProcessEnv;
  /** libpq arguments for the superuser on `db` over the trusted private socket. */
  connArgs(db: string): string[];
  /** Runs SQL as the superuser (or `user`) on `db`; returns trimmed unaligned output. */
  sql(db: string, query: string, user?: string, password?: string): string;
  stop(): Promise<void>;
}

/** An initialised data directory owned by `postgres`, with a private socket directory. */
export function initDataDir(): {
  dir: string;
  data: string;
  socketDir: string;
  asPostgres: { uid?: number; gid?: number };
} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agi-pg-"));
  fs.chmodSync(dir, 0o777);
  const data = path.join(dir, "data");
  const socketDir = path.join(dir, "sock");
  fs.mkdirSync(socketDir);
  fs.chmodSync(socketDir, 0o777);
  const asPostgres = process.getuid?.() === 0 ? ids("postgres") : {};
  execFileSync(
    path.join(PG_BIN, "initdb"),
    ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
    {
      ...asPostgres,
      stdio: "pipe",
    },
  );
  // Trust only on the private socket; over TCP every role, the superuser too, needs its password.
  fs.writeFileSync(
    path.join(data, "pg_hba.conf"),
    "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
  );
  return { dir, data, socketDir, asPostgres };
}

/** Waits until a server accepts TCP connections on `port`. */
export async function waitReady(
  port: number,
  alive: () => boolean,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (spawnSync("pg_isready", ["-h", "127.0.0.1", "-p", String(port)]).status !== 0) {
    if (!alive() || Date.now() > deadline) throw new Error(`PostgreSQL did not start:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a server with extra `-c name=value` settings. */
export async function startPostgres(settings: [string, string][] = []): Promise<PgServer> {
  const { dir, data, socketDir, asPostgres } = initDataDir();
  const port = await freePort();
  const args = [
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    socketDir,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "fsync=off",
  ];
  for (const [k, v] of settings) if (k !== "listen_addresses") args.push("-c", `${k}=${v}`);
  const child: ChildProcess = spawn(path.join(PG_BIN, "postgres"), args, {
    ...asPostgres,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const env = { ...process.env, PGHOST: socketDir, PGPORT: String(port), PGUSER: "postgres" };
  await waitReady(
    port,
    () => child.exitCode === null,
    () => log,
  );
  return {
    port,
    socketDir,
    env,
    connArgs: (db) => ["-h", socketDir, "-p", String(port), "-U", "postgres", "-d", db],
    sql(db, query, user = "postgres", password) {
      // Without a password: the trusted private socket; with one: TCP, where passwords are checked.
      const host = password === undefined ? socketDir : "127.0.0.1";
      const r = spawnSync(
        "psql",
        ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-U", user, "-d", db, "-c", query],
        {
          env: { ...env, PGPASSWORD: password ?? "" },
          encoding: "utf8",
        },
      );
      if (r.status !== 0) throw new Error(r.stderr.trim());
      return r.stdout.trim();
    },
    async stop() {
      child.kill("SIGINT");
      await new Promise((r) => child.once("exit", r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function ids(user: string): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync("id", ["-u", user], { encoding: "utf8" })),
    gid: Number(execFileSync("id", ["-g", user], { encoding: "utf8" })),
  };
}
