/** Running the docker CLI (and other host commands) from the engine suite. */
import { spawn } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Milliseconds; default 10 minutes. */
  timeoutMs?: number;
  cwd?: string;
}

/** Runs a program (no shell) and collects its output; never throws on a non-zero exit. */
export function run(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 600_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

/** Runs a program and returns its standard output; throws with its words when it fails. */
export async function must(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) {
    const shown = [cmd, ...args].join(" ");
    throw new Error(
      `${shown.length > 200 ? `${shown.slice(0, 200)}...` : shown} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`,
    );
  }
  return r.stdout;
}

export const docker = (args: readonly string[], options: RunOptions = {}) =>
  must("docker", args, options);

/** Whether `docker image inspect REF` finds the image. */
export async function imageExists(ref: string): Promise<boolean> {
  return (await run("docker", ["image", "inspect", "--format", "{{.Id}}", ref])).code === 0;
}

export async function inspect<T = Record<string, unknown>>(kind: string, name: string): Promise<T> {
  const out = await docker([kind, "inspect", name]);
  return (JSON.parse(out) as T[])[0];
}

/** psql as `postgres` inside a container (over its socket), SQL on standard input; the rows as text. */
export async function psqlIn(container: string, database: string, sql: string): Promise<string> {
  const r = await run(
    "docker",
    [
      "exec",
      "-i",
      container,
      "psql",
      "-X",
      "-At",
      "-v",
      "ON_ERROR_STOP=1",
      "-U",
      "postgres",
      "-d",
      database,
    ],
    { input: sql },
  );
  if (r.code !== 0) throw new Error(`psql in ${container} (${database}): ${r.stderr}`);
  return r.stdout.trim();
}
