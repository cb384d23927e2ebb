/**
 * A local S3-compatible server for tests (s3rver, in a child process: the tests block on spawnSync),
 * with one bucket, on `address` (loopback by default; the engine suite gives the Docker bridge's
 * gateway so containers reach it). Objects are files under `directory`, so a test can damage or
 * remove one as a bad remote would.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export const S3_ACCESS_KEY = "S3RVER";
/** s3rver's fixed test credentials: not a secret of anything. */
export const S3_SECRET_KEY = "S3RVER";

export interface S3Server {
  endpoint: string;
  port: number;
  bucket: string;
  directory: string;
  /** The file that holds an object's bytes. */
  objectFile(key: string): string;
  /** Object keys under a prefix, sorted. */
  keys(prefix?: string): string[];
  stop(): Promise<void>;
}

const SERVER = `
const S3rver = require(process.argv[1]);
const [address, port, directory, bucket] = process.argv.slice(2);
new S3rver({ address, port: Number(port), silent: true, directory, configureBuckets: [{ name: bucket }] })
  .run()
  .then(({ port }) => process.stdout.write(port + "\\n"), (err) => { console.error(err); process.exit(1); });
`;

export async function startS3(
  directory: string,
  options: { address?: string; port?: number; bucket?: string } = {},
): Promise<S3Server> {
  const bucket = options.bucket ?? "backups";
  const address = options.address ?? "127.0.0.1";
  fs.mkdirSync(directory, { recursive: true });
  const child = spawn(
    process.execPath,
    [
      "-e",
      SERVER,
      require.resolve("s3rver"),
      address,
      String(options.port ?? 0),
      directory,
      bucket,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(Number(out.trim()));
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => reject(new Error(`s3rver exited (${code}): ${err}`)));
  });
  const endpoint = `http://${address}:${port}`;
  const suffix = "._S3rver_object";
  return {
    endpoint,
    port,
    bucket,
    directory,
    objectFile: (key) => path.join(directory, bucket, `${key}${suffix}`),
    keys(prefix = "") {
      const out: string[] = [];
      const walk = (dir: string) => {
        if (!fs.existsSync(dir)) return;
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const p = path.join(dir, e.name);
          if (e.isDirectory()) walk(p);
          else if (e.name.endsWith(suffix)) {
            out.push(path.relative(path.join(directory, bucket), p).slice(0, -suffix.length));
          }
        }
      };
      walk(path.join(directory, bucket));
      return out.filter((k) => k.startsWith(prefix)).sort();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
